import type { IncomingMessage } from '../src/message.ts';
import { createBot } from '../src/bot.ts';
import { createLogger } from '../src/logger.ts';
import { definePlugin } from '../src/plugin.ts';
const plugin = definePlugin({ name: 'echo', setup: (ctx) => void ctx.command({ name: 'echo', description: 'e' }, async (c) => { await c.reply(c.command!.args); }) });
let next = 0;
const adapter: any = { name: 'null', platform: 'null', commandPrefixes: ['/'], limits: { rate: {}, maxTextLength: 4096, maxCaptionLength: 1024 },
  async start(h: any) { adapter.host = h; return { id: 'b', username: 'bench_bot', name: 'B' }; }, async stop() {}, async send(chat: any) { return { chat, ids: [String(++next)] }; }, async edit() {} };
const bot = createBot({ adapters: [adapter], plugins: [{ plugin }], log: createLogger({ level: 'silent' }) });
await bot.start();
const msg = (i: number): IncomingMessage => ({ id: String(i), chat: { adapter: 'null', platform: 'null', id: `c${i % 100}`, kind: 'private' }, sender: { id: `u${i % 100}`, name: 'u' }, text: '/echo hello', mentionsBot: false, images: [], date: 0 });
const handle = async (m: IncomingMessage) => { await adapter.host.receive(m); await bot.settled(m); };
for (let round = 0; round < 4; round++) {
  const n = 50_000; const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => handle(msg(i + j))));
  const cpu = process.cpuUsage(c0); const wall = performance.now() - t0;
  console.log(`cpu µs/msg ${((cpu.user + cpu.system) / n).toFixed(2)}  wall µs/msg ${((wall * 1000) / n).toFixed(2)}`);
}
await bot.stop();
