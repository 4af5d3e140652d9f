// Clean-up of work the simulator can no longer finish: commands still running on its hosts and
// pipelines over them are finished as `cancelled` (on stop, and on start after a crash).
import { isTerminalCommandStatus, isTerminalPipelineStatus } from '../protocol/constants.js';
import type { FullStateMessage } from '../protocol/messages.js';
import type { FleetApi } from './api-client.js';

/** Cancels what is still running on `hostIds`; returns how many commands and pipelines it finished. */
export async function cancelLeftovers(api: FleetApi, hostIds: ReadonlySet<string>, reason: string, known?: FullStateMessage | null): Promise<{ commands: number; pipelines: number }> {
  const frame = known ?? (await api.getState()).body;
  if (!frame) return { commands: 0, pipelines: 0 };
  const { commands, pipelines, hosts } = frame.payload;
  const hostnames = new Map(hosts.map((h) => [h.id, h.hostname]));

  const stuckCommands = commands.filter((c) => !isTerminalCommandStatus(c.status) && hostIds.has(c.host_id));
  const stuckPipelines = pipelines.filter((p) => !isTerminalPipelineStatus(p.status) && p.hosts.every((h) => hostIds.has(h)));
  const results = await Promise.all([
    ...stuckCommands.map(async (command) => {
      const res = await api.finishCommand(command.id, 'cancelled', null);
      if (!res.ok) return false;
      const host = hostnames.get(command.host_id) ?? command.host_id;
      await api.logEvent({ level: 'warning', category: 'command', host_id: command.host_id, action: command.op, message: `${command.op} on ${host} cancelled: ${reason}`, details: { command_id: command.id, pipeline_id: command.pipeline_id } });
      return true;
    }),
  ]);
  let cancelledPipelines = 0;
  for (const pipeline of stuckPipelines) {
    const unfinished = Object.entries(pipeline.host_status).filter(([, status]) => status === 'pending' || status === 'running');
    if (unfinished.length > 0) await api.updatePipeline(pipeline.id, { host_status: Object.fromEntries(unfinished.map(([host]) => [host, 'skipped' as const])) });
    const res = await api.finishPipeline(pipeline.id, 'cancelled');
    if (!res.ok) continue;
    cancelledPipelines++;
    await api.logEvent({ level: 'warning', category: 'pipeline', action: pipeline.name, message: `pipeline ${pipeline.name} cancelled: ${reason}`, details: { pipeline_id: pipeline.id } });
  }
  return { commands: results.filter(Boolean).length, pipelines: cancelledPipelines };
}
