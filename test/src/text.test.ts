import { describe, expect, it } from 'vitest';
import { splitText } from '../../src/text.ts';

const words = (n: number, seed = 1) => {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 48271) % 2147483647;
    return 'lorem ipsum dolor sit amet consectetur'.split(' ')[s % 6];
  }).join(' ');
};

describe('splitText', () => {
  it('leaves short text alone', () => {
    expect(splitText('hello', 4096)).toEqual(['hello']);
  });

  it('keeps every part within the limit and loses no word', () => {
    for (const max of [64, 200, 2000, 4096]) {
      const text = Array.from({ length: 30 }, (_, i) => `${words(20 + i * 7, i + 1)}.`).join(i3(max));
      const parts = splitText(text, max);
      for (const part of parts) expect(part.length).toBeLessThanOrEqual(max);
      expect(parts.join(' ').split(/\s+/).join(' ')).toBe(text.split(/\s+/).join(' '));
    }
  });

  it('prefers paragraph, then line, then sentence boundaries', () => {
    const a = 'a'.repeat(40);
    expect(splitText(`${a}\n\n${a}`, 60)).toEqual([a, a]);
    expect(splitText(`${a}\n${a}`, 60)).toEqual([a, a]);
    expect(splitText(`${a}. ${a}`, 60)).toEqual([`${a}.`, a]);
  });

  it('closes and re-opens a code fence that a cut falls inside', () => {
    const code = Array.from({ length: 30 }, (_, i) => `const x${i} = ${i};`).join('\n');
    const text = `Here:\n\n\`\`\`ts\n${code}\n\`\`\`\n\nDone.`;
    const parts = splitText(text, 200);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(200);
      const fences = part.split('\n').filter((line) => line.startsWith('```')).length;
      expect(fences % 2).toBe(0);
    }
    expect(parts[1]!.startsWith('```ts\n')).toBe(true);
    const rejoined = parts.join('\n').replace(/\n```\n```ts\n/g, '\n');
    for (let i = 0; i < 30; i++) expect(rejoined).toContain(`const x${i} = ${i};`);
  });

  it('never cuts a surrogate pair in half', () => {
    const text = '😀'.repeat(100);
    const parts = splitText(text, 51);
    expect(parts.join('')).toBe(text);
    for (const part of parts) expect(part).not.toMatch(/[\ud800-\udbff]$/);
  });

  it('rejects a tiny limit', () => {
    expect(() => splitText('x', 4)).toThrow(TypeError);
  });
});

function i3(max: number) {
  return max > 100 ? '\n\n' : ' ';
}
