# package-lock.json with a `resolved` URL for every registry package, computed from the lock
# alone (pure Nix: builtins only, no nixpkgs, no network, no import-from-derivation).
#
# Why: the repository's lock is written with npm's `omit-lockfile-registry-resolved`, so its
# entries carry `version` and `integrity` but no `resolved`. nixpkgs' fetchNpmDeps
# (prefetch-npm-deps) only fetches entries that have a `resolved` URL, and npm then fails offline
# in the build sandbox (ENOTCACHED). A registry tarball URL is a function of name and version:
#   https://registry.npmjs.org/<name>/-/<name without scope>-<version>.tgz
# and `integrity` (kept as is) still pins the exact bytes. Entries that already have `resolved`
# (git or tarball dependencies), links, bundled entries and the root are left alone.
#
# Usage: builtins.toFile "package-lock.json" (builtins.toJSON (import ./lockfile.nix ../package-lock.json))
lockPath:
let
  lock = builtins.fromJSON (builtins.readFile lockPath);
  registry = "https://registry.npmjs.org";

  # "node_modules/a/node_modules/@s/b" -> "@s/b"
  nameOf =
    path:
    let
      parts = builtins.filter builtins.isString (builtins.split "node_modules/" path);
    in
    builtins.elemAt parts (builtins.length parts - 1);

  # "@s/b" -> "b", "b" -> "b"
  baseOf =
    name:
    let
      parts = builtins.filter builtins.isString (builtins.split "/" name);
    in
    builtins.elemAt parts (builtins.length parts - 1);

  needsResolved =
    path: entry:
    path != ""
    && !(entry ? resolved)
    && !(entry.link or false)
    && !(entry.inBundle or false)
    && entry ? version
    && entry ? integrity;

  backfill =
    path: entry:
    if needsResolved path entry then
      let
        name = entry.name or (nameOf path);
      in
      entry // { resolved = "${registry}/${name}/-/${baseOf name}-${entry.version}.tgz"; }
    else
      entry;
in
lock // { packages = builtins.mapAttrs backfill (lock.packages or { }); }
