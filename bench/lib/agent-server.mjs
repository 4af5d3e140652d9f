// The built server alone in its own process, for the agent benchmarks (bench/agents.mjs,
// bench/output-flood.mjs): its CPU, RSS and disk writes are then the server's only, read from
// /proc/<pid> by the parent, while agents and browsers run in other processes. Started with
// `fork(this, [JSON overrides])`; answers over IPC:
//   tokens {hostIds}   → one agent token per host id (created in-process, as the API would)
//   stats {reset}      → CPU, memory, versions, commits, agent and hub counters, hosts online,
//                        event-loop delay since the last reset
//   command {id}       → a command as the state has it (its output tail as a digest)
//   stored {id}        → the same with its output tail, and its stored log's bytes and end
//   digest             → the state's version, digest (bench/lib/digest.mjs) and JSON size
//   gc                 → a full GC (with --expose-gc), then memory
//   close              → server.close(), the data directory removed, exit
// The server logs nothing; warnings and errors are counted (and the first few kept) so a
// benchmark can show what went wrong.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startServer } from '../../dist/server/server.js';
import { settledRss, withTempDir } from './stats.mjs';
import { stateDigest, textDigest } from './digest.mjs';

const overrides = JSON.parse(process.argv[2] ?? '{}');
const tmp = withTempDir();
const logged = { warn: 0, error: 0, first: [] };
const keep = (level) => (msg, fields) => {
  logged[level]++;
  if (logged.first.length < 20) logged.first.push({ level, msg, ...fields });
};
const logger = { debug() {}, info() {}, warn: keep('warn'), error: keep('error') };

// Every bench client comes from 127.0.0.1: the per-address cap is lifted (the global one stays).
const server = await startServer(
  { listenHost: '127.0.0.1', listenPort: 0, dataDir: tmp.dir, logLevel: 'silent', maxClients: 20_000, maxConnectionsPerAddress: 1_000_000, adminPassword: 'bench password 1234', ...overrides },
  { logger },
);
const { token: adminToken } = await server.auth.createToken({ name: 'bench', role: 'admin' }, 'bench');

// How late the event loop ran (timers, I/O) since the last `stats {reset: true}`.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

function stats(reset) {
  const delay = { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
  if (reset) loop.reset();
  let online = 0;
  for (const host of server.manager.state.hosts.values()) if (host.status === 'online') online++;
  return {
    cpu: process.cpuUsage(),
    memory: process.memoryUsage(),
    version: server.manager.version,
    manager: { ...server.manager.stats },
    agents: { ...server.agents.stats, sessions: server.agents.sessionCount },
    hub: { ...server.hub.stats },
    hosts: server.manager.state.hosts.size,
    loopDelayMs: delay,
    online,
    logged,
  };
}

/** A command as the state has it (cheap: polled while a flood runs). */
function command(id) {
  const c = server.manager.state.commands.get(id);
  return { command: c ? { ...c, output: undefined, outputLength: c.output.length, outputDigest: textDigest(c.output) } : null, version: server.manager.version };
}

/** A command with its stored log's size and end, and its state's output tail (read once, at the end). */
async function stored(id) {
  const c = server.manager.state.commands.get(id);
  if (!c) return null;
  const stored = (await server.manager.commandOutputBytes([id])).get(id) ?? 0;
  // The end of the stored log: the last chunks, newest last.
  const chunks = [];
  let after = 0;
  for (;;) {
    const page = await server.manager.readCommandOutput(id, after, 500);
    if (page.length === 0) break;
    chunks.push(...page.map((p) => p.chunk));
    if (chunks.length > 4) chunks.splice(0, chunks.length - 4);
    after = page.at(-1).version;
  }
  return { command: c, storedBytes: stored, storedTail: chunks.join('').slice(-4096), version: server.manager.version };
}

process.on('message', async (msg) => {
  try {
    switch (msg.cmd) {
      case 'tokens': {
        const tokens = [];
        for (const hostId of msg.hostIds) {
          const { token } = await server.auth.createToken({ name: `agent-${hostId}`, role: 'agent', hostId }, 'bench');
          tokens.push({ hostId, token });
        }
        return process.send({ ev: 'tokens', tokens });
      }
      case 'stats':
        return process.send({ ev: 'stats', ...stats(msg.reset) });
      case 'digest':
        return process.send({ ev: 'digest', version: server.manager.version, epoch: server.manager.epoch, digest: stateDigest(server.manager.state), stateBytes: Buffer.byteLength(server.manager.stateJson()) });
      case 'command':
        return process.send({ ev: 'command', ...command(msg.id) });
      case 'stored':
        return process.send({ ev: 'stored', ...(await stored(msg.id)) });
      case 'gc': {
        const rss = await settledRss();
        return process.send({ ev: 'gc', rss, memory: process.memoryUsage() });
      }
      case 'close':
        await server.close();
        tmp.remove();
        process.send({ ev: 'closed', logged });
        return setTimeout(() => process.exit(0), 20);
    }
  } catch (error) {
    process.send({ ev: 'error', message: String(error?.stack ?? error) });
  }
});
process.send({ ev: 'up', url: server.url, wsUrl: server.wsUrl, adminToken, dataDir: tmp.dir, pid: process.pid });
