/**
 * The console adapter: a terminal chat with the bot. Each line on stdin is a message from the
 * console user in the console chat; replies go to stdout; images are saved to a folder and their
 * paths printed. On a TTY intermediate edits show as a live progress line; piped, only final texts
 * are printed, so `printf '/help\n' | npm start` gives clean output. When stdin ends the adapter
 * tells the bot, which finishes the jobs in flight and exits.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { z } from 'zod';
import { type Adapter, type AdapterHost, defineAdapter } from '../../src/adapter.ts';
import type {
  BotIdentity,
  ChatAddress,
  IncomingMessage,
  OutgoingMessage,
  SentMessage,
} from '../../src/message.ts';
import { consoleChat, consoleUser, imageExtension } from './normalize.ts';

/** Options of {@link createConsoleAdapter}. */
export interface ConsoleAdapterOptions {
  /** Instance name. Default `console`. */
  readonly name?: string;
  readonly input?: NodeJS.ReadableStream;
  readonly output?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Where images are saved. Default `.chorus/images`. */
  readonly imageDir?: string;
  /** The console user's display name. Default `you`. */
  readonly userName?: string;
  /** Show intermediate edits as a progress line. Default: when the output is a TTY. */
  readonly tty?: boolean;
  readonly clock?: () => number;
}

/** Creates a console adapter. */
export function createConsoleAdapter(options: ConsoleAdapterOptions = {}): Adapter {
  const name = options.name ?? 'console';
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const tty = options.tty ?? Boolean(output.isTTY);
  const imageDir = resolve(options.imageDir ?? '.chorus/images');
  const now = options.clock ?? Date.now;
  const chat = consoleChat(name);
  const user = consoleUser(options.userName ?? 'you');
  // Last text printed per message, so a final edit that changes nothing prints nothing.
  const printed = new Map<string, string>();
  let lines: Interface | undefined;
  let progressShown = false;
  let nextIn = 0;
  let nextOut = 0;
  let imageCount = 0;

  const write = (text: string) => {
    if (progressShown) {
      output.write('\r\x1b[2K');
      progressShown = false;
    }
    output.write(`${text}\n`);
  };
  const showProgress = (text: string) => {
    const line = text.replace(/\s+/g, ' ').slice(-((output as { columns?: number }).columns ?? 80) + 2);
    output.write(`\r\x1b[2K\x1b[2m${line}\x1b[0m`);
    progressShown = true;
  };
  const print = (id: string, message: OutgoingMessage) => {
    // Buttons are left out: a terminal cannot press them, and /cancel does what Cancel does.
    const text = message.text ?? '';
    if (printed.get(id) === text) return;
    printed.set(id, text);
    if (text) write(text);
  };

  const saveImages = async (message: OutgoingMessage): Promise<string[]> => {
    const paths: string[] = [];
    for (const image of message.images ?? []) {
      if ('url' in image) {
        paths.push(image.url);
        continue;
      }
      await mkdir(imageDir, { recursive: true });
      // Unique names: a later draw must not overwrite the pictures of an earlier one.
      const base = image.filename ?? `image.${imageExtension(image.data, image.mimeType)}`;
      const file = join(imageDir, `${now()}-${++imageCount}-${base}`);
      await writeFile(file, image.data);
      paths.push(file);
    }
    return paths;
  };

  return {
    name,
    platform: 'console',
    commandPrefixes: ['/'],
    limits: { rate: {}, maxTextLength: 100_000, maxCaptionLength: 100_000 },

    async start(host: AdapterHost): Promise<BotIdentity> {
      lines = createInterface({ input, terminal: false });
      lines.on('line', (line) => {
        if (!line.trim()) return;
        const message: IncomingMessage = {
          id: `in-${++nextIn}`,
          chat,
          sender: user,
          text: line,
          mentionsBot: false,
          images: [],
          date: now(),
        };
        host.receive(message).catch((error: unknown) => host.log.error('handling a line failed', { error }));
      });
      lines.once('close', () => host.inputEnded());
      return { id: 'chorus', username: 'chorus', name: 'Chorus' };
    },

    async stop() {
      lines?.removeAllListeners('line');
      lines?.close();
      if (progressShown) write('');
    },

    async send(to: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
      const id = `out-${++nextOut}`;
      if (message.images?.length) {
        const paths = await saveImages(message);
        const caption = message.text ? `${message.text}\n` : '';
        write(`${caption}${paths.map((path) => `  [image] ${path}`).join('\n')}`);
        printed.set(id, message.text ?? '');
      } else if (message.partial && !tty) {
        printed.set(id, '');
      } else if (message.partial) {
        showProgress(message.text ?? '');
      } else {
        print(id, message);
      }
      return { chat: to, ids: [id] };
    },

    async edit(_to: ChatAddress, messageId: string, message: OutgoingMessage, { final }): Promise<void> {
      if (final) print(messageId, message);
      else if (tty) showProgress(message.text ?? '');
    },
  };
}

/** The `adapters.console` config section. */
export const consoleConfig = z.strictObject({
  imageDir: z.string().min(1).default('.chorus/images'),
  userName: z.string().min(1).default('you'),
});

/** The `console` adapter type, as the config names it under `adapters:`. */
export const adapter = defineAdapter({
  type: 'console',
  config: consoleConfig,
  create: ({ name, config }) => createConsoleAdapter({ name, ...config }),
});
