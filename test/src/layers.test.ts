/**
 * The layers of docs/architecture.md, as the imports have them: the core (`src/*.ts`) does no
 * I/O of its own, so it imports no SDK, no filesystem and no process, and nothing of the runtime
 * above it; no file in `src/` imports an adapter or a plugin. `index.ts` and `testing.ts` are the
 * package's entry points and may reach both layers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const srcDir = join(import.meta.dirname, '../../src');
const entryPoints = new Set(['index.ts', 'testing.ts']);

/** Every module specifier a file imports or re-exports, statically or dynamically. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/g)].map(
    (m) => m[1]!,
  );
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g)) specifiers.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)import\s+'([^']+)'/g)) specifiers.push(m[1]!);
  return specifiers;
}

const coreFiles = readdirSync(srcDir).filter((name) => name.endsWith('.ts') && !entryPoints.has(name));
const runtimeFiles = readdirSync(join(srcDir, 'runtime')).filter((name) => name.endsWith('.ts'));

/** Libraries the core may use: pure code that does no I/O of its own. */
const pureLibraries = new Set([
  'croner',
  'eventsource-parser',
  'p-limit',
  'zod',
  // An API with no-op defaults: the application's SDK, registered globally, does the exporting.
  '@opentelemetry/api',
]);

describe('layers', () => {
  it('finds the modules it checks', () => {
    expect(coreFiles).toContain('bot.ts');
    expect(coreFiles).toContain('outbox.ts');
    expect(runtimeFiles).toContain('cli.ts');
    expect(runtimeFiles).toContain('sqlite-store.ts');
  });

  it('keeps the core free of I/O: only its own modules and pure libraries', () => {
    const offending = coreFiles.flatMap((name) =>
      importsOf(join(srcDir, name))
        .filter(
          (spec) => !(spec.startsWith('./') && !spec.startsWith('./runtime/')) && !pureLibraries.has(spec),
        )
        .map((spec) => `${name} imports ${spec}`),
    );
    expect(offending).toEqual([]);
  });

  it('keeps the core off process, Buffer and the filesystem globals', () => {
    const offending = coreFiles.filter((name) =>
      /\b(?:process\.\w|Buffer\.\w|require\()/.test(readFileSync(join(srcDir, name), 'utf8')),
    );
    expect(offending).toEqual([]);
  });

  it('lets no file in src/ import an adapter or a plugin', () => {
    const all = [...coreFiles, ...entryPoints, ...runtimeFiles.map((name) => `runtime/${name}`)];
    const offending = all.flatMap((name) =>
      importsOf(join(srcDir, name))
        .filter((spec) => /(^|\/)(adapters|plugins)\//.test(spec))
        .map((spec) => `${name} imports ${spec}`),
    );
    expect(offending).toEqual([]);
  });

  it('has the detector see the kinds of import it guards against', () => {
    const sample = join(import.meta.dirname, 'layers.test.ts');
    expect(importsOf(sample)).toContain('node:fs');
  });
});
