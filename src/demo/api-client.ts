// The simulator's only way to touch the fleet: the public HTTP API over fetch. Never throws:
// every answer, including a refused connection, is a result the caller can ignore; failures are
// logged at debug. Tracks requests in flight so a stop can wait for (or abort) them.
import type { Command, FullState, Host, Pipeline, PipelineFields, HostFields } from '../protocol/schema.js';
import type { Logger } from '../server/logger.js';

export interface ApiResult<T> {
  /** HTTP status; 0 when no answer arrived (connection refused, aborted, timed out). */
  status: number;
  ok: boolean;
  /** The parsed JSON answer when `ok`, otherwise null. */
  body: T | null;
  /** The error message of a failed request, for logs. */
  error: string | null;
}

export interface StateFrame {
  epoch: string;
  version: number;
  payload: FullState;
}

export interface NewEvent {
  level: 'info' | 'success' | 'warning' | 'error';
  category: string;
  message: string;
  host_id?: string | null;
  action?: string | null;
  details?: Record<string, string | number | boolean | null> | null;
}

export class FleetApi {
  private readonly inFlight = new Set<AbortController>();

  constructor(
    private readonly baseUrl: string,
    private readonly logger: Logger,
    private readonly timeoutMs = 10_000,
    /** Written into every event the simulator logs (the server records the token's name instead). */
    private readonly actor = 'demo',
    /** Bearer token the simulator acts with, like a real agent or automation. */
    private readonly token: string | null = null,
  ) {}

  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  /** Aborts every request still waiting for its answer. */
  abortAll(): void {
    for (const controller of this.inFlight) controller.abort(new Error('demo stopped'));
  }

  getState = () => this.request<StateFrame>('GET', '/api/state');
  addHost = (host: Partial<Host> & { hostname: string }) => this.request<{ version: number; host: Host }>('POST', '/api/hosts', host);
  updateHost = (id: string, fields: HostFields) => this.request<{ version: number }>('PATCH', `/api/hosts/${encodeURIComponent(id)}`, fields);
  startCommand = (host_id: string, op: string, pipeline_id: string | null = null) =>
    this.request<{ version: number; command: Command }>('POST', '/api/commands', { host_id, op, pipeline_id });
  appendOutput = (id: string, output: string) => this.request<{ version: number }>('POST', `/api/commands/${encodeURIComponent(id)}/output`, { output });
  finishCommand = (id: string, status: 'success' | 'error' | 'timeout' | 'cancelled', exit_code: number | null) =>
    this.request<{ version: number }>('POST', `/api/commands/${encodeURIComponent(id)}/finish`, { status, exit_code });
  startPipeline = (name: string, hosts: string[], stages: string[]) => this.request<{ version: number; pipeline: Pipeline }>('POST', '/api/pipelines', { name, hosts, stages });
  updatePipeline = (id: string, fields: PipelineFields) => this.request<{ version: number }>('PATCH', `/api/pipelines/${encodeURIComponent(id)}`, fields);
  finishPipeline = (id: string, status: 'complete' | 'partial' | 'failed' | 'cancelled') =>
    this.request<{ version: number }>('POST', `/api/pipelines/${encodeURIComponent(id)}/finish`, { status });
  logEvent = (event: NewEvent) => this.request<{ version: number }>('POST', '/api/events', { actor: this.actor, ...event });

  async request<T>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${this.timeoutMs}ms`)), this.timeoutMs);
    try {
      const headers: Record<string, string> = this.token ? { authorization: `Bearer ${this.token}` } : {};
      const init: RequestInit = { method, signal: controller.signal, headers };
      if (body !== undefined) {
        init.body = JSON.stringify(body);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(this.baseUrl + path, init);
      const text = await res.text();
      if (!res.ok) {
        this.logger.debug('demo api request refused', { method, path, status: res.status, answer: text.slice(0, 300) });
        return { status: res.status, ok: false, body: null, error: text.slice(0, 300) };
      }
      return { status: res.status, ok: true, body: JSON.parse(text) as T, error: null };
    } catch (error) {
      const reason = (error as Error).cause instanceof Error ? `${(error as Error).message}: ${((error as Error).cause as Error).message}` : (error as Error).message;
      this.logger.debug('demo api request failed', { method, path, error: reason });
      return { status: 0, ok: false, body: null, error: reason };
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }
}
