// The enumerations of the protocol and the predicates over them. Free of zod, so the browser
// bundle, which needs these at run time, does not carry the schema library.

export const HOST_STATUSES = ['online', 'offline', 'unknown'] as const;
export const HOST_TYPES = ['nixos', 'macos', 'other'] as const;
export const COMPARTMENT_NAMES = ['git', 'lock', 'system', 'tests'] as const;
export const COMPARTMENT_STATUSES = ['ok', 'outdated', 'error', 'unknown', 'working'] as const;
export const OPS = ['pull', 'switch', 'pull-switch', 'test', 'rollback', 'restart', 'stop', 'reboot'] as const;
export const COMMAND_ACTIVE_STATUSES = ['pending', 'running'] as const;
export const COMMAND_TERMINAL_STATUSES = ['success', 'error', 'timeout', 'cancelled'] as const;
export const PIPELINE_ACTIVE_STATUSES = ['pending', 'running'] as const;
export const PIPELINE_TERMINAL_STATUSES = ['complete', 'partial', 'failed', 'cancelled'] as const;
export const PIPELINE_HOST_STATUSES = ['pending', 'running', 'success', 'failed', 'skipped'] as const;
/**
 * Who moves a pipeline along: the server's runner, or (`client`) a client that drove it by hand
 * through routes that no longer exist (a log written before the runner). The runner leaves those
 * alone; they can only be cancelled.
 */
export const PIPELINE_RUNNERS = ['server', 'client'] as const;
/** Which batch a pipeline runs now: its canary hosts, or the rollout (every host when there is no canary). */
export const PIPELINE_PHASES = ['canary', 'rollout'] as const;
/** How a host's command of one stage went: `started` until it ends, then the command's terminal status. */
export const PIPELINE_STEP_STATUSES = ['started', ...COMMAND_TERMINAL_STATUSES] as const;
/**
 * Why a host left a pipeline before its last stage: its command of a stage `failed` (error,
 * timeout or cancelled), it was `offline` (no live agent) when its command was due, the rollout
 * `stopped` (a failed canary, too many failures) before it got there, or the pipeline was `cancelled`.
 */
export const PIPELINE_DROP_REASONS = ['failed', 'offline', 'stopped', 'cancelled'] as const;
/** Why a rollout stopped early (it then ends `failed`). See docs/PIPELINES.md. */
export const PIPELINE_STOP_REASONS = ['canary_failed', 'canary_unproven', 'max_failures'] as const;
/**
 * Named lists of stages. `update-agent` is the original dashboard's "update agent" without its
 * first step (bumping the agent's flake input and pushing it), which is the dashboard's own git
 * business: the hosts pull whatever the repository holds.
 */
export const PIPELINE_PRESETS = {
  'do-all': ['pull', 'switch', 'test'],
  'update-agent': ['pull', 'switch', 'restart'],
} as const satisfies Record<string, readonly (typeof OPS)[number][]>;
export type PipelinePreset = keyof typeof PIPELINE_PRESETS;
export const PIPELINE_PRESET_NAMES = Object.keys(PIPELINE_PRESETS) as [PipelinePreset, ...PipelinePreset[]];
export const EVENT_LEVELS = ['info', 'success', 'warning', 'error'] as const;
/** Every change type this version of the protocol knows (ChangeSchema has exactly these). */
export const CHANGE_TYPES = [
  'host_added',
  'host_updated',
  'host_removed',
  'command_started',
  'command_updated',
  'command_progress',
  'command_finished',
  'event',
  'pipeline_started',
  'pipeline_updated',
  'pipeline_finished',
  'limits_changed',
] as const;

/** Users are viewers, operators or admins; API tokens carry one of those roles, or are agents of one host. */
export const USER_ROLES = ['viewer', 'operator', 'admin'] as const;
export const TOKEN_ROLES = ['viewer', 'operator', 'admin', 'agent'] as const;
export type UserRole = (typeof USER_ROLES)[number];
export type TokenRole = (typeof TOKEN_ROLES)[number];

/**
 * What a caller may be allowed to do:
 * - `read`: see the state and logs (viewer and up);
 * - `operate`: start ops and pipelines, add and remove hosts (operator and up);
 * - `report`: what an agent sends about one host: heartbeats, command output and results,
 *   events (operator and up, or an agent token for that host only);
 * - `admin`: manage users and tokens.
 */
export const ACTIONS = ['read', 'operate', 'report', 'admin'] as const;
export type Action = (typeof ACTIONS)[number];

export function isTerminalCommandStatus(status: string): boolean {
  return (COMMAND_TERMINAL_STATUSES as readonly string[]).includes(status);
}

export function isTerminalPipelineStatus(status: string): boolean {
  return (PIPELINE_TERMINAL_STATUSES as readonly string[]).includes(status);
}
