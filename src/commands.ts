/**
 * Command parsing: `/name args`, `/name@botname args` (commands addressed to another bot are
 * ignored), a per-adapter prefix, aliases, and keyword triggers without a prefix (`画 <prompt>`).
 */

/** A command option, used for help texts and for platforms with typed slash commands. */
export interface CommandOption {
  readonly name: string;
  readonly description: string;
  readonly required?: boolean;
}

/** How a plugin declares a command. */
export interface CommandSpec {
  /** 1-32 characters of a-z, 0-9 and `_`, as Telegram and Discord both accept. */
  readonly name: string;
  /** One line. A record gives it per locale (`{ en: '...', 'zh-CN': '...' }`). */
  readonly description: string | Readonly<Record<string, string>>;
  /** Other names that work with the prefix: `/paint`. */
  readonly aliases?: readonly string[];
  /** Words that trigger the command without a prefix when they start a message: `画 a red fox`. */
  readonly keywords?: readonly string[];
  /** What the arguments are, shown by help: `<prompt>`. */
  readonly usage?: string;
  readonly options?: readonly CommandOption[];
  /**
   * Words accepted after `@` in place of the bot's name (`/ask@all`); the handler finds the word
   * in `command.target`. Any other `@name` means another bot, and the command is ignored.
   */
  readonly targets?: readonly string[];
}

/** A parsed command invocation. */
export interface ParsedCommand {
  /** The name as typed, lowercased (an alias or keyword stays as typed; the router maps it). */
  readonly name: string;
  /** Everything after the name, trimmed. */
  readonly args: string;
  /** `args` split on white space, with "double" or 'single' quotes grouping words. */
  readonly argv: readonly string[];
  /** The prefix used, or `''` for a keyword trigger. */
  readonly prefix: string;
  /** The word after `@` when it is not the bot's own name (lowercased): another bot, or a target. */
  readonly target?: string;
}

const commandName = /^[a-z0-9_]{1,32}$/;

/** True when `name` is a valid command name. */
export function isCommandName(name: string): boolean {
  return commandName.test(name);
}

/**
 * Parses `text` as a prefixed command. Returns `undefined` for text that is not a command.
 * `/draw@thisbot` parses as `/draw`; `/draw@otherbot` keeps `target: 'otherbot'` so the router can
 * ignore it (or accept it as one of the command's `targets`).
 */
export function parseCommand(
  text: string,
  options: { prefixes: readonly string[]; botUsername?: string | undefined },
): ParsedCommand | undefined {
  const trimmed = text.trimStart();
  for (const prefix of options.prefixes) {
    if (!prefix || !trimmed.startsWith(prefix)) continue;
    const match = /^([^\s@]+)(?:@(\S+))?(?:\s+([\s\S]*))?$/.exec(trimmed.slice(prefix.length));
    if (!match) continue;
    const target = match[2]?.toLowerCase();
    const args = (match[3] ?? '').trim();
    const parsed = { name: match[1]!.toLowerCase(), args, argv: splitArgs(args), prefix };
    if (target === undefined || target === options.botUsername?.toLowerCase()) return parsed;
    return { ...parsed, target };
  }
  return undefined;
}

/** Matches a keyword trigger at the start of `text`: the keyword, then white space or the end. */
export function matchKeyword(text: string, keyword: string): ParsedCommand | undefined {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith(keyword)) return undefined;
  const rest = trimmed.slice(keyword.length);
  if (rest !== '' && !/^\s/.test(rest)) return undefined;
  const args = rest.trim();
  return { name: keyword, args, argv: splitArgs(args), prefix: '' };
}

/** Splits arguments on white space; quotes group words and are removed. */
export function splitArgs(args: string): string[] {
  if (args === '') return [];
  // Most arguments have no quotes: a plain split says the same, faster.
  if (!args.includes('"') && !args.includes("'")) return args.split(/\s+/).filter(Boolean);
  const out: string[] = [];
  for (const match of args.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g))
    out.push(match[1] ?? match[2] ?? match[3] ?? '');
  return out;
}
