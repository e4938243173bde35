import { readFile } from 'node:fs/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterInspector, connect, Grain, Silo, type GrainClient } from 'redgrain';
import { startRedisServer, type RedisServer } from 'redgrain/testing';
import { startBoard, type Board } from '../examples/bull-board.ts';
import { launchBrowser, type TestBrowser } from './support/browser.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { waitFor } from './support/wait-for.ts';

/** Resolves once a `hold` turn has started; `hold` returns when `release` is called. */
let held: () => void = () => undefined;
const holding = new Promise<void>((resolve) => (held = resolve));
let release: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (release = resolve));

/** A post office per address: deliveries succeed, refusals fail with their reason. */
class PostOffice extends Grain<{ delivered: string[] }> {
  static readonly type = 'PostOffice';
  // Idle grains deactivate quickly: their failed messages must stay on the board.
  static readonly collectionAgeMs = 200;

  initialState() {
    return { delivered: [] as string[] };
  }

  /** Keeps the grain busy, so messages sent meanwhile wait in its mailbox. */
  async hold() {
    held();
    await gate;
  }

  async deliver(parcel: string) {
    this.state.delivered.push(parcel);
    return this.state.delivered.length;
  }

  async forward(parcel: string, to: string) {
    this.state.delivered.push(`${parcel}->${to}`);
  }

  async refuse(reason: string) {
    throw new RangeError(`refused: ${reason}`);
  }
}

/** A clerk that stays activated for the default collection age: listed while a silo holds it. */
class Clerk extends Grain<{ seen: number }> {
  static readonly type = 'Clerk';

  initialState() {
    return { seen: 0 };
  }
  async deliver() {
    this.state.seen += 1;
  }
  async refuse(reason: string) {
    throw new RangeError(`refused: ${reason}`);
  }
}

/** Keys whose percent-encoding differs from the key: a space, a colon, an @, non-ASCII. */
const HELD = 'x:y';
const FAILED = ['a b', 'ann@example.com', 'Zoë 😀'] as const;
const REASONS: Record<(typeof FAILED)[number], string> = {
  'a b': 'RangeError: refused: no such street',
  'ann@example.com': 'RangeError: refused: mailbox full',
  'Zoë 😀': 'RangeError: refused: adresse inconnue',
};

/** The names of the clients connected to Redis, sorted (`CLIENT LIST`). */
async function clientNames(url: string): Promise<string[]> {
  const admin = new Redis(url, { connectionName: 'test-admin' });
  try {
    const list = (await admin.client('LIST')) as string;
    return list
      .trim()
      .split('\n')
      .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '')
      .filter((name) => name !== 'test-admin')
      .sort();
  } finally {
    await admin.quit();
  }
}

/** The jobs a bull-board queue page lists, as `#<id> <name>`, top to bottom. */
async function listedJobs(page: Page): Promise<string[]> {
  const links = page.locator('main a[class*="jobLink"]');
  await links.first().waitFor();
  return Promise.all(
    (await links.all()).map(
      async (link) => `${await link.locator('[class*="jobId"]').innerText()} ${await link.locator('[class*="jobName"]').innerText()}`,
    ),
  );
}

