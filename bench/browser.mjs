// Browser benchmark: Chromium with the real dashboard on a fleet of H hosts while the server applies
// R heartbeat deltas/s for S seconds. Reports animation-frame intervals (p50/p95/max), long tasks,
// main-thread time, and whether the rendered version keeps up; once with the socket in its
// dedicated worker (as shipped) and once on the page (the worker script blocked, so the dashboard
// falls back), side by side. Run after `npm run build`:
//   node bench/browser.mjs [--hosts 1000] [--rate 5000] [--seconds 10] [--socket worker,page]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../dist/server/server.js';
import { heartbeat, seedHosts } from './lib/fleet.mjs';
import { percentile, round, sleep, until, withTempDir } from './lib/stats.mjs';

const PASSWORD = 'correct horse battery staple';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const shownVersion = (page) => page.evaluate(() => Number(document.querySelector('[data-testid="sync-status"]')?.getAttribute('data-version') ?? -1));

export async function run({ hosts = 1000, rate = 5000, seconds = 10, sockets = ['worker', 'page'] } = {}) {
  const rows = [];
  for (const socket of sockets) rows.push(await runOne({ hosts, rate, seconds, socket }));
  return { rows };
}

async function runOne({ hosts, rate, seconds, socket }) {
  const tmp = withTempDir();
  const server = await startServer({ listenHost: '127.0.0.1', listenPort: 0, dataDir: tmp.dir, logLevel: 'silent', adminPassword: PASSWORD });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const manager = server.manager;
    await seedHosts(manager, hosts);
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, bypassCSP: Boolean(process.env.BENCH_BROWSER_CSS) });
    // Without its worker script the dashboard opens the socket on the page (WorkerSockets' fallback).
    if (socket === 'page') await page.route('**/assets/socket-worker.js', (route) => route.abort());
    await page.goto(`${server.url}/login`);
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('button[type="submit"]')]);
    await until(async () => (await shownVersion(page)) === manager.version, 30_000, 'the dashboard to show the seeded fleet', 50);
    const rows = await page.evaluate(() => document.querySelectorAll('tbody tr').length);
    const mode = await page.evaluate(() => window.__nixfleet.sockets.mode);
    if (mode !== socket) throw new Error(`the dashboard's socket is in the ${mode}, not the ${socket}`);
    if (process.env.BENCH_BROWSER_CSS) await page.addStyleTag({ content: process.env.BENCH_BROWSER_CSS });
    await page.evaluate(() => {
      const w = window;
      w.__bench = { frames: [], longTasks: [] };
      const loop = (t) => {
        w.__bench.frames.push(t);
        requestAnimationFrame(loop);
      };
      requestAnimationFrame(loop);
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__bench.longTasks.push(e.duration);
      }).observe({ type: 'longtask', buffered: false });
    });

    // Feed: every 10 ms the deltas due so far, each its own change (they share commits).
    const total = Math.round(rate * seconds);
    const metricsSession = await page.context().newCDPSession(page);
    await metricsSession.send('Performance.enable');
    const metrics = async () => Object.fromEntries((await metricsSession.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
    const before = await metrics();
    const cdp = process.env.BENCH_BROWSER_PROFILE ? metricsSession : null;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const lags = [];
    let sent = 0;
    const start = performance.now();
    const sampler = setInterval(async () => {
      const version = manager.version;
      const shown = await shownVersion(page).catch(() => -1);
      if (shown >= 0) lags.push(version - shown);
    }, 250);
    while (sent < total) {
      const due = Math.min(total, Math.round(((performance.now() - start) / 1000) * rate));
      const pending = [];
      for (; sent < due; sent++) pending.push(manager.apply(heartbeat(hosts)));
      await Promise.all(pending);
      await sleep(10);
    }
    const feedSeconds = (performance.now() - start) / 1000;
    const after = await metrics();
    // Main-thread time per second of feeding, by kind (Chromium's cumulative Performance metrics).
    const perSecond = (name) => round(((after[name] - before[name]) / feedSeconds) * 1000);
    if (cdp) {
      const { profile } = await cdp.send('Profiler.stop');
      const { writeFileSync, mkdirSync } = await import('node:fs');
      mkdirSync(process.env.BENCH_BROWSER_PROFILE, { recursive: true });
      writeFileSync(`${process.env.BENCH_BROWSER_PROFILE}/page.cpuprofile`, JSON.stringify(profile));
    }
    clearInterval(sampler);
    const stopped = performance.now();
    const target = manager.version;
    await until(async () => (await shownVersion(page)) >= target, 10_000, 'the dashboard to catch up', 10);
    const catchUpMs = performance.now() - stopped;
    const bench = await page.evaluate(() => window.__bench);
    const forwarded = await page.evaluate(() => window.__nixfleet.sockets.stats);
    const intervals = bench.frames.slice(1).map((t, i) => t - bench.frames[i]);
    return {
      socket,
      hosts,
      'rendered rows': rows,
      'deltas/s sent': round(total / feedSeconds),
      frames: intervals.length,
      'frame interval p50 ms': round(percentile(intervals, 0.5), 1),
      'frame interval p95 ms': round(percentile(intervals, 0.95), 1),
      'frame interval max ms': round(Math.max(...intervals), 1),
      'frames > 20 ms': intervals.filter((d) => d > 20).length,
      'long tasks (>50 ms)': bench.longTasks.length,
      'main thread ms/s: script': perSecond('ScriptDuration'),
      'style': perSecond('RecalcStyleDuration'),
      'layout': perSecond('LayoutDuration'),
      'all tasks': perSecond('TaskDuration'),
      'version lag p95 (deltas)': round(percentile(lags, 0.95)),
      'caught up after stop ms': round(catchUpMs),
      'frames per worker post': socket === 'worker' ? round(forwarded.frames / forwarded.batches, 1) : '',
    };
  } finally {
    await browser.close();
    await server.close();
    tmp.remove();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { hosts: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' }, socket: { type: 'string' } } });
  const result = await run({ ...(values.hosts ? { hosts: Number(values.hosts) } : {}), ...(values.rate ? { rate: Number(values.rate) } : {}), ...(values.seconds ? { seconds: Number(values.seconds) } : {}), ...(values.socket ? { sockets: values.socket.split(',') } : {}) });
  console.log('browser (Chromium, real dashboard, FULL durability)');
  console.table(result.rows);
}
