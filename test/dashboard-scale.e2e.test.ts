// A large fleet in a real Chromium: the hosts table renders only the rows on screen, scrolling
// brings the others in, and a change to a host that was off screen shows when it scrolls in.
import { describe, expect, it } from 'vitest';
import { browserAndServer, logIn } from './support/browser.js';
import { api } from './support/http.js';
import { TEST_ADMIN_PASSWORD } from './support/test-server.js';

const HOSTS = 400;
const fixture = browserAndServer(async (server) => {
  const http = api(server.url, server.token);
  for (let start = 0; start < HOSTS; start += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, i) => http.addHost(`host-${String(start + i).padStart(3, '0')}`)));
  }
});

describe('a large fleet', () => {
  it('renders only the visible rows and brings the others in on scroll, current', async () => {
    const { browser, server } = fixture;
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, server.url, TEST_ADMIN_PASSWORD);
    await page.waitForSelector('[data-testid="sync-status"][data-status="live"]');
    await page.waitForSelector('tr[data-host-id]');
    const rendered = await page.locator('tr[data-host-id]').count();
    expect(rendered).toBeGreaterThan(5);
    expect(rendered).toBeLessThan(80);
    // The page is as tall as the whole table would be, so the scrollbar tells the truth.
    expect(await page.evaluate(() => document.documentElement.scrollHeight)).toBeGreaterThan(HOSTS * 30);

    // A change to a host far off screen, then scroll to it.
    const last = `host-${HOSTS - 1}`;
    const http = api(server.url, server.token);
    expect((await http.patch(`/api/hosts/${last}`, { status: 'online', agent_version: '9.9.9' })).status).toBe(200);
    expect(await page.locator(`tr[data-host-id="${last}"]`).count()).toBe(0);
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const row = page.locator(`tr[data-host-id="${last}"]`);
    await row.waitFor({ timeout: 2000 });
    expect(await row.locator('[data-field="agent_version"]').textContent()).toContain('9.9.9');
    expect(await page.locator('tr[data-host-id="host-000"]').count()).toBe(0);
    await page.close();
  });
});
