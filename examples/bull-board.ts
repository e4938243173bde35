/**
 * Browse grain mailboxes with bull-board: each grain's mailbox is a BullMQ queue.
 *
 *   npx tsx examples/bull-board.ts        (REDIS_URL, REDGRAIN_PREFIX, PORT; then open the URL it prints)
 *
 * An ES module (top-level await, `import`): run it with tsx or from a package with
 * "type": "module". Tested with @bull-board/api 9.10.1, @bull-board/express 9.10.1, express
 * 5.3.0, bullmq 6.7.0 and ioredis 6.0.0 (test/bull-board.test.ts opens it in Chromium).
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import { ClusterInspector } from 'redgrain';

export interface BoardOptions {
  /** Redis URL of the application. */
  redis: string;
  /** The application's key prefix (default `redgrain`). */
  keyPrefix?: string;
  /** Port to listen on, on 127.0.0.1 (0: any free port). */
  port?: number;
  /** Re-read the list of mailboxes this often (ms); 0 reads it once. */
  refreshMs?: number;
}

export interface Board {
  /** Where the board answers, e.g. http://127.0.0.1:3000/mailboxes */
  url: string;
  /** Re-reads which mailboxes to show. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export async function startBoard({ redis, keyPrefix, port = 3000, refreshMs = 0 }: BoardOptions): Promise<Board> {
  // One connection for every mailbox: BullMQ uses a connection it is given as it is (it only
  // duplicates blocking ones, which a board never opens). A connection per Queue would take one
  // Redis client per grain: 10,000 grains would pass Redis's default maxclients.
  const connection = new Redis(redis, { connectionName: 'bull-board' });
  const inspector = await ClusterInspector.open({ redis, keyPrefix });
  const queues = new Map<string, Queue>();
  const serverAdapter = new ExpressAdapter().setBasePath('/mailboxes');
  const board = createBullBoard({ queues: [], serverAdapter, options: { uiConfig: { boardTitle: 'redgrain mailboxes' } } });

  const refresh = async (): Promise<void> => {
    const mailboxes = await inspector.mailboxQueues();
    const listed = new Set(mailboxes.map((m) => m.name));
    for (const [name, queue] of queues) {
      if (listed.has(name)) continue;
      queues.delete(name);
      await queue.close(); // leaves the shared connection open
    }
    board.replaceQueues(
      mailboxes.map((mailbox) => {
        let queue = queues.get(mailbox.name);
        if (queue === undefined) {
          // skipMetasUpdate: opening a queue writes nothing into the mailbox.
          queue = new Queue(mailbox.name, { connection, prefix: mailbox.prefix, skipMetasUpdate: true });
          queues.set(mailbox.name, queue);
        }
        // Read-only: a message retried, promoted or removed by hand would bypass redgrain.
        return new BullMQAdapter(queue, { readOnlyMode: true, displayName: mailbox.grain });
      }),
    );
  };

  await refresh();
  const app = express();
  app.use('/mailboxes', serverAdapter.getRouter());
  const server = app.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const refreshLogged = () => void refresh().catch((error: unknown) => console.error('bull-board: could not list mailboxes', error));
  const timer = refreshMs > 0 ? setInterval(refreshLogged, refreshMs) : undefined;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mailboxes`,
    refresh,
    async close() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error === undefined ? resolve() : reject(error))));
      for (const queue of queues.values()) await queue.close();
      await inspector.close();
      await connection.quit();
    },
  };
}

// Run as a program (not when imported).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const board = await startBoard({
    redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    keyPrefix: process.env.REDGRAIN_PREFIX,
    port: Number(process.env.PORT ?? 3000),
    refreshMs: 10_000,
  });
  console.log(`bull-board: ${board.url}`);
  const stop = () => void board.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
