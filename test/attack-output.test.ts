// Unbounded command output (issue 12, hole 3): an agent token, the lowest privilege, wrote 563 M
// characters to one command in two minutes, and one viewer reading that log froze the server.
// Each test performs the attack with an agent token against a real server process.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { GoAgent } from './support/go-agent.js';
import { api } from './support/http.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { tempDir } from './support/test-server.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024; // the largest chunk one request may carry

const defer = cleanupAfterEach();

interface Fleet {
  server: ServerProcess;
  dataDir: string;
  commandId: string;
  agent: ReturnType<typeof api>;
}

/** A server process, a host, its agent token and a running command on it. */
async function runningCommand(env: Record<string, string>): Promise<Fleet> {
  const dataDir = tempDir();
  const server = await spawnServer({ NIXFLEET_DATA_DIR: dataDir, ...env });
  defer(() => rmSync(dataDir, { recursive: true, force: true }));
  defer(() => server.kill());
  const admin = api(server.url, server.token);
  await admin.addHost('web-1');
  const token = await admin.post('/api/tokens', { name: 'agent web-1', role: 'agent', host_id: 'web-1' });
  const session = await new GoAgent(server.wsUrl, token.body.token, { hostname: 'web-1' }).start();
  defer(() => session.close());
  session.keepBeating();
  const command = await admin.post('/api/commands', { host_id: 'web-1', op: 'switch' });
  expect(command.status).toBe(201);
  return { server, dataDir, commandId: command.body.command.id, agent: api(server.url, token.body.token) };
}

function storeBytes(dataDir: string): number {
  return ['nixfleet.db', 'nixfleet.db-wal'].reduce((sum, file) => sum + (statSync(join(dataDir, file), { throwIfNoEntry: false })?.size ?? 0), 0);
}

/** `bytes` of distinct, line-shaped output (ASCII and two-byte characters mixed). */
function outputOf(bytes: number, seed: number): string {
  const lines: string[] = [];
  for (let line = 0, size = 0; size < bytes; line++) {
    lines.push(`[${seed}:${line}] building /nix/store/${line.toString(36).padStart(8, 'x')}-pkg … ✓ é\n`);
    size += Buffer.byteLength(lines[lines.length - 1]!);
  }
  return Buffer.from(lines.join('')).subarray(0, bytes).toString('utf8').replace(/\uFFFD+$/, '');
}

