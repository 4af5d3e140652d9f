// Which instance holds each host's agent session. The instance that holds it is the one that
// decides for that host (online, offline, its command's lifecycle); the others only read. With
// one instance (SQLite) that is this process's memory. With several (PostgreSQL) it is a lease
// table renewed by its holder: a host whose instance died has a lease that runs out, and the
// supervisor (one instance at a time, by advisory lock) marks it offline.

export interface AgentPresence {
  /** Takes the host for this instance, from whoever held it. */
  claim(hostId: string): Promise<void>;
  /** Gives the host up, if this instance still holds it. */
  release(hostId: string): Promise<void>;
  /**
   * Renews the leases of the hosts this instance holds and answers those it lost (another
   * instance claimed them since): their sessions must close without marking them offline.
   */
  renew(hostIds: readonly string[]): Promise<string[]>;
  /**
   * Hosts whose agent session is alive on some instance (`live`), and hosts whose holder stopped
   * renewing (`lapsed`: its instance died), which can be marked offline at once.
   */
  sessions(): Promise<{ live: Set<string>; lapsed: Set<string> }>;
  /** Forgets a lapsed lease once its host is marked offline. */
  forget(hostId: string): Promise<void>;
  /** Whether this instance runs the supervisor and the pipelines now (takes the turn when it is free). */
  supervising(): Promise<boolean>;
  close(): Promise<void>;
}

/** One instance: presence is the set of sessions in this process. */
export class LocalPresence implements AgentPresence {
  private readonly held = new Set<string>();

  async claim(hostId: string): Promise<void> {
    this.held.add(hostId);
  }

  async release(hostId: string): Promise<void> {
    this.held.delete(hostId);
  }

  async renew(): Promise<string[]> {
    return [];
  }

  async sessions(): Promise<{ live: Set<string>; lapsed: Set<string> }> {
    return { live: new Set(this.held), lapsed: new Set() };
  }

  async forget(): Promise<void> {}

  async supervising(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.held.clear();
  }
}
