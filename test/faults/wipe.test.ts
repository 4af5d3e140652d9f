// Restarts on a wiped store (a new epoch) and on the same store, with 5 recording clients across
// all of them: Epoch safety (the first state of a new epoch is exactly the server's, nothing of
// the old one survives, an old epoch never returns), the other history invariants, convergence.
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { startTestServer, tempDir, type TestServer } from '../support/test-server.js';
import { Fleet } from './fleet.js';
import { checkConvergence, checkHistory } from './invariants.js';
import { follow, newOracle } from './oracle.js';
import { FaultSummary, scaled } from './summary.js';
import { Workload } from './workload.js';

const BEACON_MS = 100;
const CLIENT = { beaconIntervalMs: BEACON_MS, backoffBaseMs: 50, backoffCapMs: 250, silenceTimeoutMs: 600, resyncTimeoutMs: 500 };
const LIMIT_MS = 5000;

const summary = new FaultSummary('wipe');
const dataDir = tempDir('nixfleet-wipe-');
const oracle = newOracle();
let auth: Record<string, string> = {};
const fleet = new Fleet({ auth: () => auth, recordStates: true, client: CLIENT });

afterAll(() => {
  for (const c of fleet.all) {
    summary.violations.push(...checkHistory(c.history, oracle));
    summary.addClientStats(c.sync.stats);
  }
  summary.clients = fleet.all.length;
  summary.extra.epochsSeen = new Set(fleet.all.flatMap((c) => c.history.entries.map((e) => e.epoch))).size;
  fleet.close();
  summary.print();
  rmSync(dataDir, { recursive: true, force: true });
  expect(summary.violations).toEqual([]);
});

describe('restarts on a wiped store', () => {
  it(`${scaled(50)} wiped-store restarts (and one same-store restart after every fourth)`, { timeout: 30 * 60_000 }, async () => {
    const port = await freePort();
    let server: TestServer | null = null;
    let wipes = 0;
    for (let cycle = 0; wipes < scaled(50); cycle++) {
      server = await startTestServer({ dataDir, listenPort: port, beaconIntervalMs: BEACON_MS, limits: { events: 20, commands: 5, pipelines: 5, output_tail: 256 } });
      auth = server.authHeaders;
      const detach = follow(oracle, server.manager);
      const since = Date.now();
      if (fleet.clients.length === 0) fleet.add(server.wsUrl, 5);
      const workload = new Workload(server.url, server.token);
      await workload.setup();
      for (let i = 0; i < 4; i++) await workload.write(i + cycle);
      const m = server.manager;
      const results = await fleet.converge({ epoch: m.epoch, version: m.version, stateJson: m.stateJson() }, since, LIMIT_MS, { beaconMs: BEACON_MS, backoffCapMs: CLIENT.backoffCapMs });
      for (const r of results) {
        if (r.ms === null) continue;
        summary.convergeMs.push(r.ms);
        if (r.ms > r.boundMs + 50) summary.overSpecBound++;
      }
      summary.violations.push(...checkConvergence(results, LIMIT_MS));
      summary.acknowledged += workload.acks.length;
      summary.schedules++;
      await server.close();
      detach();
      const wipe = cycle % 5 !== 4;
      summary.fault(wipe ? 'restart on a wiped store' : 'restart on the same store');
      if (wipe) rmSync(dataDir, { recursive: true, force: true });
      if (wipe) wipes++;
    }
    rmSync(server!.dataDir, { recursive: true, force: true });
  });
});
