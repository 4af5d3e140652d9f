// A reconnect storm (200 clients in one process reconnecting at once after a restart) and a burst
// of get_state from all of them: the server encodes the full state once per version, however many
// ask, and every client converges.
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { startTestServer, tempDir, type TestServer } from '../support/test-server.js';
import { Fleet } from './fleet.js';
import { checkConvergence, checkHistory } from './invariants.js';
import { FaultSummary, scaled } from './summary.js';
import { Workload } from './workload.js';

const CLIENTS = 200;
const BEACON_MS = 200;
const CLIENT = { beaconIntervalMs: BEACON_MS, backoffBaseMs: 50, backoffCapMs: 250 };
const LIMIT_MS = 15_000;

const summary = new FaultSummary('storm');
const dataDir = tempDir('nixfleet-storm-');
let auth: Record<string, string> = {};
const fleet = new Fleet({ auth: () => auth, client: CLIENT });
let server: TestServer | null = null;

afterAll(async () => {
  for (const c of fleet.all) {
    summary.violations.push(...checkHistory(c.history));
    summary.addClientStats(c.sync.stats);
  }
  summary.clients = fleet.all.length;
  fleet.close();
  summary.print();
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
  expect(summary.violations).toEqual([]);
});

const bounds = { beaconMs: BEACON_MS, backoffCapMs: CLIENT.backoffCapMs };
const target = (s: TestServer) => ({ epoch: s.manager.epoch, version: s.manager.version, stateJson: s.manager.stateJson() });

async function converge(s: TestServer, since: number, label: string): Promise<number[]> {
  const results = await fleet.converge(target(s), since, LIMIT_MS, bounds);
  summary.violations.push(...checkConvergence(results, LIMIT_MS).map((v) => ({ ...v, message: `${label}: ${v.message}` })));
  return results.flatMap((r) => (r.ms === null ? [] : [r.ms]));
}

describe('many clients at once', () => {
  it(`${CLIENTS} clients reconnect at once after a restart (${scaled(3)} storms), then burst get_state`, { timeout: 20 * 60_000 }, async () => {
    const port = await freePort();
    const start = async () => {
      // Every client of the storm comes from 127.0.0.1: lift the per-address cap.
      server = await startTestServer({ dataDir, listenPort: port, beaconIntervalMs: BEACON_MS, maxConnectionsPerAddress: 100_000 });
      auth = server.authHeaders;
      return server;
    };
    let s = await start();
    const workload = new Workload(s.url, s.token);
    await workload.setup();
    for (let i = 0; i < 12; i++) await workload.write(i);
    fleet.add(s.wsUrl, CLIENTS);
    await converge(s, Date.now(), 'first connect');
    const stormMs: number[] = [];
    for (let storm = 0; storm < scaled(3); storm++) {
      await s.close();
      s = await start();
      const since = Date.now();
      const ms = await converge(s, since, `storm ${storm}`);
      stormMs.push(...ms);
      summary.convergeMs.push(...ms);
      summary.fault('restart with every client reconnecting');
      summary.schedules++;
      // No write happened since the restart: one version, however many inits were served.
      expect(s.hub.stats.connections).toBeGreaterThanOrEqual(CLIENTS);
      summary.stormEncodingsPerVersion.push(s.manager.stats.fullStateEncodings);
      expect(s.manager.stats.fullStateEncodings).toBe(1);
    }
    summary.extra.stormConvergeMaxMs = Math.max(...stormMs);
    summary.extra.stormConvergeP99Ms = [...stormMs].sort((a, b) => a - b)[Math.ceil(stormMs.length * 0.99) - 1]!;

    // A burst of get_state from every client, at one version and then across writes.
    const burstMs: number[] = [];
    for (let round = 0; round < 5; round++) {
      if (round > 0) await workload.write(round);
      const encodingsBefore = s.manager.stats.fullStateEncodings;
      const sentBefore = s.hub.stats.fullStatesSent;
      const since = Date.now();
      for (const c of fleet.clients) c.sync.resync('manual');
      summary.fault('get_state burst');
      burstMs.push(...(await converge(s, since, `burst ${round}`)));
      summary.extra.fullStatesSentInBursts = Number(summary.extra.fullStatesSentInBursts ?? 0) + s.hub.stats.fullStatesSent - sentBefore;
      // At most one encoding for the version written before the burst, none for the burst itself.
      expect(s.manager.stats.fullStateEncodings - encodingsBefore).toBeLessThanOrEqual(1);
    }
    summary.extra.burstConvergeMaxMs = Math.max(...burstMs);
    summary.acknowledged = workload.acks.length;
  });
});
