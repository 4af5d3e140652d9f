// The dashboard in a real browser against the real server process: live updates without reload,
// a trustworthy sync status, command output that stays text, and screenshots of the main views.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, logIn, watchPageSockets } from './support/browser.js';
import { api } from './support/http.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { TEST_ADMIN_PASSWORD } from './support/test-server.js';

const SHOTS = join(process.cwd(), 'test-artifacts', 'screenshots');
const HOSTILE = 'before <img src=x onerror=window.__pwned=1> middle <script>window.__pwned=1</script> after';

let server: ServerProcess;
let dataDir: string;
let http: ReturnType<typeof api>;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'nixfleet-e2e-'));
  // Its hosts are made online over HTTP, with no agent: a long grace keeps the supervisor from
  // marking them offline mid-file (which would add changes the counts below do not expect).
  server = await spawnServer({ NIXFLEET_DATA_DIR: dataDir, NIXFLEET_SYNC_BEACON_INTERVAL: '2s', NIXFLEET_AGENT_MISSED_HEARTBEATS: '100' });
  http = api(server.url, server.token);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function openDashboard(viewport: { width: number; height: number }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('dialog', (dialog) => {
    errors.push(`unexpected dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  (page as Page & { errors: string[] }).errors = errors;
  await logIn(page, server.url, TEST_ADMIN_PASSWORD);
  await page.waitForSelector('[data-testid="sync-status"][data-status="live"]', { timeout: 10_000 });
  return page;
}

function ago(seconds: number): string {
  return new Date(Date.now() - seconds * 1000).toISOString();
}

describe('dashboard', () => {
  it('shows a host added through the API within a second, without reload', async () => {
    const page = await openDashboard({ width: 1280, height: 800 });
    const res = await http.post('/api/hosts', { hostname: 'live-1', status: 'online', last_seen: ago(1), agent_version: '1.2.3' });
    expect(res.status).toBe(201);
    const row = page.locator('tr[data-host-id="live-1"]');
    await row.waitFor({ timeout: 1000 });
    expect(await row.locator('[data-field="hostname"]').textContent()).toBe('live-1');
    expect(await row.locator('[data-field="status"]').textContent()).toBe('online');
    expect(await row.locator('[data-field="agent_version"]').textContent()).toBe('1.2.3');
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
    await page.close();
  });

  it('refuses an impersonating hostname in the add-host form with the shared rule, and adds a valid one', async () => {
    const page = await openDashboard({ width: 1280, height: 800 });
    const input = page.locator('form.add-host input[name="hostname"]');
    const requests: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/api/hosts')) requests.push(request.method());
    });
    await input.fill('live-1\u200B');
    await page.locator('form.add-host button[type="submit"]').click();
    expect(await input.evaluate((el: HTMLInputElement) => el.validationMessage)).toContain('RFC 1123');
    await input.fill('form-added');
    await page.locator('form.add-host button[type="submit"]').click();
    await page.locator('tr[data-host-id="form-added"]').waitFor({ timeout: 2000 });
    expect(requests).toEqual(['POST']);
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
    await page.close();
  });

  it('keeps its socket in the worker, negotiates permessage-deflate there and shows the whole (deflated) init', async () => {
    for (let i = 0; i < 30; i++) await http.post('/api/hosts', { hostname: `deflate-${i}`, status: 'online', last_seen: ago(1) });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const onPage = await watchPageSockets(page);
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]', { timeout: 10_000 });
    // No socket on the page's main thread: the one socket is in the dedicated worker.
    expect(onPage.created).toEqual([]);
    expect(page.workers()).toHaveLength(1);
    const sockets = await page.evaluate(() => {
      const { sockets } = (globalThis as any).__nixfleet;
      return { mode: sockets.mode, open: sockets.describe(), frames: sockets.stats.frames };
    });
    expect(sockets.mode).toBe('worker');
    // `extensions` is what the worker's own WebSocket reported: Chromium negotiated deflate.
    expect(sockets.open).toEqual([{ url: `${server.url.replace('http', 'ws')}/ws`, readyState: 1, extensions: expect.stringContaining('permessage-deflate') }]);
    expect(sockets.frames).toBeGreaterThanOrEqual(1);
    // The init (over 1 KiB, so it went out deflated: test/deflate.test.ts) was inflated and applied.
    for (let i = 0; i < 30; i++) await page.locator(`tr[data-host-id="deflate-${i}"]`).waitFor({ timeout: 2000 });
    await page.close();
  });

  it('falls back to a socket on the page when its worker cannot start, and stays live', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.route('**/assets/socket-worker.js', (route) => route.abort());
    const onPage = await watchPageSockets(page);
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]', { timeout: 10_000 });
    expect(await page.evaluate(() => (globalThis as any).__nixfleet.sockets.mode)).toBe('page');
    expect(onPage.created).toEqual([`${server.url.replace('http', 'ws')}/ws`]);
    expect(onPage.extensions[0]).toContain('permessage-deflate');
    expect(JSON.parse(onPage.framesReceived[0]!).type).toBe('init');
    await http.post('/api/hosts', { hostname: 'seen-without-worker', status: 'online', last_seen: ago(1) });
    await page.locator('tr[data-host-id="seen-without-worker"]').waitFor({ timeout: 2000 });
    await page.close();
  });

  it('shows the sync status as live at the server version and epoch', async () => {
    const page = await openDashboard({ width: 1280, height: 800 });
    await http.post('/api/events', { level: 'info', category: 'test', message: 'bump the version' });
    const health = (await http.get('/healthz')).body as { epoch: string; version: number };
    const status = page.getByTestId('sync-status');
    await page.waitForFunction((v) => document.querySelector('[data-testid="sync-status"]')?.getAttribute('data-version') === String(v), health.version, { timeout: 2000 });
    expect(await status.getAttribute('data-status')).toBe('live');
    expect(Number(await status.getAttribute('data-version'))).toBe(health.version);
    expect(await status.getAttribute('data-epoch')).toBe(health.epoch);
    expect(await status.textContent()).toContain(health.epoch.slice(0, 8));
    await page.close();
  });

  it('renders hostile command output as literal text, never as markup', async () => {
    const page = await openDashboard({ width: 1280, height: 800 });
    await http.addHost('xss-1', { status: 'online', last_seen: ago(2) });
    const started = await http.post('/api/commands', { host_id: 'xss-1', op: 'switch' });
    expect(started.status).toBe(201);
    const id = started.body.command.id as string;
    const chunks = ['\x1b[1;32mbuilding\x1b[0m\n', `${HOSTILE}\n`, 'link: \x1b]8;;javascript:window.__pwned=1\x07click\x1b]8;;\x07 done\n'];
    for (const output of chunks) expect((await http.post(`/api/commands/${id}/output`, { output })).status).toBe(200);

    const output = page.locator(`[data-command-id="${id}"] [data-field="output"]`);
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes('done'), `[data-command-id="${id}"] [data-field="output"]`, { timeout: 2000 });
    const text = await output.textContent();
    expect(text).toContain(HOSTILE);
    expect(text).toContain('link: click done');
    expect(text).not.toContain('\x1b');
    expect(await output.locator('img, script, a, iframe, svg').count()).toBe(0);
    expect(await output.locator('span.ansi-bold.ansi-fg-2').textContent()).toBe('building');
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    expect(await page.evaluate(() => document.querySelectorAll('a[href^="javascript:"]').length)).toBe(0);
    await page.close();
  });

  it('renders once per frame, coalescing deltas, and touches only the rows that changed', async () => {
    for (let i = 0; i < 20; i++) await http.addHost(`burst-${i}`, { status: 'online', last_seen: null });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // Counts frames with a rAF loop and records every DOM mutation with the frame it happened in
    // and the host row and cell it belongs to.
    await page.addInitScript(() => {
      type Probe = { frame: number; callbacks: number[]; mutations: Array<{ frame: number; row: string | null; field: string | null }>; changes: number[] };
      const probe: Probe = { frame: 0, callbacks: [], mutations: [], changes: [] };
      (globalThis as unknown as { __probe: Probe }).__probe = probe;
      const loop = () => {
        probe.frame++;
        requestAnimationFrame(loop);
      };
      requestAnimationFrame(loop);
      new MutationObserver((records) => {
        probe.callbacks.push(probe.frame);
        for (const r of records) {
          const el = (r.target.nodeType === 1 ? r.target : r.target.parentElement) as Element | null;
          probe.mutations.push({ frame: probe.frame, row: el?.closest('tr[data-host-id]')?.getAttribute('data-host-id') ?? null, field: el?.closest('[data-field]')?.getAttribute('data-field') ?? null });
        }
      }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]');
    await page.waitForSelector('tr[data-host-id="burst-19"]');
    const reset = () =>
      page.evaluate(() => {
        const probe = (globalThis as any).__probe;
        probe.callbacks = [];
        probe.mutations = [];
        probe.changes = [];
      });
    await page.evaluate(() => (globalThis as any).__nixfleet.sync.on('change', () => (globalThis as any).__probe.changes.push((globalThis as any).__probe.frame)));

    // A burst of 200 deltas, 20 requests in flight.
    await reset();
    const queue = Array.from({ length: 200 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) await http.patch(`/api/hosts/burst-${i % 20}`, { metrics: { cpu: i % 100, ram: 50, swap: 0, load: i / 10 } });
      }),
    );
    await page.waitForTimeout(300);
    const burst = await page.evaluate(() => {
      const probe = (globalThis as any).__probe;
      const perFrame = new Map<number, number>();
      for (const f of probe.callbacks) perFrame.set(f, (perFrame.get(f) ?? 0) + 1);
      return { changes: probe.changes.length, renderFrames: perFrame.size, maxPassesPerFrame: Math.max(...perFrame.values()) };
    });
    expect(burst.changes).toBe(200);
    expect(burst.maxPassesPerFrame).toBe(1); // every frame's DOM work lands in one pass
    expect(burst.renderFrames).toBeLessThan(burst.changes); // deltas were coalesced
    expect(await page.locator('tr[data-host-id="burst-19"] [data-field="metrics"]').textContent()).toContain('99%');

    // One host changes: only its row is touched (ticking status/last-seen cells aside).
    await reset();
    await http.patch('/api/hosts/burst-7', { agent_version: '2.0.0' });
    await page.waitForFunction(() => document.querySelector('tr[data-host-id="burst-7"] [data-field="agent_version"]')?.textContent === '2.0.0');
    await page.waitForTimeout(100);
    const touched = await page.evaluate(() => (globalThis as any).__probe.mutations.filter((m: any) => m.row !== null && m.field !== 'last_seen' && m.field !== 'status'));
    expect(new Set(touched.map((m: { row: string }) => m.row))).toEqual(new Set(['burst-7']));

    // A full_state at the same epoch is a diff: no row is rebuilt.
    await reset();
    const before = await page.evaluate(() => (globalThis as any).__nixfleet.sync.stats.snapshotsApplied);
    await page.evaluate(() => (globalThis as any).__nixfleet.sync.resync());
    await page.waitForFunction((n) => (globalThis as any).__nixfleet.sync.stats.snapshotsApplied > n, before);
    await page.waitForTimeout(100);
    const rebuilt = await page.evaluate(() => (globalThis as any).__probe.mutations.filter((m: any) => m.row !== null && m.field !== 'last_seen' && m.field !== 'status'));
    expect(rebuilt).toEqual([]);
    await page.close();
    for (let i = 0; i < 20; i++) expect((await http.delete(`/api/hosts/burst-${i}`)).status).toBe(200);
  });

  it('saves screenshots of the main views (desktop and phone)', async () => {
    await populate();
    for (const [name, viewport] of [
      ['desktop', { width: 1280, height: 800 }],
      ['phone', { width: 390, height: 844 }],
    ] as const) {
      const page = await openDashboard(viewport);
      await page.waitForSelector('[data-pipeline-id]');
      await page.waitForSelector('[data-event-id]');
      await page.screenshot({ path: join(SHOTS, `dashboard-${name}.png`) });
      await page.screenshot({ path: join(SHOTS, `dashboard-${name}-full.png`), fullPage: true });
      for (const panel of ['hosts', 'commands', 'pipelines', 'events']) {
        await page.locator(`.panel-${panel}`).screenshot({ path: join(SHOTS, `${panel}-${name}.png`) });
      }
      expect((page as Page & { errors: string[] }).errors).toEqual([]);
      await page.close();
    }
  });
});

async function populate(): Promise<void> {
  const compartment = (status: string, message: string) => ({ status, message, checked_at: ago(60) });
  await http.addHost('web-1', {
    status: 'online',
    last_seen: ago(1),
    agent_version: '0.9.4',
    generation: '/nix/store/0m3sxyz1kq2w8c9v4b7n6a5d3f2g1h0j-nixos-system-web-1',
    metrics: { cpu: 23, ram: 61, swap: 3, load: 0.82 },
    compartments: { git: compartment('ok', 'up to date'), lock: compartment('ok', ''), system: compartment('ok', ''), tests: compartment('ok', '42 passed') },
  });
  await http.addHost('db-1', {
    status: 'online',
    last_seen: ago(40),
    agent_version: '0.9.3',
    generation: '117',
    metrics: { cpu: 96, ram: 93, swap: 41, load: 12.5 },
    compartments: { lock: compartment('outdated', 'nixpkgs is 9 days old'), system: compartment('error', 'activation failed') },
  });
  await http.addHost('mac-1', { host_type: 'macos', status: 'offline', last_seen: ago(7200) });
  const cmd = (await http.post('/api/commands', { host_id: 'web-1', op: 'pull-switch' })).body.command.id as string;
  await http.post(`/api/commands/${cmd}/output`, { output: '\x1b[1mbuilding the system configuration...\x1b[0m\n\x1b[33mwarning:\x1b[0m Git tree is dirty\nactivating...\n' });
  const done = (await http.post('/api/commands', { host_id: 'db-1', op: 'test' })).body.command.id as string;
  await http.post(`/api/commands/${done}/output`, { output: '\x1b[31m3 tests failed\x1b[0m\n' });
  await http.post(`/api/commands/${done}/finish`, { status: 'error', exit_code: 1 });
  // The server runs it: web-1 waits for its command, db-1 starts its pull, mac-1 (offline) is dropped.
  await http.post('/api/pipelines', { name: 'weekly update', hosts: ['web-1', 'db-1', 'mac-1'], stages: ['pull', 'switch', 'test'] });
  await http.post('/api/events', { level: 'warning', category: 'check', message: 'flake.lock on db-1 is 9 days old', host_id: 'db-1' });
  await http.post('/api/events', { level: 'error', category: 'command', message: 'test on db-1 failed (exit 1)', host_id: 'db-1' });
  await http.post('/api/events', { level: 'success', category: 'host', message: 'web-1 registered', host_id: 'web-1', actor: 'admin' });
}
