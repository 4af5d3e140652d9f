// The HTTP API: every mutation becomes one Change through StateManager.apply and answers with
// the version at which it is visible; reads serve the committed state. Nothing here touches
// the store directly except the full command log, which is not part of the synced state and is
// streamed from it page by page. Command output comes in through the OutputIntake (its limits).
import type { ServerResponse } from 'node:http';
import { setImmediate } from 'node:timers/promises';
import { IdSchema, type Change } from '../../protocol/schema.js';
import { actorOf, can, type Action, type Principal } from '../auth/roles.js';
import { defaultActionContext, commandStarted, eventLogged, hostAdded, iso, pipelineStarted, type ActionContext } from '../fleet-actions.js';
import { OutputRateLimitedError, type OutputIntake } from '../output-intake.js';
import type { StateManager } from '../state-manager.js';
import type { OutputChunk } from '../store/store.js';
import {
  CommandOutputBody,
  CreateEventBody,
  CreateHostBody,
  CreatePipelineBody,
  FinishCommandBody,
  FinishPipelineBody,
  StartCommandBody,
  UpdateHostBody,
  UpdatePipelineBody,
} from './api-schemas.js';
import { readJsonBody } from './body.js';
import { HttpError, sendJson } from './http-error.js';
import { Router, type Params, type RequestContext } from './router.js';

export interface ApiOptions {
  maxBodyBytes: number;
  /** Where command output comes in (rate and size limits). */
  output: OutputIntake;
  /** For the 429 message. */
  outputBytesPerSecond: number;
  actions?: ActionContext;
}

/** Chunks of a log read from the store at a time: at most 4 × 256 KiB in memory per download. */
const OUTPUT_PAGE_CHUNKS = 4;

export function createApiRouter(manager: StateManager, options: ApiOptions): Router {
  const ctx = options.actions ?? defaultActionContext;
  const limit = options.maxBodyBytes;
  const apply = (change: Change) => manager.apply(change);

  return new Router()
    .on('GET', '/healthz', 'public', (_req, res) => {
      sendJson(res, 200, { status: 'ok', epoch: manager.epoch, version: manager.version });
    })
    .on('GET', '/api/state', 'read', (_req, res) => {
      sendJson(res, 200, manager.snapshotFrame('full_state').data.toString('utf8'));
    })

    .on('POST', '/api/hosts', 'operate', async (req, res) => {
      const change = hostAdded(await readJsonBody(req, CreateHostBody, limit), ctx);
      const version = await apply(change);
      sendJson(res, 201, { version, host: change.host });
    })
    .on('PATCH', '/api/hosts/:id', 'report', async (req, res, params, rc) => {
      const id = existingId(params, 'host');
      authorize(rc, 'report', id);
      const fields = await readJsonBody(req, UpdateHostBody, limit);
      await respondVersion(res, apply({ type: 'host_updated', id, fields }));
    })
    .on('DELETE', '/api/hosts/:id', 'operate', async (_req, res, params) => {
      await respondVersion(res, apply({ type: 'host_removed', id: existingId(params, 'host') }));
    })

    .on('POST', '/api/commands', 'operate', async (req, res) => {
      const change = commandStarted(await readJsonBody(req, StartCommandBody, limit), ctx);
      const version = await apply(change);
      sendJson(res, 201, { version, command: change.command });
    })
    .on('POST', '/api/commands/:id/output', 'report', async (req, res, params, rc) => {
      const id = existingId(params, 'command');
      authorize(rc, 'report', manager.state.commands.get(id)?.host_id ?? null);
      const { output } = await readJsonBody(req, CommandOutputBody, limit);
      try {
        sendJson(res, 200, await options.output.append(writerOf(rc.principal!), id, output));
      } catch (error) {
        if (!(error instanceof OutputRateLimitedError)) throw error;
        throw new HttpError(429, 'rate_limited', `${error.message}: at most ${options.outputBytesPerSecond} bytes of output per second`, { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) });
      }
    })
    .on('POST', '/api/commands/:id/finish', 'report', async (req, res, params, rc) => {
      const id = existingId(params, 'command');
      authorize(rc, 'report', manager.state.commands.get(id)?.host_id ?? null);
      const body = await readJsonBody(req, FinishCommandBody, limit);
      await respondVersion(res, apply({ type: 'command_finished', id, ...body, finished_at: iso(ctx) }));
    })
    .on('POST', '/api/commands/:id/cancel', 'operate', async (_req, res, params) => {
      // An operator stops waiting for a command (e.g. its agent died): it ends as cancelled and
      // its host is free again. Telling the agent to stop is the agent protocol's business.
      const id = existingId(params, 'command');
      await respondVersion(res, apply({ type: 'command_finished', id, status: 'cancelled', exit_code: null, finished_at: iso(ctx) }));
    })
    .on('GET', '/api/commands/:id/output', 'read', async (req, res, params) => {
      const id = existingId(params, 'command');
      const read = (after: number) => manager.readCommandOutput(id, after, OUTPUT_PAGE_CHUNKS);
      const first = await read(0);
      if (first.length === 0 && !manager.state.commands.has(id)) throw new HttpError(404, 'not_found', `unknown command '${id}'`);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-disposition': `inline; filename="${id}.log"` });
      if (req.method === 'HEAD') return void res.end();
      await streamPages(res, first, read);
    })

    .on('POST', '/api/pipelines', 'operate', async (req, res) => {
      const change = pipelineStarted(await readJsonBody(req, CreatePipelineBody, limit), ctx);
      const version = await apply(change);
      sendJson(res, 201, { version, pipeline: change.pipeline });
    })
    .on('PATCH', '/api/pipelines/:id', 'operate', async (req, res, params) => {
      const id = existingId(params, 'pipeline');
      const fields = await readJsonBody(req, UpdatePipelineBody, limit);
      await respondVersion(res, apply({ type: 'pipeline_updated', id, fields }));
    })
    .on('POST', '/api/pipelines/:id/finish', 'operate', async (req, res, params) => {
      const id = existingId(params, 'pipeline');
      const { status } = await readJsonBody(req, FinishPipelineBody, limit);
      await respondVersion(res, apply({ type: 'pipeline_finished', id, status, finished_at: iso(ctx) }));
    })

    .on('POST', '/api/events', 'report', async (req, res, _params, rc) => {
      const body = await readJsonBody(req, CreateEventBody, limit);
      authorize(rc, 'report', body.host_id);
      // The audit trail names who reported it, whatever the body claims.
      const change = eventLogged({ ...body, actor: actorOf(rc.principal!) }, ctx);
      const version = await apply(change);
      sendJson(res, 201, { version, event: change.event });
    });
}

