/**
 * Plugins as values. `definePlugin` only helps type inference; a plugin is a plain object with a
 * name, an optional config schema and a `setup` function. Everything `setup` registers through its
 * `PluginContext` is undone when the plugin stops.
 */
import type { ChorusEvents, Listener } from './bus.ts';
import type { Clock } from './clock.ts';
import type { CommandSpec } from './commands.ts';
import type { Context } from './context.ts';
import { ConfigError } from './errors.ts';
import type { Http } from './http.ts';
import type { Strings } from './i18n.ts';
import type { Logger } from './logger.ts';
import type { Button, ButtonPress, IncomingMessage } from './message.ts';
import type { RouteStep } from './router.ts';
import type { Json, Schedule, TaskHandler, TaskOptions } from './schedule-jobs.ts';
import type { Slots } from './slots.ts';
import type { Store } from './store.ts';

/**
 * A config schema in the Standard Schema form (`~standard.validate`), which zod, valibot and
 * arktype schemas all implement. Declared here so plugins may use any of them.
 */
export interface ConfigSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => SchemaResult<Output> | Promise<SchemaResult<Output>>;
    readonly types?: { readonly input: unknown; readonly output: Output } | undefined;
  };
}

type SchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: readonly {
        readonly message: string;
        readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
      }[];
    };

/** A command handler. Runs as a job: `ctx.signal` fires on `/cancel` and on shutdown. */
export type CommandHandler = (ctx: Context) => void | Promise<void>;

/**
 * A button press handler. Runs as a job bound to the press's chat and user, as a command does:
 * `ctx.reply` answers in that chat (a reply to the message that carried the button), `ctx.signal`
 * fires on `/cancel` and on shutdown, and a handler that fails leaves a note in the chat.
 */
export type ButtonHandler = (press: ButtonPress, ctx: Context) => void | Promise<void>;

/** A trigger for messages that are not commands (mentions, replies to the bot, private chats...). */
export interface MessageMatcher {
  /** Shown in logs and job events. */
  readonly name: string;
  readonly test: (message: IncomingMessage) => boolean;
}

/** What a plugin's `setup` gets: registration methods that are undone when the plugin stops. */
export interface PluginContext {
  readonly name: string;
  readonly log: Logger;
  readonly clock: Clock;
  /**
   * The bot's shared HTTP client, with the configured proxy and timeouts: use it for every request
   * (`ctx.http.request(url, { backend, signal: c.signal })`). `http.with({ proxy })` for a backend's own.
   */
  readonly http: Http;
  /** Registers a command. */
  command(spec: CommandSpec, handler: CommandHandler): () => void;
  /** Handles messages that are not commands and pass `matcher.test`. The first matching plugin wins. */
  match(matcher: MessageMatcher, handler: CommandHandler): () => void;
  /**
   * Adds a routing step (per-user rate limits, logging, moderation): it runs after `/cancel` and
   * before commands, keywords and matchers, and may end the routing by not calling `next()`.
   */
  use(step: RouteStep): () => void;
  /** Subscribes to a bus event. */
  on<K extends keyof ChorusEvents>(event: K, listener: Listener<ChorusEvents[K]>): () => void;
  /** Emits a bus event. */
  emit<K extends keyof ChorusEvents>(event: K, payload: ChorusEvents[K]): Promise<void>;
  /** Handles presses of this plugin's buttons with `action`, each as a job (see {@link ButtonHandler}). */
  button(action: string, handler: ButtonHandler): () => void;
  /** A button that cancels the presser's jobs in that chat. */
  cancelButton(label?: string): Button;
  /** Adds translated strings (`{ en: {...}, 'zh-CN': {...} }`). */
  strings(tables: Readonly<Record<string, Strings>>): void;
  /**
   * Keeps these values (API keys, header values, passwords from the plugin's config) out of every
   * log line, error and chat message, wherever they appear. Empty and very short values are ignored.
   */
  secret(...values: readonly (string | undefined)[]): void;
  /** Runs `dispose` when the plugin stops (close pools, stop servers). */
  onDispose(dispose: () => void | Promise<void>): void;
  /** Every command of every loaded plugin, for help texts. */
  commands(): readonly { readonly plugin: string; readonly spec: CommandSpec }[];
  /**
   * Registers a task that scheduled jobs run by name. Register every task in `setup`, so a job
   * scheduled before a restart finds its handler after it.
   */
  task<Data extends Json = Json>(name: string, handler: TaskHandler<Data>, options?: TaskOptions): () => void;
  /** Schedules this plugin's tasks; outside a handler each job needs `options.chat`. */
  readonly schedule: Schedule;
  /**
   * The plugin's own durable state: keys are the plugin's alone (another plugin's never show), and
   * the store is the bot's (`state.path`, or in memory in the test kit), so state outlives a
   * restart and is shared by every process on the same store. Plain JSON values, TTLs and locks.
   */
  readonly store: Store;
  /**
   * Keyed semaphores shared by every process of the bot, when it runs on several (`state.redis`);
   * unset when the bot runs in one process. Pass it on, `createLimiter(n, { slots: ctx.slots, key })`
   * and `createTurns({ ..., slots: ctx.slots })`, and the limits hold across processes; keys are the
   * plugin's alone.
   */
  readonly slots?: Slots;
}

