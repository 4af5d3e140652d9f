// A child process holding many simulated agents, each a lean `ws` client speaking the agent
// protocol as the Go agent writes it (test/support/go-agent.ts: "" for unset strings, an empty
// git compartment, floats): register with hostname = host id, then heartbeat every interval
// (random phase) with metrics that wander a little and compartments re-checked every ~30 s, one
// status in ten of those checks flipping; a ping every 10 s, as the Go agent does. The parent
// drives it over IPC (bench/lib/workers.mjs `next`):
//   connect {url, agents: [{hostId, token}], intervalMs, parallel} → connected {count, ms}
//   sample {probability}  each heartbeat carries generation `t=<monotonic ns>` with this
//                         probability: a generation change is published at once, and the
//                         browsers time its arrival (0 stops it)
//   stop / resume         no more heartbeats (the agents stay connected) / beat again
//   flood {index, bytes, maxBuffered, bytesPerSecond} the agent at `index` answers the next
//                         `command` by streaming `bytes` of nix build output (as fast as its
//                         socket takes it, or paced), then `status ok` → flooded
//   stats → stats; close → closed
import WebSocket from 'ws';
import { nowNs } from './stats.mjs';
import { NixOutput } from './nix-output.mjs';
import { seededRandom } from '../../dist/demo/random.js';

const PING_MS = 10_000;
const CHECK_MS = 30_000;
const TICK_MS = 20;

const agents = [];
let intervalMs = 5000;
let probability = 0;
let beating = false;
let ticker = null;
let flood = null;
/** Milliseconds from `register` sent to `registered` received, per agent. */
const registerMs = [];
const counts = { registered: 0, heartbeats: 0, stamps: 0, pings: 0, commands: 0, unexpectedCloses: {}, errors: 0 };
const send = (message) => process.send(message);

const gauss = (random) => Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random());
const clamp = (value, lo, hi) => Math.min(hi, Math.max(lo, value));
const round2 = (value) => Math.round(value * 100) / 100;

class Agent {
  constructor(url, hostId, token, index) {
    this.url = url;
    this.hostId = hostId;
    this.token = token;
    this.index = index;
    // Seeded per agent, so a run's metric walks repeat.
    this.random = seededRandom(index * 7919 + 17);
    const r = this.random;
    // A host's resting load: most are quiet, some busy.
    this.baseCpu = r() < 0.8 ? 2 + r() * 15 : 30 + r() * 50;
    this.baseRam = 20 + r() * 60;
    this.metrics = { cpu: this.baseCpu, ram: this.baseRam, swap: r() < 0.9 ? 0 : round2(r() * 5), load: round2(this.baseCpu / 25) };
    this.generation = `gen-${(index % 50).toString(16).padStart(7, '0')}`;
    const checked = new Date().toISOString();
    this.status = {
      git: { status: '', message: '', checked_at: '' },
      lock: { status: 'ok', message: 'flake.lock is current', checked_at: checked },
      system: { status: r() < 0.8 ? 'ok' : 'outdated', message: '', checked_at: checked },
      tests: { status: 'unknown', message: '', checked_at: '' },
    };
    this.system();
    this.socket = null;
    /** The op it runs, as its heartbeats say. */
    this.running = null;
    this.nextBeatAt = 0;
    this.nextPingAt = 0;
    this.nextCheckAt = 0;
  }

