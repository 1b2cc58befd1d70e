/**
 * The built-in demo chat backend: a real HTTP server on 127.0.0.1 that speaks the OpenAI Chat
 * Completions streaming format (Server-Sent Events) and streams a clearly labelled demo answer at
 * a realistic token rate, so `/ask` works offline with no API key.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A running demo chat server. */
export interface DemoChatServer {
  readonly url: string;
  close(): Promise<void>;
}

/** The demo answer to `question`. */
export function demoAnswer(question: string, tokensPerSecond: number): string {
  const asked = question.trim().slice(0, 200) || '(nothing)';
  return [
    `**[demo model]** This answer comes from Chorus's built-in demo model, not a real LLM. It streams a fixed text at ${tokensPerSecond} tokens a second, so you can watch an answer grow.`,
    `You asked: “${asked}”`,
    'To get real answers, point `plugins.ask.backends` at a real service:',
    '- OpenAI or OpenRouter: `type: openai` with `baseUrl` and `apiKey`\n- a local Ollama: `type: ollama`, `baseUrl: http://127.0.0.1:11434`',
    '```yaml\nbackends:\n  - { name: gpt, type: openai, model: gpt-4o-mini, apiKey: ${OPENAI_API_KEY} }\n```',
  ].join('\n\n');
}

/** Splits text into token-sized pieces (about four characters, as real models stream). */
export function tokenize(text: string): string[] {
  return text.match(/\s*\S{1,4}|\s+/g) ?? [];
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Starts the demo chat server on a free loopback port. */
export async function startDemoChatServer(): Promise<DemoChatServer> {
  const sockets = new Set<Socket>();
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (
      req.method !== 'POST' ||
      req.url !== '/v1/chat/completions' ||
      !body ||
      !Array.isArray(body.messages)
    ) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
      return;
    }
    const messages = body.messages as { role?: string; content?: string }[];
    const question = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const rate = typeof body.demo_tokens_per_second === 'number' ? body.demo_tokens_per_second : 30;
    const id = `chatcmpl-demo-${Date.now()}`;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': demo stream\n\n');
    res.write(chunk({ role: 'assistant', content: '' }));
    for (const token of tokenize(demoAnswer(question, rate))) {
      await new Promise((resolve) => setTimeout(resolve, 1000 / rate));
      if (res.destroyed) return;
      res.write(chunk({ content: token }));
    }
    res.write(chunk({}, 'stop'));
    res.end('data: [DONE]\n\n');
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