/** A plugin. */
export interface Plugin<Config = unknown> {
  readonly name: string;
  /** Validates the plugin's config section; the validated value goes to `setup`. */
  readonly config?: ConfigSchema<Config>;
  // Method syntax on purpose: a Plugin<{ x: number }> must fit where a Plugin<unknown> is expected.
  setup(ctx: PluginContext, config: Config): void | Promise<void>;
}

/**
 * Defines a plugin. Exists for type inference only: `config` in `setup` gets the schema's output type.
 *
 * @example
 * export const plugin = definePlugin({
 *   name: 'echo',
 *   config: z.object({ shout: z.boolean().default(false) }),
 *   setup(ctx, config) {
 *     ctx.command({ name: 'echo', description: 'Say it back' }, async (c) => {
 *       await c.reply(config.shout ? c.command!.args.toUpperCase() : c.command!.args);
 *     });
 *   },
 * });
 */
export function definePlugin<Config = undefined>(plugin: Plugin<Config>): Plugin<Config> {
  return plugin;
}

/**
 * Validates `value` against a plugin's schema. Errors name the key path under `at`
 * (`plugins.draw.backends[0].timeoutMs: expected number`).
 */
export async function validateConfig<Config>(
  schema: ConfigSchema<Config> | undefined,
  value: unknown,
  at: string,
): Promise<Config> {
  if (!schema) return value as Config;
  let input: unknown = value ?? {};
  for (;;) {
    const result = await schema['~standard'].validate(input);
    if (!result.issues) return result.value;
    // `port: ${PORT}` reads as a string: a number or boolean slot takes one that spells its type.
    const coerced = coerceScalars(input, result.issues);
    if (coerced === undefined) {
      throw new ConfigError(result.issues.flatMap((issue) => describeIssue(schema, at, issue, input)));
    }
    input = coerced;
  }
}

/**
 * A copy of `input` with each string that an issue says should be a number or a boolean turned into
 * one, when it spells one; `undefined` when there is nothing to turn.
 */
function coerceScalars(input: unknown, issues: readonly Issue[]): unknown {
  let changed = false;
  const copy: unknown = structuredClone(input);
  for (const issue of issues) {
    const path = (issue.path ?? []).map((segment) => (typeof segment === 'object' ? segment.key : segment));
    if (issue.code !== 'invalid_type' || path.length === 0) continue;
    const parent = valueAt(copy, path.slice(0, -1));
    const key = path.at(-1)!;
    if (!parent || typeof parent !== 'object') continue;
    const current = (parent as Record<PropertyKey, unknown>)[key];
    if (typeof current !== 'string') continue;
    const turned = scalarOf(current, issue.expected);
    if (turned === undefined) continue;
    (parent as Record<PropertyKey, unknown>)[key] = turned;
    changed = true;
  }
  return changed ? copy : undefined;
}

