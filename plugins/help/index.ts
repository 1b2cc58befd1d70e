/**
 * The `help` plugin: `/help` lists the commands of every loaded plugin, in the chat's language, and
 * `/start` (which Telegram sends when someone opens the bot) greets and shows the same list. It
 * loads unless the config says `help: false`.
 */
import { type Context, definePlugin, type PluginContext } from 'chorus-bot';

/** The command list, one line a command, with the prefix the user typed. */
function commandList(ctx: PluginContext, c: Context): string {
  const prefix = c.command?.prefix || '/';
  const lines = ctx.commands().map(({ spec }) => {
    const description =
      typeof spec.description === 'string'
        ? spec.description
        : (spec.description[c.locale] ?? spec.description.en ?? Object.values(spec.description)[0] ?? '');
    const usage = spec.usage ? ` ${spec.usage}` : '';
    const keywords = spec.keywords?.length ? ` (${spec.keywords.map((k) => `${k}${usage}`).join(', ')})` : '';
    return `${prefix}${spec.name}${usage} - ${description}${keywords}`;
  });
  lines.push(`${prefix}cancel - ${c.t('help.cancel')}`);
  return [c.t('help.title'), ...lines].join('\n');
}

/** The `help` plugin. */
export const plugin = definePlugin({
  name: 'help',
  setup(ctx) {
    ctx.strings({
      en: {
        'help.title': 'Commands:',
        'help.cancel': 'Cancel your running jobs',
        'help.greeting': 'Hi {name}! I am {bot}.',
      },
      'zh-CN': {
        'help.title': '命令列表：',
        'help.cancel': '取消你正在运行的任务',
        'help.greeting': '你好，{name}！我是 {bot}。',
      },
    });
    ctx.command(
      { name: 'help', description: { en: 'List the commands', 'zh-CN': '列出所有命令' } },
      async (c) => {
        await c.reply(commandList(ctx, c));
      },
    );
    ctx.command(
      {
        name: 'start',
        description: { en: 'Say hello and list the commands', 'zh-CN': '打个招呼并列出所有命令' },
      },
      async (c) => {
        const greeting = c.t('help.greeting', { name: c.user.name, bot: c.bot.name || c.bot.username });
        await c.reply(`${greeting}\n\n${commandList(ctx, c)}`);
      },
    );
  },
});
