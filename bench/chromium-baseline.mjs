// What Chromium itself costs per WebSocket message, without our dashboard: a blank page whose
// socket only JSON.parses each delta, on the main thread and then in a dedicated Worker, with a
// requestAnimationFrame loop counting frames. It tells whether a frame budget missed by the
// dashboard is ours or the browser's per-message work on the main thread.
//   node bench/chromium-baseline.mjs [--rate 5000] [--seconds 5]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { encodeDelta } from '../dist/protocol/index.js';
import { heartbeat } from './lib/fleet.mjs';
import { percentile, round, sleep } from './lib/stats.mjs';

const RECEIVE = "let received = 0; const ws = new WebSocket('ws://' + location.host); ws.onmessage = (e) => { JSON.parse(e.data); received++; };";
const PAGE = (where) => `<!doctype html><meta charset=utf-8><body><script>
window.__frames = []; const loop = (t) => { window.__frames.push(t); requestAnimationFrame(loop); }; requestAnimationFrame(loop);
${where === 'main' ? `${RECEIVE} setInterval(() => (window.__received = received), 16);` : "new Worker('/worker.js').onmessage = (e) => (window.__received = e.data);"}
</script>`;
const WORKER = `${RECEIVE} setInterval(() => postMessage(received), 16);`;

export async function run({ rate = 5000, seconds = 5 } = {}) {
  const http = createServer((req, res) => {
    const worker = req.url === '/worker.js';
    res.setHeader('content-type', worker ? 'text/javascript' : 'text/html');
    res.end(worker ? WORKER : PAGE(req.url.includes('worker') ? 'worker' : 'main'));
  });
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${http.address().port}`;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const rows = [];
  try {
    for (const where of ['main', 'worker']) {
      const page = await browser.newPage();
      await page.goto(`${origin}/?${where}`);
      await sleep(500);
      const first = await page.evaluate(() => window.__frames.length);
      // 10 ms ticks, each with the deltas due, like bench/browser.mjs.
      let sent = 0;
      const start = performance.now();
      while (performance.now() - start < seconds * 1000) {
        const due = Math.round(((performance.now() - start) / 1000) * rate);
        for (; sent < due; sent++) {
          const frame = Buffer.from(encodeDelta('bench', sent + 1, heartbeat(1000)));
          for (const client of wss.clients) client.send(frame, { binary: false });
        }
        await sleep(10);
      }
      const elapsed = (performance.now() - start) / 1000;
      await sleep(300);
      const { frames, received } = await page.evaluate(() => ({ frames: window.__frames, received: window.__received }));
      const intervals = frames.slice(first + 1).map((t, i) => t - frames[first + i]);
      rows.push({
        socket: where === 'main' ? 'main thread' : 'dedicated Worker',
        'messages/s': round(sent / elapsed),
        sent,
        received: received ?? 0,
        frames: intervals.length,
        'frame interval p50 ms': round(percentile(intervals, 0.5), 1),
        'frame interval p95 ms': round(percentile(intervals, 0.95), 1),
      });
      await page.close();
      for (const client of wss.clients) client.terminate();
    }
  } finally {
    await browser.close();
    await new Promise((resolve) => wss.close(resolve));
    await new Promise((resolve) => http.close(resolve));
  }
  return { rows };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' } } });
  const result = await run({ ...(values.rate ? { rate: Number(values.rate) } : {}), ...(values.seconds ? { seconds: Number(values.seconds) } : {}) });
  console.log('Chromium baseline: a blank page parsing every message (no dashboard)');
  console.table(result.rows);
}
