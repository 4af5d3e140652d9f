// Launches Debian's Chromium through playwright-core (browser downloads are impossible here).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium" (.ci/run does) or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Logs `page` in through the real login form, as a user would, and waits for the dashboard. */
export async function logIn(page: import('playwright-core').Page, baseUrl: string, password: string, username = 'admin'): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(`${baseUrl}/`), page.click('button[type="submit"]')]);
}

/** What Chromium's network layer saw of WebSockets, on the page itself and in its workers. */
export interface SocketTraffic {
  /** WebSockets the page's own main thread created. */
  onPage: string[];
  /** WebSockets created in the page's dedicated workers. */
  inWorkers: string[];
  /** `Sec-WebSocket-Extensions` of each handshake response (workers and page). */
  extensions: string[];
  /** Payloads of received frames, in order (workers and page). */
  framesReceived: string[];
}

/**
 * Watches WebSockets through the DevTools protocol: the page's Network domain, and that of each
 * dedicated worker, which it attaches to (paused at start, so nothing is missed) through a
 * non-flattened auto-attach (Playwright's own CDP sessions see only the page). Call before the
 * page navigates.
 */
export async function watchSockets(page: import('playwright-core').Page): Promise<SocketTraffic> {
  const traffic: SocketTraffic = { onPage: [], inWorkers: [], extensions: [], framesReceived: [] };
  const cdp = await page.context().newCDPSession(page);
  const record = (where: 'onPage' | 'inWorkers', method: string, params: any) => {
    if (method === 'Network.webSocketCreated') traffic[where].push(params.url);
    if (method === 'Network.webSocketHandshakeResponseReceived') {
      const headers = params.response.headers as Record<string, string>;
      traffic.extensions.push(Object.entries(headers).find(([name]) => name.toLowerCase() === 'sec-websocket-extensions')?.[1] ?? '');
    }
    if (method === 'Network.webSocketFrameReceived') traffic.framesReceived.push(params.response.payloadData);
  };
  for (const method of ['Network.webSocketCreated', 'Network.webSocketHandshakeResponseReceived', 'Network.webSocketFrameReceived'] as const) {
    cdp.on(method, (params) => record('onPage', method, params));
  }
  let id = 1;
  cdp.on('Target.attachedToTarget', ({ sessionId, waitingForDebugger }) => {
    const send = (method: string) => cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: id++, method }) });
    void send('Network.enable').then(() => (waitingForDebugger ? send('Runtime.runIfWaitingForDebugger') : undefined));
  });
  cdp.on('Target.receivedMessageFromTarget', ({ message }) => {
    const { method, params } = JSON.parse(message) as { method?: string; params?: unknown };
    if (method) record('inWorkers', method, params);
  });
  await cdp.send('Network.enable');
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: true, flatten: false });
  return traffic;
}
