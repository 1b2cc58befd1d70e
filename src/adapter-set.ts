/**
 * The bot's adapters, each with its outbox, the bot's identity on it and its state: gives each
 * adapter its `AdapterHost` (what it hands messages and presses to, its store and HTTP server),
 * starts them and tells them the commands, stops their intake and then them, and says where each
 * one is for `/readyz`.
 */
import type { Adapter, AdapterHost } from './adapter.ts';
import type { Budget } from './budget.ts';
import type { EventBus } from './bus.ts';
import type { Clock } from './clock.ts';
import type { CommandSpec } from './commands.ts';
import { ConfigError } from './errors.ts';
import type { HttpMounts } from './http-routes.ts';
import type { Logger } from './logger.ts';
import type { BotIdentity, IncomingMessage } from './message.ts';
import type { Metrics } from './metrics.ts';
import { Outbox } from './outbox.ts';
import { namespacedStore, type Store } from './store.ts';
import type { WorkQueue } from './work.ts';

/**
 * Where an adapter is: `down` (not started, or stopped), `starting`, `up` (connected),
 * `reconnecting` (its connection dropped after start, as the adapter reports), or `stopping` (no
 * longer taking messages, still sending).
 */
export type AdapterState = 'down' | 'starting' | 'up' | 'reconnecting' | 'stopping';

/** What the {@link AdapterSet} gives its adapters, and works with. */
export interface AdapterSetOptions {
  /** Where the adapters' messages and button presses go (without a work queue, or `local`). */
  readonly bus: EventBus;
  readonly log: Logger;
  readonly clock: Clock;
  /** The send budgets every outbox takes its slots from. */
  readonly budget: Budget;
  /** The bot's store; each platform's adapters see their own namespace of it (`host.store`). */
  readonly store: Store;
  readonly metrics: Metrics | undefined;
  readonly httpServer: HttpMounts | undefined;
  /** Where the adapters' messages go when several processes make one bot. */
  readonly queue: WorkQueue | undefined;
  /** The commands an adapter's menu shows: the plugins', and the core's own `/cancel`. */
  readonly commands: () => readonly CommandSpec[];
  /** What an adapter's `inputEnded` sets off: the bot stops once its work is done. */
  readonly inputEnded: () => void;
}

/** The bot's adapters, by name, with their outboxes, identities and states. */
export class AdapterSet {
  readonly #o: AdapterSetOptions;
  readonly #adapters = new Map<string, Adapter>();
  readonly #outboxes = new Map<string, Outbox>();
  readonly #identities = new Map<string, BotIdentity>();
  readonly #states = new Map<string, AdapterState>();

  /** Makes each adapter its outbox. Throws `ConfigError` when two adapters share a name. */
  constructor(adapters: readonly Adapter[], options: AdapterSetOptions) {
    this.#o = options;
    for (const adapter of adapters) {
      if (this.#adapters.has(adapter.name))
        throw new ConfigError([`adapters.${adapter.name}: defined twice`]);
      this.#adapters.set(adapter.name, adapter);
      this.#states.set(adapter.name, 'down');
      this.#outboxes.set(
        adapter.name,
        new Outbox(adapter, {
          clock: options.clock,
          budget: options.budget,
          log: options.log.child(`outbox:${adapter.name}`),
          metrics: options.metrics?.adapter(adapter.name),
        }),
      );
    }
  }

  /** Whether an adapter of that name is one of the bot's. */
  has(name: string): boolean {
    return this.#adapters.has(name);
  }

  /** The adapter of that name. */
  get(name: string): Adapter | undefined {
    return this.#adapters.get(name);
  }

  /** The outbox of the adapter of that name. */
  outbox(name: string): Outbox | undefined {
    return this.#outboxes.get(name);
  }

  /** The bot's identity on an adapter, once it has started. */
  identity(name: string): BotIdentity | undefined {
    return this.#identities.get(name);
  }

  /** Where each adapter is, by name. */
  states(): ReadonlyMap<string, AdapterState> {
    return this.#states;
  }

