// Fleet actions over the HTTP API: the add-host form, the toolbar for the selected hosts, and the
// dialogs to run an operation (or remove a host) and to start a pipeline. Buttons wait for the
// server's answer; what changed then arrives through the sync stream, never applied here.
import { useState } from 'preact/hooks';
import { HOST_TYPES, OPS, PIPELINE_PRESET_NAMES, PIPELINE_PRESETS, type PipelinePreset } from '../../protocol/constants.js';
import type { Op } from '../../protocol/schema.js';
import * as actions from '../actions.js';
import type { PipelinePlan } from '../api.js';
import { useStore } from '../context.js';
import { plural } from '../format.js';
import { checkDisplayName, checkHostname } from '../name-check.js';
import { opDialog, pipelineDialog, selection, setSelection } from '../ui.js';
import { Modal } from './Modal.js';
import { Options } from './Options.js';

const DANGEROUS: ReadonlySet<Op> = new Set(['stop', 'reboot', 'rollback']);

export function AddHostForm() {
  const [hostname, setHostname] = useState('');
  const [type, setType] = useState<(typeof HOST_TYPES)[number]>('nixos');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const name = hostname.trim();
    if (!name || busy) return;
    setBusy(true);
    if (await actions.addHost(name, type)) setHostname('');
    setBusy(false);
  };
  return (
    <form class="add-host" onSubmit={submit} aria-label="Add host">
      <label class="field">
        <span class="visually-hidden">Hostname</span>
        <input type="text" name="hostname" placeholder="hostname" required maxLength={253} autoComplete="off" spellcheck={false} value={hostname} onInput={(e) => { checkHostname(e); setHostname(e.currentTarget.value); }} />
      </label>
      <label class="field">
        <span class="visually-hidden">Host type</span>
        <select name="host_type" value={type} onChange={(e) => setType(e.currentTarget.value as typeof type)}>
          <Options values={HOST_TYPES} />
        </select>
      </label>
      <button type="submit" class="button primary" disabled={busy || hostname.trim() === ''}>
        {busy ? 'Adding…' : 'Add host'}
      </button>
    </form>
  );
}

export function SelectionBar() {
  const ids = [...selection.value];
  const n = ids.length;
  return (
    <div class="selection-bar" role="toolbar" aria-label="Selected hosts">
      <span class="selection-count num" aria-live="polite">
        {n === 0 ? 'No host selected' : `${plural(n, 'host')} selected`}
      </span>
      <button type="button" class="button" disabled={n === 0} onClick={() => (opDialog.value = { hostIds: ids })}>
        Run operation…
      </button>
      <button type="button" class="button" disabled={n === 0} onClick={() => (pipelineDialog.value = { hostIds: ids })}>
        Start pipeline…
      </button>
      <button type="button" class="button ghost" disabled={n === 0} onClick={() => setSelection([])}>
        Clear
      </button>
    </div>
  );
}

function HostList({ ids }: { ids: readonly string[] }) {
  const names = useStore().hostnames.value;
  const shown = ids.slice(0, 12).map((id) => names.get(id) ?? id);
  return (
    <p class="host-list">
      {shown.join(', ')}
      {ids.length > shown.length ? ` and ${ids.length - shown.length} more` : ''}
    </p>
  );
}

export function OpDialog() {
  const target = opDialog.value;
  const close = () => (opDialog.value = null);
  return (
    <Modal open={target !== null} onClose={close} labelledBy="op-title">
      {target ? <OpDialogBody key={target.hostIds.join(' ')} hostIds={target.hostIds} close={close} /> : null}
    </Modal>
  );
}

