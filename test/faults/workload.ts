// The writes of a fault schedule, through the real HTTP API: events, host updates and whole
// commands (start, output, finish). Every acknowledged write is kept with the change it stands for.
import { api } from '../support/http.js';

export interface Ack {
  version: number;
  /** The committed change as the API described it (events only; null when not reconstructible). */
  changeJson: string | null;
}

export class Workload {
  readonly acks: Ack[] = [];
  private n = 0;
  private readonly http: ReturnType<typeof api>;

  constructor(url: string, token: string, private readonly hosts: readonly string[] = ['h0', 'h1', 'h2']) {
    this.http = api(url, token);
  }

  /** Creates the hosts the workload updates (ignores those that exist). */
  async setup(): Promise<void> {
    for (const id of this.hosts) await this.http.post('/api/hosts', { id, hostname: id });
  }

  /** One write of kind `kind % 3`: 0 an event, 1 a host update, 2 a command on a host. */
  async write(kind: number): Promise<void> {
    const i = this.n++;
    const host = this.hosts[i % this.hosts.length]!;
    if (kind % 3 === 0) {
      const res = await this.http.post('/api/events', { level: 'info', category: 'fault', message: `w${i}` });
      if (res.status === 201) this.acks.push({ version: res.body.version, changeJson: JSON.stringify({ type: 'event', event: res.body.event }) });
    } else if (kind % 3 === 1) {
      const res = await this.http.patch(`/api/hosts/${host}`, { generation: `g${i}`, status: i % 2 ? 'online' : 'offline' });
      if (res.status === 200) this.acks.push({ version: res.body.version, changeJson: null });
    } else {
      const started = await this.http.post('/api/commands', { host_id: host, op: 'switch' });
      if (started.status !== 201) return; // the host is busy with a concurrent command: a 409, not a fault
      this.acks.push({ version: started.body.version, changeJson: null });
      const id = started.body.command.id as string;
      for (const path of ['output', 'finish']) {
        const res = await this.http.post(`/api/commands/${id}/${path}`, path === 'output' ? { output: `building ${i}\n` } : { status: 'success', exit_code: 0 });
        if (res.status === 200) this.acks.push({ version: res.body.version, changeJson: null });
      }
    }
  }
}