  system() {
    this.status.system.message = this.status.system.status === 'ok' ? 'running the current generation' : 'a newer generation is built';
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, { headers: { authorization: `Bearer ${this.token}` }, perMessageDeflate: false });
      this.socket = socket;
      let registered = false;
      socket.on('open', () => {
        this.openedAt = Date.now();
        this.registerSentNs = nowNs();
        this.sendRegister();
      });
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString());
        if (message.type === 'registered' && !registered) {
          registered = true;
          counts.registered++;
          registerMs.push((nowNs() - this.registerSentNs) / 1e6);
          // The agent's own ticker runs from its start, whenever the server answers.
          this.nextBeatAt = this.openedAt + this.random() * intervalMs;
          this.nextPingAt = this.openedAt + this.random() * PING_MS;
          this.nextCheckAt = this.openedAt + this.random() * CHECK_MS;
          // It beats from now on, not once the whole worker has registered.
          agents.push(this);
          resolve();
        } else if (message.type === 'command') {
          counts.commands++;
          if (flood && flood.index === this.index && message.payload.command !== 'stop') void runFlood(this, message.payload.command);
        }
      });
      socket.on('error', (error) => {
        counts.errors++;
        if (!registered) reject(error);
      });
      socket.on('unexpected-response', (_req, res) => reject(new Error(`agent ${this.hostId}: upgrade refused with ${res.statusCode}`)));
      socket.on('close', (code) => {
        if (!registered) reject(new Error(`agent ${this.hostId}: closed with ${code} before registered`));
        else if (!closing) counts.unexpectedCloses[code] = (counts.unexpectedCloses[code] ?? 0) + 1;
      });
    });
  }

  sendRegister() {
    this.send('register', {
      hostname: this.hostId,
      host_type: this.index % 7 === 0 ? 'macos' : 'nixos',
      agent_version: '3.1.0',
      os_version: this.index % 7 === 0 ? '15.1' : '24.11 (Vicuna)',
      nixpkgs_version: '24.11.20250101.abcdef0',
      generation: this.generation,
      theme_color: '#7aa2f7',
      heartbeat_interval: intervalMs / 1000,
      location: 'home',
      device_type: 'server',
      repo_url: '',
      repo_dir: '/home/fleet/nixcfg',
    });
  }

  send(type, payload) {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type, payload }));
  }

  /** One beat: metrics wander (mean-reverting random walks), compartments re-checked every ~30 s. */
  beat(now) {
    const r = this.random;
    const m = this.metrics;
    m.cpu = clamp(m.cpu + 0.3 * (this.baseCpu - m.cpu) + gauss(r) * 1.5, 0.2, 100);
    m.ram = clamp(m.ram + 0.1 * (this.baseRam - m.ram) + gauss(r) * 0.3, 1, 99);
    m.load = clamp(m.load + 0.3 * (this.baseCpu / 25 - m.load) + gauss(r) * 0.05, 0, 64);
    if (now >= this.nextCheckAt) {
      this.nextCheckAt += CHECK_MS;
      const checked = new Date(now).toISOString();
      this.status.lock.checked_at = checked;
      this.status.system.checked_at = checked;
      if (r() < 0.1) {
        // Occasionally something a person sees: the lock goes stale, or a new generation is built.
        if (r() < 0.5) {
          const ok = this.status.lock.status !== 'ok';
          this.status.lock = { status: ok ? 'ok' : 'outdated', message: ok ? 'flake.lock is current' : 'nixpkgs has newer commits upstream', checked_at: checked };
        } else {
          this.status.system.status = this.status.system.status === 'ok' ? 'outdated' : 'ok';
          this.system();
        }
      }
    }
    if (probability > 0 && r() < probability) {
      this.generation = `t=${nowNs()}`;
      counts.stamps++;
    }
    counts.heartbeats++;
    this.send('heartbeat', {
      generation: this.generation,
      nixpkgs_version: '24.11.20250101.abcdef0',
      pending_command: this.running?.op ?? null,
      command_pid: this.running?.pid ?? null,
      metrics: { cpu: round2(m.cpu), ram: round2(m.ram), swap: m.swap, load: round2(m.load) },
      update_status: this.status,
    });
  }
}

let closing = false;

function tick() {
  const now = Date.now();
  for (const agent of agents) {
    if (agent.socket.readyState !== WebSocket.OPEN) continue;
    if (beating && now >= agent.nextBeatAt) {
      agent.nextBeatAt += intervalMs;
      // A worker that fell far behind (a stalled process) does not burst to catch up.
      if (agent.nextBeatAt < now) agent.nextBeatAt = now + intervalMs;
      agent.beat(now);
    }
    if (now >= agent.nextPingAt) {
      agent.nextPingAt += PING_MS;
      counts.pings++;
      agent.socket.ping();
    }
  }
}

/** Waits until the socket's send buffer is below `limit` (ws's bufferedAmount includes the kernel-bound queue). */
async function writable(socket, limit) {
  while (socket.bufferedAmount > limit && socket.readyState === WebSocket.OPEN) {
    await new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        socket._socket?.off('drain', done);
        resolve();
      };
      const timer = setTimeout(done, 20);
      socket._socket?.once('drain', done);
    });
  }
}

