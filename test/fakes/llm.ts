/**
 * Fake LLM servers on 127.0.0.1: OpenAI Chat Completions streaming (Server-Sent Events) and
 * Ollama's `/api/chat` (NDJSON). Each model name plays a script: the answer's pieces, how the
 * bytes are cut on the wire (anywhere, even inside a UTF-8 character), pauses, errors mid-stream,
 * a stall, or a cut connection. Every request body is recorded.
 */
import type { ServerResponse } from 'node:http';
import { type FakeServer, startFakeServer } from './http.ts';

export interface Script {
  /** The answer's pieces. A function gets the conversation sent. */
  readonly pieces: readonly string[] | ((messages: { role: string; content: string }[]) => readonly string[]);
  /** Pause before each piece. */
  readonly gapMs?: number;
  /** Bytes per write on the wire; small values cut inside characters. Default: one write per piece. */
  readonly cutBytes?: number;
  /** After the pieces: a proper end, an error chunk, a stall, or a dropped connection. */
  readonly ending?: 'done' | 'openai-error' | 'vllm-error' | 'ollama-error' | 'stall' | 'cut';
  /** Pause before the first byte of the body. */
  readonly firstByteMs?: number;
  /** Holds the piece at index `piece` (and the rest) back until `until` settles. */
  readonly hold?: { readonly piece: number; readonly until: Promise<unknown> };
}

export interface FakeLlm {
  readonly server: FakeServer;
  readonly url: string;
  /** Request bodies, in order. */
  readonly requests: {
    path: string;
    body: { model: string; messages: { role: string; content: string }[] };
  }[];
  script(model: string, script: Script): void;
  close(): Promise<void>;
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function writeCut(res: ServerResponse, text: string, cutBytes: number | undefined): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  if (!cutBytes) {
    res.write(bytes);
    return;
  }
  for (let i = 0; i < bytes.length; i += cutBytes) {
    res.write(bytes.subarray(i, i + cutBytes));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export async function startFakeLlm(): Promise<FakeLlm> {
  const server = await startFakeServer();
  const scripts = new Map<string, Script>();
  const requests: FakeLlm['requests'] = [];

  const play = async (
    res: ServerResponse,
    body: FakeLlm['requests'][number]['body'],
    format: { head: string; piece: (p: string) => string; end: string; error: (kind: string) => string },
  ) => {
    const script = scripts.get(body.model);
    if (!script)
      return void res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"error":{"message":"no such model"}}');
    const pieces = typeof script.pieces === 'function' ? script.pieces(body.messages) : script.pieces;
    res.writeHead(200, { 'content-type': format.head });
    if (script.firstByteMs) await wait(script.firstByteMs);
    for (const [index, piece] of pieces.entries()) {
      if (script.hold?.piece === index) await script.hold.until;
      if (script.gapMs) await wait(script.gapMs);
      if (res.destroyed) return;
      await writeCut(res, format.piece(piece), script.cutBytes);
    }
    const ending = script.ending ?? 'done';
    if (ending === 'stall') return;
    if (ending === 'cut') {
      // Let what was written reach the client first, then drop the connection mid-answer.
      await wait(30);
      return void res.socket?.destroy();
    }
    if (ending === 'done') return void res.end(format.end);
    res.end(format.error(ending));
  };

  server.route('POST', '/v1/chat/completions', async (_, res, raw) => {
    const body = JSON.parse(raw.toString()) as FakeLlm['requests'][number]['body'];
    requests.push({ path: '/v1/chat/completions', body });
    const chunk = (delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    await play(res, body, {
      head: 'text/event-stream',
      piece: (p) => chunk({ content: p }),
      end: `${chunk({}, 'stop')}: usage follows\n\ndata: ${JSON.stringify({ choices: [], usage: { total_tokens: 9 } })}\n\ndata: [DONE]\n\n`,
      error: (kind) =>
        kind === 'vllm-error'
          ? `data: ${JSON.stringify({ object: 'error', message: 'vllm: out of memory', code: 500 })}\n\n`
          : `data: ${JSON.stringify({ error: { message: 'upstream overloaded', type: 'server_error' } })}\n\n`,
    });
  });
  server.route('POST', '/api/chat', async (_, res, raw) => {
    const body = JSON.parse(raw.toString()) as FakeLlm['requests'][number]['body'];
    requests.push({ path: '/api/chat', body });
    await play(res, body, {
      head: 'application/x-ndjson',
      piece: (p) =>
        `${JSON.stringify({ model: body.model, message: { role: 'assistant', content: p }, done: false })}\n`,
      end: `${JSON.stringify({ model: body.model, message: { role: 'assistant', content: '' }, done: true, eval_count: 9 })}\n`,
      error: () => `${JSON.stringify({ error: 'model requires more system memory' })}\n`,
    });
  });

  return {
    server,
    url: server.url,
    requests,
    script: (model, script) => void scripts.set(model, script),
    close: () => server.close(),
  };
}
