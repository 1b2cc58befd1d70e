/**
 * Fake image backends on 127.0.0.1, one per wire format Chorus speaks: OpenAI Images
 * (`b64_json` or `url`), a JSON endpoint that lists image URLs, and one that answers the bytes.
 * Each image's bytes carry the prompt, so a test can tell whose picture reached whom.
 */
import type { ServerResponse } from 'node:http';
import { paintDemo } from '../../plugins/draw/demo.ts';
import { type FakeServer, startFakeServer } from './http.ts';

const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** "PNG" bytes that carry `label` after the signature. */
export function labelledPng(label: string): Buffer {
  return Buffer.concat([pngSignature, Buffer.from(label, 'utf8')]);
}

/** The label a {@link labelledPng} carries. */
export function labelOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(8)).toString('utf8');
}

/** `picture`: like `ok`, with real pictures (painted from the prompt) instead of labelled bytes. */
export type Behaviour = 'ok' | 'picture' | 'html' | 'hang' | 'error500' | 'huge' | 'text';

export interface FakeImageBackends {
  readonly server: FakeServer;
  /** Names of backends in the order their answers were completely written. */
  readonly finished: string[];
  /** When each answer was completely written (epoch ms, fractional), by `name|prompt`. */
  readonly finishedAt: Map<string, number>;
  /** The most requests each backend had in flight at once, by name. */
  readonly mostInFlight: Map<string, number>;
  /** Sets how a backend behaves and how long it takes. */
  set(name: string, behaviour: Behaviour, latencyMs?: number): void;
  /**
   * Holds the answers of backend `name` until the returned function is called: a test decides
   * the order backends finish in, whatever the machine's load.
   */
  hold(name: string): () => void;
  close(): Promise<void>;
}

/**
 * Routes: POST `/openai/<name>/images/generations` (OpenAI format, b64_json),
 * GET `/json/<name>?prompt=` (`{ data: [{ url }] }`), GET `/bytes/<name>?prompt=` (the image itself),
 * GET `/file/<label>` (a labelled image, for the URLs in answers).
 */
export async function startFakeImageBackends(): Promise<FakeImageBackends> {
  const server = await startFakeServer();
  const behaviours = new Map<string, { behaviour: Behaviour; latencyMs: number }>();
  const finished: string[] = [];
  const finishedAt = new Map<string, number>();
  const gates = new Map<string, Promise<void>>();
  const inFlight = new Map<string, number>();
  const mostInFlight = new Map<string, number>();

  const answer = async (name: string, res: ServerResponse, ok: () => void, prompt = '') => {
    const { behaviour, latencyMs } = behaviours.get(name) ?? { behaviour: 'ok', latencyMs: 0 };
    const now = (inFlight.get(name) ?? 0) + 1;
    inFlight.set(name, now);
    mostInFlight.set(name, Math.max(now, mostInFlight.get(name) ?? 0));
    // Until the answer is written or the client gives up on it.
    res.on('close', () => inFlight.set(name, (inFlight.get(name) ?? 1) - 1));
    if (behaviour === 'hang') return;
    await new Promise((resolve) => setTimeout(resolve, latencyMs));
    await gates.get(name);
    if (res.destroyed) return;
    switch (behaviour) {
      case 'html':
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<!DOCTYPE html><html>Cloudflare: bad gateway</html>');
        break;
      case 'text':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('this is not a picture');
        break;
      case 'error500':
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"internal"}}');
        break;
      case 'huge':
        res
          .writeHead(200, { 'content-type': 'image/png' })
          .end(Buffer.concat([pngSignature, Buffer.alloc(64 * 1024)]));
        break;
      default:
        ok();
    }
    res.on('finish', () => {
      finished.push(name);
      finishedAt.set(`${name}|${prompt}`, performance.timeOrigin + performance.now());
    });
  };
  const promptOf = (url: string | undefined) =>
    new URL(url ?? '/', 'http://x').searchParams.get('prompt') ?? '';

  const files = new Map<string, Buffer>();
  const serveFile: Parameters<FakeServer['route']>[2] = (req, res) => {
    const bytes = files.get(req.url ?? '');
    if (!bytes) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/png' }).end(bytes);
  };

  const register = (name: string) => {
    server.route('POST', `/openai/${name}/images/generations`, async (_, res, body) => {
      const { prompt, n } = JSON.parse(body.toString()) as { prompt: string; n: number };
      await answer(
        name,
        res,
        () => {
          const painted = behaviours.get(name)?.behaviour === 'picture';
          const data = Array.from({ length: n }, (_, i) => ({
            b64_json: (painted
              ? Buffer.from(paintDemo(prompt, name, i, 192))
              : labelledPng(`${name}|${prompt}|${i}`)
            ).toString('base64'),
          }));
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ created: 0, data }));
        },
        prompt,
      );
    });
    server.route('GET', `/json/${name}`, async (req, res) => {
      const prompt = promptOf(req.url);
      await answer(
        name,
        res,
        () => {
          const urls = [0, 1].map((i) => {
            const path = `/file/${name}-${files.size}-${i}`;
            files.set(path, labelledPng(`${name}|${prompt}|${i}`));
            server.route('GET', path, serveFile);
            return { url: `${server.url}${path}` };
          });
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: urls }));
        },
        prompt,
      );
    });
    server.route('GET', `/bytes/${name}`, async (req, res) => {
      const prompt = promptOf(req.url);
      await answer(
        name,
        res,
        () =>
          void res.writeHead(200, { 'content-type': 'image/png' }).end(labelledPng(`${name}|${prompt}|0`)),
        prompt,
      );
    });
  };

  return {
    server,
    finished,
    finishedAt,
    mostInFlight,
    set: (name, behaviour, latencyMs = 0) => {
      if (!behaviours.has(name)) register(name);
      behaviours.set(name, { behaviour, latencyMs });
    },
    hold: (name) => {
      let release = () => {};
      gates.set(
        name,
        new Promise<void>((resolve) => {
          release = resolve;
        }),
      );
      return () => {
        gates.delete(name);
        release();
      };
    },
    close: () => server.close(),
  };
}
