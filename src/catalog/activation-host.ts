import type { RedisQueueBackend } from 'bullmq';
import type { RedisClient } from '../redis/connection.ts';
import type { TurnConnection } from '../mailbox/turn-connection.ts';
import type { GrainClient } from '../client/grain-client.ts';
import type { GrainDirectory } from '../directory/grain-directory.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { DeadLetterStore } from '../mailbox/dead-letters.ts';
import type { ReplyMessage } from '../messaging/envelope.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { SiloMetrics } from '../telemetry/silo-metrics.ts';
import type { ReminderTable } from '../reminders/reminder-table.ts';
import type { SubscriptionTable } from '../pubsub/subscription-table.ts';
import type { Activation } from './activation.ts';

/** What an activation needs from the silo that hosts it. */
export interface ActivationHost {
  readonly siloId: string;
  readonly redis: RedisClient & ScriptCommands;
  /** The connection turns commit on. */
  readonly turns: TurnConnection;
  readonly keys: RedisKeys;
  readonly directory: GrainDirectory;
  readonly mailboxRoot: RedisQueueBackend;
  readonly client: GrainClient;
  readonly log: Logger;
  readonly metrics: SiloMetrics;
  readonly reminders: ReminderTable;
  readonly subscriptions: SubscriptionTable;
  /** How long a message lock lives; a lock left by a dead activation expires after this. */
  readonly lockDurationMs: number;
  /** Attempts a message gets when it kills or hangs its activation, before it is dead-lettered. */
  readonly maxMessageAttempts: number;
  /** Most messages a busy grain takes and commits in one step. */
  readonly turnBatchSize: number;
  /** Largest serialized return value a turn may reply with (and arguments it may send). */
  readonly maxPayloadBytes: number;
  /**
   * Resolves once the replicas the silo requires acknowledged every commit made so far on the turn
   * connection (at once when it requires none). Replies and effects of a commit wait for it.
   */
  replicate(grain: GrainId): Promise<void>;
  readonly deadLetters: DeadLetterStore;
  /** Whether a message lock was left by an activation that will never release it. */
  isStaleLock(token: string): Promise<boolean>;
  /** Wakes this grain again on this silo after a pause (Redis failed under its activation). */
  retryLater(grain: GrainId): void;
  /** Wakes whichever silo owns the grain now; `recover` asks it to take back released messages. */
  wakeOwner(grain: GrainId, recover: boolean): void;
  /** Sends an `ask` reply to the calling client. */
  reply(clientId: string, reply: ReplyMessage): void;
  /**
   * The channel and message a commit may publish an `ask` reply with itself, in the same step as
   * the turn's state (one round trip less than publishing it after); undefined when it cannot: on
   * a Redis Cluster (the reply's channel lives in another slot than the grain) and when replicas
   * must acknowledge the commit before anything of it leaves the grain.
   */
  replyPublication(clientId: string, reply: ReplyMessage): readonly [channel: string, message: string] | undefined;
  /** Called once when an activation has ended (deactivated or stepped down). */
  ended(activation: Activation): void;
}
