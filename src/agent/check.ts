// `nixfleet-agent --check`: one connection with the configured URL and token, one `register`,
// and a verdict in one line: the server answered `registered`, or why not.
import { encodeAgentMessage } from '../protocol/agent-wire.js';
import type { AgentConfig } from './config.js';
import { systemHostFacts, type HostFactsSource } from './host-facts.js';
import { describeUpgradeRefusal, openAgentSocket } from './link.js';
import { registerPayload } from './register-payload.js';
import { decodeServerMessage } from './server-messages.js';

export interface CheckResult {
  ok: boolean;
  /** One line for a human: "OK: …" or what failed and what to check. */
  message: string;
}

export interface CheckOptions {
  timeoutMs?: number;
  hostFacts?: HostFactsSource;
}

export async function checkConnection(config: AgentConfig, options: CheckOptions = {}): Promise<CheckResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const facts = await (options.hostFacts ?? systemHostFacts(config))();
  const { url } = config;
  return new Promise((resolve) => {
    const socket = openAgentSocket(url, config.token, timeoutMs);
    let settled = false;
    const finish = (ok: boolean, message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.on('error', () => {});
      if (socket.readyState === socket.OPEN) socket.close(1000, 'check done');
      else socket.terminate();
      resolve({ ok, message });
    };
    const timer = setTimeout(() => {
      const stage = socket.readyState === socket.OPEN ? 'no `registered` answer to `register`' : 'no connection';
      finish(false, `${stage} within ${timeoutMs / 1000} s from ${url}`);
    }, timeoutMs);
    socket.on('unexpected-response', (_request, response) => {
      response.resume();
      finish(false, describeUpgradeRefusal(response.statusCode ?? 0));
    });
    socket.on('error', (error) => finish(false, `cannot connect to ${url}: ${error.message}`));
    socket.on('open', () => socket.send(encodeAgentMessage('register', registerPayload(config, facts))));
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const message = decodeServerMessage(data.toString());
      if (message.type !== 'registered') return;
      const id = message.payload.host_id ? ` (host id ${message.payload.host_id})` : '';
      finish(true, `OK: registered as ${config.hostname}${id} at ${url}`);
    });
    socket.on('close', (code, reason) => finish(false, `the server closed the connection before \`registered\`: ${code}${reason.length ? ` ${reason.toString()}` : ''}`));
  });
}
