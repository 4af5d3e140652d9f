// A command that prints far more than the stored-output cap, streamed to many browsers: does
// the server's memory stay bounded? One agent (the Go agent's messages, bench/lib/agents-worker.mjs)
// is registered; an operator starts `switch` (POST /api/commands); the agent says it runs it,
// sends `bytes` of ~100-byte nix build lines as one `output` frame each, as fast as its socket
// takes them (it waits whenever ws's bufferedAmount passes 1 MiB), then `status ok`. The
// switch succeeds once the agent has stayed connected for the restart grace. B browsers
// (StateSync, bench/lib/browsers-worker.mjs) fold the stream. The server runs alone in its own
// process (bench/lib/agent-server.mjs, default settings: NIXFLEET_OUTPUT_MAX_BYTES 16 MiB).
// Measured:
//   - the server's RSS (/proc VmRSS every 10 ms) and JS heap + external (asked every 100 ms):
//     baseline after a full GC, peak during the flood;
//   - the agent's send time, until the server has taken every line (the status' exit code is
//     on the command), until success, until every browser shows it;
//   - versioned changes during the flood, the stored log (cap + marker), and every browser's
//     folded command: success, and the same output tail as the server's state.
// Run after `npm run build`:
//   node bench/output-flood.mjs [--runs 25,50,25@1,50@1] [--browsers 100] [--cap-mib 16]
// (`--runs`: MiB of output each, `@rate` paces the agent at that many MiB/s). The server's Node
// flags come from BENCH_SERVER_NODE_OPTIONS, e.g. `--max-old-space-size=64` to check that the
// live memory stays bounded (a server over its heap limit dies: the run fails with that).
// Measured also: the longest event-loop stall of the server during the flood.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ClientPool, next } from './lib/workers.mjs';
import { startServerProcess } from './lib/server-process.mjs';
import { busyCores, machineCpu, nowNs, round, sleep, until } from './lib/stats.mjs';
import { cutMarker } from '../dist/server/output-intake.js';

const AGENTS_WORKER = fileURLToPath(new URL('./lib/agents-worker.mjs', import.meta.url));
const BROWSERS_WORKER = fileURLToPath(new URL('./lib/browsers-worker.mjs', import.meta.url));
const MiB = 2 ** 20;

export const DEFAULTS = {
  /**
   * One fresh server per run: `mib` of output sent by the agent as fast as its socket takes it
   * (`rate` null) or paced at `rate` MiB/s.
   */
  runs: [
    { mib: 25, rate: null },
    { mib: 50, rate: null },
    { mib: 25, rate: 1 },
    { mib: 50, rate: 1 },
  ],
  browsers: 100,
  browserWorkers: 2,
  /** NIXFLEET_OUTPUT_MAX_BYTES; null: the server's default (16 MiB). */
  capMiB: null,
  /** The agent waits while more than this is buffered on its socket. */
  maxBuffered: MiB,
  /** Server settings besides the defaults. */
  server: {},
};

const share = (total, parts, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0);

/**
 * The bound the server's memory should keep, whatever the output's size: what it lets wait for
 * the browsers (NIXFLEET_CLIENT_BUFFER_LIMIT, 1 MiB, per browser; a browser further behind skips
 * deltas until a full_state) — the frames are shared, so in practice far less. What it keeps
 * per command (the state's 64 KiB output tail, one 64 KiB batch) is within the GC's slack.
 */
export function boundBytes(opts) {
  return opts.browsers * (opts.server.clientBufferLimit ?? MiB);
}

