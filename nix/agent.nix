# The NixFleet host agent: `nix build .#nixfleet-agent`.
#
# $out/share/nixfleet-agent/nixfleet-agent.mjs   the one-file bundle of scripts/build-agent.mjs
#                                                 (ws inside; nothing else from node_modules)
# $out/bin/nixfleet-agent                         node + that bundle
#
# It reuses the server's source and npm dependency cache (one npmDepsHash, in nix/package.nix)
# but builds only the bundle: no tsc, no dashboard, and no native module (the agent does not
# use better-sqlite3), so a host's closure is Node and one file.
{
  lib,
  buildNpmPackage,
  nodejs_20,
  makeWrapper,
  callPackage,
  # From an overlay that provides it, else built from ./package.nix.
  nixfleet-sync ? callPackage ./package.nix { inherit nodejs_20; },
}:

buildNpmPackage {
  pname = "nixfleet-agent";
  inherit (nixfleet-sync) version src postPatch npmDeps;
  nodejs = nodejs_20;

  nativeBuildInputs = [ makeWrapper ];

  # Link the dependencies' bins but run no install scripts: esbuild finds its platform binary
  # without its postinstall check, and better-sqlite3 need not be compiled for the agent.
  npmRebuildFlags = [ "--ignore-scripts" ];

  buildPhase = ''
    runHook preBuild
    node scripts/build-agent.mjs --outfile dist/agent/nixfleet-agent.mjs
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    install -D -m 644 dist/agent/nixfleet-agent.mjs "$out/share/nixfleet-agent/nixfleet-agent.mjs"
    makeWrapper ${nodejs_20}/bin/node "$out/bin/nixfleet-agent" \
      --add-flags "$out/share/nixfleet-agent/nixfleet-agent.mjs"
    runHook postInstall
  '';

  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    "$out/bin/nixfleet-agent" --help > /dev/null
    "$out/bin/nixfleet-agent" --version
    runHook postInstallCheck
  '';

  meta = {
    description = "NixFleet host agent: runs the fleet server's ops (nixos-rebuild, home-manager) on a host";
    license = lib.licenses.mit;
    mainProgram = "nixfleet-agent";
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
}
