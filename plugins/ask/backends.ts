/**
 * Chat backends that stream: OpenAI-compatible Chat Completions (Server-Sent Events) and Ollama's
 * native `/api/chat` (NDJSON). Mid-stream errors, and streams that end without finishing, become
 * `BackendError`s; first-token, idle and total time limits abort the request.
 */
import { BackendError, type Clock, type Http, readNdjson, readSse } from 'chorus-bot';
import type { AskBackendConfig } from './config.ts';

/** One message of a conversation, as the chat APIs take it. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** A configured chat backend. */
export interface ChatBackend {
  readonly name: string;
  readonly concurrency: number;
  /** Streams the answer to `messages` in pieces. */
  stream(messages: readonly ChatMessage[], signal: AbortSignal): AsyncIterable<string>;
}

interface Deps {
  readonly http: Http;
  readonly clock: Clock;
  /** Base URL of the built-in demo server, when a demo backend is configured. */
  readonly demoUrl?: string | undefined;
}

type Json = Record<string, unknown>;

const errorText = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : value && typeof value === 'object' && 'message' in value
      ? String(value.message)
      : JSON.stringify(value);

/** Builds a backend from its config. */
export function createChatBackend(config: AskBackendConfig, deps: Deps): ChatBackend {
  const { name } = config;
  const http = deps.http.with({ proxy: config.proxy, connectTimeoutMs: config.connectTimeoutMs });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'chorus-ask',
    ...(config.apiKey && { authorization: `Bearer ${config.apiKey}` }),
    ...config.headers,
  };
  const withSystem = (messages: readonly ChatMessage[]) =>
    config.system ? [{ role: 'system' as const, content: config.system }, ...messages] : messages;

  async function* openai(
    baseUrl: string,
    messages: readonly ChatMessage[],
    signal: AbortSignal,
    extra: Json = {},
  ) {
    const body = {
      model: config.model,
      messages: withSystem(messages),
      stream: true,
      ...(config.temperature !== undefined && { temperature: config.temperature }),
      ...(config.maxTokens !== undefined && { max_tokens: config.maxTokens }),
      ...extra,
    };
    const response = await http.request(`${baseUrl.replace(/\/$/, '')}/chat/completions`, {
      backend: name,
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal,
    });
    let finished = false;
    for await (const event of readSse(response, name)) {
      if (event.data.trim() === '[DONE]') return;
      let chunk: Json;
      try {
        chunk = JSON.parse(event.data) as Json;
      } catch {
        throw new BackendError(
          name,
          'invalid',
          `${name}: unreadable stream chunk: ${event.data.slice(0, 80)}`,
        );
      }
      if (chunk.error) throw new BackendError(name, 'status', `${name}: ${errorText(chunk.error)}`);
      if (chunk.object === 'error')
        throw new BackendError(name, 'status', `${name}: ${errorText(chunk.message ?? chunk)}`);
      const choice = (chunk.choices as Json[] | undefined)?.[0];
      const piece = (choice?.delta as Json | undefined)?.content;
      if (typeof piece === 'string' && piece) yield piece;
      if (choice?.finish_reason) finished = true;
    }
    // Some servers end with a finish_reason and no [DONE]; a stream with neither was cut off.
    if (!finished) throw new BackendError(name, 'network', `${name}: the answer was cut off`);
  }

  async function* ollama(baseUrl: string, messages: readonly ChatMessage[], signal: AbortSignal) {
    const body = {
      model: config.model,
      messages: withSystem(messages),
      stream: true,
      options: {
        ...(config.temperature !== undefined && { temperature: config.temperature }),
        ...(config.maxTokens !== undefined && { num_predict: config.maxTokens }),
      },
    };
    const response = await http.request(`${baseUrl.replace(/\/$/, '')}/api/chat`, {
      backend: name,
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal,
    });
    for await (const line of readNdjson(response, name)) {
      const chunk = (line ?? {}) as Json;
      if (chunk.error) throw new BackendError(name, 'status', `${name}: ${errorText(chunk.error)}`);
      const piece = (chunk.message as Json | undefined)?.content;
      if (typeof piece === 'string' && piece) yield piece;
      if (chunk.done === true) return;
    }
    throw new BackendError(name, 'network', `${name}: the answer was cut off`);
  }

  const open = (messages: readonly ChatMessage[], signal: AbortSignal): AsyncIterable<string> => {
    switch (config.type) {
      case 'openai':
        return openai(config.baseUrl, messages, signal);
      case 'ollama':
        return ollama(config.baseUrl, messages, signal);
      default:
        if (!deps.demoUrl) throw new BackendError(name, 'network', `${name}: the demo server is not running`);
        return openai(`${deps.demoUrl}/v1`, messages, signal, {
          demo_tokens_per_second: config.tokensPerSecond,
        });
    }
  };

  return {
    name,
    concurrency: config.concurrency,
    stream: (messages, signal) => guardStream(name, (s) => open(messages, s), signal, deps.clock, config),
  };
}

/**
 * Runs a stream under three time limits (first piece, gap between pieces, whole stream). When one
 * passes, the request is aborted and the stream fails with a `BackendError` of kind `timeout`.
 */
export async function* guardStream(
  name: string,
  open: (signal: AbortSignal) => AsyncIterable<string>,
  outer: AbortSignal,
  clock: Clock,
  limits: {
    readonly firstTokenTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly totalTimeoutMs: number;
  },
): AsyncGenerator<string> {
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(outer.reason);
  if (outer.aborted) onOuterAbort();
  else outer.addEventListener('abort', onOuterAbort, { once: true });
  const expire = (message: string) => () =>
    controller.abort(new BackendError(name, 'timeout', `${name}: ${message}`));
  const total = clock.setTimeout(expire('no complete answer in time'), limits.totalTimeoutMs);
  let gap = clock.setTimeout(expire('no answer in time'), limits.firstTokenTimeoutMs);
  try {
    for await (const piece of open(controller.signal)) {
      clock.clearTimeout(gap);
      yield piece;
      gap = clock.setTimeout(expire('went silent mid-answer'), limits.idleTimeoutMs);
    }
  } catch (error) {
    // After our own abort, say why we aborted rather than how the transport noticed.
    if (controller.signal.aborted) throw controller.signal.reason;
    throw error;
  } finally {
    clock.clearTimeout(gap);
    clock.clearTimeout(total);
    outer.removeEventListener('abort', onOuterAbort);
    if (!controller.signal.aborted) controller.abort();
  }
}
