// Parent side of the client workers: forks them, splits the clients between them and waits for
// their answers (every command is answered by every worker).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('./clients-worker.mjs', import.meta.url));

export class ClientPool {
  constructor(workers) {
    this.workers = workers;
  }

  /** `count` child processes of `worker` (default: the clients worker; the agent benchmarks pass their own). */
  static async start(count, worker = WORKER) {
    const workers = Array.from({ length: count }, () => fork(worker, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const pool = new ClientPool(workers);
    await Promise.all(workers.map((w) => next(w, 'up', 10_000)));
    return pool;
  }

  /** Sends a command (optionally per worker) and resolves with every worker's answer `ev`. */
  ask(ev, command, timeoutMs = 60_000) {
    return Promise.all(this.workers.map((w, i) => {
      const answer = next(w, ev, timeoutMs);
      w.send(typeof command === 'function' ? command(i) : command);
      return answer;
    }));
  }

  /**
   * Opens `total` clients split evenly between the workers. `deflate` offers permessage-deflate
   * (default: yes for nixfleet and lean clients, as browsers do; no for the peers).
   */
  connect(kind, url, headers, total, { deflate, timeoutMs = 120_000 } = {}) {
    const n = this.workers.length;
    return this.ask('connected', (i) => ({ cmd: 'connect', kind, url, headers, deflate, count: Math.floor(total / n) + (i < total % n ? 1 : 0) }), timeoutMs);
  }

  async close() {
    await this.ask('closed', { cmd: 'close' }, 10_000).catch(() => {});
    for (const w of this.workers) if (w.exitCode === null) w.kill();
  }
}

/** The next message `ev` from a worker (an `error` message rejects). */
export function next(worker, ev, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`worker did not answer ${ev} within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (msg) => {
      if (msg.ev === ev) done(null, msg);
      else if (msg.ev === 'error') done(new Error(`worker: ${msg.message}`));
    };
    const onExit = (code) => done(new Error(`worker exited with ${code} while waiting for ${ev}`));
    function done(error, msg) {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      if (error) reject(error);
      else resolve(msg);
    }
    worker.on('message', onMessage);
    worker.on('exit', onExit);
  });
}
