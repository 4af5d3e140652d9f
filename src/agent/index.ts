// The agent as a library: run one or many agents in a process (the demo), with your own op
// runner, clock, metrics and host facts. The CLI is main.ts.
export { Agent, startAgent, DEFAULT_AGENT_TIMING, type AgentDeps, type AgentTiming, type AgentSnapshot } from './agent.js';
export { parseAgentConfig, AgentConfigError, AGENT_ENV_VARIABLES, type AgentConfig, type AgentLogLevel, type RestartAfterSwitch, type AgentHostType } from './config.js';
export { defaultOps, opTableFor, loadOpsFile, parseOpsFile, resolveOpCommand, OpUnavailableError, OUTDATED_EXIT_CODE, BUILT_IN_OPS, type OpTable, type OpCommandSpec, type OpVariables } from './ops.js';
export { processOpRunner, runProcess, STOPPED_EXIT_CODE, type OpRunnerFactory, type OpStart, type RunningOp, type OpExit, type OutputStream, type ProcessOpRunnerOptions } from './op-runner.js';
export { systemMetrics, ProcMetrics, OsMetrics, type MetricsSource } from './metrics.js';
export { systemHostFacts, type HostFacts, type HostFactsSource } from './host-facts.js';
export { systemClock, type AgentClock } from './clock.js';
export { UpdateStatus, type UpdateStatusSource } from './update-status.js';
export { checkConnection, type CheckResult, type CheckOptions } from './check.js';
export { DEFAULT_LINK_TIMING, type LinkTiming } from './link.js';
export { AGENT_VERSION } from './version.js';
