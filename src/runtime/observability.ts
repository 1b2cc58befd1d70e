/**
 * What an operator asks of a running bot, on the process's HTTP server: `GET /healthz` (200 while
 * the process runs), `GET /readyz` (200 once every adapter is connected and every plugin set up,
 * otherwise 503 with what is not) and, with `metrics` in the config, Prometheus metrics through
 * prom-client (its default process metrics included). The bot counts in plain numbers
 * (`src/metrics.ts`); they are read here only when Prometheus scrapes.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type LabelValues, Registry } from 'prom-client';
import type { AdapterState, Readiness } from '../bot.ts';
import type { HttpMounts, Unmount } from '../http-routes.ts';
import { durationBounds, type HistogramCell, type Metrics } from '../metrics.ts';

/** What the endpoints read of the bot. */
export interface ObservedBot {
  readiness(): Readiness;
  adapterStates(): ReadonlyMap<string, AdapterState>;
  outbox(adapter: string): { readonly pending: number } | undefined;
}

/** Options of {@link mountObservability}. */
export interface ObservabilityOptions {
  readonly bot: ObservedBot;
  /** The bot's counters; without them only the health endpoints are mounted. */
  readonly metrics?: Metrics | undefined;
  /** Where the metrics are served. Default `/metrics`. */
  readonly metricsPath?: string | undefined;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  });

/**
 * Mounts `/healthz`, `/readyz` and (with `metrics`) the metrics path on `server`. Resolves once
 * the server listens, with a function that takes them away.
 */
export async function mountObservability(
  server: HttpMounts,
  options: ObservabilityOptions,
): Promise<Unmount> {
  const { bot } = options;
  const routes: Promise<Unmount>[] = [
    server.mount('GET', '/healthz', () => json(200, { status: 'ok' })),
    server.mount('GET', '/readyz', () => {
      const readiness = bot.readiness();
      return json(readiness.ready ? 200 : 503, readiness);
    }),
  ];
  if (options.metrics) {
    const registry = createRegistry(options.metrics, bot);
    routes.push(
      server.mount(
        'GET',
        options.metricsPath ?? '/metrics',
        async () =>
          new Response(await registry.metrics(), {
            headers: { 'content-type': registry.contentType, 'cache-control': 'no-store' },
          }),
      ),
    );
  }
  // Every route is in the table before the server first listens: none answers 404 meanwhile.
  const unmounts = await Promise.all(routes);
  return () => {
    for (const unmount of unmounts) unmount();
  };
}

/**
 * A prom-client registry with Node's default process metrics and the bot's own, which read
 * `metrics` and `bot` at each scrape.
 */
