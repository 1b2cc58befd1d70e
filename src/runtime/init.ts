/**
 * `chorus init DIR`: writes a new bot project that depends on Chorus: a config, an example plugin
 * and its test, a tsconfig. The files come from the package's `starter/` folder; `package.json`
 * is written here, with the versions Chorus itself is built and tested with.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder of Chorus's own package.json: the repository, or the installed package. */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'starter'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no Chorus package.json above ${from}`);
  }
}

interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly engines?: Readonly<Record<string, string>>;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
}

/** A project folder that cannot be written: it exists and is not empty, or its name is unusable. */
export class InitError extends Error {
  override readonly name = 'InitError';
}

/** Files written, relative to the project folder, in the order they were written. */
export interface InitResult {
  readonly dir: string;
  readonly files: readonly string[];
}

/**
 * Writes a new project into `dir` (created if missing; it must be empty if it exists).
 *
 * @example
 * const { files } = initProject('my-bot'); // my-bot/package.json, my-bot/chorus.yaml, ...
 */
export function initProject(dir: string, root = packageRoot()): InitResult {
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new InitError(`${dir} exists and is not empty`);
  }
  const name = basename(target)
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+/, '');
  if (!name) throw new InitError(`cannot name a package after the folder ${dir}`);
  const chorus = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
  const version = (pkg: string): string => {
    const found = chorus.dependencies?.[pkg] ?? chorus.devDependencies?.[pkg];
    if (!found) throw new Error(`Chorus's package.json has no version of ${pkg}`);
    return found;
  };
  const files: string[] = [];
  const write = (file: string, text: string) => {
    mkdirSync(dirname(join(target, file)), { recursive: true });
    writeFileSync(join(target, file), text, { flag: 'wx' });
    files.push(file);
  };
  const manifest = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      start: 'chorus start --config chorus.yaml',
      dev: 'chorus start --watch --config chorus.yaml',
      check: 'chorus start --check --config chorus.yaml',
      test: 'tsc && vitest run',
    },
    engines: chorus.engines,
    dependencies: { [chorus.name]: `^${chorus.version}`, zod: version('zod') },
    devDependencies: {
      '@types/node': version('@types/node'),
      typescript: version('typescript'),
      vitest: version('vitest'),
    },
  };
  write('package.json', `${JSON.stringify(manifest, null, 2)}\n`);
  const starter = join(root, 'starter');
  for (const entry of readdirSync(starter, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const from = join(entry.parentPath, entry.name);
    // npm leaves .gitignore files out of packages, so the starter keeps it without the dot.
    const file = relative(starter, from).replace(/^gitignore$/, '.gitignore');
    write(file, readFileSync(from, 'utf8'));
  }
  return { dir: target, files };
}
