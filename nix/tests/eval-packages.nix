# Evaluates nix/package.nix and nix/agent.nix, through the flake's `packages` output, against a
# stand-in for buildNpmPackage that answers the arguments it was given, so that it needs
# nixpkgs' lib only (no package set, no build). test/packaging.test.ts runs it when it can find
# a nixpkgs lib:
#
#   nix-instantiate --readonly-mode --eval --strict --json nix/tests/eval-packages.nix \
#     --arg lib 'import <nixpkgs/lib>'
#
# lib.fileset is replaced by the repository's root: its implementation needs a newer Nix than
# the test machine's (builtins.readFileType, Nix 2.14), and what it selects is checked by a real
# build only.
{ lib }:

let
  nixpkgsLib = lib;
in
let
  lib = nixpkgsLib.extend (
    _final: prev: {
      fileset = prev.fileset // {
        toSource = { root, fileset }: root;
        unions = _: null;
        fileFilter = _: _: null;
      };
    }
  );

  stubDrv = name: extra: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  } // extra;

  pkgsFor =
    system:
    let
      pkgs = {
        inherit lib;
        stdenv.hostPlatform = {
          inherit system;
          isDarwin = lib.hasSuffix "darwin" system;
          isLinux = lib.hasSuffix "linux" system;
        };
        nodejs_20 = stubDrv "nodejs-20" { };
        nodejs_22 = stubDrv "nodejs-22" { };
        python3 = stubDrv "python3" { };
        makeWrapper = stubDrv "make-wrapper" { };
        cctools = stubDrv "cctools" { };
        # The arguments, plus the npmDeps that the real one would make from npmDepsHash.
        buildNpmPackage =
          args:
          stubDrv "${args.pname}-${args.version}" (
            args
            // {
              npmDeps = args.npmDeps or (stubDrv "${args.pname}-${args.version}-npm-deps" { hash = args.npmDepsHash; });
            }
          );
        callPackage =
          path: overrides:
          let
            f = import path;
            result = f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // overrides);
          in
          result // { override = more: pkgs.callPackage path (overrides // more); };
      };
    in
    pkgs;

  flake = (import ../../flake.nix).outputs {
    self = flake;
    nixpkgs = {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ] pkgsFor;
    };
  };

  describe = drv: {
    inherit (drv) name pname version;
    nodejs = drv.nodejs.name;
    nativeBuildInputs = map (input: input.name) (drv.nativeBuildInputs or [ ]);
    npmDeps = drv.npmDeps.name;
    npmDepsHash = drv.npmDeps.hash;
    npmPackFlags = drv.npmPackFlags or [ ];
    npmRebuildFlags = drv.npmRebuildFlags or [ ];
    npmBuildScript = drv.npmBuildScript or null;
    src = toString drv.src;
    postPatch = drv.postPatch or "";
    buildPhase = drv.buildPhase or null;
    installPhase = drv.installPhase or null;
    postInstall = drv.postInstall or "";
    installCheckPhase = drv.installCheckPhase or "";
    meta = { inherit (drv.meta) mainProgram platforms; };
  };

  packages = flake.packages.x86_64-linux;
  node22 = {
    sync = packages.nixfleet-sync.override { nodejs_20 = (pkgsFor "x86_64-linux").nodejs_22; };
    agent = packages.nixfleet-agent.override { nodejs_20 = (pkgsFor "x86_64-linux").nodejs_22; };
  };
in
{
  systems = builtins.attrNames flake.packages;
  default = packages.default.name;
  nixfleet-sync = describe packages.nixfleet-sync;
  nixfleet-agent = describe packages.nixfleet-agent;
  darwin-sync = describe flake.packages.aarch64-darwin.nixfleet-sync;
  # The backfilled lock (a file in the store) that postPatch installs.
  lockfile = toString packages.nixfleet-sync.passthru.lockfile;
  node22 = {
    sync = describe node22.sync;
    agent = describe node22.agent;
  };
}
