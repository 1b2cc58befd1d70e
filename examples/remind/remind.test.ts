import { createTestBot } from 'chorus/testing';
import { expect, it } from 'vitest';
import { plugin } from './index.ts';

it('reminds after the delay, on a fake clock', async () => {
  const kit = await createTestBot({ plugins: [{ plugin, config: { maxMinutes: 10 } }] });
  const job = kit.send('/remind 5 stretch your legs');
  await kit.clock.tick(4 * 60_000);
  expect(kit.adapter.texts()).toEqual(['⏰ in 5 min: stretch your legs']);
  await kit.run(job);
  expect(kit.adapter.texts()).toEqual(['⏰ stretch your legs']);
});

it('explains its usage, and /cancel ends the reminder', async () => {
  const kit = await createTestBot({ plugins: [{ plugin, config: {} }] });
  await kit.run(kit.send('/remind soon'));
  expect(kit.adapter.texts()).toEqual(['Usage: /remind <minutes> <text>, at most 60 minutes']);
  const job = kit.send('/remind 30 tea');
  await kit.clock.tick(60_000);
  await kit.run(kit.send('/cancel'));
  await kit.run(job);
  expect(kit.adapter.texts().slice(1)).toEqual(['Cancelled.', 'Cancelled 1 job(s).']);
});