  /**
   * Starts the adapters one after the other; each, once up, is announced on the bus
   * (`adapter/ready`) and told the commands. An adapter that fails to start is `down` again, and
   * its error is thrown: the adapters after it are not started.
   */
  async start(): Promise<void> {
    const { bus, log } = this.#o;
    const commands = this.#o.commands();
    for (const adapter of this.#adapters.values()) {
      this.#states.set(adapter.name, 'starting');
      let self: BotIdentity;
      try {
        self = await adapter.start(this.#hostFor(adapter));
      } catch (error) {
        this.#states.set(adapter.name, 'down');
        throw error;
      }
      this.#states.set(adapter.name, 'up');
      this.#identities.set(adapter.name, self);
      log.info('adapter ready', { adapter: adapter.name, bot: self.username });
      await bus.emit('adapter/ready', { adapter: adapter.name, self });
      const registering = this.#registerCommands(adapter, commands);
      if (registering) await registering;
    }
  }

  /** Tells each adapter that can show a command menu what the commands are. */
  async registerCommands(): Promise<void> {
    const commands = this.#o.commands();
    for (const adapter of this.#adapters.values()) {
      const registering = this.#registerCommands(adapter, commands);
      if (registering) await registering;
    }
  }

  /** What registering takes, or nothing for an adapter with no menu (not even a tick). */
  #registerCommands(adapter: Adapter, commands: readonly CommandSpec[]): Promise<void> | undefined {
    if (!adapter.registerCommands) return undefined;
    return adapter
      .registerCommands(commands)
      .catch((error: unknown) =>
        this.#o.log.warn('could not register commands', { adapter: adapter.name, error }),
      );
  }

  /**
   * Sends a short reply of the core's own to `message` in its chat (an unknown command, a failed
   * job). A failure is logged, not thrown.
   */
  async say(message: IncomingMessage, text: string): Promise<void> {
    await this.#outboxes
      .get(message.chat.adapter)
      ?.send(message.chat, { text, replyTo: message.replyHandle ?? message.id })
      .catch((error: unknown) => this.#o.log.warn('reply failed', { error }));
  }

  /**
   * Calls `message`'s adapter's `settled(message)`, where it has one, once `work` (what the
   * message set off) has ended, or at once when it set off nothing.
   */
  settle(message: IncomingMessage, work: Promise<unknown> | undefined): void {
    const adapter = this.#adapters.get(message.chat.adapter);
    if (!adapter?.settled) return;
    if (!work) {
      adapter.settled(message);
      return;
    }
    const settled = () => adapter.settled!(message);
    work.then(settled, settled);
  }

  /**
   * Stops the adapters' intake: from now on an update stays with its platform, unconfirmed. Every
   * adapter that is not `down` is `stopping` from the call on.
   */
  stopReceiving(): Promise<unknown> {
    for (const [name, state] of this.#states) if (state !== 'down') this.#states.set(name, 'stopping');
    // The promise itself, not an async wrapper: shutdown cancels the jobs right when it settles.
    return Promise.all(
      [...this.#adapters.values()].map((adapter) =>
        adapter
          .stopReceiving?.()
          .catch((error: unknown) =>
            this.#o.log.warn('adapter intake stop failed', { adapter: adapter.name, error }),
          ),
      ),
    );
  }

  /** Resolves once every outbox has sent what it holds. */
  idle(): Promise<unknown> {
    return Promise.all([...this.#outboxes.values()].map((outbox) => outbox.idle()));
  }

  /** Stops the adapters one after the other; a failure is logged, and the adapter is `down` anyway. */
  async stop(): Promise<void> {
    for (const adapter of this.#adapters.values()) {
      await adapter
        .stop()
        .catch((error: unknown) => this.#o.log.warn('adapter stop failed', { adapter: adapter.name, error }));
      this.#states.set(adapter.name, 'down');
    }
  }

  #hostFor(adapter: Adapter): AdapterHost {
    const { bus, queue, httpServer } = this.#o;
    const counts = this.#o.metrics?.adapter(adapter.name);
    return {
      log: this.#o.log.child(adapter.name),
      store: namespacedStore(this.#o.store, `adapter:${adapter.platform}:`),
      receive: (message, options) => {
        if (counts) counts.received++;
        return queue && !options?.local ? queue.push(message) : bus.emit('message', message);
      },
      press: (press) => bus.emit('button', press),
      rateLimited: counts
        ? () => {
            counts.rateLimited++;
          }
        : () => {},
      connection: (up) => {
        const state = this.#states.get(adapter.name);
        // Only between start and shutdown: those own the state otherwise.
        if (up && state === 'reconnecting') {
          this.#states.set(adapter.name, 'up');
          this.#o.log.info('adapter connected again', { adapter: adapter.name });
        } else if (!up && state === 'up') {
          this.#states.set(adapter.name, 'reconnecting');
          this.#o.log.warn('adapter connection lost', { adapter: adapter.name });
        }
      },
      inputEnded: this.#o.inputEnded,
      ...(httpServer && { httpServer }),
      ...(queue && { shared: true }),
    };
  }
}
