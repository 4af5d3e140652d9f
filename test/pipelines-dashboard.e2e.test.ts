// The dashboard's side of pipelines, in Chromium against a server process with emulated Go
// agents: the start-pipeline form (a preset and a rollout control), each host's progress and why
// a host was dropped, and Cancel for an operator.
import { describe, expect, it } from 'vitest';
import { browserAndServer, logIn } from './support/browser.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { api } from './support/http.js';
import { scriptedAgentsVia } from './support/scripted-agent.js';
import { TEST_ADMIN_PASSWORD } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
const fixture = browserAndServer();

describe('pipelines on the dashboard', () => {
  it('starts one from the form, shows why a host was dropped, and cancels it', async () => {
    const { browser, server } = fixture;
    // h1's pull fails; everyone's switch runs until it is stopped.
    const agents = await scriptedAgentsVia(server, ['h0', 'h1', 'h2'], { exitCode: (host, op) => (op === 'switch' ? null : host === 'h1' && op === 'pull' ? 4 : 0) }, defer);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    defer(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('dialog', (dialog) => void dialog.accept());
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    for (const host of ['h0', 'h1', 'h2']) await page.locator(`tr[data-host-id="${host}"] input[type="checkbox"]`).check();

    await page.getByRole('button', { name: 'Start pipeline…' }).click();
    const form = page.locator('form:has(#pipeline-title)');
    await form.getByLabel('Name').fill('from the form');
    await form.locator('select[name="preset"]').selectOption('do-all');
    await form.locator('input[name="parallel"]').fill('2');
    await form.getByRole('button', { name: 'Start pipeline' }).click();

    const card = page.locator('.pipeline', { hasText: 'from the form' });
    await card.waitFor({ timeout: 5000 });
    await expect.poll(() => card.locator('.pipeline-controls').textContent()).toBe('preset do-all · 2 at a time');
    const dropped = card.locator('.pipeline-drops li[data-host="h1"]');
    await dropped.waitFor({ timeout: 10_000 });
    expect(await dropped.getAttribute('data-reason')).toBe('failed');
    expect(await dropped.textContent()).toBe('h1 failed at stage 1 (pull), exit 4');
    await until('both others run their switch', () => agents[0]!.busyWith === 'switch' && agents[2]!.busyWith === 'switch');
    await expect.poll(() => card.locator('.host-cell[data-host="h0"]').getAttribute('title')).toMatch(/^h0: stage 2\/3 \(switch\), running · pull ✓, switch …$/);

    await card.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => card.locator('.badge').first().textContent(), { timeout: 10_000 }).toBe('cancelled');
    expect(await card.locator('.pipeline-drops li[data-host="h0"]').textContent()).toBe('h0 cancelled at stage 2 (switch)');
    expect(await card.getByRole('button', { name: /Cancel/ }).count()).toBe(0);
    const state = (await api(server.url, server.token).get('/api/state')).body.payload;
    expect(state.pipelines[0]).toMatchObject({ name: 'from the form', status: 'cancelled', stages: ['pull', 'switch', 'test'], preset: 'do-all', parallel: 2 });
    expect(errors).toEqual([]);
  });
});
