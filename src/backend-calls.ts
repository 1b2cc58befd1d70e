/**
 * A plugin's view of the bot's HTTP client that measures each backend request: its duration to
 * the end of the answer's body (`chorus_backend_request_duration_seconds`), the first chunk of a
 * streamed answer (`chorus_backend_first_token_seconds`), a debug line (backend, status, ms,
 * bytes) and a child span of the job's. The body is passed through as the plugin reads it, chunk
 * by chunk, with nothing read ahead; an answer nobody reads is not counted.
 */
import type { Clock } from './clock.ts';
import { BackendError, isCancellation, TimeoutError } from './errors.ts';
import type { Http, HttpOptions, HttpRequest, HttpResponse } from './http.ts';
import type { Logger } from './logger.ts';
import type { BackendCell, BackendOutcome, Metrics } from './metrics.ts';
import { endSpan, SpanKind, startSpan } from './tracing.ts';

/** What a plugin's requests are reported to. */
export interface BackendWatch {
  readonly plugin: string;
  readonly clock: Clock;
  readonly metrics?: Metrics | undefined;
  /** Debug lines go here, when its debug level is on. */
  readonly log?: Logger | undefined;
}

/** Content types of answers that stream tokens: their first chunk is the first token. */
const streamed = /^(text\/event-stream|application\/(x-)?ndjson|application\/jsonl)/i;

/** How a failed request or body read ended. */
export function outcomeOf(error: unknown, signal?: AbortSignal): BackendOutcome {
  if (error instanceof BackendError) return error.kind;
  if (error instanceof TimeoutError) return 'timeout';
  if (signal?.aborted || isCancellation(error)) return 'cancelled';
  return 'network';
}

/** Wraps `http` so every request is measured and traced for `watch.plugin`. */
export function watchHttp(http: Http, watch: BackendWatch): Http {
  return {
    with: (overrides: HttpOptions) => watchHttp(http.with(overrides), watch),
    close: () => http.close(),
    request: (url, request) => watchedRequest(http, url, request, watch),
  };
}

async function watchedRequest(
  http: Http,
  url: string,
  request: HttpRequest,
  watch: BackendWatch,
): Promise<HttpResponse> {
  const span = startSpan(`backend ${request.backend}`, SpanKind.CLIENT);
  const log = watch.log?.enabled?.('debug') === false ? undefined : watch.log;
  const cell = watch.metrics?.backend(watch.plugin, request.backend);
  if (!span.isRecording() && !cell && !log) {
    span.end();
    return http.request(url, request);
  }
  if (span.isRecording()) {
    const target = URL.canParse(url) ? new URL(url) : undefined;
    span.setAttributes({
      'chorus.plugin': watch.plugin,
      'chorus.backend': request.backend,
      'http.request.method': request.method ?? (request.body === undefined ? 'GET' : 'POST'),
      ...(target && { 'server.address': target.hostname }),
      ...(target?.port && { 'server.port': Number(target.port) }),
    });
  }
  const call = new BackendCall(watch, request, span, cell, log);
  let response: HttpResponse;
  try {
    response = await http.request(url, request);
  } catch (error) {
    call.end(outcomeOf(error, request.signal), error instanceof BackendError ? error.status : undefined);
    throw error;
  }
  call.status = response.status;
  if (!response.body) {
    call.end('ok');
    return response;
  }
  call.streamed = streamed.test(response.headers.get('content-type') ?? '');
  return call.pass(response, response.body);
}

/** One request being measured, until its body has been read. */
class BackendCall {
  status: number | undefined;
  streamed = false;
  readonly #startedAt: number;
  #bytes = 0;
  #firstChunkMs: number | undefined;
  #ended = false;

  constructor(
    private readonly watch: BackendWatch,
    private readonly request: HttpRequest,
    private readonly span: ReturnType<typeof startSpan>,
    private readonly cell: BackendCell | undefined,
    private readonly log: Logger | undefined,
  ) {
    this.#startedAt = watch.clock.now();
  }

  /** The response with its body passed through this call, read only as the plugin reads. */
  pass(response: HttpResponse, body: ReadableStream<Uint8Array>): HttpResponse {
    const reader = body.getReader();
    const signal = this.request.signal;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            const step = await reader.read();
            if (step.done) {
              this.end('ok');
              controller.close();
              return;
            }
            this.#chunk(step.value.byteLength);
            controller.enqueue(step.value);
          } catch (error) {
            this.end(outcomeOf(error, signal));
            controller.error(error);
          }
        },
        cancel: (reason: unknown) => {
          // A reader that stops early on purpose (the end of a stream it recognised) cancels
          // without a reason: the answer was fine.
          this.end(reason === undefined && !signal?.aborted ? 'ok' : outcomeOf(reason, signal));
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
    const passed = new Response(stream, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
    // A made Response has no URL of its own: keep where the answer came from.
    Object.defineProperty(passed, 'url', { value: response.url });
    return passed;
  }

  #chunk(bytes: number): void {
    this.#bytes += bytes;
    if (this.#firstChunkMs !== undefined) return;
    this.#firstChunkMs = this.watch.clock.now() - this.#startedAt;
    if (this.streamed) {
      this.cell?.firstToken.observe(this.#firstChunkMs / 1000);
      if (this.span.isRecording()) this.span.addEvent('first chunk');
    }
  }

  end(outcome: BackendOutcome, status?: number): void {
    if (this.#ended) return;
    this.#ended = true;
    if (status !== undefined) this.status = status;
    const ms = this.watch.clock.now() - this.#startedAt;
    this.cell?.observe(outcome, ms / 1000);
    this.log?.debug('backend request', {
      plugin: this.watch.plugin,
      backend: this.request.backend,
      outcome,
      status: this.status ?? null,
      ms,
      bytes: this.#bytes,
      ...(this.streamed && this.#firstChunkMs !== undefined && { firstChunkMs: this.#firstChunkMs }),
    });
    if (this.span.isRecording()) {
      if (this.status !== undefined) this.span.setAttribute('http.response.status_code', this.status);
      this.span.setAttribute('chorus.backend.bytes', this.#bytes);
    }
    endSpan(this.span, outcome, 'chorus.backend.outcome');
  }
}
