/**
 * What the bot counts while it runs, kept as plain numbers in cells resolved once per adapter,
 * per plugin command and per backend: a message costs a few increments and one small loop over
 * a histogram's bounds, never a string-keyed lookup or an allocation. Nothing here knows
 * Prometheus: the runtime reads the cells when `/metrics` is scraped. Labels are names from the
 * config and the code (adapters, plugins, commands, backends), never chat or user ids.
 */

/** Upper bounds of the duration histograms, in seconds (Prometheus's defaults, stretched to a minute). */
export const durationBounds: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/**
 * A histogram's counts: `counts[i]` is how many observations fell at or under `bounds[i]` and
 * above the bound before it (not cumulative); the last slot holds those above every bound.
 */
export class HistogramCell {
  readonly bounds: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[] = durationBounds) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Counts one observation (seconds, for the durations). */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** The kinds of operation an outbox sends: `chorus_messages_sent_total{kind}`. */
export type SentKind = 'send' | 'edit' | 'album' | 'typing' | 'draft';

/** One adapter's counters. */
export class AdapterCell {
  received = 0;
  /** Texts sent. */
  send = 0;
  /** Sends that carried images. */
  album = 0;
  edit = 0;
  typing = 0;
  draft = 0;
  /** 429s from the platform, as the adapter reports them (`host.rateLimited()`). */
  rateLimited = 0;
  /** Seconds from an operation being queued to its going out. */
  readonly outboxWait = new HistogramCell();
}

/** How a job ended, as metrics and traces name it. */
export type JobOutcome = 'ok' | 'failed' | 'cancelled';

/** One plugin command's jobs. */
export class JobCell {
  ok = 0;
  failed = 0;
  cancelled = 0;
  readonly duration = new HistogramCell();
}

/**
 * How a backend request ended: `ok`, the remote refused (`status`), the answer was unusable
 * (`invalid`), `network`, `timeout`, `blocked`, or `cancelled` by the job.
 */
export type BackendOutcome = 'ok' | 'status' | 'invalid' | 'network' | 'timeout' | 'blocked' | 'cancelled';

/**
 * Distinct backend names counted per plugin; requests to any further one count as `other`. The
 * names come from the config, but a plugin could pass something else (a URL, a user's choice),
 * and every name is a series Prometheus keeps.
 */
export const maxBackendsPerPlugin = 64;

/** One plugin's requests to one backend. */
export class BackendCell {
  /** Request durations by outcome, made as outcomes first occur. */
  readonly durations = new Map<BackendOutcome, HistogramCell>();
  /** Seconds from request to the first chunk of a streamed answer. */
  readonly firstToken = new HistogramCell();

  /** Counts one request. */
  observe(outcome: BackendOutcome, seconds: number): void {
    let cell = this.durations.get(outcome);
    if (!cell) {
      cell = new HistogramCell();
      this.durations.set(outcome, cell);
    }
    cell.observe(seconds);
  }
}

/**
 * The bot's counters. Cells are made on first use and kept: take one once (an outbox takes its
 * adapter's as it is made) and increment its fields.
 *
 * @example
 * const metrics = new Metrics();
 * const bot = createBot({ adapters, plugins, metrics });
 * // later, at a scrape:
 * for (const [adapter, cell] of metrics.adapters) console.log(adapter, cell.received);
 */
export class Metrics {
  readonly adapters = new Map<string, AdapterCell>();
  /** By plugin, then command (or task) name. */
  readonly jobs = new Map<string, Map<string, JobCell>>();
  /** By plugin, then backend name. */
  readonly backends = new Map<string, Map<string, BackendCell>>();

  /** The cell of adapter `name`. */
  adapter(name: string): AdapterCell {
    let cell = this.adapters.get(name);
    if (!cell) {
      cell = new AdapterCell();
      this.adapters.set(name, cell);
    }
    return cell;
  }

  /** The cell of `plugin`'s `command`. */
  job(plugin: string, command: string): JobCell {
    let commands = this.jobs.get(plugin);
    if (!commands) {
      commands = new Map();
      this.jobs.set(plugin, commands);
    }
    let cell = commands.get(command);
    if (!cell) {
      cell = new JobCell();
      commands.set(command, cell);
    }
    return cell;
  }

  /** The cell of `plugin`'s requests to `backend` (`other` past {@link maxBackendsPerPlugin} names). */
  backend(plugin: string, backend: string): BackendCell {
    let backends = this.backends.get(plugin);
    if (!backends) {
      backends = new Map();
      this.backends.set(plugin, backends);
    }
    let cell = backends.get(backend);
    if (!cell) {
      const name = backends.size >= maxBackendsPerPlugin ? 'other' : backend;
      cell = backends.get(name) ?? new BackendCell();
      backends.set(name, cell);
    }
    return cell;
  }
}
