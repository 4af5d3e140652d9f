// Pipelines, newest first: name, status, the stages with the current one marked, and per-host
// progress as a small grid of labelled cells plus a count per status.
import { memo } from '../memo.js';
import { PIPELINE_HOST_STATUSES, isTerminalPipelineStatus } from '../../protocol/constants.js';
import type { Pipeline } from '../../protocol/schema.js';
import { formatFull, formatWhen } from '../time.js';
import { Badge } from './Badge.js';

const HOST_MARK: Record<string, string> = { pending: '·', running: '▶', success: '✓', failed: '✕', skipped: '–' };

const PipelineCard = memo(function PipelineCard({ pipeline }: { pipeline: Pipeline }) {
  const done = isTerminalPipelineStatus(pipeline.status);
  const counts = new Map<string, number>();
  for (const host of pipeline.hosts) {
    const s = pipeline.host_status[host] ?? 'pending';
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  return (
    <li class="pipeline" data-pipeline-id={pipeline.id}>
      <div class="pipeline-head">
        <span class="pipeline-name" title={`pipeline ${pipeline.id}`}>
          {pipeline.name}
        </span>
        <Badge status={pipeline.status} />
        <span class="muted num" title={formatFull(pipeline.started_at ?? pipeline.created_at)}>
          {formatWhen(pipeline.started_at ?? pipeline.created_at)}
        </span>
      </div>
      <ol class="stages" aria-label="Stages">
        {pipeline.stages.map((stage, i) => {
          const state = i < pipeline.current_stage || (done && pipeline.status === 'complete') ? 'done' : i === pipeline.current_stage ? (done ? 'stopped' : 'current') : 'todo';
          return (
            <li key={i} class={`stage stage-${state}`} aria-current={state === 'current' ? 'step' : undefined} title={`stage ${i + 1}: ${stage} (${state})`}>
              <span class="stage-chip">{stage}</span>
            </li>
          );
        })}
      </ol>
      <p class="pipeline-counts">
        {PIPELINE_HOST_STATUSES.filter((s) => counts.has(s)).map((s) => (
          <span key={s} class={`count-item tone-text-${s}`}>
            <span class="num">{counts.get(s)}</span> {s}
          </span>
        ))}
      </p>
      <ul class="host-grid" aria-label="Progress per host">
        {pipeline.hosts.map((host) => {
          const s = pipeline.host_status[host] ?? 'pending';
          return (
            <li key={host} class={`host-cell hs-${s}`} title={`${host}: ${s}`}>
              <span class="host-cell-mark" aria-hidden="true">
                {HOST_MARK[s]}
              </span>
              <span class="host-cell-name">{host}</span>
              <span class="visually-hidden">: {s}</span>
            </li>
          );
        })}
      </ul>
    </li>
  );
});

export function Pipelines({ pipelines }: { pipelines: readonly Pipeline[] }) {
  if (pipelines.length === 0) return <p class="empty">No pipeline yet. Select hosts and start one.</p>;
  return <ul class="pipeline-list">{[...pipelines].reverse().map((p) => <PipelineCard key={p.id} pipeline={p} />)}</ul>;
}
