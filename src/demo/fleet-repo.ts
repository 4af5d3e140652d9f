// The fleet's configuration repository as the simulation imagines it: a linear history of
// commits on main. Hosts compare what they pulled and activated against its head.
import { COMMIT_MESSAGES } from './names.js';
import type { Rng } from './random.js';

export interface RepoCommit {
  hash: string;
  message: string;
  touchesLock: boolean;
}

export class FleetRepo {
  private readonly history: RepoCommit[] = [];

  constructor(private readonly rng: Rng, initialCommits = 3) {
    for (let i = 0; i < initialCommits; i++) this.commit();
  }

  get head(): RepoCommit {
    return this.history[this.history.length - 1]!;
  }

  /** The commit `back` steps behind head (or the oldest one known). */
  ancestor(back: number): RepoCommit {
    return this.history[Math.max(0, this.history.length - 1 - back)]!;
  }

  /** Pushes a new commit to main and returns it. */
  commit(): RepoCommit {
    const message = this.rng.pick(COMMIT_MESSAGES);
    const commit = { hash: this.rng.gitHash(), message, touchesLock: message.startsWith('flake.lock') };
    this.history.push(commit);
    return commit;
  }

  /** Makes `hash` (what reused hosts run) the head, as if it were the last commit seen. */
  adoptHead(hash: string): void {
    if (this.history.some((c) => c.hash === hash)) return;
    this.history.push({ hash, message: 'deployed before this run', touchesLock: false });
  }

  /** Commits between `hash` and head; a hash this run never saw counts as one behind. */
  behind(hash: string): number {
    const index = this.history.findIndex((c) => c.hash === hash);
    if (index < 0) return hash === this.head.hash ? 0 : 1;
    return this.history.length - 1 - index;
  }

  /** Whether a commit after `hash` changed flake.lock. */
  lockBehind(hash: string): boolean {
    const index = this.history.findIndex((c) => c.hash === hash);
    if (index < 0) return false;
    return this.history.slice(index + 1).some((c) => c.touchesLock);
  }
}
