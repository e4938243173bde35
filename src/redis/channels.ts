import { Cluster } from 'ioredis';
import type { RedisClient } from './connection.ts';

/*
 * Point-to-point pub/sub: `ask` replies to one client, direct read-only calls to one silo. On a
 * Redis Cluster these use sharded pub/sub (SPUBLISH / SSUBSCRIBE): a message travels to the one
 * master that holds its channel's slot instead of to every node of the cluster, and SPUBLISH's
 * count of receivers is the channel's whole audience (PUBLISH on a cluster counts one node's).
 * On one Redis they are plain PUBLISH / SUBSCRIBE.
 */

/** Publishes `message` on `channel`; resolves with how many subscribers received it. */
export function publishTo(redis: RedisClient, channel: string, message: string): Promise<number> {
  return redis instanceof Cluster ? (redis.spublish(channel, message) as Promise<number>) : redis.publish(channel, message);
}

/** Subscribes `subscriber` to `channel`, handing each message on it to `onMessage`. */
export async function listenTo(subscriber: RedisClient, channel: string, onMessage: (text: string) => void): Promise<void> {
  const sharded = subscriber instanceof Cluster;
  subscriber.on(sharded ? 'smessage' : 'message', (from: string, text: string) => {
    if (from === channel) onMessage(text);
  });
  await (sharded ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel));
}

/** Subscribes again (the first `listenTo` failed after adding its handler). */
export async function resubscribe(subscriber: RedisClient, channel: string): Promise<void> {
  await (subscriber instanceof Cluster ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel));
}
