import { SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/errors/errors.ts';
import { markFailed } from '../../src/telemetry/tracing.ts';
import { boobyTrappedError } from '../support/booby-trapped-error.ts';

describe('reporting what a handler threw', () => {
  it('records an error whose name, message and stack getters throw on a span, without throwing', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const span = provider.getTracer('test').startSpan('turn');
    markFailed(span, boobyTrappedError());
    span.end();
    const [recorded] = exporter.getFinishedSpans();
    expect(recorded?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'unprintable error' });
    expect(recorded?.attributes['error.type']).toBe('Error');
    expect(recorded?.events.map((event) => [event.name, event.attributes])).toEqual([
      ['exception', { 'exception.type': 'Error', 'exception.message': 'unprintable error' }],
    ]);
  });

  it('describes it for a log line, and a well-behaved error with its stack as before', () => {
    expect(describeError(boobyTrappedError())).toBe('Error: unprintable error');
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const span = provider.getTracer('test').startSpan('turn');
    const plain = new RangeError('out of range');
    markFailed(span, plain);
    span.end();
    expect(exporter.getFinishedSpans()[0]?.events[0]?.attributes).toEqual({
      'exception.type': 'RangeError',
      'exception.message': 'out of range',
      'exception.stacktrace': plain.stack,
    });
  });
});
