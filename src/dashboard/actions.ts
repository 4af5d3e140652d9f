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

export async function addHost(hostname: string, hostType: 'nixos' | 'macos' | 'other'): Promise<boolean> {
  try {
    await api.addHost(hostname, hostType);
    return true;
  } catch (error) {
    notify('error', `Could not add host ${hostname}`, [describe(error)]);
    return false;
  }
}

export async function removeHost(id: string): Promise<boolean> {
  try {
    await api.removeHost(id);
    return true;
  } catch (error) {
    notify('error', `Could not remove host ${id}`, [describe(error)]);
    return false;
  }
}

export async function startPipeline(name: string, hostIds: string[], stages: Op[]): Promise<boolean> {
  try {
    await api.startPipeline(name, hostIds, stages);
    return true;
  } catch (error) {
    notify('error', `Could not start pipeline ${name}`, [describe(error)]);
    return false;
  }
}

export async function cancelCommand(id: string, label: string): Promise<boolean> {
  try {
    await api.cancelCommand(id);
    return true;
  } catch (error) {
    notify('error', `Could not cancel ${label}`, [describe(error)]);
    return false;
  }
}
