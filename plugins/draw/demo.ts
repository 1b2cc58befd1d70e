/**
 * The built-in demo image backend: a real HTTP server on 127.0.0.1 that speaks the OpenAI Images
 * wire format and paints a labelled PNG from the prompt, after a configurable latency, sometimes
 * failing on purpose. It lets `printf '/draw a red fox\n' | npm start` show albums arriving one by
 * one with no network and no API key.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Canvas } from './png.ts';

/** A running demo server. */
export interface DemoImageServer {
  readonly url: string;
  close(): Promise<void>;
}

function hash(text: string): number {
  let h = 2166136261;
  for (const char of text) h = Math.imul(h ^ char.codePointAt(0)!, 16777619);
  return h >>> 0;
}

/** Paints one demo picture: colours and shapes from the prompt, and a DEMO label with the prompt. */
export function paintDemo(prompt: string, backend: string, index: number, size = 256): Uint8Array {
  let seed = hash(`${backend}\n${prompt}\n${index}`);
  const next = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const color = (): [number, number, number] => [
    Math.floor(next() * 200) + 30,
    Math.floor(next() * 200) + 30,
    Math.floor(next() * 200) + 30,
  ];
  const canvas = new Canvas(size, size);
  const [top, bottom] = [color(), color()];
  for (let y = 0; y < size; y++) {
    const t = y / size;
    canvas.rect(
      0,
      y,
      size,
      1,
      [0, 1, 2].map((c) => Math.round(top[c]! * (1 - t) + bottom[c]! * t)) as [number, number, number],
    );
  }
  for (let i = 0; i < 6; i++) {
    canvas.circle(
      Math.floor(next() * size),
      Math.floor(next() * size),
      10 + Math.floor(next() * size * 0.2),
      color(),
    );
  }
  canvas.rect(0, 0, size, 22, [20, 20, 20]);
  canvas.text(6, 4, `DEMO ${backend}`.slice(0, 40), 2, [255, 210, 0]);
  const words = prompt
    .toUpperCase()
    .replace(/[^A-Z0-9 .,:!?#/-]/g, '?')
    .split(/\s+/);
  const lines: string[] = [''];
  for (const word of words) {
    if ((lines.at(-1)! + word).length > 20 && lines.at(-1)) lines.push('');
    lines[lines.length - 1] = `${lines.at(-1)} ${word}`.trim();
  }
  const shown = lines.slice(0, 4);
  canvas.rect(0, size - 16 * shown.length - 6, size, size, [255, 255, 255]);
  shown.forEach((line, i) => {
    canvas.text(6, size - 16 * (shown.length - i) - 1, line, 2, [10, 10, 10]);
  });
  return canvas.toPng();
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Starts the demo server on a free loopback port. `random` decides the simulated failures. */
export async function startDemoImageServer(
  options: { random?: () => number } = {},
): Promise<DemoImageServer> {
  const random = options.random ?? Math.random;
  const images = new Map<string, Uint8Array>();
  const sockets = new Set<Socket>();
  let nextId = 0;
  let base = '';

  const server = createServer(async (req, res) => {
    const json = (status: number, value: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (req.method === 'GET' && req.url?.startsWith('/images/')) {
      const image = images.get(req.url.slice('/images/'.length));
      if (!image) return json(404, { error: { message: 'no such image (demo images expire)' } });
      return res.writeHead(200, { 'content-type': 'image/png', 'content-length': image.length }).end(image);
    }
    if (req.method !== 'POST' || req.url !== '/v1/images/generations')
      return json(404, { error: { message: 'not found' } });
    const body = (await readBody(req)) as
      | { model?: unknown; prompt?: unknown; n?: unknown; latency_ms?: unknown; fail_rate?: unknown }
      | undefined;
    if (!body || typeof body.prompt !== 'string')
      return json(400, { error: { message: 'prompt is required' } });
    const latency = typeof body.latency_ms === 'number' ? body.latency_ms : 1000;
    let gone = false;
    res.on('close', () => {
      gone = true;
    });
    await new Promise((resolve) => setTimeout(resolve, latency));
    if (gone) return;
    if (typeof body.fail_rate === 'number' && random() < body.fail_rate) {
      return json(503, { error: { message: 'demo backend: simulated outage' } });
    }
    const model = typeof body.model === 'string' ? body.model : 'demo';
    const n = typeof body.n === 'number' ? Math.min(Math.max(1, Math.floor(body.n)), 12) : 1;
    const data = Array.from({ length: n }, (_, i) => {
      const id = `${++nextId}.png`;
      images.set(id, paintDemo(body.prompt as string, model, i));
      // Keep the last few hundred only: a long-running demo must not grow without bound.
      if (images.size > 300) images.delete(images.keys().next().value!);
      return { url: `${base}/images/${id}`, revised_prompt: body.prompt };
    });
    json(200, { created: Math.floor(Date.now() / 1000), data });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
