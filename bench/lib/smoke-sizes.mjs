// The tiny sizes CI runs (`npm run bench -- --smoke`, test/bench-smoke.test.ts): seconds, not
// minutes, only to keep the benchmarks from rotting. The numbers they give mean nothing.
export const SMOKE = {
  fanout: { clients: [20], repeats: 1, seconds: 0.3, deliveries: 2000, rates: [20, 100] },
  writes: { changes: 500, httpChanges: 100, repeats: 1 },
  storm: { clients: 20, hosts: 200, repeats: 1 },
  memory: { clients: 20, steps: 2 },
  browser: { hosts: 50, rate: 500, seconds: 1 },
  chromium: { rate: 500, seconds: 1 },
  agents: { cases: [{ agents: 40, intervalMs: 2000 }, { agents: 20, intervalMs: 1500 }], browsers: 4, seconds: 2, warmupSeconds: 1, stampsPerSecond: 250, browserWorkers: 1 },
  outputFlood: { runs: [{ mib: 3, rate: null }], capMiB: 1, browsers: 4, browserWorkers: 1, server: { agents: { restartGraceMs: 300 } } },
};

