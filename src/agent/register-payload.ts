// The `register` payload: the configuration and the host facts, every unset string as "" the
// way the Go agent sends it. Shared by the agent and `--check`.
import type { HeartbeatPayload, RegisterPayload } from '../protocol/agent-wire.js';
import type { AgentConfig } from './config.js';
import type { HostFacts } from './host-facts.js';
import { AGENT_VERSION } from './version.js';

export function registerPayload(config: AgentConfig, facts: HostFacts): RegisterPayload {
  return {
    hostname: config.hostname,
    host_type: config.hostType,
    agent_version: AGENT_VERSION,
    os_version: facts.os_version,
    nixpkgs_version: facts.nixpkgs_version,
    generation: facts.generation,
    theme_color: config.themeColor,
    // Seconds; a whole number in any real configuration (tests use fractions).
    heartbeat_interval: config.heartbeatIntervalMs / 1000,
    location: config.location,
    device_type: config.deviceType,
    repo_url: config.repoUrl,
    repo_dir: config.repoDir,
    ...buildFields(facts),
  };
}

/** Which build of the agent runs: omitted when unknown, as the Go agent's omitempty fields. */
export function buildFields(facts: HostFacts): Pick<HeartbeatPayload, 'store_path' | 'binary_hash'> {
  return {
    ...(facts.store_path ? { store_path: facts.store_path } : {}),
    ...(facts.binary_hash ? { binary_hash: facts.binary_hash } : {}),
  };
}
