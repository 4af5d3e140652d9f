// Bundles the dashboard (src/dashboard) with esbuild into dist/dashboard: index.html, app.js,
// app.css, socket-worker.js (the dedicated worker that owns the WebSocket), and the login page
// (login.html, login.js, login.css), the only part served without a session. Run by `npm run build`; `--watch` rebuilds on change.
import { build, context } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const outdir = 'dist/dashboard';
mkdirSync(outdir, { recursive: true });
const options = {
  entryPoints: { app: 'src/dashboard/main.tsx', login: 'src/dashboard/login.tsx', 'socket-worker': 'src/client/socket-worker-entry.ts' },
  bundle: true,
  format: 'esm',
  target: 'es2022',
  outdir,
  minify: !process.env.NO_MINIFY, // NO_MINIFY=1: readable names in browser CPU profiles
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
};
copyFileSync('src/dashboard/index.html', `${outdir}/index.html`);
copyFileSync('src/dashboard/login.html', `${outdir}/login.html`);
if (process.argv.includes('--watch')) {
  const ctx = await context(options);
  await ctx.watch();
  console.log('watching src/dashboard …');
} else {
  await build(options);
}
