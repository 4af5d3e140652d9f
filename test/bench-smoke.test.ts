// Runs every benchmark under bench/ at a tiny size, so they cannot rot: each must finish and
// produce numbers. Not a performance test; the figures are meaningless at these sizes.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';

// @ts-expect-error -- plain ESM scripts without types
import { SMOKE } from '../bench/lib/smoke-sizes.mjs';

type Row = Record<string, unknown>;
const load = async (name: string): Promise<{ run: (options: unknown) => Promise<{ rows: Row[]; ratios?: Row[] }> }> => import(`../bench/${name}.mjs`);

function expectNumbers(row: Row, keys: string[]): void {
  for (const key of keys) {
    expect(typeof row[key], key).toBe('number');
    expect(Number.isFinite(row[key] as number), key).toBe(true);
  }
}

beforeAll(() => {
  // The benchmarks run the built server, like `npm run bench` does.
  if (!existsSync('dist/server/server.js') || !existsSync('dist/dashboard/index.html')) execSync('npm run build --silent', { stdio: 'inherit' });
}, 120_000);

describe('benchmarks at smoke size', () => {
  it('fan-out: ours, plain ws and Socket.IO deliver, with latency figures', async () => {
    const { rows, ratios } = await (await load('fanout')).run(SMOKE.fanout);
    expect(rows).toHaveLength(3);
    for (const row of rows) expectNumbers(row, ['deliveries/s', 'server CPU µs/delivery', 'p50 ms @20/s', 'p99 ms @100/s']);
    expectNumbers(ratios![0]!, ['nixfleet ÷ plain ws', 'nixfleet ÷ Socket.IO']);
  }, 60_000);

  it('memory: each peer in a fresh process reports RSS and heap per idle connection', async () => {
    const { rows } = await (await load('idle-memory')).run(SMOKE.memory);
    expect(rows).toHaveLength(3);
    for (const row of rows) expectNumbers(row, ['RSS MiB at 0', 'RSS KiB/conn', 'heap+external KiB/conn']);
  }, 60_000);

  it('writes: apply and HTTP, FULL and NORMAL', async () => {
    const { rows } = await (await load('writes')).run(SMOKE.writes);
    expect(rows).toHaveLength(6);
    for (const row of rows) expectNumbers(row, ['changes/s']);
  }, 60_000);

  it('reconnect storm: every client gets init, one full-state encoding per version, deflated once when on', async () => {
    const { rows } = await (await load('storm')).run(SMOKE.storm);
    expect(rows.map((r) => r.mode)).toEqual(['deflate+lean', 'deflate+ws', 'plain+lean', 'plain+ws']);
    for (const row of rows) {
      expectNumbers(row, ['all live s (median)', 'peak RSS MiB', ...(String(row.mode).endsWith('lean') ? ['init KiB on the wire'] : [])]);
      expect(row['inits received']).toBe(String(SMOKE.storm.clients));
      expect(row['encodings / deflations / versions']).toBe(String(row.mode).startsWith('deflate') ? '1/1/1' : '1/0/1');
    }
    // Deflated, the init on the wire is a fraction of the plain one.
    expect(rows[0]!['init KiB on the wire']).toBeLessThan((rows[2]!['init KiB on the wire'] as number) / 4);
  }, 90_000);

  it('chromium baseline: a blank page receives every message on the main thread and in a Worker', async () => {
    const { rows } = await (await load('chromium-baseline')).run(SMOKE.chromium);
    expect(rows.map((r) => r.socket)).toEqual(['main thread', 'dedicated Worker']);
    for (const row of rows) {
      expectNumbers(row, ['messages/s', 'frame interval p95 ms']);
      expect(row.received).toBe(row.sent);
    }
  }, 60_000);

  it('agents: every agent registers and beats, the browsers time stamped heartbeats and converge on the server state', async () => {
    const { rows, details } = (await (await load('agents')).run(SMOKE.agents)) as unknown as { rows: Row[]; details: Array<{ unexpectedCloses: Record<string, number>; stamps: number }> };
    expect(rows).toHaveLength(SMOKE.agents.cases.length);
    for (const [i, row] of rows.entries()) {
      expectNumbers(row, ['heartbeats/s', 'server CPU % of a core', 'changes/s', 'commits/s', 'p50 ms', 'p99 ms']);
      expect(row['agents online']).toBe(`${row.agents}/${row.agents}`);
      expect(row['browsers converged']).toBe(`${SMOKE.agents.browsers}/${SMOKE.agents.browsers}`);
      expect(details[i]!.stamps).toBeGreaterThan(0);
      expect(details[i]!.unexpectedCloses).toEqual({});
    }
  }, 90_000);

  it('output flood: the stored log stops at the cap with its marker; every browser ends with success and the same tail', async () => {
    const { rows } = await (await load('output-flood')).run(SMOKE.outputFlood);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expectNumbers(row, ['agent send s', 'success s', 'baseline RSS MiB', 'peak RSS MiB', 'changes']);
    expect(row['stored = cap + marker']).toBe(true);
    expect(row['cap marker at the end']).toBe(true);
    expect(row['browsers success + same tail']).toBe(`${SMOKE.outputFlood.browsers}/${SMOKE.outputFlood.browsers}`);
  }, 90_000);

  it('browser: the dashboard renders frames and catches up, socket in its worker and on the page', async () => {
    const { rows } = await (await load('browser')).run(SMOKE.browser);
    expect(rows.map((row) => row.socket)).toEqual(['worker', 'page']);
    for (const row of rows) expectNumbers(row, ['frame interval p95 ms', 'caught up after stop ms']);
    expectNumbers(rows[0]!, ['frames per worker post']);
  }, 90_000);
});
