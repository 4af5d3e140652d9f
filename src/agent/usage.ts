// The `nixfleet-agent --help` text, built from the one table of variables in config.ts.
import { AGENT_ENV_VARIABLES } from './config.js';
import { AGENT_VERSION } from './version.js';

export function agentUsage(): string {
  const width = Math.max(...AGENT_ENV_VARIABLES.map((variable) => variable.name.length));
  const variables = AGENT_ENV_VARIABLES.map(
    (variable) => `  ${variable.name.padEnd(width)}  ${variable.description}\n  ${''.padEnd(width)}  default: ${variable.default === '' ? '(empty)' : variable.default}`,
  ).join('\n');
  return `nixfleet-agent ${AGENT_VERSION}: the NixFleet host agent (speaks the original NixFleet agent protocol)

Usage:
  nixfleet-agent            connect and serve the server's commands until SIGTERM/SIGINT
  nixfleet-agent --check    check the configuration and the token: connect, register, exit 0 or 1
  nixfleet-agent --help     this text
  nixfleet-agent --version  print the version

Configuration (environment variables):
${variables}

Exit codes: 0 stopped by a signal (or restarting on macOS); 1 invalid configuration or a failed
--check; 2 bad usage; 101 restarting after a successful switch (Linux: systemd restarts the agent).`;
}
