/**
 * Fan-out: 100 concurrent draws over 3 fake image backends on 127.0.0.1 (50, 150 and 300 ms).
 * Reports how soon each user sees a first album against the fastest backend's latency, and how
 * long an album waits between its backend finishing and the adapter being asked to send it.
 */
import { plugin as draw } from '../plugins/draw/index.ts';
import { createTestBot } from '../src/testing.ts';
import { labelOf, startFakeImageBackends } from '../test/fakes/images.ts';
import type { Row } from './core.ts';

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

export async function benchDraw(): Promise<Row[]> {
  const fakes = await startFakeImageBackends();
  const latencies = { fast: 50, mid: 150, slow: 300 };
  for (const [name, ms] of Object.entries(latencies)) fakes.set(name, 'ok', ms);
  const backends = Object.keys(latencies).map((name) => ({
    name,
    type: 'http-image',
    url: `${fakes.server.url}/bytes/${name}?prompt={prompt}`,
    concurrency: 100,
  }));
  const kit = await createTestBot({ plugins: [{ plugin: draw, config: { backends } }], realTime: true });
  const draws = Number(process.env.DRAWS ?? 100);
  // Warm up: a running bot has open connections and compiled code.
  await Promise.all(
    Array.from({ length: draws }, (_, i) =>
      kit.send(`/draw warm${i}`, { user: { id: `w${i}` }, chat: { id: `w${i}` } }),
    ),
  );
  kit.adapter.calls.length = 0;
  const startedAt = new Map<string, number>();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: draws }, (_, i) => {
      startedAt.set(`c${i}`, Date.now());
      return kit.send(`/draw p${i}`, { user: { id: `u${i}` }, chat: { id: `c${i}` } });
    }),
  );
  const wall = performance.now() - started;

  const firstAlbum = new Map<string, number>();
  const waits: number[] = [];
  for (const call of kit.adapter.calls) {
    if (call.kind !== 'send' || !call.message.images?.length) continue;
    if (!firstAlbum.has(call.chat.id)) firstAlbum.set(call.chat.id, call.at - startedAt.get(call.chat.id)!);
    const image = call.message.images[0]!;
    const [backend, prompt] = labelOf('data' in image ? image.data : new Uint8Array()).split('|');
    waits.push(call.at - fakes.finishedAt.get(`${backend}|${prompt}`)!);
  }
  await kit.stop();
  await fakes.close();
  if (firstAlbum.size !== draws || waits.length !== draws * 3) throw new Error('albums went missing');
  const first = [...firstAlbum.values()];
  return [
    { name: 'draw: fastest backend latency (ms)', value: String(latencies.fast) },
    {
      name: 'draw: time to first album p50 (ms)',
      value: percentile(first, 50).toFixed(0),
      note: `${draws} concurrent draws`,
    },
    { name: 'draw: time to first album p99 (ms)', value: percentile(first, 99).toFixed(0) },
    { name: 'draw: album sent - backend finished p50 (ms)', value: percentile(waits, 50).toFixed(1) },
    { name: 'draw: album sent - backend finished p99 (ms)', value: percentile(waits, 99).toFixed(1) },
    { name: 'draw: all 100 draws done (ms)', value: wall.toFixed(0), note: 'slowest backend 300 ms' },
  ];
}
