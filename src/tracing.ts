/**
 * OpenTelemetry traces through `@opentelemetry/api` only: a span per job (`job <plugin>/<command>`)
 * and a child span per backend request (`backend <name>`), on the tracer `chorus-bot`. The
 * application registers an SDK (`@opentelemetry/sdk-node`, say) and its exporter; without one the
 * API answers with spans that record nothing, and the bot skips the attributes and the context
 * switch, so traces cost next to nothing when off. Attributes carry names (plugin, command,
 * adapter, backend) and outcomes, never chat or user ids, message text or URLs: traces often go to
 * a third party, and those identify people or carry keys.
 */
import {
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/** The name of the tracer Chorus's spans come from. */
export const tracerName = 'chorus-bot';

/**
 * OpenTelemetry's proxy tracer: it finds the SDK's tracer once one is registered, even when that
 * happens after Chorus loads.
 */
const tracer = trace.getTracer(tracerName);

/** Starts a span under the active context (a job's span, inside its handler). */
export function startSpan(name: string, kind: SpanKind = SpanKind.INTERNAL): Span {
  return tracer.startSpan(name, { kind });
}

/**
 * The context that makes `span` the parent of spans started under it, or `undefined` when no SDK
 * is registered (the span is a no-op and its context invalid): then there is nothing to carry.
 */
export function contextWith(span: Span): Context | undefined {
  const spanContext = span.spanContext();
  // The no-op tracer's spans all share this object: no need to check its ids.
  if (spanContext === INVALID_SPAN_CONTEXT || !isSpanContextValid(spanContext)) return undefined;
  return trace.setSpan(context.active(), span);
}

/** Runs `fn` with `parent` as the active context, when there is one. */
export function runIn<T>(parent: Context | undefined, fn: () => T): T {
  return parent ? context.with(parent, fn) : fn();
}

/** Ends `span` with an outcome: `ok` leaves the status unset, anything else but `cancelled` is an error. */
export function endSpan(span: Span, outcome: string, attribute: string): void {
  if (span.isRecording()) {
    span.setAttribute(attribute, outcome);
    if (outcome !== 'ok' && outcome !== 'cancelled')
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  }
  span.end();
}

export { SpanKind };
