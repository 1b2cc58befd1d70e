/** The `help` plugin: lists the commands of every loaded plugin, in the chat's language. */
import { definePlugin } from 'chorus';

/** The `help` plugin. */
export const plugin = definePlugin({
  name: 'help',
  setup(ctx) {
    ctx.strings({
      en: {
        'help.title': 'Commands:',
        'help.cancel': 'Cancel your running jobs',
        'help.description': 'List the commands',
      },
      'zh-CN': {
        'help.title': '命令列表：',
        'help.cancel': '取消你正在运行的任务',
        'help.description': '列出所有命令',
      },
    });
    ctx.command(
      { name: 'help', aliases: ['start'], description: { en: 'List the commands', 'zh-CN': '列出所有命令' } },
      async (c) => {
        const prefix = c.command?.prefix || '/';
        const lines = ctx.commands().map(({ spec }) => {
          const description =
            typeof spec.description === 'string'
              ? spec.description
              : (spec.description[c.locale] ??
                spec.description.en ??
                Object.values(spec.description)[0] ??
                '');
          const usage = spec.usage ? ` ${spec.usage}` : '';
          const keywords = spec.keywords?.length
            ? ` (${spec.keywords.map((k) => `${k}${usage}`).join(', ')})`
            : '';
          return `${prefix}${spec.name}${usage} - ${description}${keywords}`;
        });
        lines.push(`${prefix}cancel - ${c.t('help.cancel')}`);
        await c.reply([c.t('help.title'), ...lines].join('\n'));
      },
    );
  },
});
