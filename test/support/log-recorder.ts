import { expect } from 'vitest';
import type { Logger, LogFields } from 'redgrain';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: LogFields;
}

/**
 * A logger that keeps what a silo reports, so a test fails on a warning it did not expect (a
 * step-down or a failed wake-up can hide behind a result that still comes out right).
 */
export class LogRecorder implements Logger {
  readonly entries: LogEntry[] = [];

  constructor(private readonly base: LogFields = {}) {}

  debug(message: string, fields: LogFields = {}): void {
    this.entries.push({ level: 'debug', message, fields: { ...this.base, ...fields } });
  }
  info(message: string, fields: LogFields = {}): void {
    this.entries.push({ level: 'info', message, fields: { ...this.base, ...fields } });
  }
  warn(message: string, fields: LogFields = {}): void {
    this.entries.push({ level: 'warn', message, fields: { ...this.base, ...fields } });
  }
  error(message: string, fields: LogFields = {}): void {
    this.entries.push({ level: 'error', message, fields: { ...this.base, ...fields } });
  }
  child(fields: LogFields): Logger {
    const child = new LogRecorder({ ...this.base, ...fields });
    child.entries.push = (...items: LogEntry[]) => this.entries.push(...items);
    return child;
  }

  /** Warnings and errors, minus the ones a test provoked on purpose. */
  problems(allowed: RegExp[] = []): LogEntry[] {
    return this.entries.filter((e) => (e.level === 'warn' || e.level === 'error') && !allowed.some((pattern) => pattern.test(e.message)));
  }

  expectQuiet(allowed: RegExp[] = []): void {
    expect(this.problems(allowed).map((e) => `${e.level}: ${e.message} ${JSON.stringify(e.fields)}`)).toEqual([]);
  }
}
