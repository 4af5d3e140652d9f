// The fleet routes of the HTTP API (src/protocol/api.ts): every mutation becomes one Change
// through StateManager.apply and answers with the version at which it is visible; reads serve
// the committed state. Access and bodies are checked by the front door before a handler runs.
// Nothing here touches the store directly except the full command log, which is not part of
// the synced state and is streamed from it page by page. Command output comes in through the
// OutputIntake (its limits).
import type { ServerResponse } from 'node:http';
import { setImmediate } from 'node:timers/promises';
import { RETIRED_ROUTES } from '../../protocol/api.js';
import { isId, isTerminalCommandStatus, isTerminalPipelineStatus } from '../../protocol/schema.js';
import { actorOf, type Principal } from '../auth/roles.js';
import { commandStarted, defaultActionContext, eventLogged, hostAdded, iso, pipelineStarted, type ActionContext } from '../fleet-actions.js';
import type { OutputIntake } from '../output-intake.js';
import type { CommandLifecycle } from '../agents/command-lifecycle.js';
import type { StateManager } from '../state-manager.js';
import type { OutputChunk } from '../store/store.js';
import { HttpError, sendJson } from './http-error.js';
import type { Params, Router } from './router.js';

export interface ApiOptions {
  /** Where command output comes in (rate and size limits). */
  output: OutputIntake;
  /** The steps of a command's life (cancel asks the agent to stop). */
  lifecycle: CommandLifecycle;
  /** Ends the agent tokens of a removed host. */
  agentTokens: { revokeAgentTokensOf(hostId: string): Promise<number> };
  actions?: ActionContext;
}

/** Chunks of a log read from the store at a time: at most 4 × 256 KiB in memory per download. */
const OUTPUT_PAGE_CHUNKS = 4;

