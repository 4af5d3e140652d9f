// Launches Debian's Chromium through playwright-core (browser downloads are impossible here).
import { existsSync, rmSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { spawnServer, type ServerProcess } from './server-process.js';
import { tempDir } from './test-server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium" (.ci/run does) or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Logs `page` in through the real login form, as a user would, and waits for the dashboard. */
export async function logIn(page: import('playwright-core').Page, baseUrl: string, password: string, username = 'admin'): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(`${baseUrl}/`), page.click('button[type="submit"]')]);
}

/** What Chromium's network layer saw of the page's own WebSockets (not its workers'). */
export interface PageSockets {
  /** URLs of the WebSockets the page's main thread created. */
  created: string[];
  /** `Sec-WebSocket-Extensions` of each handshake response. */
  extensions: string[];
  /** Payloads of received frames, in order. */
  framesReceived: string[];
}

/**
 * Watches the page's WebSockets through the DevTools protocol's Network domain. Call before the
 * page navigates. (Sockets in dedicated workers are not seen: attaching to a worker races with
 * Playwright's own attach, which resumes it, so its first events can be missed.)
 */
export async function watchPageSockets(page: import('playwright-core').Page): Promise<PageSockets> {
  const seen: PageSockets = { created: [], extensions: [], framesReceived: [] };
  const cdp = await page.context().newCDPSession(page);
  cdp.on('Network.webSocketCreated', (event) => seen.created.push(event.url));
  cdp.on('Network.webSocketHandshakeResponseReceived', (event) => {
    const headers = event.response.headers as Record<string, string>;
    seen.extensions.push(Object.entries(headers).find(([name]) => name.toLowerCase() === 'sec-websocket-extensions')?.[1] ?? '');
  });
  cdp.on('Network.webSocketFrameReceived', (event) => seen.framesReceived.push(event.response.payloadData));
  await cdp.send('Network.enable');
  return seen;
}

/**
 * Chromium and a server process on a fresh data directory for the tests of one file: started
 * before them (then `seed` runs), stopped and removed after. Read `.browser` and `.server` in tests.
 */
export function browserAndServer(seed?: (server: ServerProcess) => Promise<void>) {
  const fixture = {} as { browser: Browser; server: ServerProcess };
  let dataDir = '';
  beforeAll(async () => {
    fixture.browser = await launchBrowser();
    dataDir = tempDir();
    fixture.server = await spawnServer({ NIXFLEET_DATA_DIR: dataDir });
    await seed?.(fixture.server);
  });
  afterAll(async () => {
    await fixture.browser?.close();
    await fixture.server?.kill('SIGKILL');
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return fixture;
}