function OpDialogBody({ hostIds, close }: { hostIds: string[]; close: () => void }) {
  const store = useStore();
  const hosts = store.hostsById.value;
  const [pending, setPending] = useState<string | null>(null);
  const [confirmRemove, setConfirmRemove] = useState(false);
  const single = hostIds.length === 1 ? hosts.get(hostIds[0]!) : undefined;
  const busy = hostIds.filter((id) => hosts.get(id)?.pending_command);
  const offline = hostIds.filter((id) => hosts.get(id)?.status !== 'online');
  const run = async (op: Op) => {
    setPending(op);
    await actions.runOp(hostIds, op);
    setPending(null);
    close();
  };
  const remove = async () => {
    setPending('remove');
    await actions.removeHost(hostIds[0]!);
    setPending(null);
    close();
  };
  const name = single?.hostname ?? hostIds[0] ?? '';

  if (confirmRemove) {
    return (
      <div class="dialog-body">
        <h2 id="op-title">Remove {name}?</h2>
        <p>The host leaves the fleet. Its past commands stay in the history.</p>
        <div class="dialog-actions">
          <button type="button" class="button" onClick={() => setConfirmRemove(false)} disabled={pending !== null}>
            Cancel
          </button>
          <button type="button" class="button danger" onClick={remove} disabled={pending !== null}>
            {pending === 'remove' ? 'Removing…' : `Remove ${name}`}
          </button>
        </div>
      </div>
    );
  }
  return (
    <div class="dialog-body">
      <h2 id="op-title">{hostIds.length === 1 ? `Run on ${name}` : `Run on ${plural(hostIds.length, 'host')}`}</h2>
      {hostIds.length > 1 ? <HostList ids={hostIds} /> : null}
      {busy.length > 0 ? (
        <p class="hint tone-warn">
          {hostIds.length === 1 ? `${name} is running a command; the server will refuse another until it finishes.` : `${plural(busy.length, 'host')} of these are running a command and will refuse.`}
        </p>
      ) : null}
      {offline.length > 0 ? (
        <p class="hint tone-warn">
          {hostIds.length === 1 ? `${name} has no live agent; the server will refuse until its agent connects.` : `${plural(offline.length, 'host')} of these have no live agent and will refuse.`}
        </p>
      ) : null}
      <div class="op-grid" role="group" aria-label="Operations">
        {OPS.map((op) => (
          <button key={op} type="button" class={`button op-button${DANGEROUS.has(op) ? ' danger-outline' : ''}`} disabled={pending !== null} onClick={() => run(op)}>
            {pending === op ? `${op}…` : op}
          </button>
        ))}
      </div>
      <div class="dialog-actions">
        {single ? (
          <button type="button" class="button danger-outline push-left" disabled={pending !== null || single.pending_command !== null} title={single.pending_command ? 'finish or cancel its command first' : undefined} onClick={() => setConfirmRemove(true)}>
            Remove host…
          </button>
        ) : null}
        <button type="button" class="button" onClick={close}>
          Cancel
        </button>
      </div>
    </div>
  );
}

export function PipelineDialog() {
  const target = pipelineDialog.value;
  const close = () => (pipelineDialog.value = null);
  return (
    <Modal open={target !== null} onClose={close} labelledBy="pipeline-title">
      {target ? <PipelineForm hostIds={target.hostIds} close={close} /> : null}
    </Modal>
  );
}

/** A number field left empty means "not set"; anything else must be a whole number in range. */
function optionalCount(raw: string): number | undefined {
  return raw.trim() === '' ? undefined : Number(raw);
}

