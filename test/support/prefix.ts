import { randomUUID } from 'node:crypto';

/** A fresh key prefix, so tests sharing one Redis never see each other's grains. */
export function freshPrefix(label: string): string {
  return `t-${label}-${randomUUID().slice(0, 8)}`;
}
