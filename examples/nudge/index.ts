import { definePlugin } from 'chorus-bot';
import { z } from 'zod';

export const plugin = definePlugin({
  name: 'nudge',
  config: z.strictObject({ maxMinutes: z.number().int().positive().default(60) }),
  setup(ctx, config) {
    ctx.strings({
      en: { 'nudge.usage': 'Usage: /nudge <minutes> <text>, at most {max} minutes' },
      'zh-CN': { 'nudge.usage': '用法：/nudge <分钟> <内容>，最多 {max} 分钟' },
    });
    // Runs from the store when the time comes, after a restart too, in the chat that asked.
    ctx.task<{ text: string }>('nudge', async (c) => {
      await c.reply(`👋 ${c.scheduled.data.text}`);
    });
    ctx.command({ name: 'nudge', description: 'Nudge me later', usage: '<minutes> <text>' }, async (c) => {
      const [minutes = '', ...words] = c.command?.argv ?? [];
      const n = Number(minutes);
      if (!Number.isInteger(n) || n < 1 || n > config.maxMinutes || words.length === 0) {
        await c.reply(c.t('nudge.usage', { max: config.maxMinutes }));
        return;
      }
      await c.schedule.later(n * 60_000, 'nudge', { text: words.join(' ') });
      await c.reply(`👋 in ${n} min: ${words.join(' ')}`);
    });
  },
});