/** Polls `url` every 20 ms from a worker thread, once warmed up; `stop` resolves with the slowest answer in ms. */
async function healthProbe(url: string): Promise<{ stop(): Promise<number> }> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     let worst = 0, running = true;
     parentPort.on('message', () => { running = false; });
     (async () => {
       await (await fetch(workerData)).text(); // warm-up: loading fetch itself is not the server's time
       parentPort.postMessage('ready');
       while (running) {
         const started = performance.now();
         await (await fetch(workerData)).text();
         worst = Math.max(worst, performance.now() - started);
         await new Promise((resolve) => setTimeout(resolve, 20));
       }
       parentPort.postMessage(worst);
     })();`,
    { eval: true, workerData: url },
  );
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    stop: () => new Promise<number>((resolve, reject) => {
      worker.once('message', (worst: number) => void worker.terminate().then(() => resolve(worst)));
      worker.once('error', reject);
      worker.postMessage('stop');
    }),
  };
}

function rss(server: ServerProcess): number {
  const line = readFileSync(`/proc/${server.child.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

describe('command output is bounded', () => {
  it('cuts a command\'s log at NIXFLEET_OUTPUT_MAX_BYTES, marks the cut, and the store stops growing while the command goes on', async () => {
    const { server, dataDir, commandId, agent } = await runningCommand({ NIXFLEET_OUTPUT_MAX_BYTES: String(MiB), NIXFLEET_OUTPUT_RATE: String(256 * MiB) });
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const chunk = outputOf(CHUNK, i);
      sent.push(chunk);
      const answer = await agent.post(`/api/commands/${commandId}/output`, { output: chunk });
      expect(answer.status).toBe(200);
    }
    const full = storeBytes(dataDir);
    for (let i = 6; i < 46; i++) {
      const answer = await agent.post(`/api/commands/${commandId}/output`, { output: outputOf(CHUNK, i) });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ kept: 0, cut: true });
    }
    // 10 MiB more were sent; none of it reached the store.
    expect(storeBytes(dataDir) - full).toBeLessThan(64 * 1024);

    const log = await agent.get(`/api/commands/${commandId}/output`);
    expect(log.status).toBe(403); // an agent cannot read; a viewer can
    const read = await api(server.url, server.token).get(`/api/commands/${commandId}/output`);
    const kept = Buffer.from(read.body as string);
    const marker = /\n\[nixfleet: output cut at 1048576 bytes[^\n]*\]\n$/.exec(read.body as string);
    expect(marker).not.toBeNull();
    expect(kept.length - Buffer.byteLength(marker![0])).toBeLessThanOrEqual(MiB);
    expect(kept.length - Buffer.byteLength(marker![0])).toBeGreaterThan(MiB - 4);
    expect((read.body as string).slice(0, marker!.index)).toBe(sent.join('').slice(0, marker!.index));

    // The command goes on: it still finishes normally.
    expect((await agent.post(`/api/commands/${commandId}/finish`, { status: 'success', exit_code: 0 })).status).toBe(200);
  });

  it('rate-limits one token\'s output past NIXFLEET_OUTPUT_RATE with 429 and Retry-After, while admitting at least 1 MiB/s', async () => {
    const { commandId, agent } = await runningCommand({ NIXFLEET_OUTPUT_MAX_BYTES: String(512 * MiB) });
    // Sends as fast as this client can until refused a few times. However slow a loaded machine
    // makes the client, the first refusal may only come once the writer is past its burst
    // (4 MiB) plus the sustained rate (2 MiB/s) for the time it has been sending.
    const started = Date.now();
    let admitted = 0;
    let firstRefusal: { afterMs: number; admitted: number } | null = null;
    const refusals: Array<{ retryAfter: number }> = [];
    // Four requests in flight, so even a client slowed by a busy machine outruns 2 MiB/s.
    const sender = async (n: number) => {
      for (let i = 0; refusals.length < 3 && Date.now() - started < 20_000; i++) {
        const answer = await agent.post(`/api/commands/${commandId}/output`, { output: outputOf(CHUNK, n * 1_000_000 + i) });
        if (answer.status === 200) admitted += CHUNK;
        else {
          expect(answer.status).toBe(429);
          expect(answer.body.error).toBe('rate_limited');
          firstRefusal ??= { afterMs: Date.now() - started, admitted };
          refusals.push({ retryAfter: Number(answer.headers.get('retry-after')) });
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(sender));
    expect(firstRefusal, 'a writer far past the rate is refused').not.toBeNull();
    const { afterMs, admitted: before } = firstRefusal!;
    // Up to four chunks were admitted but not yet answered when the refusal came back.
    expect(before).toBeGreaterThanOrEqual(4 * MiB + (MiB * afterMs) / 1000 - 4 * CHUNK);
    expect(refusals.every((r) => r.retryAfter >= 1)).toBe(true);
  });

});

describe('reading a large log', () => {
  it('streams a 32 MiB log to three slow viewers with bounded memory, and /healthz stays fast meanwhile', async () => {
    // Durability is not what is tested here: NORMAL spares the machine 130 fsyncs.
    const { server, commandId, agent } = await runningCommand({ NIXFLEET_OUTPUT_MAX_BYTES: String(64 * MiB), NIXFLEET_OUTPUT_RATE: String(512 * MiB), NIXFLEET_SQLITE_SYNCHRONOUS: 'NORMAL' });
    const hash = createHash('sha256');
    for (let i = 0; i < 128; i++) {
      const chunk = outputOf(CHUNK, i);
      hash.update(chunk);
      expect((await agent.post(`/api/commands/${commandId}/output`, { output: chunk })).status).toBe(200);
    }
    const expected = hash.digest('hex');

    // The probe runs in its own thread, so the time this test spends hashing downloads is not
    // counted as the server's.
    const probe = await healthProbe(`${server.url}/healthz`);
    let digests: string[] = [];
    let worst = Infinity;
    try {
      const before = rss(server);
      const viewers = await Promise.all(Array.from({ length: 3 }, () => new Promise<IncomingMessage>((resolve, reject) => {
        httpGet(`${server.url}/api/commands/${commandId}/output`, { headers: server.authHeaders }, (res) => {
          res.pause(); // a viewer that is slow to read
          resolve(res);
        }).on('error', reject);
      })));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // Three viewers not reading a 32 MiB log each: the server holds pages, not logs.
      expect(rss(server) - before).toBeLessThan(48 * MiB);
      digests = await Promise.all(viewers.map((res) => new Promise<string>((resolve, reject) => {
        expect(res.statusCode).toBe(200);
        const digest = createHash('sha256');
        res.on('data', (data: Buffer) => digest.update(data));
        res.on('end', () => resolve(digest.digest('hex')));
        res.on('error', reject);
        res.resume();
      })));
    } finally {
      worst = await probe.stop();
    }
    expect(digests).toEqual([expected, expected, expected]);
    expect(worst).toBeLessThan(250);
  });
});