function scalarOf(text: string, expected: unknown): number | boolean | undefined {
  const trimmed = text.trim();
  if (expected === 'number' && /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(trimmed)) return Number(trimmed);
  if (expected === 'boolean' && /^(true|false)$/i.test(trimmed)) return trimmed.toLowerCase() === 'true';
  return undefined;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let node = value;
  for (const key of path) {
    if (!node || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

type Issue = Extract<SchemaResult<unknown>, { issues: unknown }>['issues'][number] & {
  readonly code?: unknown;
  readonly keys?: unknown;
  readonly expected?: unknown;
};

/** One line per problem, in words a person who edits YAML understands. */
function describeIssue(schema: unknown, at: string, issue: Issue, input: unknown): string[] {
  const path = issue.path ?? [];
  const keys = path.map((segment) => (typeof segment === 'object' ? segment.key : segment));
  const found = keys.length > 0 ? valueAt(input, keys) : undefined;
  const options = (issue as { readonly options?: unknown }).options;
  if (issue.code === 'invalid_union' && Array.isArray(options) && typeof found === 'string') {
    // A discriminated union (a backend's `type`): say which types there are, and the likely one.
    const known = options.map(String);
    const hint = closest(found, known);
    return [
      `${formatPath(at, path)}: unknown type "${found.slice(0, 40)}" (${hint ? `did you mean "${hint}"? ` : ''}expected one of ${known.join(', ')})`,
    ];
  }
  if (issue.code === 'invalid_type' && typeof found === 'string' && typeof issue.expected === 'string') {
    return [`${formatPath(at, path)}: expected a ${issue.expected}, got "${found.slice(0, 40)}"`];
  }
  if (issue.code === 'unrecognized_keys' && Array.isArray(issue.keys)) {
    const known = knownKeys(schema, path);
    return issue.keys.map((key: unknown) => {
      const hint = known.length > 0 ? closest(String(key), known) : undefined;
      const expected = hint
        ? `did you mean "${hint}"?`
        : known.length > 0
          ? `expected one of ${known.join(', ')}`
          : '';
      return `${formatPath(at, [...path, String(key)])}: unknown key${expected ? ` (${expected})` : ''}`;
    });
  }
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
    return [`${formatPath(at, path)}: required (expected ${String(issue.expected)})`];
  }
  return [`${formatPath(at, path)}: ${issue.message.replace(/^Invalid input: /, '')}`];
}

interface SchemaNode {
  readonly _zod?: { readonly def?: Record<string, unknown> };
  readonly shape?: Record<string, unknown>;
}

/** The keys an object schema at `path` accepts, where the schema can tell (zod does). */
function knownKeys(
  schema: unknown,
  path: readonly (PropertyKey | { readonly key: PropertyKey })[],
): string[] {
  let node = schema as SchemaNode | undefined;
  const unwrap = () => {
    for (let depth = 0; depth < 10 && node?._zod?.def; depth++) {
      const def = node._zod.def;
      if (['optional', 'default', 'nullable', 'prefault', 'readonly', 'catch'].includes(String(def.type))) {
        node = def.innerType as SchemaNode;
      } else if (def.type === 'pipe') node = def.in as SchemaNode;
      else break;
    }
  };
  for (const segment of path) {
    unwrap();
    const key = typeof segment === 'object' ? segment.key : segment;
    const def = node?._zod?.def;
    if (def?.type === 'object') node = node?.shape?.[String(key)] as SchemaNode;
    else if (def?.type === 'array') node = def.element as SchemaNode;
    else if (def?.type === 'record') node = def.valueType as SchemaNode;
    else return [];
  }
  unwrap();
  return node?._zod?.def?.type === 'object' && node.shape ? Object.keys(node.shape) : [];
}

/** The candidate closest to `word` by edit distance, if it is close enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(
        Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}

/** `plugins.draw` + `['backends', 0, 'url']` → `plugins.draw.backends[0].url`. */
export function formatPath(
  at: string,
  path: readonly (PropertyKey | { readonly key: PropertyKey })[],
): string {
  let out = at;
  for (const segment of path) {
    const key = typeof segment === 'object' ? segment.key : segment;
    out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  }
  return out;
}
