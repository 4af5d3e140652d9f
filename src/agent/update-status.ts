// The `update_status` of the heartbeat: what the agent learnt from the ops that check things.
// `test` sets tests, refresh-lock/refresh-system set lock/system, refresh-all both. `git` stays
// empty, as in the original, whose dashboard computes that compartment itself. An embedder with
// its own view of the checks (the demo's simulated hosts) passes an UpdateStatusSource instead.
import type { WireCompartment, WireUpdateStatus } from '../protocol/agent-wire.js';
import { OUTDATED_EXIT_CODE } from './ops.js';

type Compartment = 'lock' | 'system' | 'tests';

const COMPARTMENTS_OF_OP: Readonly<Record<string, readonly Compartment[]>> = {
  test: ['tests'],
  'refresh-lock': ['lock'],
  'refresh-system': ['system'],
  'refresh-all': ['lock', 'system'],
};

const NEVER_CHECKED: WireCompartment = { status: '', message: '', checked_at: '' };

/** What a heartbeat reports as `update_status`, asked at every heartbeat. */
export interface UpdateStatusSource {
  payload(): WireUpdateStatus | null;
}

export class UpdateStatus implements UpdateStatusSource {
  private readonly learnt = new Map<Compartment, WireCompartment>();

  /** Records what a finished op says; ops that check nothing are ignored. */
  record(op: string, exitCode: number, message: string, at: Date): void {
    const status = exitCode === 0 ? 'ok' : exitCode === OUTDATED_EXIT_CODE && op !== 'test' ? 'outdated' : 'error';
    for (const compartment of COMPARTMENTS_OF_OP[op] ?? []) {
      this.learnt.set(compartment, { status, message, checked_at: at.toISOString() });
    }
  }

  /** null until an op has checked something, as the Go agent sends an unset pointer. */
  payload(): WireUpdateStatus | null {
    if (this.learnt.size === 0) return null;
    return {
      git: { ...NEVER_CHECKED },
      lock: this.learnt.get('lock') ?? { ...NEVER_CHECKED },
      system: this.learnt.get('system') ?? { ...NEVER_CHECKED },
      tests: this.learnt.get('tests') ?? { ...NEVER_CHECKED },
    };
  }
}
