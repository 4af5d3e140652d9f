// Pipelines, newest first: name, status, the rollout controls, the stages with the current one
// marked, per-host progress as a small grid of labelled cells (each says how far its host got,
// or why it left, in its tooltip), a line per dropped host, and Cancel for operators while it runs.
import { memo } from '../memo.js';
import { cancelPipeline } from '../actions.js';
import { canOperate } from '../session.js';
import { PIPELINE_HOST_STATUSES, isTerminalPipelineStatus } from '../../protocol/constants.js';
import type { Pipeline, PipelineDrop, PipelineHostDetail } from '../../protocol/schema.js';
import { formatFull, formatWhen } from '../time.js';
import { Badge } from './Badge.js';

const HOST_MARK: Record<string, string> = { pending: '·', running: '▶', success: '✓', failed: '✕', skipped: '–' };
const STEP_MARK: Record<string, string> = { started: '…', success: '✓', error: '✕', timeout: '✕', cancelled: '–' };
/** Dropped hosts listed under a card; the grid's tooltips have the rest. */
const DROPS_SHOWN = 12;

const STOP_TEXT: Record<string, string> = {
  canary_failed: 'rollout stopped: a canary host failed',
  canary_unproven: 'rollout stopped: no canary host got through',
  max_failures: 'rollout stopped: too many hosts failed',
};

/** Why a host left, in a few words: "failed at stage 2 (switch), exit 1". */
function dropText(drop: PipelineDrop): string {
  const where = `stage ${drop.stage + 1} (${drop.op})`;
  switch (drop.reason) {
    case 'failed':
      return `failed at ${where}${drop.exit_code !== null ? `, exit ${drop.exit_code}` : ''}`;
    case 'offline':
      return `offline at ${where}`;
    case 'stopped':
      return `skipped at ${where}: the rollout stopped`;
    case 'cancelled':
      return `cancelled at ${where}`;
    default:
      return `${drop.reason} at ${where}`;
  }
}

/** What a host's cell says in its tooltip: where it is, how each stage went, why it left. */
function hostProgress(pipeline: Pipeline, host: string, detail: PipelineHostDetail | undefined): string {
  const status = pipeline.host_status[host] ?? 'pending';
  if (!detail) return `${host}: ${status}`;
  const steps = detail.steps.map((step, i) => `${pipeline.stages[i] ?? '?'} ${STEP_MARK[step.status] ?? step.status}`).join(', ');
  const where = detail.dropped ? `${dropText(detail.dropped)} — ${detail.dropped.message}` : status === 'success' ? 'through every stage' : `stage ${detail.stage + 1}/${pipeline.stages.length} (${pipeline.stages[detail.stage] ?? '?'}), ${status}`;
  return `${host}: ${where}${steps ? ` · ${steps}` : ''}`;
}

function Controls({ pipeline }: { pipeline: Pipeline }) {
  const parts = [
    pipeline.preset ? `preset ${pipeline.preset}` : null,
    pipeline.parallel !== null ? `${pipeline.parallel} at a time` : null,
    pipeline.canary ? `canary ${pipeline.canary}` : null,
    pipeline.max_failures !== null ? `stop after ${pipeline.max_failures + 1} failure${pipeline.max_failures === 0 ? '' : 's'}` : null,
  ].filter((part): part is string => part !== null);
  if (parts.length === 0) return null;
  return <p class="pipeline-controls muted">{parts.join(' · ')}</p>;
}

function CancelButton({ pipeline }: { pipeline: Pipeline }) {
  const requested = pipeline.cancel_requested_at !== null;
  return (
    <button
      type="button"
      class="button small danger-outline"
      disabled={requested}
      title={requested ? 'its running commands were told to stop; waiting for them to end' : 'start nothing more and tell its running commands to stop'}
      onClick={() => confirm(`Cancel pipeline ${pipeline.name}? Nothing new starts and its running commands are told to stop.`) && void cancelPipeline(pipeline.id, pipeline.name)}
    >
      {requested ? 'Cancelling…' : 'Cancel'}
    </button>
  );
}

const PipelineCard = memo(function PipelineCard({ pipeline, operate }: { pipeline: Pipeline; operate: boolean }) {
  const done = isTerminalPipelineStatus(pipeline.status);
  const counts = new Map<string, number>();
  for (const host of pipeline.hosts) {
    const s = pipeline.host_status[host] ?? 'pending';
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  // One detail per host, in the order of `hosts` (none for a pipeline from before the runner).
  const dropped = pipeline.hosts.flatMap((host, i) => {
    const drop = pipeline.host_detail[i]?.dropped;
    return drop ? [[host, drop] as const] : [];
  });
  const canary = !done && pipeline.phase === 'canary';
  return (
    <li class="pipeline" data-pipeline-id={pipeline.id}>
      <div class="pipeline-head">
        <span class="pipeline-name" title={`pipeline ${pipeline.id}`}>
          {pipeline.name}
        </span>
        <Badge status={pipeline.status} />
        {canary ? <Badge status="info" title={`the first ${pipeline.canary} hosts go through every stage before the others start`}>canary</Badge> : null}
        {pipeline.stop_reason ? <span class="pipeline-stop tone-text-failed">{STOP_TEXT[pipeline.stop_reason] ?? pipeline.stop_reason}</span> : null}
        <span class="muted num" title={formatFull(pipeline.started_at ?? pipeline.created_at)}>
          {formatWhen(pipeline.started_at ?? pipeline.created_at)}
        </span>
        {!done && operate ? <CancelButton pipeline={pipeline} /> : null}
      </div>
      <Controls pipeline={pipeline} />
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
        {pipeline.hosts.map((host, i) => {
          const s = pipeline.host_status[host] ?? 'pending';
          const title = hostProgress(pipeline, host, pipeline.host_detail[i]);
          return (
            <li key={host} class={`host-cell hs-${s}`} title={title} data-host={host}>
              <span class="host-cell-mark" aria-hidden="true">
                {HOST_MARK[s]}
              </span>
              <span class="host-cell-name">{host}</span>
              <span class="visually-hidden">: {title}</span>
            </li>
          );
        })}
      </ul>
      {dropped.length > 0 ? (
        <ul class="pipeline-drops" aria-label="Hosts that left the pipeline">
          {dropped.slice(0, DROPS_SHOWN).map(([host, drop]) => (
            <li key={host} data-host={host} data-reason={drop.reason} title={drop.message}>
              <span class="pipeline-drop-host">{host}</span> <span class={`tone-text-${drop.reason === 'failed' ? 'failed' : 'skipped'}`}>{dropText(drop)}</span>
            </li>
          ))}
          {dropped.length > DROPS_SHOWN ? <li class="muted">and {dropped.length - DROPS_SHOWN} more (see each host's tooltip)</li> : null}
        </ul>
      ) : null}
    </li>
  );
});

export function Pipelines({ pipelines }: { pipelines: readonly Pipeline[] }) {
  const operate = canOperate.value;
  if (pipelines.length === 0) return <p class="empty">No pipeline yet. Select hosts and start one.</p>;
  return <ul class="pipeline-list">{[...pipelines].reverse().map((p) => <PipelineCard key={p.id} pipeline={p} operate={operate} />)}</ul>;
}
