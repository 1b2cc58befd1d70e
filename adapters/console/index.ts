/**
 * The console adapter: a terminal chat with the bot. Each line on stdin is a message from the
 * console user in the console chat; replies go to stdout; images are saved to a folder and their
 * paths printed. Piped, only final texts are printed, so `printf '/help\n' | npm start` gives clean
 * output. On a terminal (see `screen.ts`) there is a prompt with line editing and history, every
 * growing message has a live region labelled with its command, and log lines go above them. When
 * stdin ends (Ctrl-D) the adapter tells the bot, which finishes the jobs in flight and exits.
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
import { Screen, type TerminalOutput } from './screen.ts';

/** Options of {@link createConsoleAdapter}. */
export interface ConsoleAdapterOptions {
  /** Instance name. Default `console`. */
  readonly name?: string;
  readonly input?: NodeJS.ReadableStream;
  readonly output?: TerminalOutput & { isTTY?: boolean };
  /** Where images are saved. Default `.chorus/images`. */
  readonly imageDir?: string;
  /** The console user's display name. Default `you`. */
  readonly userName?: string;
  /**
   * When the input ends (a script piped in is done, Ctrl-D): `stop` the bot once its jobs finish
   * (the default), or `continue` with the other adapters (a bot run by a service manager, whose
   * input is empty).
   */
  readonly onInputEnd?: 'stop' | 'continue';
  /** Draw for a terminal: live regions, and log lines above them. Default: when the output is a TTY. */
  readonly tty?: boolean;
  /** On a terminal, a prompt where the line is edited (arrows, history). Default: when the input is a TTY too. */
  readonly prompt?: boolean;
  /**
   * The stream the log writes to. On a terminal its lines are drawn above the live regions instead.
   * Default: stderr, when it is a TTY too.
   */
  readonly logOutput?: NodeJS.WritableStream;
  readonly clock?: () => number;
}

/** Creates a console adapter. */
export function createConsoleAdapter(options: ConsoleAdapterOptions = {}): Adapter {
  const name = options.name ?? 'console';
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const tty = options.tty ?? Boolean(output.isTTY);
  const interactive = tty && (options.prompt ?? Boolean((input as { isTTY?: boolean }).isTTY));
  const logOutput = options.logOutput ?? (process.stderr.isTTY ? process.stderr : undefined);
  const screen = tty ? new Screen(output, 'you› ') : undefined;
  /** What each typed line was, for labelling what answers it: `/draw`, or the start of a question. */
  const asked = new Map<string, string>();
  const labelOf = (message: OutgoingMessage): string | undefined => {
    const line = message.replyTo === undefined ? undefined : asked.get(message.replyTo);
    if (line === undefined) return undefined;
    const word = line.trim().split(/\s+/)[0] ?? '';
    return word.startsWith('/')
      ? word
      : line.trim().length > 14
        ? `${line.trim().slice(0, 13)}…`
        : line.trim();
  };
  /** Labels of the messages sent, kept for their edits (which carry no replyTo). */
  const liveLabels = new Map<string, string>();
  let restoreLog: (() => void) | undefined;
  const imageDir = resolve(options.imageDir ?? '.chorus/images');
  const now = options.clock ?? Date.now;
  const chat = consoleChat(name);
  const user = consoleUser(options.userName ?? 'you');
  // Last text printed per message, so a final edit that changes nothing prints nothing.
  const printed = new Map<string, string>();
  let lines: Interface | undefined;
  let nextIn = 0;
  let nextOut = 0;
  let imageCount = 0;

  const write = (text: string, label?: string) => {
    if (screen) {
      screen.print(text, label);
      return;
    }
    output.write(`${text}\n`);
  };
  const print = (id: string, message: OutgoingMessage) => {
    // Buttons are left out: a terminal cannot press them, and /cancel does what Cancel does.
    const text = message.text ?? '';
    const label = liveLabels.get(id);
    screen?.endLive(id);
    if (printed.get(id) === text) return;
    printed.set(id, text);
    if (text) write(text, label);
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
      lines = interactive
        ? createInterface({
            input,
            output,
            terminal: true,
            historySize: 1000,
            removeHistoryDuplicates: true,
          })
        : createInterface({ input, terminal: false });
      if (screen && interactive) {
        screen.attach(lines);
        // In raw mode Ctrl-C is a key, not a signal: make it the signal the bot stops on.
        lines.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
        output.on?.('resize', () => screen.printRaw(''));
      }
      if (screen && logOutput) {
        const original = logOutput.write;
        logOutput.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
          screen.printRaw(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
          const done = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
          done?.();
          return true;
        }) as typeof logOutput.write;
        restoreLog = () => {
          logOutput.write = original;
        };
      }
      lines.on('line', (line) => {
        if (screen && interactive) screen.submitted(line);
        if (!line.trim()) return;
        asked.set(`in-${nextIn + 1}`, line);
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
      lines.once('close', () => {
        if (options.onInputEnd === 'continue') {
          host.log.info('console input ended; the other adapters go on', { adapter: name });
          return;
        }
        host.log.info(
          'console input ended: stopping once the running jobs finish (adapters.console.onInputEnd: continue keeps the bot running without a terminal)',
          { adapter: name },
        );
        host.inputEnded();
      });
      return { id: 'chorus', username: 'chorus', name: 'Chorus' };
    },

    async stop() {
      lines?.removeAllListeners('line');
      lines?.close();
      screen?.close();
      restoreLog?.();
    },

    async send(to: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
      const id = `out-${++nextOut}`;
      const label = labelOf(message);
      if (label !== undefined && screen) liveLabels.set(id, label);
      if (message.images?.length) {
        const paths = await saveImages(message);
        const caption = message.text ? `${message.text}\n` : '';
        write(`${caption}${paths.map((path) => `  [image] ${path}`).join('\n')}`, label);
        printed.set(id, message.text ?? '');
      } else if (message.partial && !tty) {
        printed.set(id, '');
      } else if (message.partial && screen) {
        screen.live(id, label ?? '…', message.text ?? '');
      } else {
        print(id, message);
      }
      return { chat: to, ids: [id] };
    },

    async edit(_to: ChatAddress, messageId: string, message: OutgoingMessage, { final }): Promise<void> {
      if (final) {
        print(messageId, message);
        liveLabels.delete(messageId);
      } else if (screen) screen.live(messageId, liveLabels.get(messageId) ?? '…', message.text ?? '');
    },
  };
}

/** The `adapters.console` config section. */
export const consoleConfig = z.strictObject({
  imageDir: z.string().min(1).default('.chorus/images'),
  userName: z.string().min(1).default('you'),
  onInputEnd: z.enum(['stop', 'continue']).default('stop'),
});

/** The `console` adapter type, as the config names it under `adapters:`. */
export const adapter = defineAdapter({
  type: 'console',
  config: consoleConfig,
  create: ({ name, config }) => createConsoleAdapter({ name, ...config }),
});
