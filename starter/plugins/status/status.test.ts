import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestBot } from 'chorus-bot/testing';
import { afterEach, expect, it, vi } from 'vitest';
import { plugin } from './index.ts';

// Fake status pages on 127.0.0.1: each path answers as the test says, when the test says.
const held = new Map<string, ServerResponse>();
const server = createServer((request, response) => {
  if (request.url === '/fast') response.end(JSON.stringify({ status: { description: 'All good' } }));
  else if (request.url === '/broken') response.writeHead(500).end('oops');
  else held.set(request.url ?? '', response); // answers when the test releases it, or never
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

afterEach(() => {
  held.clear();
  server.closeAllConnections();
});

it('replies for each page the moment it answers, fastest first', async () => {
  const pages = [
    { name: 'Slow', url: `${base}/slow` },
    { name: 'Fast', url: `${base}/fast` },
    { name: 'Broken', url: `${base}/broken` },
  ];
  const kit = await createTestBot({ plugins: [{ plugin, config: { pages } }] });
  const done = kit.send('/status');
  await vi.waitFor(() => expect(kit.adapter.texts()).toHaveLength(2));
  await vi.waitFor(() => expect(held.has('/slow')).toBe(true));
  expect(kit.adapter.texts()).toEqual(
    expect.arrayContaining(['✓ Fast: All good', '✗ Broken: refused (HTTP 500)']),
  );
  held.get('/slow')!.end(JSON.stringify({ status: { description: 'Minor outage' } }));
  await done;
  expect(kit.adapter.texts()[2]).toBe('✓ Slow: Minor outage');
});

it('gives up on a page that does not answer in timeoutMs, on the fake clock', async () => {
  const pages = [{ name: 'Silent', url: `${base}/silent` }];
  const kit = await createTestBot({ plugins: [{ plugin, config: { pages, timeoutMs: 5000 } }] });
  const done = kit.send('/status');
  await vi.waitFor(() => expect(held.has('/silent')).toBe(true));
  await kit.clock.tick(4999);
  expect(kit.adapter.texts()).toEqual([]);
  await kit.clock.tick(1);
  // At once: a real-time timer would take 5 s.
  await vi.waitFor(() => expect(kit.adapter.texts()).toEqual(['✗ Silent: timed out']), { timeout: 1000 });
  await done;
});
