/**
 * The adapter contract: what every adapter must do, run against each one (console, Telegram,
 * Discord) through a small harness that plays a user on the platform and reads what the platform
 * shows.
 */
import { describe, expect, it } from 'vitest';
import type { Adapter, AdapterHost } from '../../src/adapter.ts';
import { createLogger } from '../../src/logger.ts';
import type { ButtonPress, IncomingMessage } from '../../src/message.ts';
import { MemoryStore } from '../../src/store.ts';

export interface ContractHarness {
  readonly adapter: Adapter;
  /** A user writes `text` in a private chat with the bot. */
  userSays(text: string): void;
  /** The bot's messages in that chat as the platform shows them now, oldest first. */
  botTexts(): Promise<string[]>;
  /** How many pictures the platform holds from the bot in that chat. */
  botImages(): Promise<number>;
  /** Presses a button under a bot message, where the platform has buttons. */
  press?(messageId: string, action: string): void;
  close(): Promise<void>;
}

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);

export async function eventually<T>(
  read: () => T | Promise<T>,
  ok: (value: T) => boolean,
  what: string,
  withinMs = 5000,
): Promise<T> {
  for (let i = 0; i < withinMs / 10; i++) {
    const value = await read();
    if (ok(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function recordingHost() {
  const messages: IncomingMessage[] = [];
  const presses: ButtonPress[] = [];
  let ended = false;
  const host: AdapterHost = {
    log: createLogger({ level: 'silent' }),
    store: new MemoryStore(),
    receive: async (message) => void messages.push(message),
    press: async (press) => void presses.push(press),
    rateLimited: () => {},
    inputEnded: () => {
      ended = true;
    },
  };
  return { host, messages, presses, ended: () => ended };
}

/**
 * Starts the adapter made by `make` on a recording host, has the user say `text`, and runs `body`
 * with the message that arrived; stops the adapter and the platform after, whatever happens.
 */
async function afterUserSays(
  make: () => Promise<ContractHarness>,
  text: string,
  body: (
    harness: ContractHarness,
    incoming: IncomingMessage,
    recorder: ReturnType<typeof recordingHost>,
  ) => Promise<void>,
): Promise<void> {
  const harness = await make();
  const recorder = recordingHost();
  try {
    await harness.adapter.start(recorder.host);
    harness.userSays(text);
    const [incoming] = await eventually(
      () => recorder.messages,
      (m) => m.length > 0,
      'a message',
    );
    await body(harness, incoming!, recorder);
  } finally {
    await harness.adapter.stop();
    await harness.close();
  }
}

/** Runs the contract against the adapter `make()` builds. */
export function adapterContract(
  name: string,
  make: () => Promise<ContractHarness>,
  capabilities: { readonly buttons: boolean },
): void {
  describe(`adapter contract: ${name}`, () => {
    it('starts with the bot’s identity and delivers an incoming message, normalized', async () => {
      const harness = await make();
      const recorder = recordingHost();
      try {
        const self = await harness.adapter.start(recorder.host);
        expect(self.username).toMatch(/\w/);
        harness.userSays('hello there');
        const [message] = await eventually(
          () => recorder.messages,
          (m) => m.length > 0,
          'a message',
        );
        expect(message).toMatchObject({
          text: 'hello there',
          chat: { adapter: harness.adapter.name, platform: harness.adapter.platform, kind: 'private' },
          images: [],
          mentionsBot: false,
        });
        expect(message!.sender.id).toMatch(/\S/);
        expect(JSON.parse(JSON.stringify(message))).toEqual(message); // plain, serializable data
      } finally {
        await harness.adapter.stop();
        await harness.close();
      }
    });

    it('sends, edits, and takes an edit to the same text in its stride', () =>
      afterUserSays(make, 'hi', async (harness, incoming) => {
        const sent = await harness.adapter.send(incoming.chat, {
          text: 'first version',
          replyTo: incoming.id,
        });
        expect(sent.ids.length).toBe(1);
        await harness.adapter.edit(incoming.chat, sent.ids[0]!, { text: 'second version' }, { final: true });
        await harness.adapter.edit(incoming.chat, sent.ids[0]!, { text: 'second version' }, { final: true });
        await eventually(harness.botTexts, (t) => t.includes('second version'), 'the edit');
        const long = 'x'.repeat(harness.adapter.limits.maxTextLength);
        await harness.adapter.send(incoming.chat, { text: long });
        await eventually(harness.botTexts, (t) => t.includes(long), 'a message of the maximum length');
      }));

    it('sends images, alone and as an album, with a caption', () =>
      afterUserSays(make, 'pictures please', async (harness, incoming) => {
        const one = await harness.adapter.send(incoming.chat, { images: [{ data: png }], text: 'one' });
        const three = await harness.adapter.send(incoming.chat, {
          images: [{ data: png }, { data: png }, { data: png }],
          text: 'three',
        });
        expect(one.ids.length).toBeGreaterThanOrEqual(1);
        expect(three.ids.length).toBeGreaterThanOrEqual(1);
        expect(await harness.botImages()).toBe(4);
      }));

    it(
      capabilities.buttons
        ? 'routes a press of its button back as a button event'
        : 'has no buttons, and still sends a message that has some, its text intact',
      () =>
        afterUserSays(make, 'give me a button', async (harness, incoming, recorder) => {
          const sent = await harness.adapter.send(incoming.chat, {
            text: 'press it',
            buttons: [[{ label: 'Cancel', action: 'chorus:cancel' }]],
          });
          expect(sent.ids.length).toBe(1);
          if (!capabilities.buttons) {
            await eventually(harness.botTexts, (t) => t.includes('press it'), 'the message');
            return;
          }
          harness.press!(sent.ids[0]!, 'chorus:cancel');
          const [press] = await eventually(
            () => recorder.presses,
            (p) => p.length > 0,
            'a press',
          );
          expect(press).toMatchObject({
            action: 'chorus:cancel',
            messageId: sent.ids[0],
            chat: { id: incoming.chat.id },
          });
        }),
    );

    it('stops cleanly and takes no message after', async () => {
      const harness = await make();
      const recorder = recordingHost();
      await harness.adapter.start(recorder.host);
      await harness.adapter.stop();
      harness.userSays('anyone?');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(recorder.messages).toEqual([]);
      await harness.close();
    });
  });
}
