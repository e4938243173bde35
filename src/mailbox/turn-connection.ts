import { readFileSync } from 'node:fs';
import type { ChainableCommander } from 'ioredis';
import { openRedis, type RedisConnectionInput, type RedisClient } from '../redis/connection.ts';
import { TURN_SCRIPTS } from './bullmq-adapter.ts';

/**
 * The connection a silo commits turns on: one MULTI per batch of turns, holding our fenced state
 * commit and BullMQ's own moveToFinished and moveToActive scripts (its compiled source, see bullmq-adapter.ts).
 *
 * Why a connection of its own: ioredis copies every script defined on a connection onto each
 * MULTI it builds, and BullMQ defines dozens on the connection its backend manages. Measured, that
 * copy was about 8% of a turn's CPU; here only the two scripts a turn uses are defined.
 */
export function openTurnConnection(input: RedisConnectionInput, name: string): TurnConnection {
  const redis = openRedis(input, name);
  redis.defineCommand('moveToFinished', TURN_SCRIPTS.moveToFinished);
  redis.defineCommand('moveToActive', TURN_SCRIPTS.moveToActive);
  // A variable number of keys (one lock per message of a batch): the count is passed first.
  redis.defineCommand('commitTurns', { lua: readFileSync(new URL('../storage/lua/commitTurns.lua', import.meta.url), 'utf8') });
  return redis as TurnConnection;
}

type Arg = string | number | Buffer;

/** The turn connection, with the scripts defined there callable on their own too. */
export type TurnConnection = RedisClient & {
  moveToActive(...keysAndArgs: unknown[]): Promise<unknown>;
};

/** A MULTI on the turn connection, with the scripts defined there. */
export type TurnTransaction = ChainableCommander & {
  /** commitTurns.lua: the number of keys first, then its keys and arguments. */
  commitTurns(numberOfKeys: number, ...keysAndArgs: Arg[]): ChainableCommander;
  moveToFinished(...keysAndArgs: unknown[]): ChainableCommander;
  moveToActive(...keysAndArgs: unknown[]): ChainableCommander;
};
