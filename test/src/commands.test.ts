import { describe, expect, it } from 'vitest';
import { isCommandName, matchKeyword, parseCommand, splitArgs } from '../../src/commands.ts';

const slash = { prefixes: ['/'], botUsername: 'chorus_bot' };

describe('parseCommand', () => {
  it('parses /name args', () => {
    expect(parseCommand('/draw a red fox', slash)).toEqual({
      name: 'draw',
      args: 'a red fox',
      argv: ['a', 'red', 'fox'],
      prefix: '/',
    });
    expect(parseCommand('/HELP', slash)).toMatchObject({ name: 'help', args: '' });
    expect(parseCommand('/ask line one\nline two', slash)).toMatchObject({ args: 'line one\nline two' });
  });

  it('takes /name@thisbot as /name and marks /name@other with its target', () => {
    expect(parseCommand('/draw@Chorus_Bot fox', slash)).toEqual({
      name: 'draw',
      args: 'fox',
      argv: ['fox'],
      prefix: '/',
    });
    expect(parseCommand('/draw@other_bot fox', slash)).toMatchObject({ name: 'draw', target: 'other_bot' });
    expect(parseCommand('/ask@ALL why', { prefixes: ['/'] })).toMatchObject({ name: 'ask', target: 'all' });
  });

  it('uses the adapter prefixes', () => {
    expect(parseCommand('!draw fox', { prefixes: ['!'] })).toMatchObject({ name: 'draw', prefix: '!' });
    expect(parseCommand('/draw fox', { prefixes: ['!'] })).toBeUndefined();
    expect(parseCommand('hello /draw', slash)).toBeUndefined();
  });

  it('groups quoted arguments', () => {
    expect(splitArgs(`"a red" fox 'in snow'`)).toEqual(['a red', 'fox', 'in snow']);
  });
});

describe('matchKeyword', () => {
  it('matches a keyword followed by white space or the end', () => {
    expect(matchKeyword('画 一只狐狸', '画')).toMatchObject({ name: '画', args: '一只狐狸', prefix: '' });
    expect(matchKeyword('画', '画')).toMatchObject({ args: '' });
    expect(matchKeyword('画家很好', '画')).toBeUndefined();
    expect(matchKeyword('我想画', '画')).toBeUndefined();
  });
});

describe('isCommandName', () => {
  it('accepts what both platforms accept', () => {
    expect(isCommandName('draw_2')).toBe(true);
    expect(isCommandName('Draw')).toBe(false);
    expect(isCommandName('a'.repeat(33))).toBe(false);
  });
});
