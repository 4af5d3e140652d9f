// Serves the built dashboard: `/` is index.html (with the beacon interval filled in), and
// `/assets/<file>` the bundle. Only plain file names are served, so no path can escape the
// directory; files are read once and kept in memory (the bundle is small).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError, sendText } from './http-error.js';
import type { Router } from './router.js';

/** dist/dashboard of this package, from both src/server/http and dist/server/http. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../../dist/dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.html': 'text/html; charset=utf-8',
};

export interface DashboardOptions {
  dir: string;
  beaconIntervalMs: number;
}

export function addDashboardRoutes(router: Router, options: DashboardOptions): Router {
  const files = loadFiles(options.dir);
  const index = files.get('index.html')?.toString('utf8').replaceAll('{{BEACON_MS}}', String(options.beaconIntervalMs));
  return router
    .on('GET', '/', (_req, res) => {
      if (index === undefined) throw new HttpError(503, 'dashboard_missing', `the dashboard is not built (no index.html in ${options.dir}); run npm run build`);
      sendText(res, 200, index, TYPES['.html']!);
    })
    .on('GET', '/assets/:file', (_req, res, params) => {
      const name = params.file ?? '';
      const body = /^[\w][\w.-]*$/.test(name) && name !== 'index.html' ? files.get(name) : undefined;
      if (!body) throw new HttpError(404, 'not_found', `no asset ${JSON.stringify(name.slice(0, 100))}`);
      res.writeHead(200, { 'content-type': TYPES[extname(name)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      res.end(body);
    });
}

function loadFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  if (!existsSync(dir)) return files;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile()) files.set(entry.name, readFileSync(join(dir, entry.name)));
  }
  return files;
}