async function flood({ mib, rate }, opts) {
  const bytes = Math.round(mib * MiB);
  const server = await startServerProcess({ ...(opts.capMiB ? { outputMaxBytes: Math.round(opts.capMiB * MiB) } : {}), ...opts.server });
  const agentPool = await ClientPool.start(1, AGENTS_WORKER);
  const browserPool = await ClientPool.start(Math.min(opts.browserWorkers, opts.browsers), BROWSERS_WORKER);
  const agentWorker = agentPool.workers[0];
  let sampler = null;
  let heapSampler = null;
  try {
    const { tokens } = await server.ask({ cmd: 'tokens', hostIds: ['build-01'] }, 'tokens');
    await agentPool.ask('connected', { cmd: 'connect', url: server.wsUrl, agents: tokens, intervalMs: 5000, parallel: 1 });
    const nb = browserPool.workers.length;
    await browserPool.ask('connected', (i) => ({ cmd: 'connect', url: server.wsUrl, token: server.adminToken, count: share(opts.browsers, nb, i) }), 120_000);
    await sleep(500);
    const baseline = await server.ask({ cmd: 'gc' }, 'gc');
    const baselineHeap = baseline.memory.heapUsed + baseline.memory.external;
    const before = await server.stats(true);

    // Sample while it streams.
    let peakRss = server.rss().rss ?? 0;
    let peakHeap = baselineHeap;
    let peakArrayBuffers = baseline.memory.arrayBuffers;
    sampler = setInterval(() => {
      const { rss } = server.rss();
      if (rss !== null) peakRss = Math.max(peakRss, rss);
    }, 10);
    let sampling = true;
    let maxStall = 0;
    heapSampler = (async () => {
      while (sampling) {
        const s = await server.stats().catch(() => null);
        if (s) {
          maxStall = Math.max(maxStall, s.loopDelayMs.max);
          peakHeap = Math.max(peakHeap, s.memory.heapUsed + s.memory.external);
          peakArrayBuffers = Math.max(peakArrayBuffers, s.memory.arrayBuffers);
        }
        await sleep(100);
      }
    })();

    await agentPool.ask('armed', { cmd: 'flood', index: 0, bytes, maxBuffered: opts.maxBuffered, bytesPerSecond: rate ? rate * MiB : null });
    const flooded = next(agentWorker, 'flooded', 600_000);
    const t0 = nowNs();
    const machine0 = machineCpu();
    const res = await fetch(`${server.url}/api/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ host_id: 'build-01', op: 'switch' }),
    });
    if (res.status !== 201) throw new Error(`POST /api/commands: ${res.status} ${await res.text()}`);
    const commandId = (await res.json()).command.id;
    const sent = await flooded;

    // The server has taken every line once the status' exit code is on the command.
    let taken = null;
    let done = null;
    await until(async () => {
      const { command } = await server.ask({ cmd: 'command', id: commandId }, 'command');
      if (taken === null && command.exit_code !== null) taken = nowNs();
      if (command.status !== 'pending' && command.status !== 'running') done = nowNs();
      return done !== null;
    }, 300_000, 'the command to end', 20);
    const { command } = await server.ask({ cmd: 'command', id: commandId }, 'command');
    let views = [];
    let answers = [];
    let converged = null;
    await until(async () => {
      answers = await browserPool.ask('command', { cmd: 'command', id: commandId });
      views = answers.flatMap((answer) => answer.clients);
      const all = views.every((v) => v.command?.status === command.status);
      if (all) converged = nowNs();
      return all;
    }, 120_000, 'every browser to show the command ended', 50).catch(() => {});
    sampling = false;
    clearInterval(sampler);
    sampler = null;
    await heapSampler;
    peakRss = Math.max(peakRss, server.rss().rss ?? 0);
    const after = await server.stats();
    const machineBusy = busyCores(machine0, machineCpu());
    maxStall = Math.max(maxStall, after.loopDelayMs.max);
    // Only now the stored log is read (16 MiB out of SQLite): not part of what was measured.
    const { storedBytes, storedTail } = await server.ask({ cmd: 'stored', id: commandId }, 'stored');

    const cap = opts.capMiB ? Math.round(opts.capMiB * MiB) : 16 * MiB;
    const bound = boundBytes(opts);
    const marker = cutMarker(cap);
    const same = views.filter((v) => v.command?.status === 'success' && v.command.outputDigest === command.outputDigest && v.command.exit_code === 0).length;
    const streamSeconds = (sent.outputSentAt - sent.startedAt) / 1e9;
    const floodSeconds = (done - t0) / 1e9;
    return {
      row: {
        'output MiB': mib,
        'agent pace': rate ? `${rate} MiB/s` : 'socket',
        browsers: opts.browsers,
        'agent send s': round(streamSeconds, 2),
        'agent MiB/s': round(sent.bytes / MiB / streamSeconds, 1),
        'all lines taken s': round((taken - t0) / 1e9, 2),
        'success s': round(floodSeconds, 2),
        'browsers show it s': converged === null ? null : round((converged - t0) / 1e9, 2),
        'baseline RSS MiB': round(baseline.rss / MiB, 1),
        'peak RSS MiB': round(peakRss / MiB, 1),
        'RSS growth MiB': round((peakRss - baseline.rss) / MiB, 1),
        'bound MiB': round(bound / MiB, 1),
        'within bound': peakRss - baseline.rss <= bound,
        'peak heap+external MiB': round(peakHeap / MiB, 1),
        'heap+external growth MiB': round((peakHeap - baselineHeap) / MiB, 1),
        'longest event-loop stall ms': round(maxStall, 0),
        'changes': after.version - before.version,
        'changes/s': round((after.version - before.version) / floodSeconds, 1),
        'stored MiB': round(storedBytes / MiB, 3),
        'stored = cap + marker': storedBytes === cap + Buffer.byteLength(marker),
        'cap marker at the end': storedTail.endsWith(marker),
        'browsers success + same tail': `${same}/${opts.browsers}`,
        'machine busy cores': round(machineBusy, 2),
      },
      detail: {
        commandId,
        status: command.status,
        agentSessionClosed: after.agents.sessions === 0,
        exitCode: command.exit_code,
        outputSize: command.output_size,
        stateTailBytes: command.outputLength,
        lines: sent.lines,
        sentBytes: sent.bytes,
        agentWaits: sent.waits,
        lastLine: sent.lastLine,
        storedTailEnd: storedTail.slice(-200),
        cap,
        commits: after.manager.commits - before.manager.commits,
        outputLines: after.agents.outputLines - before.agents.outputLines,
        serverCpuSeconds: round((after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1e6, 2),
        peakArrayBuffersMiB: round(peakArrayBuffers / MiB, 1),
        storedBytes,
        hub: after.hub,
        // A browser that fell more than NIXFLEET_CLIENT_BUFFER_LIMIT behind skips deltas and gets a full_state.
        browserFullStates: answers.reduce((total, a) => total + a.fullStates, 0),
        browserDeltas: answers.reduce((total, a) => total + a.deltas, 0),
        browserTail: views[0]?.command?.tail.slice(-200),
        logged: after.logged,
      },
    };
  } finally {
    if (sampler) clearInterval(sampler);
    await browserPool.close();
    await server.close();
    await agentPool.close();
  }
}

export async function run(options = {}) {
  const opts = { ...DEFAULTS, ...options };
  const rows = [];
  const details = [];
  for (const r of opts.runs) {
    const result = await flood(r, opts);
    rows.push(result.row);
    details.push(result.detail);
  }
  return { rows, details };
}

/** `50,50@2` → 50 MiB as fast as the socket takes it, then 50 MiB paced at 2 MiB/s. */
export function parseRuns(text) {
  return text.split(',').map((part) => {
    const [mib, rate] = part.split('@');
    return { mib: Number(mib), rate: rate ? Number(rate) : null };
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, browsers: { type: 'string' }, 'cap-mib': { type: 'string' } } });
  const result = await run({
    ...(values.runs ? { runs: parseRuns(values.runs) } : {}),
    ...(values.browsers ? { browsers: Number(values.browsers) } : {}),
    ...(values['cap-mib'] ? { capMiB: Number(values['cap-mib']) } : {}),
  });
  console.log('output flood');
  console.table(result.rows);
  console.log(JSON.stringify(result.details, null, 1));
}
