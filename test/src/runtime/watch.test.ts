import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.ts';
import { definePlugin, type Plugin } from '../../../src/plugin.ts';
import { pluginOfChange, Reloader, watchTree } from '../../../src/runtime/watch.ts';
import { createTestBot } from '../../../src/testing.ts';

function greeter(label: string): Plugin<unknown> {
  return definePlugin({
    name: 'greet',
    setup(ctx, config) {
      const greeting = (config as { greeting?: string }).greeting ?? 'hello';
      ctx.command({ name: 'hi', description: 'Greets' }, async (c) => {
        await c.reply(`${greeting} from ${label}`);
      });
    },
  });
}

const other = definePlugin({
  name: 'other',
  setup(ctx) {
    ctx.command({ name: 'other', description: 'Other' }, async (c) => {
      await c.reply('other here');
    });
  },
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-watch-'));
  const configPath = join(dir, 'chorus.yaml');
  const lines: string[] = [];
  const log = createLogger({ write: (line) => lines.push(line) });
  const kit = await createTestBot({ plugins: [{ plugin: greeter('v1'), config: {} }] });
  const versions: Record<string, () => Plugin<unknown>> = { greet: () => greeter('v1'), other: () => other };
  const loads: string[] = [];
  const reloader = new Reloader({
    bot: kit.bot,
    cwd: dir,
    configPath,
    raw: { adapters: { console: {} }, plugins: { greet: {} } },
    plugins: [{ plugin: greeter('v1'), config: {} }],
    defaults: {},
    log,
    load: async (name, version) => {
      loads.push(`${name}@${version}`);
      const make = versions[name];
      if (!make) throw new Error(`no plugin ${name}`);
      return make();
    },
  });
  return { kit, reloader, versions, loads, lines, write: (yaml: string) => writeFileSync(configPath, yaml) };
}

describe('Reloader', () => {
  it('imports changed code afresh and swaps it in; code of plugins that do not run is ignored', async () => {
    const { kit, reloader, versions, loads, lines } = await setup();
    versions.greet = () => greeter('v2');
    await reloader.codeChanged(['greet', 'notloaded']);
    await kit.send('/hi');
    expect(kit.adapter.texts()).toEqual(['hello from v2']);
    expect(loads).toEqual(['greet@1']);
    expect(lines.some((line) => line.includes('plugin reloaded plugin=greet'))).toBe(true);
  });

  it('logs a version that cannot be imported and keeps the running one', async () => {
    const { kit, reloader, versions, lines } = await setup();
    versions.greet = () => {
      throw new SyntaxError('Unexpected token');
    };
    await reloader.codeChanged(['greet']);
    await kit.send('/hi');
    expect(kit.adapter.texts()).toEqual(['hello from v1']);
    expect(lines.filter((line) => line.includes('ERROR'))).toEqual([
      expect.stringMatching(
        /plugin could not be loaded: the running version stays plugin=greet error="SyntaxError: Unexpected token"/,
      ),
    ]);
  });

  it('applies a config change: a changed section reloads, a new plugin starts, a dropped one stops, adapters need a restart', async () => {
    const { kit, reloader, write, lines, loads } = await setup();
    write('adapters:\n  console: { userName: bob }\nplugins:\n  greet: { greeting: hey }\n  other: {}\n');
    await reloader.configChanged();
    await kit.send('/hi');
    await kit.send('/other');
    expect(kit.adapter.texts()).toEqual(['hey from v1', 'other here']);
    expect(loads).toEqual(['other@1']); // greet's code did not change: only its config
    expect(lines.some((line) => /WARN .*restart the bot to use it keys=adapters/.test(line))).toBe(true);

    write('adapters:\n  console: { userName: bob }\nplugins:\n  greet: false\n  other: {}\n');
    await reloader.configChanged();
    expect(reloader.running()).toEqual(['other']);
    await kit.send('/hi');
    expect(kit.adapter.texts().at(-1)).toBe('Unknown command /hi. Try /help.');
  });

  it('keeps the running config when the new one has errors', async () => {
    const { kit, reloader, write, lines } = await setup();
    write('adapters:\n  console: {}\nplugins:\n  greet: { greeting: hey }\nlocale: [nope\n');
    await reloader.configChanged();
    await kit.send('/hi');
    expect(kit.adapter.texts()).toEqual(['hello from v1']);
    expect(lines.some((line) => line.includes('config error: the running config stays'))).toBe(true);
  });
});

describe('pluginOfChange', () => {
  it('names the plugin of a code file, and ignores editor files, tests and node_modules', () => {
    expect(pluginOfChange('weather/index.ts')).toBe('weather');
    expect(pluginOfChange('weather/lib/backends.ts')).toBe('weather');
    expect(pluginOfChange('weather/.index.ts.swp')).toBeUndefined();
    expect(pluginOfChange('weather/index.ts~')).toBeUndefined();
    expect(pluginOfChange('weather/index.test.ts')).toBeUndefined();
    expect(pluginOfChange('weather/node_modules/x/index.js')).toBeUndefined();
    expect(pluginOfChange('README.md')).toBeUndefined();
  });
});

describe('watchTree', () => {
  it('sees every save of a file, whether the editor replaces it or writes in place, and new folders', async () => {
    const root = mkdtempSync(join(tmpdir(), 'chorus-watch-'));
    mkdirSync(join(root, 'dice'));
    writeFileSync(join(root, 'dice', 'index.ts'), 'v0');
    const seen: string[] = [];
    const tree = watchTree(
      root,
      (file) => seen.push(file),
      () => {},
    );
    expect(tree).toBeDefined();
    const saw = async (file: string, what: string) => {
      for (let i = 0; i < 200 && !seen.includes(file); i++) await new Promise((r) => setTimeout(r, 10));
      expect(seen, what).toContain(file);
      seen.length = 0;
    };
    try {
      // An atomic save (sed -i, most editors): a new file renamed over the old one...
      writeFileSync(join(root, 'dice', '.index.ts.tmp'), 'v1');
      renameSync(join(root, 'dice', '.index.ts.tmp'), join(root, 'dice', 'index.ts'));
      await saw(join('dice', 'index.ts'), 'a save by rename');
      // ...and after it, saves in place are still seen.
      writeFileSync(join(root, 'dice', 'index.ts'), 'v2');
      await saw(join('dice', 'index.ts'), 'a save in place after a rename');
      writeFileSync(join(root, 'dice', 'index.ts'), 'v3');
      await saw(join('dice', 'index.ts'), 'a second save in place');
      mkdirSync(join(root, 'coin', 'lib'), { recursive: true });
      await new Promise((r) => setTimeout(r, 50));
      writeFileSync(join(root, 'coin', 'lib', 'flip.ts'), 'x');
      await saw(join('coin', 'lib', 'flip.ts'), 'a file in a new folder');
    } finally {
      tree?.close();
    }
  });
});
