import { MemoryStore } from 'chorus-bot';
import { createTestBot, FakeClock } from 'chorus-bot/testing';
import { expect, it } from 'vitest';
import { plugin } from './index.ts';

it('nudges after the delay, on a fake clock', async () => {
  const kit = await createTestBot({ plugins: [{ plugin, config: { maxMinutes: 10 } }] });
  await kit.send('/nudge 5 stretch your legs');
  expect(await kit.scheduled()).toMatchObject([{ task: 'nudge', data: { text: 'stretch your legs' } }]);
  await kit.clock.tick(5 * 60_000 - 1);
  expect(kit.adapter.texts()).toEqual(['👋 in 5 min: stretch your legs']);
  await kit.clock.tick(1);
  expect(kit.adapter.texts()).toEqual(['👋 in 5 min: stretch your legs', '👋 stretch your legs']);
});

it('explains its usage', async () => {
  const kit = await createTestBot({ plugins: [{ plugin, config: {} }] });
  await kit.send('/nudge soon');
  expect(kit.adapter.texts()).toEqual(['Usage: /nudge <minutes> <text>, at most 60 minutes']);
});

it('keeps a nudge across a restart', async () => {
  const clock = new FakeClock();
  const store = new MemoryStore({ clock });
  const before = await createTestBot({ plugins: [{ plugin, config: {} }], clock, store });
  await before.send('/nudge 30 tea');
  await before.stop();
  const after = await createTestBot({ plugins: [{ plugin, config: {} }], clock, store });
  await clock.tick(30 * 60_000);
  expect(after.adapter.texts()).toEqual(['👋 tea']);
});
