import { describe, expect, it } from 'vitest';
import { Interactions } from '../../adapters/discord/interactions.ts';

describe('the Discord adapter’s table of slash commands being answered', () => {
  it('forgets an interaction once its token has expired: replies then go to the channel', () => {
    let now = 0;
    const table = new Interactions({ lifetimeMs: 1000, now: () => now });
    const item = table.add('m1', 'token-1', Promise.resolve());
    item.messages.add('sent-1');
    now = 999;
    expect(table.replyingTo('m1')?.token).toBe('token-1');
    expect(table.holding('sent-1')).toBe(item);
    now = 1000;
    expect(table.holding('sent-1')).toBeUndefined();
    expect(table.replyingTo('m1')).toBeUndefined();
    expect(table.size).toBe(0);
  });

  it('drops expired ones as new ones come, and never keeps more than its bound', () => {
    let now = 0;
    const table = new Interactions({ lifetimeMs: 1000, max: 3, now: () => now });
    for (let i = 0; i < 3; i++) table.add(`old${i}`, 't', Promise.resolve());
    now = 2000;
    table.add('new0', 't', Promise.resolve());
    expect(table.size).toBe(1);
    for (let i = 1; i < 10; i++) table.add(`new${i}`, 't', Promise.resolve());
    expect(table.size).toBe(3);
    expect(table.replyingTo('new9')).toBeDefined();
    expect(table.replyingTo('new0')).toBeUndefined();
  });
});
