// Agent presence shared through PostgreSQL (agent-presence.ts says why): a lease row per host
// names the instance holding its session until `expires_at`. The holder renews its leases every
// second; a newer claim from another instance takes the row, and the old holder learns it on its
// next renewal. The supervisor's turn is a session-level advisory lock on a connection of its
// own: it passes to another instance when its holder's connection dies with it.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { AgentPresence } from './agent-presence.js';

/** Advisory lock key of the supervisor's turn ("nxfsupv" as a number). */
const SUPERVISOR_LOCK = 0x6e786673757076;

export class PgPresence implements AgentPresence {
  readonly instance = randomUUID();
  private lockClient: pg.Client | null = null;
  private holdsLock = false;
  private asking: Promise<boolean> | null = null;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: { connectionString: string; leaseTtlMs: number; logger: Logger },
  ) {}

  async claim(hostId: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO agent_leases (host_id, instance, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
       ON CONFLICT (host_id) DO UPDATE SET instance = EXCLUDED.instance, expires_at = EXCLUDED.expires_at`,
      [hostId, this.instance, this.options.leaseTtlMs],
    );
  }

  async release(hostId: string): Promise<void> {
    await this.pool.query('DELETE FROM agent_leases WHERE host_id = $1 AND instance = $2', [hostId, this.instance]);
  }

  async renew(hostIds: readonly string[]): Promise<string[]> {
    if (hostIds.length === 0) return [];
    const { rows } = await this.pool.query<{ host_id: string }>(
      `UPDATE agent_leases SET expires_at = now() + $3 * interval '1 millisecond' WHERE instance = $1 AND host_id = ANY($2) RETURNING host_id`,
      [this.instance, hostIds, this.options.leaseTtlMs],
    );
    const kept = new Set(rows.map((row) => row.host_id));
    return hostIds.filter((id) => !kept.has(id));
  }

  async sessions(): Promise<{ live: Set<string>; lapsed: Set<string> }> {
    const { rows } = await this.pool.query<{ host_id: string; live: boolean }>('SELECT host_id, expires_at > now() AS live FROM agent_leases');
    const live = new Set<string>();
    const lapsed = new Set<string>();
    for (const row of rows) (row.live ? live : lapsed).add(row.host_id);
    return { live, lapsed };
  }

  async forget(hostId: string): Promise<void> {
    await this.pool.query('DELETE FROM agent_leases WHERE host_id = $1 AND expires_at <= now()', [hostId]);
  }

  supervising(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.holdsLock && this.lockClient) return Promise.resolve(true);
    // The supervisor and the pipeline runner both ask: one attempt at a time, or two could each
    // open a connection and the lock end up on one that is then dropped.
    this.asking ??= this.takeTurn().finally(() => (this.asking = null));
    return this.asking;
  }

  private async takeTurn(): Promise<boolean> {
    try {
      if (!this.lockClient) {
        const client = new pg.Client({ connectionString: this.options.connectionString });
        client.on('error', (error) => {
          this.options.logger.warn('supervisor lock connection lost', { error: error.message });
          this.holdsLock = false;
          if (this.lockClient === client) this.lockClient = null;
        });
        await client.connect();
        this.lockClient = client;
      }
      const { rows } = await this.lockClient.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [SUPERVISOR_LOCK]);
      this.holdsLock = rows[0]?.locked === true;
    } catch (error) {
      this.options.logger.warn('could not take the supervisor turn', { error: (error as Error).message });
      this.holdsLock = false;
      await this.lockClient?.end().catch(() => {});
      this.lockClient = null;
    }
    return this.holdsLock;
  }

  /** Gives up the leases of this instance (their agents come back through another) and the supervisor turn. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool.query('DELETE FROM agent_leases WHERE instance = $1', [this.instance]).catch(() => {});
    await this.lockClient?.end().catch(() => {});
    this.lockClient = null;
    this.holdsLock = false;
  }
}
