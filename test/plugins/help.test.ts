import { describe, expect, it } from 'vitest';
import { plugin as help } from '../../plugins/help/index.ts';
import { definePlugin } from '../../src/plugin.ts';
import { createTestBot } from '../../src/testing.ts';

const draw = definePlugin({
  name: 'draw',
  setup(ctx) {
    ctx.command(
      {
        name: 'draw',
        description: { en: 'Draw a picture', 'zh-CN': '画一幅画' },
        usage: '<prompt>',
        keywords: ['画'],
      },
      () => {},
    );
  },
});

describe('help plugin', () => {
  it('lists every loaded plugin’s commands with usage and keywords', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: help }, { plugin: draw }] });
    await kit.run(kit.send('/help'));
    expect(kit.adapter.texts()).toEqual([
      [
        'Commands:',
        '/help - List the commands',
        '/start - Say hello and list the commands',
        '/draw <prompt> - Draw a picture (画 <prompt>)',
        '/cancel - Cancel your running jobs',
      ].join('\n'),
    ]);
  });

  it('speaks Chinese when the bot does, and uses the adapter’s prefix', async () => {
    const kit = await createTestBot({
      plugins: [{ plugin: help }, { plugin: draw }],
      locale: 'zh-CN',
      adapter: { commandPrefixes: ['!'] },
    });
    await kit.run(kit.send('!help'));
    expect(kit.adapter.texts()[0]).toBe(
      [
        '命令列表：',
        '!help - 列出所有命令',
        '!start - 打个招呼并列出所有命令',
        '!draw <prompt> - 画一幅画 (画 <prompt>)',
        '!cancel - 取消你正在运行的任务',
      ].join('\n'),
    );
  });

  it('greets on /start by the user’s and the bot’s names, then lists the commands', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: help }, { plugin: draw }] });
    await kit.run(kit.send('/start', { user: { id: 'u7', name: 'Ann' } }));
    const [text] = kit.adapter.texts();
    expect(text?.split('\n\n')[0]).toMatch(/^Hi Ann! I am .+\.$/);
    expect(text).toContain('/draw <prompt> - Draw a picture');
  });
});
