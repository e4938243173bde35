import { hasRedisServer, startRedisServer } from 'redgrain/testing';

/**
 * Runs `body` against `REDIS_CLUSTER` or `REDIS_URL` when one is set (`undefined`: redgrain reads
 * the cluster from the environment itself); otherwise starts a private redis-server on a free
 * loopback port for the run and stops it afterwards.
 */
export async function withRedis<T>(body: (url: string | undefined) => Promise<T>): Promise<T> {
  if ((process.env.REDIS_CLUSTER ?? '') !== '') return body(undefined);
  const configured = process.env.REDIS_URL;
  if (configured !== undefined && configured !== '') return body(configured);
  if (!hasRedisServer()) {
    process.stderr.write(
      [
        'No REDIS_URL is set and redis-server is not installed, so there is no Redis to run against.',
        'Either install Redis (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis)',
        'or start the one in compose.yaml and point the example at it:',
        '  docker compose up -d redis && REDIS_URL=redis://127.0.0.1:6379 npm run example',
        '',
      ].join('\n'),
    );
    process.exit(1);
  }
  const server = await startRedisServer();
  process.stdout.write(`(started a private redis-server on ${server.url}, pid ${server.pid})\n`);
  try {
    return await body(server.url);
  } finally {
    await server.stop();
  }
}
