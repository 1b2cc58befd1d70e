import { definePlugin, sleep } from 'chorus';
import { z } from 'zod';

export const plugin = definePlugin({
  name: 'remind',
  config: z.strictObject({ maxMinutes: z.number().int().positive().default(60) }),
  setup(ctx, config) {
    ctx.strings({
      en: { 'remind.usage': 'Usage: /remind <minutes> <text>, at most {max} minutes' },
      'zh-CN': { 'remind.usage': '用法：/remind <分钟> <内容>，最多 {max} 分钟' },
    });
    ctx.command({ name: 'remind', description: 'Remind me later', usage: '<minutes> <text>' }, async (c) => {
      const [minutes = '', ...words] = c.command?.argv ?? [];
      const n = Number(minutes);
      if (!Number.isInteger(n) || n < 1 || n > config.maxMinutes || words.length === 0) {
        await c.reply(c.t('remind.usage', { max: config.maxMinutes }));
        return;
      }
      const status = await c.status(`⏰ in ${n} min: ${words.join(' ')}`);
      await sleep(c.clock, n * 60_000, c.signal); // /cancel or shutdown aborts the wait
      await status.finish(`⏰ ${words.join(' ')}`);
    });
  },
});
