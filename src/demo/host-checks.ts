// What a simulated host's compartment checks say (git, lock, system, tests), derived from the
// commit it pulled, the one it runs and its last test run; ops move those and mark the checks
// they touch `working`. Its agent reports them in every heartbeat's `update_status`.
import type { WireCompartment, WireUpdateStatus } from '../protocol/agent-wire.js';
import { COMPARTMENT_NAMES, type Compartment, type Host } from '../protocol/schema.js';
import type { FleetRepo } from './fleet-repo.js';
import type { Outcome } from './output-lines.js';
import type { Rng } from './random.js';

export type CompartmentName = (typeof COMPARTMENT_NAMES)[number];
type CompartmentView = Pick<Compartment, 'status' | 'message'>;

const TOUCHES: Readonly<Record<string, readonly CompartmentName[]>> = {
  pull: ['git', 'lock'],
  switch: ['system'],
  'pull-switch': ['git', 'lock', 'system'],
  test: ['tests'],
  rollback: ['system'],
};

const WORKING_MESSAGE: Record<CompartmentName, string> = {
  git: 'pulling origin/main…',
  lock: 'checking flake inputs…',
  system: 'building and activating…',
  tests: 'running checks…',
};

/** The commits an op starts from and moves to, as its output shows them. */
export interface OpPlan {
  from: string;
  to: string;
  /** Head of main when the op began: what a pull brings in. */
  target: string;
}

export class HostChecks {
  repoCommit: string;
  /** The generation the host runs. */
  systemCommit: string;
  private previousSystem: string;
  private testsRan: boolean;
  private readonly failures: Partial<Record<CompartmentName, string>> = {};
  private readonly working = new Set<CompartmentName>();
  /** Each check's last view and when it took it: a check keeps its time until its verdict changes. */
  private readonly checked = new Map<CompartmentName, { key: string; at: string }>();

  constructor(
    private readonly repo: FleetRepo,
    rng: Rng,
  ) {
    // Most hosts start current; some have not pulled the last commit, some have not switched.
    const roll = rng.next();
    this.repoCommit = roll < 0.15 ? repo.ancestor(1).hash : repo.head.hash;
    this.systemCommit = roll > 0.85 ? repo.ancestor(1).hash : this.repoCommit;
    this.previousSystem = repo.ancestor(2).hash;
    this.testsRan = rng.chance(0.8);
  }

  /** Continues from what an existing host last reported (a second demo run on the same store). */
  adopt(host: Host): void {
    if (host.generation) {
      this.systemCommit = host.generation;
      this.repoCommit = host.compartments.system.status === 'outdated' ? this.repo.head.hash : host.generation;
    }
    this.testsRan = host.compartments.tests.status !== 'unknown';
    if (host.compartments.tests.status === 'error') this.failures.tests = host.compartments.tests.message || 'checks failed';
    for (const name of COMPARTMENT_NAMES) {
      const { checked_at } = host.compartments[name];
      if (checked_at) this.checked.set(name, { key: key(host.compartments[name]), at: checked_at });
    }
  }

  plan(op: string): OpPlan {
    const target = this.repo.head.hash;
    const pulls = op === 'pull' || op === 'pull-switch';
    const to = pulls ? target : op === 'switch' ? this.repoCommit : op === 'rollback' ? this.previousSystem : this.systemCommit;
    return { from: pulls ? this.repoCommit : this.systemCommit, to, target };
  }

  /** Marks the checks `op` affects as working. */
  begin(op: string): void {
    for (const name of TOUCHES[op] ?? []) this.working.add(name);
  }

  /** Ends the working state; a finished op (`null`: stopped, which changes nothing) moves commits and failures. */
  end(op: string, outcome: Outcome | null, plan: OpPlan): void {
    this.working.clear();
    if (outcome === null) return;
    switch (op) {
      case 'pull':
        if (outcome === 'success') {
          this.repoCommit = plan.target;
          delete this.failures.git;
        } else this.failures.git = 'fetch failed: could not resolve github.com';
        break;
      case 'pull-switch':
        // Its pull part always succeeds (output-lines.ts): a failure is the build's.
        this.repoCommit = plan.target;
        delete this.failures.git;
        this.switched(outcome);
        break;
      case 'switch':
        this.switched(outcome);
        break;
      case 'test':
        this.testsRan = true;
        if (outcome === 'success') delete this.failures.tests;
        else this.failures.tests = '1 check failed';
        break;
      case 'rollback':
        if (outcome === 'success') [this.systemCommit, this.previousSystem] = [this.previousSystem, this.systemCommit];
        break;
    }
  }

  /** The four checks as a heartbeat's `update_status`, each with the time its verdict last changed. */
  updateStatus(now: Date): WireUpdateStatus {
    const status: Partial<Record<CompartmentName, WireCompartment>> = {};
    for (const name of COMPARTMENT_NAMES) {
      const view = this.view(name);
      let checked = this.checked.get(name);
      if (checked?.key !== key(view)) this.checked.set(name, (checked = { key: key(view), at: now.toISOString() }));
      status[name] = { status: view.status, message: view.message, checked_at: checked.at };
    }
    return status;
  }

  private switched(outcome: Outcome): void {
    if (outcome === 'success') {
      if (this.systemCommit !== this.repoCommit) this.previousSystem = this.systemCommit;
      this.systemCommit = this.repoCommit;
      delete this.failures.system;
    } else {
      this.failures.system = 'build failed: 1 derivation failed';
    }
  }

  private view(name: CompartmentName): CompartmentView {
    if (this.working.has(name)) return { status: 'working', message: WORKING_MESSAGE[name] };
    const failure = this.failures[name];
    if (failure) return { status: 'error', message: failure };
    switch (name) {
      case 'git': {
        const behind = this.repo.behind(this.repoCommit);
        return behind > 0 ? { status: 'outdated', message: `behind origin/main by ${behind} commit${behind > 1 ? 's' : ''}` } : { status: 'ok', message: `at ${this.repoCommit}, up to date` };
      }
      case 'lock':
        return this.repo.lockBehind(this.repoCommit) ? { status: 'outdated', message: 'flake.lock behind origin/main (nixpkgs)' } : { status: 'ok', message: 'flake inputs match origin/main' };
      case 'system':
        return this.systemCommit !== this.repoCommit
          ? { status: 'outdated', message: `running ${this.systemCommit}, configuration at ${this.repoCommit}` }
          : { status: 'ok', message: `generation ${this.systemCommit} active` };
      case 'tests':
        return this.testsRan ? { status: 'ok', message: 'all checks passed' } : { status: 'unknown', message: 'not run yet' };
    }
  }
}

function key(view: CompartmentView): string {
  return `${view.status}\u0000${view.message}`;
}
