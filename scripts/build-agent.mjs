// Bundles the host agent (src/agent/main.ts) with esbuild into ONE file,
// dist/agent/nixfleet-agent.mjs, with `ws` inside: a host needs only Node 20 to run it.
// Run by `npm run build`; `--outfile <path>` writes elsewhere (tests build into a temp dir).
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

const at = process.argv.indexOf('--outfile');
const outfile = at > 0 && process.argv[at + 1] ? process.argv[at + 1] : 'dist/agent/nixfleet-agent.mjs';

await build({
  entryPoints: ['src/agent/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // ws loads these native speed-ups when installed and works without them.
  external: ['bufferutil', 'utf-8-validate'],
  // src/agent/main.ts starts with the shebang; esbuild keeps it on the first line.
  // ws is CommonJS: give the ESM bundle a require() for Node's built-ins it asks for.
  banner: { js: "import { createRequire as __nixfleetCreateRequire } from 'node:module';\nconst require = __nixfleetCreateRequire(import.meta.url);" },
  legalComments: 'none',
  sourcemap: false,
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
