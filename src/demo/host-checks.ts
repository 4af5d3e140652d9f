// What a host's compartment checks report (git, lock, system, tests), derived from the commit it
// pulled, the one it runs and its last test run; ops move those and mark checks `working`.
import { COMPARTMENT_NAMES, type Compartment, type Host } from '../protocol/schema.js';
import type { FleetRepo } from './fleet-repo.js';
import type { DemoOp, Outcome } from './output-lines.js';
import type { Rng } from './random.js';

export type CompartmentName = (typeof COMPARTMENT_NAMES)[number];
type CompartmentView = Pick<Compartment, 'status' | 'message'>;

const TOUCHES: Record<DemoOp, CompartmentName[]> = {
  pull: ['git', 'lock'],
  switch: ['system'],
  'pull-switch': ['git', 'lock', 'system'],
  test: ['tests'],
  rollback: ['system'],
  restart: [],
  stop: [],
  reboot: [],
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
  systemCommit: string;
  private previousSystem: string;
  private testsRan: boolean;
  private readonly failures: Partial<Record<CompartmentName, string>> = {};
  private readonly working = new Set<CompartmentName>();
  /** Status and message as last reported, so only changes are sent. */
  private readonly reported = new Map<CompartmentName, string>();

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

  get gitOutdated(): boolean {
    return this.repo.behind(this.repoCommit) > 0;
  }

  get systemOutdated(): boolean {
    return this.systemCommit !== this.repoCommit;
  }

  /** Continues from what an existing host last reported. */
  adopt(host: Host): void {
    if (host.generation) {
      this.systemCommit = host.generation;
      this.repoCommit = host.compartments.system.status === 'outdated' ? this.repo.head.hash : host.generation;
    }
    this.testsRan = host.compartments.tests.status !== 'unknown';
    if (host.compartments.tests.status === 'error') this.failures.tests = host.compartments.tests.message || 'checks failed';
    for (const name of COMPARTMENT_NAMES) this.reported.set(name, key(host.compartments[name]));
  }

  plan(op: DemoOp): OpPlan {
    const target = this.repo.head.hash;
    const pulls = op === 'pull' || op === 'pull-switch';
    const to = pulls ? target : op === 'switch' ? this.repoCommit : op === 'rollback' ? this.previousSystem : this.systemCommit;
    return { from: pulls ? this.repoCommit : this.systemCommit, to, target };
  }

  /** Marks the checks `op` affects as working. */
  begin(op: DemoOp): void {
    for (const name of TOUCHES[op]) this.working.add(name);
  }

  /** Ends the working state; a finished op (not a cancelled one) moves commits and failures. */
  end(op: DemoOp, outcome: Outcome | null, plan: OpPlan): void {
    this.working.clear();
    if (outcome === null) return;
    const failure = outcome === 'timeout' ? 'timed out' : null;
    switch (op) {
      case 'pull':
        if (outcome === 'success') {
          this.repoCommit = plan.target;
          delete this.failures.git;
        } else this.failures.git = failure ?? 'fetch failed: could not resolve github.com';
        break;
      case 'pull-switch':
        this.repoCommit = plan.target;
        delete this.failures.git;
        this.switched(outcome, failure);
        break;
      case 'switch':
        this.switched(outcome, failure);
        break;
      case 'test':
        this.testsRan = true;
        if (outcome === 'success') delete this.failures.tests;
        else this.failures.tests = failure ?? '1 check failed';
        break;
      case 'rollback':
        if (outcome === 'success') [this.systemCommit, this.previousSystem] = [this.previousSystem, this.systemCommit];
        break;
      case 'restart':
      case 'stop':
      case 'reboot':
        break;
    }
  }

  /** Checks whose status or message changed since last reported (every one when `all`). */
  changed(now: string, all = false): Record<CompartmentName, Compartment> | undefined {
    const changed: Partial<Record<CompartmentName, Compartment>> = {};
    for (const name of COMPARTMENT_NAMES) {
      const view = this.view(name);
      if (!all && this.reported.get(name) === key(view)) continue;
      this.reported.set(name, key(view));
      changed[name] = { ...view, checked_at: now };
    }
    return Object.keys(changed).length > 0 ? (changed as Record<CompartmentName, Compartment>) : undefined;
  }

  /** Forgets what was reported (the report may not have arrived): the next one sends all. */
  unreported(): void {
    this.reported.clear();
  }

  private switched(outcome: Outcome, failure: string | null): void {
    if (outcome === 'success') {
      if (this.systemCommit !== this.repoCommit) this.previousSystem = this.systemCommit;
      this.systemCommit = this.repoCommit;
      delete this.failures.system;
    } else {
      this.failures.system = failure ?? 'build failed: 1 derivation failed';
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
        return this.systemOutdated
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
