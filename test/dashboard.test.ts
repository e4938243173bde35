import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, startDashboard, type Dashboard, type GrainClient } from 'redgrain';
import { TestCluster } from 'redgrain/testing';
import { Campaign } from '../grains/campaign.ts';
import { Account } from '../grains/account.ts';
import { Probe, probeKey } from './grains/probe.ts';
import { launchBrowser, type TestBrowser } from './support/browser.ts';
import { freshPrefix } from './support/prefix.ts';
import { rawRedis } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';

/** Screenshots of each page, for people to look at (bench/results is not committed). */
const SHOTS = 'bench/results';
/** Heartbeats every 200 ms; declared dead after 5 s of silence, so a suspect silo shows for seconds. */
const DETECTION = { REDGRAIN_HEARTBEAT_INTERVAL_MS: '200', REDGRAIN_MISSED_HEARTBEATS_LIMIT: '25' };

/** GET `path` from the dashboard with these headers: status and body. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** POST `url` with these headers: status and body. */
function post(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `redgrain dashboard` in a real browser against three silo processes. */
describe('the dashboard in a browser', () => {
  let cluster: TestCluster;
  let client: GrainClient;
  let dashboard: Dashboard;
  let browser: TestBrowser;
  let page: Page;
  const redis = rawRedis();

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    cluster = await TestCluster.start({
      grains: ['test/grains/probe.ts', 'grains/campaign.ts', 'grains/review-queue.ts', 'grains/account.ts'],
      silos: 3,
      redisUrl: inject('redisUrl'),
      keyPrefix: freshPrefix('dash'),
      env: { ...DETECTION, REDGRAIN_MAX_MESSAGE_ATTEMPTS: '1' },
    });
    client = await cluster.connect();
    dashboard = await startDashboard({
      redis: inject('redisUrl'),
      keyPrefix: cluster.keyPrefix,
      port: 0,
      sampleMs: 500,
      jaegerUrl: 'http://127.0.0.1:16686/',
    });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  afterAll(async () => {
    redis.disconnect();
    await browser?.close();
    await dashboard?.close();
    await cluster?.stop();
  });

  it('lists the running silos with their activations, and charts the messages they process', async () => {
    for (let i = 0; i < 20; i++) await client.getGrain(Probe, `p${i % 4}`).send('hit', 'dash', i);
    expect(await client.getGrain(Probe, 'p3').ask('count')).toBe(5);
    await page.goto(dashboard.url);
    const ids = cluster.silos.map((silo) => silo.id).sort();
    const siloRows = page.locator('#silos tbody tr');
    /** Each listed silo's id and status, sorted by id. */
    const listed = async () =>
      (
        await siloRows.evaluateAll((rows) =>
          rows.map((row) => [row.getAttribute('data-silo') ?? '', row.querySelector('.status')?.textContent ?? '']),
        )
      ).sort(([a], [b]) => (a ?? '').localeCompare(b ?? ''));
    await expect.poll(listed, { timeout: 15_000 }).toEqual(ids.map((id) => [id, 'active']));
    // The Probe grains' activations, per type, from the silos' own heartbeats.
    const probeActivations = async () =>
      (await page.locator('#silos tbody tr td:nth-child(7)').allTextContents())
        .flatMap((text) => [...text.matchAll(/Probe (\d+)/g)].map((m) => Number(m[1])))
        .reduce((a, b) => a + b, 0);
    await expect.poll(probeActivations, { timeout: 15_000 }).toBe(4);
    // Load for a few seconds: the chart of messages/s shows it, and the silos count every turn.
    let sent = 0;
    const until = Date.now() + 3_000;
    while (Date.now() < until) await client.getGrain(Probe, `p${sent % 4}`).send('hit', 'load', sent++);
    expect(await client.getGrain(Probe, 'p0').ask('count')).toBe(5 + Math.ceil(sent / 4));
    const processed = async () =>
      (await page.locator('#silos tbody tr td:nth-child(8)').allTextContents()).reduce((sum, text) => sum + Number(text), 0);
    // 20 hits, the first count, the load and the last count.
    await expect.poll(processed, { timeout: 15_000 }).toBe(20 + 1 + sent + 1);
    // The page charts a sample with messages in it (Chart.js holds what it drew).
    await page.waitForFunction("Chart.getChart('chart-rate')?.data.datasets[0].data.some((rate) => rate > 0)", undefined, {
      timeout: 15_000,
    });
    // Chart.js drew the four charts.
    expect(
      await page.locator('.charts canvas').evaluateAll((canvases) => canvases.map((c) => Number(c.getAttribute('width')) > 0)),
    ).toEqual([true, true, true, true]);
    await page.screenshot({ path: `${SHOTS}/dashboard-cluster.png`, fullPage: true });
  });

  it("shows a state-machine grain's page: owner, its state on the machine, the transition history", async () => {
    const campaign = client.getGrain(Campaign, 'spring sale');
    expect(await campaign.ask('create', { name: 'Spring sale', budget: 500, actor: 'ann' })).toBe('PENDING');
    await waitFor('the campaign to wait for review', async () =>
      (await campaign.ask('get')).status === 'WAITING_REVIEW' ? true : undefined,
    );
    await page.goto(`${dashboard.url}#/grains`);
    await page.fill('input[name=type]', 'Campaign');
    await page.fill('input[name=key]', 'spring sale');
    await page.click('#grain-search button');
    await expect.poll(() => page.locator('#grain-title').textContent()).toBe('Campaign/spring sale');
    const current = page.locator('.machine-state.current');
    await current.waitFor({ timeout: 10_000 });
    expect(await current.getAttribute('data-state')).toBe('WAITING_REVIEW');
    // Every state of the machine is drawn, as declared, not only those the grain went through; with the messages that leave it.
    const drawn = await page
      .locator('.machine-state')
      .evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-state'), n.querySelector('ul')?.textContent ?? '']));
    expect(drawn).toEqual([
      ['EMPTY', 'create → PENDING'],
      ['PENDING', 'created → WAITING_REVIEWcancel → CANCELLED'],
      ['WAITING_REVIEW', 'review → APPROVED | REJECTEDcancel → CANCELLEDreviewDeadlinePassed → CANCELLED'],
      ['APPROVED', ''],
      ['REJECTED', ''],
      ['CANCELLED', ''],
    ]);
    const history = await page
      .locator('#grain-history tr')
      .evaluateAll((trs) => trs.slice(1).map((tr) => [...tr.children].slice(1, 5).map((td) => td.textContent)));
    expect(history).toEqual([
      ['EMPTY', 'PENDING', 'create', 'ann'],
      ['PENDING', 'WAITING_REVIEW', 'created', 'system'],
    ]);
    const state = JSON.parse((await page.textContent('#grain-state')) ?? '{}') as { name?: string; budget?: number };
    expect([state.name, state.budget]).toEqual(['Spring sale', 500]);
    expect(await page.textContent('#grain-reminders tbody')).toContain('reviewDeadlinePassed');
    const owner = await redis.hget(`${cluster.keyPrefix}:g:{Campaign/spring~20sale}:dir`, 'silo');
    expect(await page.textContent('#grain-facts')).toContain(`${owner} (active)`);
    const traces = await page.locator('#grain-traces').getAttribute('href');
    expect(traces).toBe(
      `http://127.0.0.1:16686/search?service=redgrain-silo&tags=${encodeURIComponent(JSON.stringify({ 'redgrain.grain.type': 'Campaign', 'redgrain.grain.key': 'spring sale' }))}`,
    );
    await page.screenshot({ path: `${SHOTS}/dashboard-grain.png` });
  });

  it("shows an event-sourced grain's latest events", async () => {
    const account = client.getGrain(Account, 'ann');
    await account.ask('deposit', 100);
    expect(await account.ask('withdraw', 30)).toBe(70);
    await page.goto(`${dashboard.url}#/grain/Account/ann`);
    await page.locator('#grain-events-section:not([hidden])').waitFor();
    const rows = await page
      .locator('#grain-events tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.children].slice(0, 3).map((td) => td.textContent)));
    expect(rows).toEqual([
      ['2', 'Withdrawn', '{"type":"Withdrawn","amount":30}'],
      ['1', 'Deposited', '{"type":"Deposited","amount":100}'],
    ]);
  });

  it('shows a killed silo as suspect, then dead', async () => {
    await page.goto(`${dashboard.url}#/cluster`);
    const victim = cluster.silos[2];
    if (victim === undefined) throw new Error('no third silo');
    await page.locator(`#silos tr[data-silo="${victim.id}"] .status-active`).waitFor();
    victim.signal('SIGKILL');
    await victim.exited;
    const seen: string[] = [];
    await waitFor(
      'the killed silo to show as dead',
      async () => {
        const cell = page.locator(`#silos tr[data-silo="${victim.id}"] .status`);
        const status = (await cell.count()) === 0 ? 'missing' : ((await cell.textContent()) ?? '');
        if (seen.at(-1) !== status) seen.push(status);
        return status === 'dead' ? true : undefined;
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
    expect(seen.filter((s) => s !== 'active')).toEqual(['suspect', 'dead']);
    await page.screenshot({ path: `${SHOTS}/dashboard-dead-silo.png`, fullPage: true });
  });

  it('redrives a dead letter after confirmation, and its message runs', async () => {
    const probe = client.getGrain(Probe, 'poisoned');
    await probe.send('crash');
    const [letter] = await waitFor(
      'the poison message to be dead-lettered',
      async () => {
        const letters = await client.deadLetters.list();
        return letters.length > 0 ? letters : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(letter).toMatchObject({ grainType: 'Probe', grainKey: 'poisoned', method: 'crash' });
    await page.goto(`${dashboard.url}#/deadletters`);
    const row = page.locator(`#deadletters tr[data-id="${letter?.id}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('killed or hung the activation');
    await page.screenshot({ path: `${SHOTS}/dashboard-dead-letters.png`, fullPage: true });

    // The fix is deployed; the operator redrives it. Declining the dialog changes nothing.
    await redis.set(probeKey(cluster.keyPrefix, 'fixed'), '1');
    page.once('dialog', (dialog) => void dialog.dismiss());
    await page.click(`#deadletters tr[data-id="${letter?.id}"] button[data-action=redrive]`);
    expect((await client.deadLetters.list()).map((l) => l.id)).toEqual([letter?.id]);
    page.once('dialog', (dialog) => void dialog.accept());
    await page.click(`#deadletters tr[data-id="${letter?.id}"] button[data-action=redrive]`);
    await row.waitFor({ state: 'detached' });
    expect(await client.deadLetters.list()).toEqual([]);
    expect(await probe.ask('count')).toBe(0);
    expect(await redis.lrange(probeKey(cluster.keyPrefix, 'runs'), 0, -1)).toContain('poisoned|crash|fixed');
  });
});

describe('the dashboard beyond loopback', () => {
  it('refuses to bind another address without a token, and checks the token on every request', async () => {
    await expect(startDashboard({ redis: inject('redisUrl'), host: '0.0.0.0', port: 0 })).rejects.toThrow('give a token');
    // Bound to loopback here (the test never listens beyond it), but with a token: every request needs it.
    const dashboard = await startDashboard({ redis: inject('redisUrl'), keyPrefix: freshPrefix('dash-token'), port: 0, token: 's3cret' });
    try {
      expect((await get(`${dashboard.url}api/overview`)).status).toBe(401);
      expect((await get(dashboard.url)).status).toBe(401);
      expect((await get(`${dashboard.url}api/overview`, { authorization: 'Bearer wrong' })).status).toBe(401);
      const ok = await get(`${dashboard.url}api/overview`, { authorization: 'Bearer s3cret' });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body)).toMatchObject({ silos: [] });
      expect((await get(`${dashboard.url}?token=s3cret`)).status).toBe(200);
    } finally {
      await dashboard.close();
    }
  });

  it('read-only: hides and refuses redrive and discard', async () => {
    const dashboard = await startDashboard({ redis: inject('redisUrl'), keyPrefix: freshPrefix('dash-ro'), port: 0, readOnly: true });
    try {
      expect(await post(`${dashboard.url}api/deadletters/1-0/discard`, { 'x-redgrain-dashboard': '1' })).toEqual({
        status: 403,
        body: '{"error":"the dashboard is read-only"}',
      });
      expect(JSON.parse((await get(`${dashboard.url}api/deadletters`)).body)).toEqual({ deadLetters: [], readOnly: true });
    } finally {
      await dashboard.close();
    }
  });

  it('refuses changes from other pages and requests under another host name (CSRF, DNS rebinding)', async () => {
    const keyPrefix = freshPrefix('dash-csrf');
    const dashboard = await startDashboard({ redis: inject('redisUrl'), keyPrefix, port: 0 });
    const client = await connect({ redis: inject('redisUrl'), keyPrefix });
    try {
      const letters = `${keyPrefix}:deadletters`;
      const redis = rawRedis();
      const id = await redis.xadd(
        letters,
        '*',
        'grain',
        'Probe/x',
        'method',
        'crash',
        'reason',
        'test',
        'attempts',
        '1',
        'silo',
        's',
        'message',
        'null',
      );
      redis.disconnect();
      const discard = `${dashboard.url}api/deadletters/${id}/discard`;
      const fromPage = { status: 403, body: '{"error":"changes are accepted from the dashboard page only"}' };
      // A form or a no-cors fetch from another page: no header, or another Origin.
      expect(await post(discard)).toEqual(fromPage);
      expect(await post(discard, { 'x-redgrain-dashboard': '1', origin: 'http://evil.example' })).toEqual(fromPage);
      const host = new URL(dashboard.url).host;
      expect((await get(`${dashboard.url}api/overview`, { host: `evil.example:${new URL(dashboard.url).port}` })).status).toBe(403);
      expect(await client.deadLetters.list()).toHaveLength(1);
      // The page itself: its header and its own origin.
      expect(await post(discard, { 'x-redgrain-dashboard': '1', origin: `http://${host}` })).toEqual({ status: 200, body: '{"ok":true}' });
      expect(await client.deadLetters.list()).toEqual([]);
      // Gone already: 404; a malformed id: 400 (not a server error).
      expect(await post(discard, { 'x-redgrain-dashboard': '1', origin: `http://${host}` })).toEqual({
        status: 404,
        body: '{"error":"no such dead letter (redriven or discarded already)"}',
      });
      const malformed = await post(`${dashboard.url}api/deadletters/not-an-id/redrive`, {
        'x-redgrain-dashboard': '1',
        origin: `http://${host}`,
      });
      expect(malformed.status).toBe(400);
      expect(malformed.body).toMatch(/^\{"error":"InvalidOptionError: /);
      // Every answer forbids framing.
      const page = await new Promise<string | undefined>((resolve, reject) => {
        request(dashboard.url, (res) => {
          res.resume();
          resolve(String(res.headers['x-frame-options']));
        })
          .on('error', reject)
          .end();
      });
      expect(page).toBe('DENY');
    } finally {
      await client.close();
      await dashboard.close();
    }
  });
});
