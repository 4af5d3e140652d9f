// Access control and hostile content in a real Chromium: XSS through host names and command
// output (including OSC 8 links), the CSP holding with no violations, roles in the UI, and the
// login, logout and admin flows.
import { rmSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../src/server/auth/totp.js';
import { launchBrowser, logIn } from './support/browser.js';
import { goAgentVia } from './support/go-agent.js';
import { api, type ApiResponse } from './support/http.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { tempDir, TEST_ADMIN_PASSWORD } from './support/test-server.js';

let browser: Browser;
let server: ServerProcess;
let dataDir: string;
let http: ReturnType<typeof api>;

beforeAll(async () => {
  browser = await launchBrowser();
  dataDir = tempDir();
  server = await spawnServer({ NIXFLEET_DATA_DIR: dataDir });
  http = api(server.url, server.token);
});
afterAll(async () => {
  await browser?.close();
  await server?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function freshPage(): Promise<{ page: Page; cspViolations: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  return { page, cspViolations };
}

function expectOk(res: ApiResponse, status = 201): ApiResponse {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res;
}

describe('hostile content in the browser', () => {
  it('renders event messages and command output as inert text: no markup, no script, no links', async () => {
    const evilName = '<img src=x onerror="window.__pwned=1">';
    // A hostname cannot carry it any more (RFC 1123); the text people read elsewhere still can.
    expect((await http.post('/api/hosts', { hostname: evilName })).status).toBe(400);
    const host = expectOk(await http.post('/api/hosts', { hostname: 'evil-host' })).body.host.id;
    expectOk(await http.post('/api/events', { level: 'warning', category: 'agent', message: evilName, host_id: host }));
    await goAgentVia(server, host);
    const command = expectOk(await http.post('/api/commands', { host_id: host, op: 'switch' })).body.command.id;
    const output = [
      '<script>window.__pwned=2</script>\n',
      '<a href="javascript:window.__pwned=3">click</a>\n',
      '\u001b]8;;javascript:window.__pwned=4\u0007osc link\u001b]8;;\u0007\n',
      '\u001b[31mred\u001b[0m <b>not bold</b>\n',
    ].join('');
    expectOk(await http.post(`/api/commands/${command}/output`, { output }), 200);

    const { page, cspViolations } = await freshPage();
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector(`tr[data-host-id="evil-host"]`);
    await page.waitForSelector(`[data-command-id="${command}"] [data-field="output"]`);
    await page.waitForSelector('.event-message');
    const seen = await page.evaluate((id) => ({
      pwned: (window as unknown as { __pwned?: number }).__pwned,
      events: [...document.querySelectorAll('.event-message')].map((e) => e.textContent),
      imgs: document.querySelectorAll('img').length,
      output: document.querySelector(`[data-command-id="${id}"] [data-field="output"]`)?.textContent,
      links: [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')).filter((href) => href && /^\s*javascript:/i.test(href)),
      scripts: document.querySelectorAll('body script').length,
      bold: document.querySelectorAll(`[data-command-id="${id}"] b`).length,
    }), command);
    expect(seen.pwned).toBeUndefined();
    expect(seen.events.join('\n')).toContain(evilName);
    expect(seen.imgs).toBe(0);
    expect(seen.output).toContain('<script>window.__pwned=2</script>');
    expect(seen.output).toContain('<a href="javascript:window.__pwned=3">click</a>');
    expect(seen.output).toContain('osc link');
    expect(seen.output).not.toContain('\u001b');
    expect(seen.links).toEqual([]);
    expect(seen.scripts).toBe(0);
    expect(seen.bold).toBe(0);
    expect(cspViolations).toEqual([]);
    await page.context().close();
  });
});

describe('roles and sessions in the browser', () => {
  it('sends an anonymous visitor to the login page, and shows a viewer no actions', async () => {
    expectOk(await http.post('/api/users', { name: 'vera', role: 'viewer', password: 'vera-password-long' }));
    const { page } = await freshPage();
    await page.goto(server.url);
    expect(page.url()).toBe(`${server.url}/login`);
    await logIn(page, server.url, 'vera-password-long', 'vera');
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]');
    await page.waitForSelector('tr[data-host-id]');
    expect(await page.locator('button', { hasText: 'Add host' }).count()).toBe(0);
    expect(await page.locator('button', { hasText: 'Run…' }).count()).toBe(0);
    expect(await page.locator('button', { hasText: 'Access…' }).count()).toBe(0);
    await page.context().close();
  });

  it('logs out: the socket closes and the page returns to the login form', async () => {
    const { page } = await freshPage();
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]');
    await Promise.all([page.waitForURL(`${server.url}/login`), page.click('button:has-text("Log out")')]);
    const me = await page.evaluate(async () => (await fetch('/api/me')).status);
    expect(me).toBe(401);
    await page.context().close();
  });

  it('turns a second factor on and off from the access page only with the password (and a code to turn it off)', async () => {
    expectOk(await http.post('/api/users', { name: 'tina', role: 'admin', password: 'tina has a long password' }));
    const { page } = await freshPage();
    await logIn(page, server.url, 'tina has a long password', 'tina');
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]');
    await page.click('button:has-text("Access…")');
    const row = page.locator('tr[data-user="tina"]');
    await row.locator('button:has-text("Enable TOTP")').click();
    const confirm = page.locator('form[aria-label="Confirm the second-factor change"]');
    await confirm.locator('input[name="password"]').fill('not tina password');
    await confirm.locator('button[type="submit"]').click();
    await page.waitForSelector('text=Could not change the second factor');
    await confirm.locator('input[name="password"]').fill('tina has a long password');
    await confirm.locator('button[type="submit"]').click();
    const uri = (await page.locator('[data-testid="new-secret"]').textContent())!.trim();
    const secret = new URL(uri).searchParams.get('secret')!;
    await row.locator('text=TOTP').waitFor();
    await row.locator('button:has-text("Disable")').click();
    await confirm.locator('input[name="password"]').fill('tina has a long password');
    await confirm.locator('input[name="totp"]').fill(totpCode(secret, Date.now()));
    await confirm.locator('button[type="submit"]').click();
    await row.locator('text=password only').waitFor();
    expect((await http.get('/api/users')).body.users.find((u: { name: string }) => u.name === 'tina').totp).toBe(false);
    await page.context().close();
  });

  it('lets an admin create an agent token from the access page, shown once', async () => {
    const { page } = await freshPage();
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('tr[data-host-id]');
    await page.click('button:has-text("Access…")');
    const form = page.locator('form[aria-label="Create an API token"]');
    await form.locator('input[name="name"]').fill('agent for evil-host');
    await form.locator('select[name="role"]').selectOption('agent');
    await form.locator('select[name="host_id"]').selectOption('evil-host');
    await form.locator('button[type="submit"]').click();
    const token = (await page.locator('[data-testid="new-secret"]').textContent())!.trim();
    expect(token).toMatch(/^nft_[a-z0-9]{12}_[\w-]{43}$/);
    const agent = api(server.url, token);
    expect((await agent.patch('/api/hosts/evil-host', { status: 'online' })).status).toBe(200);
    expect((await agent.post('/api/hosts', { hostname: 'sneaky' })).status).toBe(403);
    await page.context().close();
  });
});
