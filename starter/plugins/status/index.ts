import { asCompleted, BackendError, definePlugin, readJson, TimeoutError } from 'chorus-bot';
import { z } from 'zod';

/** What a status page answers at `/api/v2/status.json` (the Statuspage format). */
const statusPage = z.object({ status: z.object({ description: z.string() }) });

export const plugin = definePlugin({
  name: 'status',
  config: z.strictObject({
    pages: z.array(z.strictObject({ name: z.string(), url: z.url() })).min(1),
    timeoutMs: z.number().int().positive().default(10_000),
  }),
  setup(ctx, config) {
    ctx.command({ name: 'status', description: 'Ask every status page at once' }, async (c) => {
      // One task per page; each gets a signal that fires on /cancel, on the timeout and on shutdown.
      const tasks = config.pages.map((page) => async (signal: AbortSignal) => {
        const response = await ctx.http.request(page.url, { backend: page.name, signal });
        const body = statusPage.safeParse(await readJson(response, page.name, 64 * 1024));
        if (!body.success) throw new BackendError(page.name, 'invalid', `${page.name}: not a status page`);
        return body.data.status.description;
      });
      // Each answer is sent the moment it arrives; `clock: c.clock` lets tests drive the timeout.
      const results = asCompleted(tasks, { timeoutMs: config.timeoutMs, signal: c.signal, clock: c.clock });
      for await (const result of results) {
        const { name } = config.pages[result.key]!;
        if (result.status === 'fulfilled') await c.reply(`✓ ${name}: ${result.value}`);
        else {
          c.log.warn('status page failed', { page: name, error: String(result.reason) });
          await c.reply(`✗ ${name}: ${reason(result.reason)}`);
        }
      }
    });
  },
});

/** A short reason for the chat; the log keeps the details. */
function reason(error: unknown): string {
  if (error instanceof TimeoutError) return 'timed out';
  if (error instanceof BackendError) {
    if (error.kind === 'status') return `refused (HTTP ${error.status})`;
    if (error.kind === 'invalid') return 'unusable answer';
    if (error.kind === 'timeout') return 'timed out';
  }
  return 'unreachable';
}
