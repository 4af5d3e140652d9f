#!/usr/bin/env node
// The `nixfleet-agent` CLI: reads the configuration from the environment and runs the agent
// until SIGTERM/SIGINT (stopping a running op's process group first), or checks the
// configuration with --check. Restarts after a switch by exiting; systemd/launchd start it again.
import { exitOnSignals } from '../server/shutdown.js';
import { createLogger } from '../server/logger.js';
import { Agent } from './agent.js';
import { checkConnection } from './check.js';
import { AgentConfigError, parseAgentConfig, type AgentConfig } from './config.js';
import { opTableFor } from './ops.js';
import { agentUsage } from './usage.js';
import { AGENT_VERSION } from './version.js';

const FLAGS = ['--help', '-h', '--version', '--check'];

function fail(message: string, code: number): never {
  process.stderr.write(`nixfleet-agent: ${message}\n`);
  process.exit(code);
}

function readConfig(): AgentConfig {
  try {
    const config = parseAgentConfig(process.env, process.platform);
    opTableFor(config); // an unreadable or invalid ops file is a configuration error too
    return config;
  } catch (error) {
    if (error instanceof AgentConfigError) fail(`invalid configuration: ${error.message}`, 1);
    throw error;
  }
}

async function main(args: string[]): Promise<void> {
  const unknown = args.filter((arg) => !FLAGS.includes(arg));
  if (unknown.length > 0) fail(`unknown argument ${unknown[0]} (see nixfleet-agent --help)`, 2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${agentUsage()}\n`);
    process.exit(0);
  }
  if (args.includes('--version')) {
    process.stdout.write(`${AGENT_VERSION}\n`);
    process.exit(0);
  }
  const config = readConfig();
  if (args.includes('--check')) {
    const result = await checkConnection(config);
    (result.ok ? process.stdout : process.stderr).write(`${result.ok ? '' : 'FAILED: '}${result.message}\n`);
    process.exit(result.ok ? 0 : 1);
  }

  const logger = createLogger(config.logLevel);
  const agent = new Agent(config, {
    logger,
    // Exit so the supervisor starts the (new) build: systemd on 101, launchd on any exit.
    onRestartRequested: async (exitCode) => {
      await agent.close();
      process.exit(exitCode);
    },
  });
  exitOnSignals(() => agent.close(), logger, { name: 'nixfleet-agent', forceAfterMs: config.stopGraceMs + 10_000 });
  logger.info('nixfleet-agent starting', { version: AGENT_VERSION, hostname: config.hostname, url: config.url });
  await agent.start();
}

main(process.argv.slice(2)).catch((error: unknown) => fail(`crashed: ${(error as Error).stack ?? String(error)}`, 1));
