import { execEach, type Command } from '../redis/commands.ts';
import { parseWakeEntry } from '../directory/wake-entry.ts';
import { describeError } from '../errors/errors.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { RedisRuntime } from '../redis/runtime.ts';
import type { Logger } from '../telemetry/logger.ts';
import { popAll } from './inbox-reader.ts';

/**
 * Hands a dead silo's work to the living: every grain it may have owned that has messages waiting
 * or left unfinished, or committed effects not carried out, and every wake-up left in its inbox, is woken again elsewhere (placement
 * picks the silo, which supersedes the dead owner's directory claim and takes back the messages
 * it held). Idle grains are left alone: their next message activates them. Safe to run twice.
 */
export async function takeOverSilo(runtime: RedisRuntime, deadSiloId: string, log: Logger): Promise<void> {
  const { redis, keys, locator, membership } = runtime;
  const inbox = [...(await popAll(redis, keys.siloTaking(deadSiloId))), ...(await popAll(redis, keys.siloInbox(deadSiloId)))].map(
    (entry) => parseWakeEntry(entry).tag,
  );
  const tags = new Set([...inbox, ...(await redis.smembers(keys.siloGrains(deadSiloId)))]);
  const grains: GrainId[] = [];
  for (const tag of tags) {
    try {
      grains.push(GrainId.fromTag(tag));
    } catch {
      log.warn('ignored a malformed grain tag during takeover', { tag });
    }
  }
  const counts = await execEach(
    redis,
    grains.flatMap((grain): Command[] => [
      ['llen', keys.mailbox(grain, 'wait')],
      ['llen', keys.mailbox(grain, 'active')],
      ['llen', keys.outbox(grain)],
    ]),
  );
  let woken = 0;
  for (const [i, grain] of grains.entries()) {
    // Messages to process, or committed effects to carry out (the activation forwards them).
    const waiting = [0, 1, 2].reduce((sum, part) => sum + Number(counts[3 * i + part]?.[1] ?? 0), 0);
    if (waiting === 0) continue;
    try {
      await locator.wake(grain, undefined, deadSiloId);
      woken += 1;
    } catch (error) {
      log.error('could not wake a grain of a dead silo', { grain: grain.toString(), error: describeError(error) });
      throw error; // leave the silo listed as dead so the next check finishes the takeover
    }
  }
  await membership.forget(deadSiloId);
  log.info('took over a dead silo', { deadSilo: deadSiloId, grains: grains.length, woken });
}
