/**
 * `/draw` against a hostile image backend, through the real HttpClient: every case checks the
 * chat's reply, that nothing private was fetched, that no secret reached the log, and that the
 * read stopped near its cap (the bytes the server managed to send).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plugin as draw } from '../../plugins/draw/index.ts';
import { createLogger, Redactor } from '../../src/logger.ts';
import { createTestBot, type TestBot } from '../../src/testing.ts';
import { labelOf } from '../fakes/images.ts';
import { type Hostile, hostileRoutes, type Internal, startHostile, startInternal } from './servers.ts';

const MiB = 1024 * 1024;
const secret = 'sk-vendor-0123456789abcdef';

let hostile: Hostile;
let internal: Internal;
let logs: string[];
const kits: TestBot[] = [];
beforeEach(async () => {
  hostile = await startHostile();
  internal = await startInternal();
  hostileRoutes(hostile, internal);
  logs = [];
});
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.stop();
  await hostile.close();
  await internal.close();
});

async function start(backend: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const redactor = new Redactor();
  const kit = await createTestBot({
    plugins: [
      {
        plugin: draw,
        config: {
          backends: [
            {
              name: 'evil',
              type: 'openai-images',
              headers: { 'X-Api-Key': secret },
              apiKey: `${secret}-2`,
              ...backend,
            },
          ],
          ...extra,
        },
      },
    ],
    realTime: true,
    redactor,
    log: createLogger({ level: 'debug', redactor, write: (line) => logs.push(line) }),
  });
  kits.push(kit);
  return kit;
}

const status = (kit: TestBot) => kit.adapter.messages()[0]!.text;
const albums = (kit: TestBot) =>
  kit.adapter.calls.flatMap((c) => (c.kind === 'send' && c.message.images?.length ? [c.message.images] : []));
const imageLabels = (kit: TestBot) =>
  albums(kit).flatMap((images) => images.map((image) => ('data' in image ? labelOf(image.data) : image.url)));

function expectNoSecret(kit: TestBot) {
  const everything = [...logs, ...kit.adapter.calls.map((c) => JSON.stringify(c))].join('\n');
  expect(everything).not.toContain(secret);
  expect(everything).not.toContain('0123456789abcdef');
}

describe('draw against a hostile backend', () => {
  it('an endless error body: reads a short excerpt, says "refused (HTTP 500)", keeps the detail in the log', async () => {
    const kit = await start({ baseUrl: `${hostile.url}/huge-error` });
    await kit.run(kit.send('/draw a fox'));
    expect(status(kit).split('\n')).toEqual([
      'Finished: 0/1 backends delivered',
      '✗ evil: refused (HTTP 500)',
    ]);
    expect(logs.join('\n')).toMatch(/evil answered HTTP 500: x{100}/);
    // The read stopped after the excerpt: what the server got out is socket buffers, not the gigabytes it offered.
    await expect.poll(() => hostile.server.aborted.length).toBeGreaterThan(0);
    expect(hostile.sent.get('/huge-error')!).toBeLessThan(16 * MiB);
    expectNoSecret(kit);
  });

  it('an endless image: stops at maxImageBytes', async () => {
    const kit = await start({ baseUrl: `${hostile.url}/urls` }, { maxImageBytes: 2 * MiB });
    await kit.run(kit.send(`/draw ${hostile.url}/endless.png`));
    expect(status(kit)).toContain('✗ evil: sent something that is not an image');
    await expect.poll(() => hostile.server.aborted).toContain('/endless.png');
    expect(hostile.sent.get('/endless.png')!).toBeLessThan(2 * MiB + 16 * MiB);
    expectNoSecret(kit);
  });

  it('a redirect chain into another loopback service is refused; the internal service sees nothing', async () => {
    const kit = await start({ baseUrl: `${hostile.url}/urls` });
    await kit.run(kit.send(`/draw ${hostile.url}/hop1`));
    expect(status(kit)).toContain('✗ evil: refused to follow a link to a private address');
    expect(internal.hits()).toBe(0);
    expect(albums(kit)).toEqual([]);
    expect(hostile.server.requests.map((r) => r.path)).toEqual([
      '/urls/images/generations',
      '/hop1',
      '/hop2',
      '/hop3',
    ]);
    expect(logs.join('\n')).toContain(
      `refused ${internal.url}: it leads to a non-public address (127.0.0.1)`,
    );
    expectNoSecret(kit);
  });

  it('image URLs at another private address, by number or by name, or not http(s), are refused', async () => {
    const port = internal.server.port;
    for (const url of [
      `${internal.url}/secret.png`,
      `http://localhost:${port}/secret.png`,
      `http://[::ffff:127.0.0.1]:${port}/secret.png`,
      `http://0x7f000001:${port}/secret.png`,
      'http://169.254.169.254/latest/meta-data',
      'file:///etc/passwd',
      'ftp://127.0.0.1/x.png',
    ]) {
      const kit = await start({ baseUrl: `${hostile.url}/urls` });
      await kit.run(kit.send(`/draw ${url}`));
      expect(status(kit), url).toContain('✗ evil: refused to follow a link to a private address');
      await kit.stop();
    }
    expect(internal.hits()).toBe(0);
  });

  it('the backend’s own (loopback) origin is allowed, and allowPrivateNetwork lets the chain through', async () => {
    const own = await start({ baseUrl: `${hostile.url}/urls` });
    await own.run(own.send(`/draw ${hostile.url}/own.png`));
    expect(imageLabels(own)).toEqual(['own']);

    const allowed = await start({ baseUrl: `${hostile.url}/urls`, allowPrivateNetwork: true });
    await allowed.run(allowed.send(`/draw ${hostile.url}/hop1`));
    expect(imageLabels(allowed)).toEqual(['internal']);
    expect(internal.hits()).toBe(1);
    // The hop to another origin dropped the backend's key and custom headers.
    const reached = internal.server.requests[0]!.headers;
    expect(reached['x-api-key']).toBeUndefined();
    expect(reached.authorization).toBeUndefined();
    expect(reached['user-agent']).toBe('chorus-draw');
    expectNoSecret(allowed);
  });

  it('a flood of 2,000 URLs: at most maxImages are fetched, one album of them', async () => {
    const kit = await start({ baseUrl: `${hostile.url}/flood` });
    await kit.run(kit.send('/draw many'));
    expect(albums(kit)).toHaveLength(1);
    expect(imageLabels(kit)).toHaveLength(10);
    expect(hostile.server.requests.filter((r) => r.path.startsWith('/flood.png'))).toHaveLength(10);
  });

  it('150 URLs of 19 MiB: the draw stops at maxDrawBytes', async () => {
    const kit = await start({ baseUrl: `${hostile.url}/big` }, { maxDrawBytes: 32 * MiB });
    await kit.run(kit.send('/draw big'));
    expect(status(kit)).toContain('✗ evil: sent something that is not an image');
    expect(hostile.server.requests.filter((r) => r.path.startsWith('/big.png')).length).toBeLessThanOrEqual(
      10,
    );
    // Four downloads at a time, each cut when the budget ran out: socket buffers on top of 32 MiB.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(hostile.sent.get('/big.png') ?? 0).toBeLessThan(32 * MiB + 48 * MiB);
  });

  it('a backend that echoes its key in an error: the chat sees a short reason, the log no secret', async () => {
    const kit = await start({ baseUrl: `${hostile.url}/echo` });
    await kit.run(kit.send('/draw a fox'));
    expect(status(kit)).toContain('✗ evil: refused (HTTP 401)');
    expect(logs.join('\n')).toContain('x-api-key');
    expect(logs.join('\n')).toContain('***');
    expectNoSecret(kit);
  });
});
