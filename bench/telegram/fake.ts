/**
 * The fake Bot API in a process of its own, for the Telegram benchmark: the bot under test shares
 * no CPU time or heap with it. Driven over IPC: `{ type: 'burst', count, chats }` pushes `count`
 * updates at once, `{ type: 'paced', count, chats, perSecond }` pushes them at a steady rate;
 * either answers `{ type: 'done', ms, latenciesMs }` once every update has its reply, where a
 * latency runs from the update being queued to the reply's `sendMessage` arriving.
 */
import { FakeTelegram } from '../../test/fakes/telegram/server.ts';

interface Run {
  readonly type: 'burst' | 'paced';
  readonly count: number;
  readonly chats: number;
  readonly perSecond?: number;
}

const pushedAt = new Map<string, number>();
const latencies: number[] = [];
let onReply: (() => void) | undefined;
const fake = await new FakeTelegram({
  limits: { perChatMs: 0, perGroupPerMinute: 1e9, globalPerSecond: 1e9 },
  onRequest: (request) => {
    if (request.method !== 'sendMessage') return;
    const sent = pushedAt.get(String(request.params.text));
    if (sent === undefined) return;
    latencies.push(performance.now() - sent);
    onReply?.();
  },
}).start();

let sequence = 0;
function push(chats: number): void {
  const n = sequence++;
  const id = 10_000 + (n % chats);
  const text = `m${n}`;
  pushedAt.set(text, performance.now());
  fake.userSays(
    { id, type: 'private', first_name: 'U' },
    { id, is_bot: false, first_name: 'U' },
    `/echo ${text}`,
  );
}

async function run(order: Run): Promise<void> {
  latencies.length = 0;
  const done = new Promise<void>((resolve) => {
    onReply = () => {
      if (latencies.length >= order.count) resolve();
    };
  });
  const start = performance.now();
  if (order.type === 'burst') {
    for (let i = 0; i < order.count; i++) push(order.chats);
  } else {
    // Every 10 ms, as many as the rate allows so far.
    const perMs = (order.perSecond ?? 1000) / 1000;
    let pushed = 0;
    while (pushed < order.count) {
      const due = Math.min(order.count, Math.floor((performance.now() - start) * perMs) + 1);
      for (; pushed < due; pushed++) push(order.chats);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  await done;
  const ms = performance.now() - start;
  process.send!({ type: 'done', ms, latenciesMs: [...latencies] });
  // The fake keeps every request; the next run starts from a clean record.
  fake.requests.length = 0;
  fake.messages.clear();
  pushedAt.clear();
}

process.on('message', (order: Run | { type: 'close' }) => {
  if (order.type === 'close') void fake.close().then(() => process.exit(0));
  else void run(order);
});
process.send!({ type: 'ready', url: fake.url, token: fake.token });
