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
export const EVENT_LEVELS = ['info', 'success', 'warning', 'error'] as const;
/** Every change type this version of the protocol knows (ChangeSchema has exactly these). */
export const CHANGE_TYPES = [
  'host_added',
  'host_updated',
  'host_removed',
  'command_started',
  'command_progress',
  'command_finished',
  'event',
  'pipeline_started',
  'pipeline_updated',
  'pipeline_finished',
  'limits_changed',
] as const;

export function isTerminalCommandStatus(status: string): boolean {
  return (COMMAND_TERMINAL_STATUSES as readonly string[]).includes(status);
}

export function isTerminalPipelineStatus(status: string): boolean {
  return (PIPELINE_TERMINAL_STATUSES as readonly string[]).includes(status);
}
