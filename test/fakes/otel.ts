/**
 * What an application's OpenTelemetry setup does, for the end-to-end test: loaded with
 * `node --import` before the bot, it registers an SDK (a tracer provider and a context manager)
 * whose exporter appends each finished span, as one JSON line, to the file `$CHORUS_TEST_SPANS`.
 */
import { appendFileSync } from 'node:fs';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

/** A finished span as the test reads it. */
export interface ExportedSpan {
  readonly name: string;
  readonly scope: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly status: { readonly code: number; readonly message?: string };
}

const file = process.env.CHORUS_TEST_SPANS;
if (file) {
  const exporter: SpanExporter = {
    export(spans, done) {
      for (const span of spans) {
        const exported: ExportedSpan = {
          name: span.name,
          scope: span.instrumentationScope.name,
          traceId: span.spanContext().traceId,
          spanId: span.spanContext().spanId,
          parentSpanId: span.parentSpanContext?.spanId,
          kind: span.kind,
          attributes: { ...span.attributes },
          status: span.status,
        };
        appendFileSync(file, `${JSON.stringify(exported)}\n`);
      }
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
