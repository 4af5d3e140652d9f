// Serves the built dashboard: `/` is index.html (with the beacon interval filled in), `/login`
// the login page, and `/assets/<file>` the bundles. Without a session only the login page and
// its assets are served. Only plain file names are served, so no path can escape the
// directory; files are read once and kept in memory (the bundles are small).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
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

/** What the login page needs; everything else requires a session or token. */
const PUBLIC_ASSETS = new Set(['login.js', 'login.js.map', 'login.css', 'login.css.map', 'app.css', 'app.css.map']);

export interface DashboardOptions {
  dir: string;
  beaconIntervalMs: number;
}

export function addDashboardRoutes(router: Router, options: DashboardOptions): Router {
  const files = loadFiles(options.dir);
  const index = files.get('index.html')?.toString('utf8').replaceAll('{{BEACON_MS}}', String(options.beaconIntervalMs));
  const login = files.get('login.html')?.toString('utf8');
  const missing = (file: string) => new HttpError(503, 'dashboard_missing', `the dashboard is not built (no ${file} in ${options.dir}); run npm run build`);
  // Public routes whose answer depends on whether a credential came with the request: the
  // dashboard and its own assets need one, the login page and its assets do not.
  const page = (path: string) => ({ method: 'GET' as const, path, access: { kind: 'public' as const } });
  return router
    .add('dashboard', page('/'), ({ res, principal }) => {
      if (!principal) return redirect(res, '/login');
      if (index === undefined) throw missing('index.html');
      sendText(res, 200, index, TYPES['.html']!);
    })
    .add('loginPage', page('/login'), ({ res, principal }) => {
      if (principal) return redirect(res, '/');
      if (login === undefined) throw missing('login.html');
      sendText(res, 200, login, TYPES['.html']!);
    })
    .add('asset', page('/assets/:file'), ({ res, params, principal }) => {
      const name = params.file ?? '';
      const body = /^[\w][\w.-]*$/.test(name) && !name.endsWith('.html') ? files.get(name) : undefined;
      if (!body) throw new HttpError(404, 'not_found', `no asset ${JSON.stringify(name.slice(0, 100))}`);
      if (!principal && !PUBLIC_ASSETS.has(name)) throw new HttpError(401, 'unauthenticated', 'log in to load the dashboard');
      res.writeHead(200, { 'content-type': TYPES[extname(name)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache' });
      res.end(body);
    });
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'content-length': 0, 'cache-control': 'no-store' });
  res.end();
}

function loadFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  if (!existsSync(dir)) return files;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile()) files.set(entry.name, readFileSync(join(dir, entry.name)));
  }
  return files;
}
