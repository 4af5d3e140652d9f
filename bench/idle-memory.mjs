// Memory per idle connection, each peer server in a fresh process (bench/lib/idle-server.mjs):
// its RSS and JS heap + external memory after a full GC with no clients, then after each step of
// N more idle clients (held by two client processes). The per-connection figure is the slope of a
// least-squares line through the steps after the first (the first step also pays one-off costs:
// code, JIT, pools), so one step's GC timing does not decide it. Our clients negotiate
// permessage-deflate, as browsers do.
//   node bench/idle-memory.mjs [--clients 1000] [--steps 5] [--peers nixfleet,ws,sio]
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ClientPool, next } from './lib/workers.mjs';
import { round, sleep } from './lib/stats.mjs';

const SERVER = fileURLToPath(new URL('./lib/idle-server.mjs', import.meta.url));

async function measurePeer(kind, { clients, steps }) {
  const child = fork(SERVER, [kind], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const up = await next(child, 'up', 30_000);
  const measure = async () => {
    await sleep(500); // let handshakes and the first frames settle
    const answer = next(child, 'measured', 30_000);
    child.send({ cmd: 'measure' });
    return answer;
  };
  const pool = await ClientPool.start(2);
  try {
    const samples = [await measure()];
    for (let step = 0; step < steps; step++) {
      await pool.connect(up.kind, up.url, up.headers, clients);
      samples.push(await measure());
    }
    const warm = samples.slice(1).map((sample, i) => ({ x: (i + 1) * clients, sample }));
    const perConnKiB = (key) => slope(warm.map(({ x, sample }) => [x, sample[key]])) / 1024;
    return {
      peer: up.name,
      'idle clients': clients * steps,
      'RSS MiB at 0': round(samples[0].rss / 2 ** 20, 1),
      'RSS KiB/conn': round(perConnKiB('rss'), 1),
      'RSS KiB/conn (incl. first step)': round((samples[steps].rss - samples[0].rss) / (steps * clients) / 1024, 1),
      'heap+external KiB/conn': round(perConnKiB('heap'), 1),
    };
  } finally {
    await pool.close();
    const closed = next(child, 'closed', 10_000).catch(() => {});
    child.send({ cmd: 'close' });
    await closed;
    if (child.exitCode === null) child.kill();
  }
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxy / sxx;
}

export async function run({ clients = 1000, steps = 5, peers = ['nixfleet', 'ws', 'sio'] } = {}) {
  if (steps < 2) throw new Error('--steps must be at least 2: the slope needs two warm steps');
  const rows = [];
  for (const kind of peers) rows.push(await measurePeer(kind, { clients, steps }));
  return { rows };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { clients: { type: 'string' }, steps: { type: 'string' }, peers: { type: 'string' } } });
  const result = await run({
    ...(values.clients ? { clients: Number(values.clients) } : {}),
    ...(values.steps ? { steps: Number(values.steps) } : {}),
    ...(values.peers ? { peers: values.peers.split(',') } : {}),
  });
  console.log('memory per idle connection (each server in a fresh process)');
  console.table(result.rows);
}