/** The Go agent running an op: says so in a heartbeat, prints every line, then `status ok`. */
async function runFlood(agent, op) {
  const { bytes, maxBuffered, bytesPerSecond } = flood;
  flood = null;
  const output = new NixOutput(agent.index + 1);
  const startedAt = nowNs();
  agent.running = { op, pid: 4242 };
  agent.send('heartbeat', { generation: agent.generation, nixpkgs_version: '24.11.20250101.abcdef0', pending_command: op, command_pid: 4242, metrics: null, update_status: null });
  let sent = 0;
  let lines = 0;
  let waits = 0;
  let lastLine = '';
  while (sent < bytes) {
    if (agent.socket.bufferedAmount > maxBuffered) {
      waits++;
      await writable(agent.socket, maxBuffered / 2);
    }
    if (agent.socket.readyState !== WebSocket.OPEN) break;
    if (bytesPerSecond) {
      // Paced: no further ahead than the rate allows.
      const ahead = sent - (bytesPerSecond * (nowNs() - startedAt)) / 1e9;
      if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, Math.max(1, (ahead / bytesPerSecond) * 1000)));
    }
    // A burst of frames per write (corked), then the buffer is checked again; ws queues nothing
    // of its own, so bufferedAmount is what waits.
    agent.socket._socket?.cork();
    for (let k = 0; k < 64 && sent < bytes; k++) {
      lastLine = output.next();
      agent.send('output', { line: lastLine, stream: 'stdout', command: '', is_error: false });
      sent += Buffer.byteLength(lastLine) + 1;
      lines++;
    }
    agent.socket._socket?.uncork();
    // Let the socket's events (drain, close) run now and then.
    if (lines % 4096 < 64) await new Promise((resolve) => setImmediate(resolve));
  }
  const outputSentAt = nowNs();
  agent.send('status', { status: 'ok', command: op, exit_code: 0 });
  agent.running = null;
  await writable(agent.socket, 0);
  send({ ev: 'flooded', op, bytes: sent, lines, waits, lastLine, startedAt, outputSentAt, drainedAt: nowNs(), open: agent.socket.readyState === WebSocket.OPEN });
}

process.on('message', async (msg) => {
  try {
    switch (msg.cmd) {
      case 'connect': {
        intervalMs = msg.intervalMs;
        const started = nowNs();
        const fresh = msg.agents.map(({ hostId, token }, i) => new Agent(msg.url, hostId, token, (msg.firstIndex ?? 0) + i));
        const parallel = msg.parallel ?? 100;
        beating = msg.beat !== false;
        ticker ??= setInterval(tick, TICK_MS);
        for (let i = 0; i < fresh.length; i += parallel) await Promise.all(fresh.slice(i, i + parallel).map((a) => a.open()));
        const sorted = [...registerMs].sort((a, b) => a - b);
        return send({ ev: 'connected', count: fresh.length, ms: (nowNs() - started) / 1e6, registerMs: { p50: sorted[Math.floor(sorted.length / 2)] ?? null, max: sorted.at(-1) ?? null } });
      }
      case 'sample':
        probability = msg.probability;
        return send({ ev: 'sampling', stamps: counts.stamps });
      case 'stop':
        beating = false;
        probability = 0;
        return send({ ev: 'stopped', ...counts });
      case 'resume':
        // Beating again (after a quiet check): an agent silent for 3 intervals is closed as dead.
        beating = true;
        return send({ ev: 'resumed' });
      case 'flood':
        flood = { index: msg.index, bytes: msg.bytes, maxBuffered: msg.maxBuffered ?? 1024 * 1024, bytesPerSecond: msg.bytesPerSecond ?? null };
        return send({ ev: 'armed' });
      case 'stats':
        return send({ ev: 'stats', ...counts, open: agents.filter((a) => a.socket.readyState === WebSocket.OPEN).length });
      case 'close':
        closing = true;
        clearInterval(ticker);
        for (const agent of agents) agent.socket.terminate();
        send({ ev: 'closed' });
        return setTimeout(() => process.exit(0), 20);
    }
  } catch (error) {
    send({ ev: 'error', message: String(error?.message ?? error) });
  }
});
send({ ev: 'up' });
