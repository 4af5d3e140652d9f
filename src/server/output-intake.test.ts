// The output intake on a real StateManager and SQLite store: the byte cap holds under concurrent
// chunks and across a restart, the cut falls between characters with one marker, and each
// writer's rate is a token bucket that refuses without taking anything.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from './config.js';
import { commandStarted, defaultActionContext, hostAdded } from './fleet-actions.js';
import { cutMarker, OutputIntake, OutputRateLimitedError, prefixWithin } from './output-intake.js';
import { StateManager } from './state-manager.js';
import { SqliteStore } from './store/sqlite-store.js';

const KiB = 1024;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function open(dataDir: string): Promise<StateManager> {
  const manager = await StateManager.open(new SqliteStore({ dataDir }), { limits: DEFAULT_CONFIG.limits });
  cleanups.push(() => manager.close());
  return manager;
}

async function withCommand(): Promise<{ manager: StateManager; commandId: string; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nixfleet-output-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const manager = await open(dataDir);
  await manager.apply(hostAdded({ hostname: 'web-1', host_type: 'nixos', status: 'online', last_seen: null, agent_version: null, generation: null, os_version: null, nixpkgs_version: null, metrics: null, compartments: {} }, defaultActionContext));
  const started = commandStarted({ host_id: 'web-1', op: 'switch', pipeline_id: null }, defaultActionContext);
  await manager.apply(started);
  return { manager, commandId: started.command.id, dataDir };
}

async function storedLog(manager: StateManager, commandId: string): Promise<string> {
  let log = '';
  for (let after = 0, page; (page = await manager.readCommandOutput(commandId, after, 100)).length > 0; after = page.at(-1)!.version) log += page.map((p) => p.chunk).join('');
  return log;
}

describe('OutputIntake', () => {
  it('holds the cap when many chunks race for the last bytes, with exactly one marker', async () => {
    const { manager, commandId } = await withCommand();
    const intake = await OutputIntake.open(manager, { maxBytesPerCommand: 100 * KiB, bytesPerSecond: 1024 * KiB });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => intake.append('token:a', commandId, `${i}`.padEnd(30 * KiB, 'x'))));
    const log = await storedLog(manager, commandId);
    const marker = cutMarker(100 * KiB);
    expect(log.split(marker)).toHaveLength(2);
    expect(log.endsWith(marker)).toBe(true);
    expect(Buffer.byteLength(log) - Buffer.byteLength(marker)).toBe(100 * KiB);
    expect(answers.reduce((sum, a) => sum + a.kept, 0)).toBe(100 * KiB);
    expect(answers.filter((a) => a.cut).length).toBe(20 - 3);
    intake.close();
  });

  it('remembers a full log across a restart, from the store', async () => {
    const { manager, commandId, dataDir } = await withCommand();
    const first = await OutputIntake.open(manager, { maxBytesPerCommand: 10 * KiB, bytesPerSecond: 1024 * KiB });
    await first.append('token:a', commandId, 'y'.repeat(6 * KiB));
    first.close();
    await manager.close();
    const reopened = await open(dataDir);
    const second = await OutputIntake.open(reopened, { maxBytesPerCommand: 10 * KiB, bytesPerSecond: 1024 * KiB });
    expect(await second.append('token:a', commandId, 'z'.repeat(6 * KiB))).toMatchObject({ kept: 4 * KiB, cut: true });
    expect(await second.append('token:a', commandId, 'w')).toMatchObject({ kept: 0, cut: true, version: reopened.version });
    expect(Buffer.byteLength(await storedLog(reopened, commandId))).toBe(10 * KiB + Buffer.byteLength(cutMarker(10 * KiB)));
    second.close();
  });

  it('writes only the marker when a chunk ends exactly at the cap and more comes', async () => {
    const { manager, commandId } = await withCommand();
    const intake = await OutputIntake.open(manager, { maxBytesPerCommand: 4 * KiB, bytesPerSecond: 1024 * KiB });
    expect(await intake.append('u', commandId, 'a'.repeat(4 * KiB))).toMatchObject({ kept: 4 * KiB, cut: false });
    expect(await intake.append('u', commandId, 'b')).toMatchObject({ kept: 0, cut: true });
    expect(await storedLog(manager, commandId)).toBe('a'.repeat(4 * KiB) + cutMarker(4 * KiB));
    intake.close();
  });

  it('refuses a writer over its rate without taking the chunk, and refills with time', async () => {
    const { manager, commandId } = await withCommand();
    let now = 0;
    const intake = await OutputIntake.open(manager, { maxBytesPerCommand: 64 * 1024 * KiB, bytesPerSecond: 1024 * KiB, now: () => now });
    // The burst is two seconds' worth: 8 chunks of 256 KiB.
    for (let i = 0; i < 8; i++) await intake.append('token:a', commandId, 'c'.repeat(256 * KiB));
    const refused = await intake.append('token:a', commandId, 'c'.repeat(256 * KiB)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OutputRateLimitedError);
    expect((refused as OutputRateLimitedError).retryAfterMs).toBe(250);
    // Another writer has its own budget.
    expect((await intake.append('token:b', commandId, 'd')).kept).toBe(1);
    now += 250;
    expect((await intake.append('token:a', commandId, 'c'.repeat(256 * KiB))).kept).toBe(256 * KiB);
    intake.close();
  });
});

describe('prefixWithin', () => {
  // 'aé✓😀' is 1 + 2 + 3 + 4 bytes of UTF-8.
  it.each([
    [1, 'a'],
    [2, 'a'],
    [3, 'aé'],
    [9, 'aé✓'],
    [10, 'aé✓😀'],
    [0, ''],
  ])('cuts UTF-8 between characters, never inside one: %i bytes keep %j', (bytes, kept) => {
    expect(prefixWithin('aé✓😀', bytes)).toBe(kept);
  });
});
