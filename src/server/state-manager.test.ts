// StateManager over a real SQLite store, with a store wrapper that injects slow and failing
// commits: group commit, atomic groups, version order with an asynchronous store, and a
// failed commit that leaves no trace.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toFullState, type Change } from '../protocol/index.js';
import { DEFAULT_CONFIG } from './config.js';
import { ChangeRejectedError, StateManager } from './state-manager.js';
import { SqliteStore } from './store/sqlite-store.js';
import { StoreError, type ChangeRecord, type OutputChunk, type Store, type StoredState } from './store/store.js';

/** Delegates to a real store; can delay commits (like a network database) or fail the next one. */
class FaultyStore implements Store {
  failNext = 0;
  delayMs = 0;
  readonly commits: number[][] = [];
  constructor(private readonly inner: Store) {}
  open(initial: string): Promise<StoredState> {
    return this.inner.open(initial);
  }
  async commit(records: readonly ChangeRecord[]): Promise<void> {
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, Math.random() * this.delayMs));
    if (this.failNext > 0) {
      this.failNext--;
      throw new StoreError('store_commit_failed', 'injected: disk full');
    }
    await this.inner.commit(records);
    this.commits.push(records.map((r) => r.version));
  }
  saveSnapshot(version: number, json: string): Promise<void> {
    return this.inner.saveSnapshot(version, json);
  }
  readChanges(after: number): Promise<ChangeRecord[]> {
    return this.inner.readChanges(after);
  }
  readCommandOutput(id: string, after: number, max: number): Promise<OutputChunk[]> {
    return this.inner.readCommandOutput(id, after, max);
  }
  commandOutputBytes(ids: readonly string[]): Promise<Map<string, number>> {
    return this.inner.commandOutputBytes(ids);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const dirs: string[] = [];
const managers: StateManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(dir?: string): Promise<{ manager: StateManager; store: FaultyStore; dir: string }> {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'nixfleet-sm-'));
  if (!dir) dirs.push(dataDir);
  const store = new FaultyStore(new SqliteStore({ dataDir }));
  const manager = await StateManager.open(store, { limits: DEFAULT_CONFIG.limits });
  managers.push(manager);
  return { manager, store, dir: dataDir };
}

const T = '2026-01-01T00:00:00.000Z';
const compartment = { status: 'unknown' as const, message: '', checked_at: null };
function host(id: string): Change {
  return {
    type: 'host_added',
    host: { id, hostname: id, host_type: 'nixos', status: 'unknown', last_seen: null, agent_version: null, generation: null, os_version: null, nixpkgs_version: null, metrics: null, pending_command: null, compartments: { git: compartment, lock: compartment, system: compartment, tests: compartment }, created_at: T },
  };
}
function command(id: string, hostId: string): Change {
  return { type: 'command_started', command: { id, host_id: hostId, op: 'switch', status: 'running', created_at: T, started_at: T, finished_at: null, exit_code: null, pipeline_id: null, output: '', output_size: 0, sent_at: null, pid: null, stop_requested_at: null, output_seq: 0 } };
}

describe('StateManager', () => {
  describe('#apply', () => {
    it('commits the changes of one event-loop turn in one transaction, versions in call order', async () => {
      const { manager, store } = await open();
      const versions = await Promise.all(Array.from({ length: 50 }, (_, i) => manager.apply(host(`h${i}`))));
      expect(versions).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(store.commits).toHaveLength(1);
      expect(manager.version).toBe(50);
    });

    it('validates each change against the earlier ones of its batch', async () => {
      const { manager } = await open();
      await manager.apply(host('a'));
      const [first, second] = await Promise.allSettled([manager.apply(command('c1', 'a')), manager.apply(command('c2', 'a'))]);
      expect(first).toEqual({ status: 'fulfilled', value: 2 });
      expect(second.status).toBe('rejected');
      expect((second as PromiseRejectedResult).reason).toBeInstanceOf(ChangeRejectedError);
      expect((second as PromiseRejectedResult).reason.code).toBe('conflict');
      expect(manager.version).toBe(2);
    });

    it('rejects a malformed change before it is queued', async () => {
      const { manager } = await open();
      await expect(manager.apply({ type: 'host_removed' } as unknown as Change)).rejects.toMatchObject({ code: 'invalid', message: /id/ });
      await expect(manager.apply({ type: 'teleport' } as unknown as Change)).rejects.toMatchObject({ code: 'invalid' });
      expect(manager.version).toBe(0);
    });
  });

  describe('#applyAll', () => {
    it('applies a group atomically: a rejected member undoes the group, other callers are unaffected', async () => {
      const { manager } = await open();
      const group = manager.applyAll([host('x'), host('y'), { type: 'host_removed', id: 'nope' }]);
      const other = manager.apply(host('z'));
      await expect(group).rejects.toMatchObject({ code: 'not_found' });
      expect(await other).toBe(1);
      expect([...manager.state.hosts.keys()]).toEqual(['z']);
      // The working state forgot x and y too: adding them now works.
      expect(await manager.applyAll([host('x'), host('y')])).toBe(3);
    });
  });

  describe('with an asynchronous store', () => {
    it('publishes strictly in version order whatever the commit latency', async () => {
      const { manager, store } = await open();
      store.delayMs = 5;
      const seen: number[] = [];
      manager.subscribe((record) => seen.push(record.version));
      const all: Promise<number>[] = [];
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 5; i++) all.push(manager.apply(host(`r${round}-${i}`)));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 4));
      }
      await Promise.all(all);
      expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      expect(store.commits.flat()).toEqual(seen);
    });
  });

  describe('when a commit fails', () => {
    it('rejects that batch, applies nothing, and goes on with the next one', async () => {
      const { manager, store, dir } = await open();
      await manager.apply(host('a'));
      const before = manager.stateJson();
      const seen: number[] = [];
      manager.subscribe((record) => seen.push(record.version));
      store.failNext = 1;
      const failed = await Promise.allSettled([manager.apply(host('b')), manager.apply(command('c1', 'a'))]);
      expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect((failed[0] as PromiseRejectedResult).reason).toBeInstanceOf(StoreError);
      expect(manager.version).toBe(1);
      expect(manager.stateJson()).toBe(before);
      expect(seen).toEqual([]);
      // The failed changes left nothing behind in the working state either.
      expect(await manager.apply(command('c1', 'a'))).toBe(2);
      expect(await manager.apply(host('b'))).toBe(3);
      expect(seen).toEqual([2, 3]);

      const state = toFullState(manager.state);
      await manager.close();
      managers.splice(managers.indexOf(manager), 1);
      const reopened = await open(dir);
      expect(reopened.manager.version).toBe(3);
      expect(toFullState(reopened.manager.state)).toEqual(state);
    });
  });

  describe('#close', () => {
    it('commits what was accepted before close, then refuses new changes', async () => {
      const { manager, dir } = await open();
      const pending = [manager.apply(host('a')), manager.apply(host('b'))];
      await manager.close();
      managers.splice(managers.indexOf(manager), 1);
      expect(await Promise.all(pending)).toEqual([1, 2]);
      await expect(manager.apply(host('c'))).rejects.toMatchObject({ code: 'closed' });
      await manager.close();
      const reopened = await open(dir);
      expect(reopened.manager.version).toBe(2);
    });
  });
});
