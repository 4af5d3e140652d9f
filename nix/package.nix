# The NixFleet sync server and dashboard: `nix build .#nixfleet-sync`.
#
# $out/lib/node_modules/nixfleet-sync   the package as `npm pack` lays it out (dist/, package.json)
#                                       with its production node_modules (better-sqlite3 compiled here)
# $out/bin/nixfleet-sync                runs dist/server/main.js (configured by NIXFLEET_* variables)
# $out/bin/nixfleet-sync-admin          runs dist/server/admin-cli.js (`user …`, `token …`)
#
# Node: nodejs_20, the Node the project is tested on. Node 20 reached its end of life on
# 2026-04-30 and nixpkgs has marked nodejs_20 insecure (and is removing it): on a nixpkgs that
# refuses it, build with a newer one, e.g. `.override { nodejs_20 = pkgs.nodejs_22; }`
# (better-sqlite3 supports Node 20 to 26). The argument keeps the nixpkgs name so that
# callPackage does not replace it with the default `nodejs`.
{
  lib,
  stdenv,
  buildNpmPackage,
  nodejs_20,
  python3,
  makeWrapper,
  cctools,
}:

let
  packageJson = lib.importJSON ../package.json;

  # Only what `npm ci` and `npm run build` read: a change to tests, docs or benchmarks does not
  # rebuild the package.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../package.json
      ../package-lock.json
      ../tsconfig.json
      ../scripts
      (lib.fileset.fileFilter (file: !(lib.hasSuffix ".test.ts" file.name)) ../src)
    ];
  };

  # The lock with the `resolved` URLs fetchNpmDeps needs (see ./lockfile.nix): a file in the
  # store, made at evaluation time from the lock in the source.
  lockfile = builtins.toFile "package-lock.json" (builtins.toJSON (import ./lockfile.nix ../package-lock.json));
in
buildNpmPackage {
  pname = packageJson.name;
  inherit (packageJson) version;
  inherit src;
  nodejs = nodejs_20;

  # Runs in this derivation and in its fetchNpmDeps (which has coreutils, not node): both see
  # the same lock, so npmConfigHook's "is npmDepsHash out of date" comparison holds.
  postPatch = ''
    install -m 644 ${lockfile} package-lock.json
  '';

  # The hash of the npm dependency cache made from the lock above. It cannot be computed
  # without Nix, and it changes whenever package-lock.json does. To get the real one:
  #   nix build .#nixfleet-sync 2>&1 | grep 'got:'
  # (the first build fails with "hash mismatch … got: sha256-…"), and put that value here.
  # nixfleet-agent shares these dependencies (nix/agent.nix): one hash for both.
  npmDepsHash = lib.fakeHash;

  # better-sqlite3 is a native module: its install script (`prebuild-install || node-gyp
  # rebuild --release`) cannot download a prebuilt binary in the sandbox and compiles it with
  # node-gyp, which needs python3 and the C/C++ compiler of stdenv (cctools on Darwin).
  # npmConfigHook runs `npm ci --ignore-scripts` and then `npm rebuild`, which runs the
  # dependencies' install scripts (better-sqlite3, and esbuild's check of its binary) but not
  # our own `prepare`. package.json's `allowScripts` lists exactly those two; npm versions
  # without that field run every install script, and no other dependency has one.
  nativeBuildInputs = [
    python3
    makeWrapper
  ]
  ++ lib.optionals stdenv.hostPlatform.isDarwin [ cctools ];

  # `npm run build`: tsc, the dashboard bundle and the one-file agent bundle.
  npmBuildScript = "build";

  # The install phase lists the files with `npm pack --dry-run`, which would run `prepare`
  # (a second `npm run build`). The build is done; skip it.
  npmPackFlags = [ "--ignore-scripts" ];

  # The install phase then prunes dev dependencies (typescript, esbuild, vitest,
  # playwright-core, …): the output has dist/ and the production dependencies only.
  postInstall = ''
    # package.json's "bin" made a nixfleet-agent wrapper here; the agent is its own package
    # (nix/agent.nix), so both can be installed side by side.
    rm -f "$out/bin/nixfleet-agent"
    makeWrapper ${nodejs_20}/bin/node "$out/bin/nixfleet-sync" \
      --add-flags "$out/lib/node_modules/${packageJson.name}/dist/server/main.js"
    makeWrapper ${nodejs_20}/bin/node "$out/bin/nixfleet-sync-admin" \
      --add-flags "$out/lib/node_modules/${packageJson.name}/dist/server/admin-cli.js"
  '';

  # The native module loads, and the server's files are where main.js looks for them.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    pkg="$out/lib/node_modules/${packageJson.name}"
    ${nodejs_20}/bin/node -e "
      const Database = require('$pkg/node_modules/better-sqlite3');
      const row = new Database(':memory:').prepare('select 41 + 1 as n').get();
      if (row.n !== 42) process.exit(1);
    "
    test -f "$pkg/dist/server/main.js"
    test -f "$pkg/dist/dashboard/index.html"
    test -f "$pkg/dist/agent/nixfleet-agent.mjs"
    runHook postInstallCheck
  '';

  passthru = {
    inherit lockfile;
  };

  meta = {
    description = "NixFleet state-sync server and live fleet dashboard";
    license = lib.licenses.mit;
    mainProgram = "nixfleet-sync";
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
}