export function createRegistry(metrics: Metrics, bot: ObservedBot): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const adapterCounter = (
    name: string,
    help: string,
    read: (cell: ReturnType<Metrics['adapter']>) => number,
  ) =>
    new Counter({
      name,
      help,
      labelNames: ['adapter'],
      registers,
      collect() {
        this.reset();
        for (const [adapter, cell] of metrics.adapters) this.inc({ adapter }, read(cell));
      },
    });
  adapterCounter(
    'chorus_messages_received_total',
    'Messages the adapters handed to the bot.',
    (c) => c.received,
  );
  adapterCounter(
    'chorus_rate_limited_total',
    'Operations the platform refused with a rate limit (429), each retried.',
    (c) => c.rateLimited,
  );
  new Counter({
    name: 'chorus_messages_sent_total',
    help: 'Operations the outboxes sent, by kind: send (text), album (images), edit, typing, draft.',
    labelNames: ['adapter', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const [adapter, cell] of metrics.adapters) {
        this.inc({ adapter, kind: 'send' }, cell.send);
        this.inc({ adapter, kind: 'album' }, cell.album);
        this.inc({ adapter, kind: 'edit' }, cell.edit);
        this.inc({ adapter, kind: 'typing' }, cell.typing);
        this.inc({ adapter, kind: 'draft' }, cell.draft);
      }
    },
  });
  new Counter({
    name: 'chorus_jobs_total',
    help: 'Jobs that ended, by plugin, command (or scheduled task) and outcome: ok, failed, cancelled.',
    labelNames: ['plugin', 'command', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const [plugin, commands] of metrics.jobs) {
        for (const [command, cell] of commands) {
          this.inc({ plugin, command, outcome: 'ok' }, cell.ok);
          this.inc({ plugin, command, outcome: 'failed' }, cell.failed);
          this.inc({ plugin, command, outcome: 'cancelled' }, cell.cancelled);
        }
      }
    },
  });
  new Gauge({
    name: 'chorus_outbox_queue_depth',
    help: 'Operations waiting in or going out of the adapter’s outbox.',
    labelNames: ['adapter'],
    registers,
    collect() {
      this.reset();
      for (const adapter of bot.adapterStates().keys())
        this.set({ adapter }, bot.outbox(adapter)?.pending ?? 0);
    },
  });
  new Gauge({
    name: 'chorus_adapter_up',
    help: '1 while the adapter is connected, 0 otherwise.',
    labelNames: ['adapter'],
    registers,
    collect() {
      this.reset();
      for (const [adapter, state] of bot.adapterStates()) this.set({ adapter }, state === 'up' ? 1 : 0);
    },
  });
  new CellHistogram(
    'chorus_job_duration_seconds',
    'How long jobs took, from start to their last message queued.',
    ['plugin', 'command'],
    registry,
    function* () {
      for (const [plugin, commands] of metrics.jobs)
        for (const [command, cell] of commands) yield [{ plugin, command }, cell.duration];
    },
  );
  new CellHistogram(
    'chorus_backend_request_duration_seconds',
    'Backend requests from start to the end of the answer, by outcome: ok, status, invalid, network, timeout, blocked, cancelled.',
    ['plugin', 'backend', 'outcome'],
    registry,
    function* () {
      for (const [plugin, backends] of metrics.backends)
        for (const [backend, cell] of backends)
          for (const [outcome, histogram] of cell.durations) yield [{ plugin, backend, outcome }, histogram];
    },
  );
  new CellHistogram(
    'chorus_backend_first_token_seconds',
    'Streamed backend answers: from the request to their first chunk.',
    ['plugin', 'backend'],
    registry,
    function* () {
      for (const [plugin, backends] of metrics.backends)
        for (const [backend, cell] of backends)
          if (cell.firstToken.count > 0) yield [{ plugin, backend }, cell.firstToken];
    },
  );
  new CellHistogram(
    'chorus_outbox_wait_seconds',
    'From an operation being queued in the outbox to its going out (rate budgets, results first).',
    ['adapter'],
    registry,
    function* () {
      for (const [adapter, cell] of metrics.adapters) yield [{ adapter }, cell.outboxWait];
    },
  );
  return registry;
}

type Exported = Awaited<ReturnType<Histogram<string>['get']>>;

/**
 * A prom-client histogram whose counts live in {@link HistogramCell}s the bot fills: at a scrape
 * it reads them, instead of keeping its own.
 */
class CellHistogram extends Histogram<string> {
  readonly #read: () => Iterable<readonly [LabelValues<string>, HistogramCell]>;
  readonly #name: string;
  readonly #help: string;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    registry: Registry,
    read: () => Iterable<readonly [LabelValues<string>, HistogramCell]>,
  ) {
    super({ name, help, labelNames, buckets: [...durationBounds], registers: [registry] });
    this.#read = read;
    this.#name = name;
    this.#help = help;
  }

  override async get(): Promise<Exported> {
    return this.#export();
  }

  /** What the registry writes in the text format (it prefers this to `get`). */
  async getForPromString(): Promise<Exported> {
    return this.#export();
  }

  #export(): Exported {
    const name = this.#name;
    const values: Exported['values'] = [];
    for (const [labels, cell] of this.#read()) {
      let cumulative = 0;
      for (let i = 0; i < cell.bounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({
          metricName: `${name}_bucket`,
          labels: { ...labels, le: cell.bounds[i]! },
          value: cumulative,
        });
      }
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cell.count });
      values.push({ metricName: `${name}_sum`, labels, value: cell.sum });
      values.push({ metricName: `${name}_count`, labels, value: cell.count });
    }
    // prom-client's types declare `type` a numeric enum; its registry writes the string it holds.
    const type = 'histogram' as unknown as Exported['type'];
    return { name, help: this.#help, type, values, aggregator: 'sum', collect: () => {} };
  }
}