export function addApiRoutes(router: Router, manager: StateManager, options: ApiOptions): Router {
  const ctx = options.actions ?? defaultActionContext;
  const versioned = async (res: ServerResponse, applied: Promise<number>) => sendJson(res, 200, { version: await applied });

  return router
    .api('health', ({ res }) => {
      sendJson(res, 200, { status: 'ok', epoch: manager.epoch, version: manager.version });
    })
    .api('state', ({ res }) => {
      sendJson(res, 200, manager.snapshotFrame('full_state').data.toString('utf8'));
    })

    .api('createHost', async ({ res, body }) => {
      const change = hostAdded(body, ctx);
      const version = await manager.apply(change);
      sendJson(res, 201, { version, host: change.host });
    })
    .api('updateHost', ({ res, params, body }) => versioned(res, manager.apply({ type: 'host_updated', id: existingId(params, 'host'), fields: body })))
    // A removed host's agent tokens end with it (its sessions close with 4401): a token may
    // create its host on first register, so a live one would bring the host straight back.
    .api('removeHost', async ({ res, params }) => {
      const id = existingId(params, 'host');
      const version = await manager.apply({ type: 'host_removed', id });
      await options.agentTokens.revokeAgentTokensOf(id);
      sendJson(res, 200, { version });
    })

    // A command needs a live agent to carry it: created `pending`, sent to the agent by the
    // instance holding its session, `running` when the agent starts it.
    .api('startCommand', async ({ res, body, principal }) => {
      // Another instance may have just seen the host's agent register: read its writes first.
      if (manager.state.hosts.get(body.host_id)?.status !== 'online') await manager.caughtUp();
      const host = manager.state.hosts.get(body.host_id);
      if (!host) throw new HttpError(404, 'not_found', `unknown host '${body.host_id}'`);
      const queued = host.status !== 'online';
      if (queued && !body.queue) throw new HttpError(409, 'host_offline', `host '${host.id}' has no live agent to run ${body.op} (it is ${host.status}); send "queue": true to wait for it`);
      const change = commandStarted(body, ctx);
      const message = queued ? `${body.op} queued until the host's agent connects` : `${body.op} requested`;
      const event = eventLogged({ level: 'info', category: 'command', message, actor: actorOf(principal!), host_id: host.id, action: body.op, details: { command_id: change.command.id, queued } }, ctx);
      const version = await manager.applyAll([change, event]);
      sendJson(res, queued ? 202 : 201, { version, command: change.command });
    })
    .api('appendOutput', async ({ res, params, body, principal }) => {
      sendJson(res, 200, await options.output.append(writerOf(principal!), existingId(params, 'command'), body.output));
    })
    .api('finishCommand', ({ res, params, body }) => versioned(res, manager.apply({ type: 'command_finished', id: existingId(params, 'command'), ...body, finished_at: iso(ctx) })))
    // Cancel asks the agent to stop (202): its next `status` ends the command `cancelled`, or the
    // supervisor does after the stop grace. A command whose host has no agent ends at once.
    .api('cancelCommand', async ({ res, params, principal }) => {
      const id = existingId(params, 'command');
      const command = manager.state.commands.get(id);
      if (!command) throw new HttpError(404, 'not_found', `unknown command '${id}'`);
      if (isTerminalCommandStatus(command.status)) throw new HttpError(409, 'conflict', `command '${id}' has already finished (${command.status})`);
      // Its agent already reported success and is restarting on the new build: nothing to stop.
      if (command.exit_code !== null) throw new HttpError(409, 'conflict', `${command.op} '${id}' has already succeeded on its host; the server waits for the agent to restart`);
      const status = await options.lifecycle.cancel(command, actorOf(principal!));
      sendJson(res, status === 'cancelled' ? 200 : 202, { version: manager.version, status });
    })
    .api('commandOutput', async ({ req, res, params }) => {
      const id = existingId(params, 'command');
      const read = (after: number) => manager.readCommandOutput(id, after, OUTPUT_PAGE_CHUNKS);
      const first = await read(0);
      if (first.length === 0 && !manager.state.commands.has(id)) throw new HttpError(404, 'not_found', `unknown command '${id}'`);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-disposition': `inline; filename="${id}.log"` });
      if (req.method === 'HEAD') return void res.end();
      await streamPages(res, first, read);
    })

    // The server runs a pipeline from here on (src/server/pipelines/): it is `running` at once.
    .api('createPipeline', async ({ res, body, principal }) => {
      const change = pipelineStarted(body, ctx);
      const { pipeline } = change;
      const controls = [pipeline.parallel !== null ? `parallel ${pipeline.parallel}` : null, pipeline.canary !== null ? `canary ${pipeline.canary}` : null, pipeline.max_failures !== null ? `max_failures ${pipeline.max_failures}` : null].filter(Boolean);
      const message = `pipeline "${pipeline.name}" started on ${pipeline.hosts.length} host${pipeline.hosts.length === 1 ? '' : 's'}: ${pipeline.stages.join(' → ')}${controls.length > 0 ? ` (${controls.join(', ')})` : ''}`;
      const details = { pipeline_id: pipeline.id, hosts: pipeline.hosts.length, preset: pipeline.preset, parallel: pipeline.parallel, canary: pipeline.canary, max_failures: pipeline.max_failures };
      const event = eventLogged({ level: 'info', category: 'pipeline', message, actor: actorOf(principal!), host_id: null, action: 'start', details }, ctx);
      const version = await manager.applyAll([change, event]);
      sendJson(res, 201, { version, pipeline });
    })
    // Nothing new starts; its running commands are told to stop (here, as the operator, so the
    // stop does not wait for the instance that drives pipelines); the runner ends it `cancelled`
    // once none runs.
    .api('cancelPipeline', async ({ res, params, principal }) => {
      const id = existingId(params, 'pipeline');
      // Another instance may have just started it: read its writes first.
      if (!manager.state.pipelines.has(id)) await manager.caughtUp();
      const pipeline = manager.state.pipelines.get(id);
      if (!pipeline) throw new HttpError(404, 'not_found', `unknown pipeline '${id}'`);
      if (isTerminalPipelineStatus(pipeline.status)) throw new HttpError(409, 'conflict', `pipeline '${id}' has already finished (${pipeline.status})`);
      const actor = actorOf(principal!);
      if (pipeline.cancel_requested_at === null) {
        const event = eventLogged({ level: 'warning', category: 'pipeline', message: `pipeline "${pipeline.name}": cancel requested`, actor, host_id: null, action: 'cancel', details: { pipeline_id: id } }, ctx);
        await manager.applyAll([{ type: 'pipeline_updated', id, fields: { cancel_requested_at: iso(ctx) } }, event]);
        // (A switch that already succeeded and waits for its agent's restart has nothing to stop.)
        const running = [...manager.state.commands.values()].filter((command) => command.pipeline_id === id && !isTerminalCommandStatus(command.status) && command.exit_code === null);
        await Promise.all(running.map((command) => options.lifecycle.cancel(command, actor, `pipeline "${pipeline.name}" cancelled`)));
      }
      sendJson(res, 202, { version: manager.version, status: 'cancelling' });
    })
    .api('updatePipeline', retired('updatePipeline'))
    .api('finishPipeline', retired('finishPipeline'))

    .api('createEvent', async ({ res, body, principal }) => {
      // The audit trail names who reported it, whatever the body claims.
      const change = eventLogged({ ...body, actor: actorOf(principal!) }, ctx);
      const version = await manager.apply(change);
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

/** The handler of a retired route: 405 with what to do instead; `Allow` is empty, as no other method serves the path. */
function retired(name: keyof typeof RETIRED_ROUTES): () => never {
  return () => {
    throw new HttpError(405, 'method_not_allowed', RETIRED_ROUTES[name], { allow: '' });
  };
}

/** A path id that could name an entity; anything else cannot exist, so it is a 404. */
function existingId(params: Params, kind: string): string {
  const id = params.id ?? '';
  if (!isId(id)) throw new HttpError(404, 'not_found', `unknown ${kind} '${id.slice(0, 128)}'`);
  return id;
}