function PipelineForm({ hostIds, close }: { hostIds: string[]; close: () => void }) {
  const [name, setName] = useState('');
  const [preset, setPreset] = useState<PipelinePreset | ''>('');
  const [stages, setStages] = useState<Op[]>([]);
  const [next, setNext] = useState<Op>('pull');
  const [parallel, setParallel] = useState('');
  const [canary, setCanary] = useState('');
  const [maxFailures, setMaxFailures] = useState('');
  const [busy, setBusy] = useState(false);
  const valid = name.trim() !== '' && (preset !== '' || stages.length > 0) && hostIds.length > 0;
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!valid || busy) return;
    setBusy(true);
    const plan: PipelinePlan = preset ? { preset } : { stages };
    const [n, c, f] = [optionalCount(parallel), optionalCount(canary), optionalCount(maxFailures)];
    if (n !== undefined) plan.parallel = n;
    if (c !== undefined) plan.canary = c;
    if (f !== undefined) plan.max_failures = f;
    const started = await actions.startPipeline(name.trim(), hostIds, plan);
    setBusy(false);
    if (started) close();
  };
  const many = hostIds.length > 1;
  return (
    <form class="dialog-body" onSubmit={submit}>
      <h2 id="pipeline-title">Start a pipeline on {plural(hostIds.length, 'host')}</h2>
      <HostList ids={hostIds} />
      <label class="field stacked">
        <span>Name</span>
        <input type="text" required maxLength={200} value={name} placeholder="e.g. weekly update" onInput={(e) => { checkDisplayName(e); setName(e.currentTarget.value); }} />
      </label>
      <label class="field stacked">
        <span>Stages</span>
        <select name="preset" value={preset} onChange={(e) => setPreset(e.currentTarget.value as PipelinePreset | '')}>
          <option value="">my own list</option>
          {PIPELINE_PRESET_NAMES.map((p) => (
            <option key={p} value={p}>
              {p}: {PIPELINE_PRESETS[p].join(' → ')}
            </option>
          ))}
        </select>
      </label>
      {preset === '' ? (
        <fieldset class="stages-field">
          <legend>Stages, in order</legend>
          {stages.length === 0 ? <p class="muted">No stage yet.</p> : null}
          <ol class="stage-edit">
            {stages.map((stage, i) => (
              <li key={i}>
                <span class="num">{i + 1}.</span> <span class="op">{stage}</span>
                <button type="button" class="icon-button" aria-label={`Remove stage ${i + 1} (${stage})`} onClick={() => setStages(stages.filter((_, j) => j !== i))}>
                  ×
                </button>
              </li>
            ))}
          </ol>
          <div class="inline">
            <label class="field">
              <span class="visually-hidden">Stage to add</span>
              <select value={next} onChange={(e) => setNext(e.currentTarget.value as Op)}>
                {OPS.map((op) => (
                  <option key={op} value={op}>
                    {op}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" class="button" disabled={stages.length >= 50} onClick={() => setStages([...stages, next])}>
              Add stage
            </button>
          </div>
        </fieldset>
      ) : null}
      <fieldset class="stages-field">
        <legend>Rollout (optional)</legend>
        <div class="rollout-fields">
          <label class="field stacked">
            <span>At most at once</span>
            <input type="number" name="parallel" min={1} step={1} placeholder="all" value={parallel} onInput={(e) => setParallel(e.currentTarget.value)} />
          </label>
          <label class="field stacked" title={many ? 'these first hosts go through every stage before the others start; the rollout stops if one fails' : 'needs two hosts or more'}>
            <span>Canary hosts</span>
            <input type="number" name="canary" min={1} max={Math.max(1, hostIds.length - 1)} step={1} placeholder="none" disabled={!many} value={canary} onInput={(e) => setCanary(e.currentTarget.value)} />
          </label>
          <label class="field stacked" title="the rollout stops once more hosts than this have failed">
            <span>Failures allowed</span>
            <input type="number" name="max_failures" min={0} max={Math.max(0, hostIds.length - 1)} step={1} placeholder="any" disabled={!many} value={maxFailures} onInput={(e) => setMaxFailures(e.currentTarget.value)} />
          </label>
        </div>
      </fieldset>
      <div class="dialog-actions">
        <button type="button" class="button" onClick={close}>
          Cancel
        </button>
        <button type="submit" class="button primary" disabled={!valid || busy}>
          {busy ? 'Starting…' : 'Start pipeline'}
        </button>
      </div>
    </form>
  );
}
