/**
 * The Jobs contract: what every implementation must do (memory now; Redis later), run by
 * `jobs.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import type { JobRecord, Jobs } from '../../src/jobs.ts';
import type { ChatAddress } from '../../src/message.ts';

export interface JobsHarness {
  readonly jobs: Jobs;
  /** A second handle on the same jobs, as another process would open it. */
  another(): Promise<Jobs>;
  close(): Promise<void>;
}

const chat = (id: string, adapter = 'telegram'): ChatAddress => ({
  adapter,
  platform: adapter,
  id,
  kind: 'group',
});
const job = (jobId: string, chatId: string, userId: string, adapter = 'telegram'): JobRecord => ({
  jobId,
  plugin: 'draw',
  command: 'draw',
  chat: chat(chatId, adapter),
  userId,
});

export function jobsContract(name: string, open: () => Promise<JobsHarness>): void {
  describe(`Jobs contract: ${name}`, () => {
    it('cancels exactly the jobs of that user in that chat, each once, with the reason', async () => {
      const { jobs, close } = await open();
      const cancelled: [string, unknown][] = [];
      const add = (record: JobRecord) => jobs.add(record, (reason) => cancelled.push([record.jobId, reason]));
      await add(job('1', 'c1', 'ann'));
      await add(job('2', 'c1', 'ann'));
      await add(job('3', 'c1', 'bob'));
      await add(job('4', 'c2', 'ann'));
      await add(job('5', 'c1', 'ann', 'discord'));
      expect(await jobs.cancel({ adapter: 'telegram', chatId: 'c1', userId: 'ann' }, 'by user')).toBe(2);
      expect(cancelled).toEqual([
        ['1', 'by user'],
        ['2', 'by user'],
      ]);
      // A job already cancelled is not counted again.
      expect(await jobs.cancel({ adapter: 'telegram', chatId: 'c1', userId: 'ann' }, 'again')).toBe(0);
      await close();
    });

    it('lists the running jobs, oldest first, and forgets ended ones', async () => {
      const { jobs, close } = await open();
      await jobs.add(job('1', 'c1', 'ann'), () => {});
      await jobs.add(job('2', 'c2', 'bob'), () => {});
      expect((await jobs.list()).map((j) => j.jobId)).toEqual(['1', '2']);
      expect((await jobs.list({ userId: 'bob' })).map((j) => j.jobId)).toEqual(['2']);
      await jobs.remove('1');
      expect((await jobs.list()).map((j) => j.jobId)).toEqual(['2']);
      expect(await jobs.cancel({ chatId: 'c1' }, 'x')).toBe(0);
      await close();
    });

    it('keeps jobs as plain data', async () => {
      const { jobs, close } = await open();
      const record = job('1', 'c1', 'ann');
      await jobs.add(record, () => {});
      const [listed] = await jobs.list();
      expect(JSON.parse(JSON.stringify(listed))).toEqual(record);
      await close();
    });

    it('an empty filter cancels every job', async () => {
      const { jobs, close } = await open();
      let count = 0;
      for (let i = 0; i < 5; i++) await jobs.add(job(String(i), `c${i}`, `u${i}`), () => count++);
      expect(await jobs.cancel({}, 'shutdown')).toBe(5);
      expect(count).toBe(5);
      await close();
    });

    it('a cancel through another handle reaches the job (another process)', async () => {
      const { jobs, another, close } = await open();
      const reasons: unknown[] = [];
      await jobs.add(job('1', 'c1', 'ann'), (reason) => reasons.push(reason));
      const other = await another();
      expect(await other.cancel({ adapter: 'telegram', chatId: 'c1', userId: 'ann' }, 'from elsewhere')).toBe(
        1,
      );
      expect(reasons).toEqual(['from elsewhere']);
      await close();
    });
  });
}
