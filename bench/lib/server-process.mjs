// Parent side of bench/lib/agent-server.mjs: the built server in a child process, with what
// /proc says about it (RSS and its peak, bytes written to storage, CPU ticks) and its data
// directory's size. Linux only for the /proc figures (elsewhere they are null).
import { fork } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { next } from './workers.mjs';

const SERVER = fileURLToPath(new URL('./agent-server.mjs', import.meta.url));

function readProc(pid, file) {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

/** `execArgv` adds Node flags (e.g. `--cpu-prof`; env BENCH_SERVER_NODE_OPTIONS does the same from the command line). */
export async function startServerProcess(overrides = {}, { execArgv = (process.env.BENCH_SERVER_NODE_OPTIONS ?? '').split(' ').filter(Boolean) } = {}) {
  const child = fork(SERVER, [JSON.stringify(overrides)], { execArgv: ['--expose-gc', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // A server that died (out of memory, say) must fail the benchmark with that, not with an IPC error.
  let died = null;
  child.on('error', () => {});
  child.on('exit', (code, signal) => (died = `the server process exited (${signal ?? code})`));
  const up = await next(child, 'up', 30_000);
  let asking = Promise.resolve();
  /** One question at a time: answers carry no id, so a second must wait for the first. */
  const ask = (command, ev, timeoutMs = 60_000) => {
    const answer = asking.then(() => {
      if (died) throw new Error(died);
      const reply = next(child, ev, timeoutMs);
      child.send(command);
      return reply;
    });
    asking = answer.catch(() => {});
    return answer;
  };
  return {
    ...up,
    child,
    ask,
    /** `reset`: the event-loop delay is measured from now on. */
    stats: (reset = false) => ask({ cmd: 'stats', reset }, 'stats'),
    /** Bytes this process caused to be written to storage (fsync'd WAL, checkpoints, snapshots). */
    writeBytes() {
      const io = readProc(up.pid, 'io');
      const match = io && /^write_bytes:\s*(\d+)/m.exec(io);
      return match ? Number(match[1]) : null;
    },
    /** Resident set and its peak since the process started, in bytes. */
    rss() {
      const status = readProc(up.pid, 'status');
      const kib = (name) => {
        const match = status && new RegExp(`^${name}:\\s*(\\d+) kB`, 'm').exec(status);
        return match ? Number(match[1]) * 1024 : null;
      };
      return { rss: kib('VmRSS'), peak: kib('VmHWM') };
    },
    /** Size of every file in the data directory (the database, its WAL). */
    dataBytes() {
      let total = 0;
      for (const name of readdirSync(up.dataDir)) {
        try {
          total += statSync(join(up.dataDir, name)).size;
        } catch {
          // removed meanwhile (-shm at close)
        }
      }
      return total;
    },
    /** Why the process ended, or null while it runs. */
    get died() {
      return died;
    },
    async close() {
      if (died) return null;
      const closed = await ask({ cmd: 'close' }, 'closed', 30_000).catch(() => null);
      if (child.exitCode === null) {
        await new Promise((resolve) => {
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 5_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return closed?.logged ?? null;
    },
  };
}
