import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium package; `.ci/run` installs it when it is missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** A headless Chromium for tests that drive a web page, with its own fresh profile. */
export interface TestBrowser {
  /** Open pages with `context.newPage()`. */
  context: BrowserContext;
  /** Closes the browser (by its own process handle) and deletes its profile. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium. `--no-sandbox` because tests run as root; the `--disable-*` flags
 * stop the background connections (updates, sync, QUIC probes) a closed network refuses; a
 * fresh `--user-data-dir` keeps runs from sharing a profile.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'redgrain-chromium-'));
  try {
    // launchPersistentContext is how Playwright takes a user data dir (a --user-data-dir arg is refused).
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    return {
      context,
      async close() {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}
