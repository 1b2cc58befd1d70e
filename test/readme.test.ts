import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);

describe('README', () => {
  it('shows the example plugin and its test exactly as they are in examples/ (where they are tested)', () => {
    expect(blocks).toContain(readFileSync(resolve(root, 'examples/remind/index.ts'), 'utf8'));
    expect(blocks).toContain(readFileSync(resolve(root, 'examples/remind/remind.test.ts'), 'utf8'));
  });

  it('gives the quick-start commands that package.json and .ci/run use', () => {
    const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('\nnpm test ');
    expect(pkg.scripts.start).toBeDefined();
    expect(readFileSync(resolve(root, '.ci/run'), 'utf8')).toMatch(/^npm test$/m);
  });
});
