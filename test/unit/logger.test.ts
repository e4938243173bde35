import { describe, expect, it } from 'vitest';
import { createLogger, MAX_LOG_FIELD_LENGTH } from '../../src/telemetry/logger.ts';

describe('logger', () => {
  it('clips a field from hostile input (a 5 MB wake-up) to a bounded line', () => {
    const lines: string[] = [];
    createLogger('warn', { silo: 's1' }, (line) => lines.push(line)).warn('ignored a malformed wake-up', {
      tag: 'x'.repeat(5_000_000),
      n: 3,
    });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(entry.tag).toBe(`${'x'.repeat(MAX_LOG_FIELD_LENGTH)}… (5000000 characters)`);
    expect(entry).toMatchObject({ level: 'warn', msg: 'ignored a malformed wake-up', silo: 's1', n: 3 });
    expect((lines[0] ?? '').length).toBeLessThan(MAX_LOG_FIELD_LENGTH + 200);
  });
});
