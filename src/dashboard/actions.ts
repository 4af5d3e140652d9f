// What the dashboard's buttons do: calls to the HTTP API, one per host where the API is per host,
// with every failure collected into one notice. Nothing is applied locally: the sync stream shows
// the result (no optimistic updates).
import type { Op } from '../protocol/schema.js';
import * as api from './api.js';
import { notify } from './ui.js';

function describe(error: unknown): string {
  if (error instanceof api.ApiError) return `${error.message} (${error.status === 0 ? error.code : `${error.status} ${error.code}`})`;
  return (error as Error).message ?? String(error);
}

/** Runs `fn`; on failure shows one notice titled `title`. Resolves true when it succeeded. */
export async function attempt(title: string, fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (error) {
    notify('error', title, [describe(error)]);
    return false;
  }
}

/** Starts `op` on each host; reports the hosts that refused. Resolves true when all accepted. */
export async function runOp(hostIds: readonly string[], op: Op): Promise<boolean> {
  const results = await Promise.allSettled(hostIds.map((id) => api.startCommand(id, op)));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${hostIds[i]}: ${describe(r.reason)}`] : []));
  if (failed.length > 0) {
    const title = hostIds.length === 1 ? `Could not start ${op} on ${hostIds[0]}` : `Could not start ${op} on ${failed.length} of ${hostIds.length} hosts`;
    notify('error', title, failed);
  }
  return failed.length === 0;
}

export const addHost = (hostname: string, hostType: api.HostType) => attempt(`Could not add host ${hostname}`, () => api.addHost(hostname, hostType));
export const removeHost = (id: string) => attempt(`Could not remove host ${id}`, () => api.removeHost(id));
export const startPipeline = (name: string, hostIds: string[], plan: api.PipelinePlan) => attempt(`Could not start pipeline ${name}`, () => api.startPipeline(name, hostIds, plan));
export const cancelPipeline = (id: string, name: string) => attempt(`Could not cancel pipeline ${name}`, () => api.cancelPipeline(id));
export const cancelCommand = (id: string, label: string) => attempt(`Could not cancel ${label}`, () => api.cancelCommand(id));
