/**
 * Routing as composed middleware: each step sees the message (a `Route`) and either handles it or
 * calls `next()`. The built-in steps, in order: ignore bots, allow-lists, parse a command (and
 * drop one addressed to another bot), `/cancel`, the plugins' own steps, commands, keyword
 * triggers, matchers. A step starts work through the route (`run` a job, `say` a short reply);
 * the bot tracks it, for shutdown and for `Bot.settled`.
 *
 * @example A plugin's step: at most one command a second per user.
 * ctx.use((route, next) => {
 *   const key = route.message.sender.id;
 *   if (route.command && Date.now() - (last.get(key) ?? 0) < 1000) return;
 *   last.set(key, Date.now());
 *   return next();
 * });
 */
import { isCommandName, matchKeyword, type ParsedCommand, parseCommand } from './commands.ts';
import type { CommandEntry } from './host.ts';
import type { IncomingMessage } from './message.ts';
import type { CommandHandler, MessageMatcher } from './plugin.ts';

/** A message on its way through the routing steps. */
export interface Route {
  readonly message: IncomingMessage;
  /** The command in the text, once the parse step has found one. */
  command: ParsedCommand | undefined;
  /** Starts `handler` as a job bound to this message; `name` is the command's own name. */
  run(plugin: string, name: string, handler: CommandHandler, command?: ParsedCommand): void;
  /** Sends a short reply of the core's own (an unknown command, how many jobs were cancelled). */
  say(text: string): void;
  /** One of the bot's own strings, in the bot's locale. */
  t(key: string, params?: Readonly<Record<string, string | number>>): string;
}

/** One routing step. Handle the route, or call `next()` to pass it on; not calling it ends the routing. */
export type RouteStep = (route: Route, next: () => Promise<void>) => void | Promise<void>;

/** One settled promise serves every step that ends the line: awaiting it twice is harmless. */
const resolved: Promise<void> = Promise.resolve();
const done = (): Promise<void> => resolved;

/** Composes steps into one: each step's `next` runs the steps after it. */
export function compose(steps: readonly RouteStep[]): (route: Route) => Promise<void> {
  // Each step's `next` is made once per message, and only when the step before it runs.
  const dispatch = (route: Route, index: number): Promise<void> => {
    const step = steps[index];
    if (!step) return done();
    try {
      const result = step(route, () => dispatch(route, index + 1));
      return result instanceof Promise ? result : done();
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return (route) => dispatch(route, 0);
}

/** What the built-in steps ask of the bot. */
export interface RouterDeps {
  /** The prefixes that start a command on an adapter, and the bot's username there. */
  adapter(
    name: string,
  ): { readonly prefixes: readonly string[]; readonly botUsername: string | undefined } | undefined;
  /** Whether the adapter serves this chat and user (its allow-lists). */
  admits(message: IncomingMessage): boolean;
  command(name: string): CommandEntry | undefined;
  keywords(): Iterable<[string, CommandEntry]>;
  matchers(): readonly {
    readonly plugin: string;
    readonly matcher: MessageMatcher;
    readonly handler: CommandHandler;
  }[];
  /** Cancels the sender's jobs in the message's chat; resolves with how many. */
  cancel(message: IncomingMessage): Promise<number>;
}

/** Messages from bots (this one included) are not for us. */
export const ignoreBots: RouteStep = (route, next) => (route.message.sender.isBot ? undefined : next());

/** A chat or user that the adapter's allow-lists leave out goes no further. */
export function allowLists(deps: RouterDeps): RouteStep {
  return (route, next) => (deps.admits(route.message) ? next() : undefined);
}

/** Finds a command in the text; one addressed to another bot (`/draw@otherbot`) goes no further. */
export function parse(deps: RouterDeps): RouteStep {
  return (route, next) => {
    const adapter = deps.adapter(route.message.chat.adapter);
    if (!adapter) return undefined;
    const parsed = parseCommand(route.message.text, {
      prefixes: adapter.prefixes,
      botUsername: adapter.botUsername,
    });
    // `/name@otherbot` is for another bot, unless the command takes that word as a target.
    if (parsed?.target !== undefined && !deps.command(parsed.name)?.spec.targets?.includes(parsed.target)) {
      return undefined;
    }
    route.command = parsed;
    return next();
  };
}

/** `/cancel` cancels the sender's jobs in that chat. */
export function cancel(deps: RouterDeps): RouteStep {
  return (route, next) => {
    if (route.command?.name !== 'cancel') return next();
    return deps.cancel(route.message).then((count) => {
      route.say(count > 0 ? route.t('cancel.done', { count }) : route.t('cancel.none'));
    });
  };
}

/** A plugin's command runs as a job; an unknown one gets a note in a private chat. */
export function commands(deps: RouterDeps): RouteStep {
  return (route, next) => {
    const parsed = route.command;
    if (!parsed) return next();
    const entry = deps.command(parsed.name);
    if (entry) {
      // The handler sees the command's own name, whatever alias was typed.
      route.run(
        entry.plugin,
        entry.spec.name,
        entry.handler,
        parsed.name === entry.spec.name ? parsed : { ...parsed, name: entry.spec.name },
      );
      return undefined;
    }
    // Only a real command name is echoed back: never a megabyte of whatever followed the slash.
    if (route.message.chat.kind === 'private' && isCommandName(parsed.name)) {
      route.say(route.t('command.unknown', { name: parsed.name }));
    }
    return undefined;
  };
}

/** A keyword trigger (`画 a red fox`) runs its command. */
export function keywords(deps: RouterDeps): RouteStep {
  return (route, next) => {
    for (const [keyword, entry] of deps.keywords()) {
      const match = matchKeyword(route.message.text, keyword);
      if (match) {
        route.run(entry.plugin, entry.spec.name, entry.handler, { ...match, name: entry.spec.name });
        return undefined;
      }
    }
    return next();
  };
}

/** The first plugin matcher that accepts the message runs its handler. */
export function matchers(deps: RouterDeps): RouteStep {
  return (route, next) => {
    for (const { plugin, matcher, handler } of deps.matchers()) {
      if (matcher.test(route.message)) {
        route.run(plugin, matcher.name, handler);
        return undefined;
      }
    }
    return next();
  };
}

/** The routing pipeline: the built-in steps around the plugins' own. */
export function pipeline(
  deps: RouterDeps,
  pluginSteps: readonly RouteStep[],
): (route: Route) => Promise<void> {
  return compose([
    ignoreBots,
    allowLists(deps),
    parse(deps),
    cancel(deps),
    ...pluginSteps,
    commands(deps),
    keywords(deps),
    matchers(deps),
  ]);
}
