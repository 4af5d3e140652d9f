// What the dashboard shows, not only what its client holds, stays the server's state through a
// burst of mixed changes: updates published in place (store.ts), a rename that every view using
// host names must follow, a removal and an addition that rebuild the lists.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { browserAndServer, logIn } from './support/browser.js';
import { api } from './support/http.js';
import { TEST_ADMIN_PASSWORD } from './support/test-server.js';

const fixture = browserAndServer();

interface ServerHost {
  id: string;
  hostname: string;
  metrics: { cpu: number } | null;
}

/** The table's rows (all on screen: a tall viewport and a small fleet) and the command cards. */
function shown(page: Page) {
  return page.evaluate(() => ({
    version: Number(document.querySelector('[data-testid="sync-status"]')?.getAttribute('data-version')),
    rows: [...document.querySelectorAll('tr[data-host-id]')].map((row) => ({
      id: row.getAttribute('data-host-id'),
      hostname: row.querySelector('[data-field="hostname"]')?.textContent?.trim(),
      metrics: row.querySelector('[data-field="metrics"]')?.textContent ?? '',
    })),
    commandHosts: [...document.querySelectorAll('[data-command-id] .command-host')].map((el) => el.textContent),
  }));
}

describe('the dashboard under mixed changes', () => {
  it('shows exactly the server hosts, names and metrics after a burst with a rename, a removal and an addition', async () => {
    const { browser, server } = fixture;
    const http = api(server.url, server.token);
    for (let i = 0; i < 12; i++) await http.addHost(`c-${i}`, { status: 'online', last_seen: new Date().toISOString() });
    expect((await http.post('/api/commands', { host_id: 'c-2', op: 'switch' })).status).toBe(201);
    const page = await browser.newPage({ viewport: { width: 1280, height: 2400 } });
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]');
    await page.waitForSelector('tr[data-host-id="c-11"]');

    const queue = Array.from({ length: 240 }, (_, i) => i);
    await Promise.all([
      ...Array.from({ length: 16 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          const id = `c-${i % 12}`;
          if (id === 'c-5') continue; // removed below; its updates would race the removal
          expect((await http.patch(`/api/hosts/${id}`, { metrics: { cpu: i % 100, ram: 40, swap: 0, load: 1 } })).status).toBe(200);
        }
      }),
      (async () => {
        await new Promise((resolve) => setTimeout(resolve, 30)); // in the middle of the burst
        expect((await http.delete('/api/hosts/c-5')).status).toBe(200);
        await http.addHost('c-12', { status: 'online', last_seen: new Date().toISOString() });
        expect((await http.patch('/api/hosts/c-7', { hostname: 'c-7-renamed' })).status).toBe(200);
        // Renamed after the last addition or removal, in a later frame: published in place, not by a rebuild.
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect((await http.patch('/api/hosts/c-2', { hostname: 'c-2-renamed' })).status).toBe(200);
      })(),
    ]);

    const state = (await http.get('/api/state')).body as { version: number; payload: { hosts: ServerHost[] } };
    await page.waitForFunction((v) => document.querySelector('[data-testid="sync-status"]')?.getAttribute('data-version') === String(v), state.version, { timeout: 3000 });
    await page.waitForTimeout(50); // the frame that publishes the last change
    const view = await shown(page);
    expect(view.rows.map((r) => [r.id, r.hostname])).toEqual(state.payload.hosts.map((h) => [h.id, h.hostname]));
    for (const host of state.payload.hosts) {
      if (host.metrics) expect(view.rows.find((r) => r.id === host.id)!.metrics).toContain(`${host.metrics.cpu}%`);
    }
    // The command list names hosts through the store's host names: it follows the rename.
    expect(view.commandHosts).toEqual(['c-2-renamed']);
    // Select-all takes the fleet as it is now: 12 hosts (c-5 gone, c-12 new).
    await page.getByLabel('Select all hosts').check();
    await page.getByText('12 hosts selected').waitFor({ timeout: 2000 });
    await page.close();
  });
});
