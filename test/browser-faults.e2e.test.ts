// The dashboard in a real Chromium against a real server process, under the faults the
// protocol promises to survive: a delta lost in transit, server restarts (same and wiped
// store), a hidden tab that missed changes, the network going offline. Each test asserts what
// the user sees: rows in the hosts table and the sync indicator's status and version.
import { rmSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { launchBrowser, logIn } from './support/browser.js';
import { api } from './support/http.js';
import { freePort } from './support/ports.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { tempDir, TEST_ADMIN_PASSWORD } from './support/test-server.js';
import { WsFaultProxy } from './support/ws-fault-proxy.js';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

const defer = cleanupAfterEach();

interface Fleet {
  server: ServerProcess;
  dataDir: string;
  port: number;
  /** Where a fault proxy in front of it listens: the server allows that origin, as it would a reverse proxy's. */
  proxyPort: number;
  beaconMs: number;
  restart(options?: { wipe?: boolean }): Promise<void>;
}

async function startFleet(beaconMs: number): Promise<Fleet> {
  const dataDir = tempDir();
  const port = await freePort();
  const proxyPort = await freePort();
  const env = () => ({ NIXFLEET_DATA_DIR: dataDir, NIXFLEET_LISTEN: `127.0.0.1:${port}`, NIXFLEET_SYNC_BEACON_INTERVAL: `${beaconMs}ms`, NIXFLEET_ALLOWED_ORIGINS: `http://127.0.0.1:${proxyPort}` });
  const fleet: Fleet = {
    server: await spawnServer(env()),
    dataDir,
    port,
    proxyPort,
    beaconMs,
    async restart({ wipe = false } = {}) {
      expect(await fleet.server.kill('SIGTERM')).toBe(0);
      if (wipe) rmSync(dataDir, { recursive: true, force: true });
      fleet.server = await spawnServer(env());
    },
  };
  defer(async () => {
    await fleet.server.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  return fleet;
}

/** A WebSocket fault proxy in front of the fleet's server: a page loaded through it has its socket cut, dropped or stalled there. */
async function proxyFor(fleet: Fleet): Promise<WsFaultProxy> {
  const proxy = await WsFaultProxy.start(`ws://127.0.0.1:${fleet.port}/ws`, fleet.proxyPort);
  defer(() => proxy.close());
  return proxy;
}

/** The dashboard, logged in and live, loaded from the server or through `via`. */
async function openDashboard(fleet: Fleet, via?: WsFaultProxy): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  defer(() => context.close());
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await logIn(page, via?.httpUrl ?? fleet.server.url, TEST_ADMIN_PASSWORD);
  await page.waitForSelector('[data-testid="sync-status"][data-status="live"]', { timeout: 5000 });
  // The socket lives in a dedicated worker (WorkerSockets), not on the page.
  expect(await page.evaluate(() => (window as any).__nixfleet.sockets.mode)).toBe('worker');
  return page;
}

/** What the page shows: sync status, version, epoch and the host rows in order. */
function shown(page: Page) {
  return page.evaluate(() => {
    const status = document.querySelector('[data-testid="sync-status"]');
    return {
      status: status?.getAttribute('data-status'),
      version: Number(status?.getAttribute('data-version')),
      epoch: status?.getAttribute('data-epoch'),
      hosts: [...document.querySelectorAll('tr[data-host-id]')].map((row) => row.getAttribute('data-host-id')),
    };
  });
}

/** The page shows the server's epoch, version and hosts, and its state deep-equals /api/state. */
async function pageMatchesServer(page: Page, fleet: Fleet, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    const state = (await api(fleet.server.url, fleet.server.token).get('/api/state')).body;
    const view = await shown(page);
    const pageState = await page.evaluate(() => {
      const s = (window as any).__nixfleet.sync.state;
      return JSON.stringify({ hosts: [...s.hosts.values()], commands: [...s.commands.values()], pipelines: [...s.pipelines.values()], events: s.events, limits: s.limits });
    });
    const matches =
      view.status === 'live' &&
      view.version === state.version &&
      view.epoch === state.epoch &&
      JSON.stringify(view.hosts.slice().sort()) === JSON.stringify(state.payload.hosts.map((h: { id: string }) => h.id).sort()) &&
      pageState === JSON.stringify(state.payload);
    if (matches) return Date.now() - started;
    if (Date.now() > deadline) {
      expect({ view, pageState: JSON.parse(pageState) }).toEqual({ view: { status: 'live', version: state.version, epoch: state.epoch, hosts: state.payload.hosts.map((h: { id: string }) => h.id) }, pageState: state.payload });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('dashboard under faults', () => {
  it('shows a change made through the API within 1 s, without reload', async () => {
    const fleet = await startFleet(30_000);
    const page = await openDashboard(fleet);
    let navigations = 0;
    page.on('framenavigated', () => navigations++);
    const started = Date.now();
    await api(fleet.server.url, fleet.server.token).addHost('appears-live');
    await page.waitForSelector('tr[data-host-id="appears-live"]', { timeout: 1000 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(navigations).toBe(0);
    await pageMatchesServer(page, fleet, 1000);
  });

  it('heals one delta dropped in transit within one beacon interval', async () => {
    const fleet = await startFleet(1000);
    const proxy = await proxyFor(fleet);
    const page = await openDashboard(fleet, proxy);
    await api(fleet.server.url, fleet.server.token).addHost('seen');
    await pageMatchesServer(page, fleet, 2000);
    proxy.dropNext('delta');
    await api(fleet.server.url, fleet.server.token).addHost('lost-in-transit');
    const healedAfter = await pageMatchesServer(page, fleet, fleet.beaconMs + 1000);
    expect(proxy.stats.dropped).toBe(1);
    expect(healedAfter).toBeLessThanOrEqual(fleet.beaconMs + 500);
    const stats = await page.evaluate(() => (window as any).__nixfleet.sync.stats);
    expect(stats.resyncs.drift).toBe(1);
  });

  it('recovers by itself from a server restart and shows what changed while it was down', async () => {
    const fleet = await startFleet(1000);
    await api(fleet.server.url, fleet.server.token).addHost('before');
    const page = await openDashboard(fleet);
    const epoch = (await shown(page)).epoch;
    await fleet.server.kill('SIGTERM');
    await page.waitForSelector('[data-testid="sync-status"][data-status="offline"]', { timeout: 3000 });
    // Changes made while the dashboard cannot see the server: through a second server process
    // on the same data, stopped again before the real restart.
    const { spawnServer: spawn } = await import('./support/server-process.js');
    const side = await spawn({ NIXFLEET_DATA_DIR: fleet.dataDir, NIXFLEET_LISTEN: '127.0.0.1:0' });
    await api(side.url, side.token).addHost('while-down');
    expect(await side.kill('SIGTERM')).toBe(0);
    fleet.server = await spawnServer({ NIXFLEET_DATA_DIR: fleet.dataDir, NIXFLEET_LISTEN: `127.0.0.1:${fleet.port}`, NIXFLEET_SYNC_BEACON_INTERVAL: '1000ms' });
    await pageMatchesServer(page, fleet, 10_000);
    const view = await shown(page);
    expect(view.epoch).toBe(epoch);
    expect(view.hosts).toEqual(['before', 'while-down']);
  });

  it('drops the old state on a wiped store (new epoch) and shows the new one after logging in again', async () => {
    const fleet = await startFleet(1000);
    for (const name of ['old-1', 'old-2']) await api(fleet.server.url, fleet.server.token).addHost(name);
    const page = await openDashboard(fleet);
    const before = await shown(page);
    await fleet.restart({ wipe: true });
    await api(fleet.server.url, fleet.server.token).addHost('new-1');
    // The wiped store forgot the session too: the page notices and asks for a login.
    await page.waitForURL(`${fleet.server.url}/login`, { timeout: 15_000 });
    await logIn(page, fleet.server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]', { timeout: 5000 });
    await pageMatchesServer(page, fleet, 10_000);
    const after = await shown(page);
    expect(after.epoch).not.toBe(before.epoch);
    expect(after.hosts).toEqual(['new-1']);
  });

  it('is current again right after a hidden tab that missed changes becomes visible', async () => {
    // A beacon far longer than the test: only the visibility check can heal it.
    const fleet = await startFleet(60_000);
    const proxy = await proxyFor(fleet);
    const page = await openDashboard(fleet, proxy);
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    proxy.stall(); // what a frozen tab misses: nothing reaches it
    await api(fleet.server.url, fleet.server.token).addHost('missed-while-hidden');
    await new Promise((resolve) => setTimeout(resolve, 300)); // long enough to have shown it, were the link up
    expect((await shown(page)).hosts).not.toContain('missed-while-hidden');
    proxy.resume();
    // Pretend the tab was hidden for longer than a beacon interval.
    await page.evaluate(() => {
      const sync = (window as any).__nixfleet.sync;
      const realNow = Date.now;
      (sync as any).options.now = () => realNow() + 120_000;
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const healedAfter = await pageMatchesServer(page, fleet, 2000);
    expect(healedAfter).toBeLessThan(1000);
    expect((await page.evaluate(() => (window as any).__nixfleet.sync.stats)).resyncs.visibility).toBe(1);
  });

  it('recovers at once when the network comes back after an outage', async () => {
    // Backoff up to 30 s by default: only the `online` trigger can explain a quick recovery.
    const fleet = await startFleet(60_000);
    const proxy = await proxyFor(fleet);
    const page = await openDashboard(fleet, proxy);
    await page.evaluate(() => {
      const w = window as any;
      w.__statuses = [];
      w.__nixfleet.sync.on('status', (event: { status: string; reason: string }) => w.__statuses.push(`${event.status} ${event.reason}`));
    });
    // The outage: the browser goes offline, the link is cut and new connections are refused.
    proxy.setRefusing(true);
    await page.context().setOffline(true);
    proxy.resetAll();
    await page.waitForSelector('[data-testid="sync-status"][data-status="offline"]', { timeout: 3000 });
    await api(fleet.server.url, fleet.server.token).addHost('during-outage');
    // Let failed attempts push the backoff up, then bring the network back.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    proxy.setRefusing(false);
    await page.context().setOffline(false);
    const healedAfter = await pageMatchesServer(page, fleet, 5000);
    expect(healedAfter).toBeLessThan(1500);
    expect((await shown(page)).hosts).toContain('during-outage');
    // It was the `online` event that cut the backoff short.
    expect(await page.evaluate(() => (window as any).__statuses)).toContain('connecting online');
  });

  it('stays live through frame and change types of a newer server, and shows a new status value as it is', async () => {
    const fleet = await startFleet(30_000);
    const proxy = await proxyFor(fleet);
    const page = await openDashboard(fleet, proxy);
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    const http = api(fleet.server.url, fleet.server.token);
    await http.addHost('web-1');
    await pageMatchesServer(page, fleet, 2000);
    let navigations = 0;
    page.on('framenavigated', () => navigations++);

    // A frame type the page does not know, in the middle of the stream.
    proxy.inject('{"type":"presence","users":["alice","bob"]}');
    // A change type it does not know, at a real version: healed by one full state on the same socket.
    proxy.rewriteNext('delta', (frame) => ({ ...frame, payload: { type: 'host_presence', id: frame.payload.host.id } }));
    await http.addHost('web-2');
    await http.addHost('web-3');
    await pageMatchesServer(page, fleet, 3000);
    const stats = await page.evaluate(() => (window as any).__nixfleet.sync.stats);
    expect(stats).toMatchObject({ unknownFrames: 1, unknownChanges: 1, reconnects: 0, resyncs: expect.objectContaining({ unknown_change: 1 }) });

    // A value of a known field the page has never heard of is shown, not rejected.
    proxy.rewriteNext('delta', (frame) => ({ ...frame, payload: { ...frame.payload, fields: { ...frame.payload.fields, status: 'maintenance' } } }));
    await http.patch('/api/hosts/web-1', { status: 'offline' });
    await page.waitForSelector('tr[data-host-id="web-1"] [data-field="status"][data-status="maintenance"]', { timeout: 2000 });
    expect(await page.locator('tr[data-host-id="web-1"] [data-field="status"]').textContent()).toBe('maintenance');
    await http.patch('/api/hosts/web-1', { status: 'online', last_seen: new Date().toISOString() });
    await pageMatchesServer(page, fleet, 2000);

    expect(problems).toEqual([]);
    expect(navigations).toBe(0);
    expect((await shown(page)).status).toBe('live');
  });
});
