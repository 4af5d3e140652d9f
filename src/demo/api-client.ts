// The demo operator's hands: the public HTTP API over fetch, with an operator token, as any
// automation would use it. Never throws: every answer, including a refused connection, is a
// result the caller can ignore; failures are logged at debug. Tracks requests in flight so a stop
// can wait for (or abort) them.
import { API, apiPath, type ApiResponses, type ApiRoute } from '../protocol/api.js';
import type { ApiRequest } from '../protocol/api-schemas.js';
import type { Op } from '../protocol/schema.js';
import type { Logger } from '../server/index.js';

export interface ApiResult<T> {
  /** HTTP status; 0 when no answer arrived (connection refused, aborted, timed out). */
  status: number;
  ok: boolean;
  /** The parsed JSON answer when `ok`, otherwise null. */
  body: T | null;
  /** The error message of a failed request, for logs. */
  error: string | null;
}

export class FleetApi {
  private readonly inFlight = new Set<AbortController>();

  constructor(
    private readonly baseUrl: string,
    private readonly logger: Logger,
    private readonly timeoutMs = 10_000,
    /** The operator token the demo acts with. */
    private readonly token: string,
  ) {}

  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  /** Aborts every request still waiting for its answer. */
  abortAll(): void {
    for (const controller of this.inFlight) controller.abort(new Error('demo stopped'));
  }

  startCommand = (host_id: string, op: Op, pipeline_id: string | null = null) => this.call('startCommand', {}, { host_id, op, pipeline_id });
  /** Asks the command's agent to stop it (202), or ends it at once when its host has no agent (200). */
  cancelCommand = (id: string) => this.call('cancelCommand', { id });
  /** A pipeline of a preset (the server runs it). */
  startPipeline = (id: string, preset: 'do-all' | 'update-agent', hosts: string[]) => this.call('createPipeline', {}, { id, name: preset, hosts, preset });
  cancelPipeline = (id: string) => this.call('cancelPipeline', { id });
  /** The server names the token as the event's actor. */
  logEvent = (event: Omit<ApiRequest<'createEvent'>, 'actor'>) => this.call('createEvent', {}, event);

  /** One route of the API contract (src/protocol/api.ts). */
  call<R extends ApiRoute>(name: R, params: Record<string, string> = {}, body?: ApiRequest<R>): Promise<ApiResult<ApiResponses[R]>> {
    return this.request<ApiResponses[R]>(API[name].method, apiPath(name, params), body);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${this.timeoutMs}ms`)), this.timeoutMs);
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
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
