import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { GrainId } from '../../src/grain/grain-id.ts';
import { correlationFromContext, startCall, startTurn } from '../../src/telemetry/tracing.ts';

/**
 * With no OpenTelemetry SDK registered (as in this file), the message paths skip building spans
 * nobody records, yet still carry what they must: the correlation id always, and a trace context
 * that came in the envelope from a process that traces.
 */
describe('tracing with no SDK registered', () => {
  const grain = GrainId.of('Counter', 'c1');
  const details = { siloId: 's1', epoch: 'e1', jobId: '7', deliveryCount: 1, activationLink: undefined };
  const envelope = { v: 1 as const, m: 'add', a: '[]', c: 'corr-1', t: Date.now() };

  it('a call without a traced caller carries no trace context', () => {
    const call = startCall('send', grain, 'add', 'corr-1', ROOT_CONTEXT);
    expect(call.envelope).toEqual({});
    expect(call.span.isRecording()).toBe(false);
  });

  it('a turn keeps the correlation id, and the trace of an envelope from a traced process', () => {
    const untraced = startTurn(grain, envelope, details);
    expect(untraced.traceId).toBe('');
    expect(correlationFromContext(untraced.context)).toBe('corr-1');

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const traced = startTurn(grain, { ...envelope, x: { traceparent: `00-${traceId}-b7ad6b7169203331-01` } }, details);
    expect(trace.getSpanContext(traced.context)?.traceId).toBe(traceId);
    expect(traced.traceId).toBe(traceId);
    expect(correlationFromContext(traced.context)).toBe('corr-1');

    // A call made inside that turn carries the trace on.
    const call = startCall('send', grain, 'add', 'corr-1', traced.context);
    expect(call.envelope.x?.traceparent).toMatch(new RegExp(`^00-${traceId}-b7ad6b7169203331-01$`));
  });
});