describe('examples/bull-board.ts in a browser', () => {
  let redis: RedisServer;
  let silo: Silo;
  let client: GrainClient;
  let board: Board;
  let browser: TestBrowser;
  let namesBeforeBoard: string[];
  const log = new LogRecorder();
  const keyPrefix = 'board';

  beforeAll(async () => {
    redis = await startRedisServer();
    silo = await Silo.start({ redis: redis.url, keyPrefix, grains: [PostOffice], logger: log });
    client = await connect({ redis: redis.url, keyPrefix });
    for (const key of FAILED) {
      const office = client.getGrain(PostOffice, key);
      expect(await office.ask('deliver', `welcome-${key}`)).toBe(1);
      await expect(office.ask('refuse', REASONS[key].replace('RangeError: refused: ', ''))).rejects.toThrow(
        REASONS[key].replace('RangeError: ', ''),
      );
    }
    // x:y is busy with `hold`; two messages wait behind it.
    const busy = client.getGrain(PostOffice, HELD);
    await busy.send('hold');
    await holding;
    await busy.send('deliver', 'parcel-1');
    await busy.send('forward', 'parcel-2', 'ann@example.com');
    // The grains that failed are idle: they deactivate, and no silo holds them any more.
    await waitFor('the idle grains to deactivate', () => (silo.activationCount === 1 ? true : undefined));
    namesBeforeBoard = await clientNames(redis.url);
    board = await startBoard({ redis: redis.url, keyPrefix, port: 0 });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    release();
    await browser?.close();
    await board?.close();
    await client?.close();
    await silo?.stop();
    await redis?.stop();
  });

  it('lists the busy grain and the grains with failed messages, deactivated or not', async () => {
    const page = await browser.context.newPage();
    await page.goto(board.url);
    const cards = page.locator('main [class*="queueCard"] a[title]');
    await cards.first().waitFor();
    expect(await cards.allInnerTexts()).toEqual(['PostOffice/a b', 'PostOffice/ann@example.com', 'PostOffice/x:y', 'PostOffice/Zoë 😀']);
    await page.screenshot({ path: '/tmp/wt18-bull-board-overview.png' });
  });

  it("opens each failed grain's mailbox from the overview and shows its failed message with the reason", async () => {
    const page = await browser.context.newPage();
    for (const key of FAILED) {
      await page.goto(board.url);
      // Through the board's own links and router: the way that decoded queue names twice.
      await page.getByRole('link', { name: `PostOffice/${key}`, exact: true }).click();
      await page.getByRole('link', { name: 'FAILED' }).click();
      expect(await listedJobs(page)).toEqual(['#2 refuse']);
      await expect.poll(() => page.getByText(REASONS[key], { exact: true }).count()).toBe(1);
      expect(await page.getByText('Queue Not found').count()).toBe(0);
    }
    await page.screenshot({ path: '/tmp/wt18-bull-board-failed.png' });
  });

  it("opens the busy grain's mailbox by its address and shows its waiting messages in order", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${board.url}/queue/${encodeURIComponent('{PostOffice/x~3Ay}')}?status=waiting`);
    // Newest first, as bull-board lists them; the grain handles #2 first.
    expect(await listedJobs(page)).toEqual(['#3 forward', '#2 deliver']);
    // Each message's data is its envelope: method, serialized arguments, correlation id, time.
    await expect.poll(() => page.getByText('"{"json":["parcel-1"]}"', { exact: true }).count()).toBe(1);
    await expect.poll(() => page.getByText('"{"json":["parcel-2","ann@example.com"]}"', { exact: true }).count()).toBe(1);
    // Silos consume mailboxes without BullMQ workers (the README says so).
    expect(await page.getByText('No workers', { exact: true }).count()).toBe(1);
    await page.screenshot({ path: '/tmp/wt18-bull-board-waiting.png' });
  });

  it('serves every mailbox over one shared Redis connection', async () => {
    const added = [...(await clientNames(redis.url))];
    for (const name of namesBeforeBoard) added.splice(added.indexOf(name), 1);
    expect(added).toEqual(['bull-board', 'redgrain:inspect']);
    // Reading through the board disturbed nothing: the silo saw only the failures we provoked.
    log.expectQuiet([/handler failed/]);
  });
});

describe("the README's bull-board section", () => {
  it('shows examples/bull-board.ts as it is', async () => {
    const [readme, example] = await Promise.all([readFile('README.md', 'utf8'), readFile('examples/bull-board.ts', 'utf8')]);
    expect(readme).toContain(`### Browsing mailboxes with bull-board`);
    expect(readme.split(`\`\`\`ts\n${example}\`\`\``)).toHaveLength(2);
  });
});

describe('ClusterInspector.mailboxQueues', () => {
  let redis: RedisServer;
  let silo: Silo | undefined;
  let client: GrainClient;
  let inspector: ClusterInspector;
  const keyPrefix = 'listing';
  const queue = (tag: string) => ({ name: `{${tag}}`, prefix: `${keyPrefix}:q` });

  beforeAll(async () => {
    redis = await startRedisServer();
    silo = await Silo.start({ redis: redis.url, keyPrefix, grains: [Clerk], logLevel: 'silent' });
    client = await connect({ redis: redis.url, keyPrefix });
    inspector = await ClusterInspector.open({ redis: redis.url, keyPrefix });
  });
  afterAll(async () => {
    await inspector?.close();
    await client?.close();
    await silo?.stop();
    await redis?.stop();
  });

  it('keeps grains with failed or waiting messages listed once no silo holds them', async () => {
    await client.getGrain(Clerk, 'ok').ask('deliver');
    await expect(client.getGrain(Clerk, 'a b').ask('refuse', 'no')).rejects.toThrow('refused: no');
    expect(await inspector.mailboxQueues()).toEqual([
      { grain: 'Clerk/a b', ...queue('Clerk/a~20b') },
      { grain: 'Clerk/ok', ...queue('Clerk/ok') },
    ]);
    // The silo stops: every grain deactivates. Then a message arrives for a grain of a type no
    // silo hosts now: it waits in the mailbox.
    await silo?.stop();
    silo = undefined;
    await client.getGrain(Clerk, 'x:y').send('deliver');
    expect(await inspector.mailboxQueues()).toEqual([
      { grain: 'Clerk/a b', ...queue('Clerk/a~20b') },
      { grain: 'Clerk/x:y', ...queue('Clerk/x~3Ay') },
    ]);
  });

  it('drops a grain whose failed messages were cleaned away', async () => {
    const failed = new Queue('{Clerk/a~20b}', { connection: { url: redis.url }, prefix: `${keyPrefix}:q`, skipMetasUpdate: true });
    try {
      expect(await failed.clean(0, 100, 'failed')).toHaveLength(1);
    } finally {
      await failed.close();
    }
    expect(await inspector.mailboxQueues()).toEqual([{ grain: 'Clerk/x:y', ...queue('Clerk/x~3Ay') }]);
  });
});