/**
 * Writes a log page by page, waiting for the client to drain each write it could not take, so a
 * slow reader holds one page of memory, not the log. Stops when the client goes away.
 */
async function streamPages(res: ServerResponse, first: OutputChunk[], read: (after: number) => Promise<OutputChunk[]>): Promise<void> {
  for (let page = first; page.length > 0; page = await read(page.at(-1)!.version)) {
    for (const { chunk } of page) {
      if (res.destroyed) return;
      if (!res.write(chunk)) await drained(res);
    }
    // A reader as fast as loopback drains every write at once, and 'drain' then comes in a
    // nextTick: without this the whole log would go out in one turn of the event loop.
    await setImmediate();
  }
  res.end();
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Whose output budget a request spends: its token, or its user (every session of theirs). */
function writerOf(principal: Principal): string {
  return principal.kind === 'token' ? `token:${principal.tokenId}` : `user:${principal.user.toLowerCase()}`;
}

async function respondVersion(res: ServerResponse, applied: Promise<number>): Promise<void> {
  sendJson(res, 200, { version: await applied });
}

/** A path id that could name an entity; anything else cannot exist, so it is a 404. */
function existingId(params: Params, kind: string): string {
  const id = params.id ?? '';
  if (!IdSchema.safeParse(id).success) throw new HttpError(404, 'not_found', `unknown ${kind} '${id.slice(0, 128)}'`);
  return id;
}

/** Refuses with 403 unless the caller may perform `action` (on `hostId`, for reports). */
export function authorize(ctx: RequestContext, action: Action, hostId?: string | null): void {
  if (!ctx.principal) throw new HttpError(401, 'unauthenticated', 'log in or send a bearer token');
  if (!can(ctx.principal, action, hostId)) {
    const scope = ctx.principal.kind === 'token' && ctx.principal.hostId ? ` (this token reports for host '${ctx.principal.hostId}' only)` : '';
    throw new HttpError(403, 'forbidden', `your role (${ctx.principal.role}) may not ${action}${hostId ? ` for host '${hostId}'` : ''}${scope}`);
  }
}
