# Evaluates the modules with nixpkgs' real module system (lib.evalModules) against stand-ins for
# the few NixOS / Home Manager options they set, and for the few packages they use, so that it
# needs nixpkgs' lib only: no nixpkgs package set, no store, no build. test/packaging.test.ts
# runs it when it can find a nixpkgs lib:
#
#   nix-instantiate --eval --strict --json nix/tests/eval-modules.nix \
#     --arg lib 'import <nixpkgs/lib>' --argstr module nixos-sync --argstr config '{…}'
#
# It answers the config the module produced (the parts that become the unit, the sudo rule, the
# launchd agent) and the messages of failed assertions and warnings. It is no substitute for a
# NixOS evaluation (`nix flake check`, nix/tests/nixos.nix): the stand-ins accept any value.
{
  lib,
  # nixos-sync | nixos-agent | home-manager-agent
  module,
  # JSON of the user's configuration, e.g. {"services":{"nixfleet-sync":{"enable":true}}}
  config ? "{}",
  # true: the modules as the flake exports them (nixosModules.*, homeManagerModules.*), whose
  # package defaults are the flake's packages.
  viaFlake ? false,
}:

let
  inherit (lib) mkOption types;

  stubDrv = name: extra: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  } // extra;

  stubPkgs = prefix: {
    # The modules' default packages: ../package.nix and ../agent.nix.
    callPackage = path: _args: stubDrv "${prefix}-${lib.removeSuffix ".nix" (baseNameOf (toString path))}" { };
    writeShellScript = name: text: stubDrv name { inherit text; };
    writeText = name: text: stubDrv name { inherit text; };
    git = stubDrv "git" { };
    openssh = stubDrv "openssh" { };
    stdenv.hostPlatform = {
      system = if module == "home-manager-agent" then "aarch64-darwin" else "x86_64-linux";
      isDarwin = module == "home-manager-agent";
      isLinux = module != "home-manager-agent";
    };
  };
  # The system's pkgs; the flake's own pkgs (its nixpkgs input) make "flake-…" packages.
  pkgs = stubPkgs "stub";

  flake = (import ../../flake.nix).outputs {
    self = flake;
    nixpkgs = {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ] (
        system: lib.recursiveUpdate (stubPkgs "flake") { stdenv.hostPlatform.system = system; }
      );
    };
  };

  anything = mkOption {
    type = types.anything;
    default = null;
  };

  nixosStubs = {
    options = {
      assertions = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      users.users = mkOption {
        type = types.attrsOf (types.attrsOf types.anything);
        default = { };
      };
      users.groups = mkOption {
        type = types.attrsOf (types.attrsOf types.anything);
        default = { };
      };
      security.sudo.enable = mkOption {
        type = types.bool;
        default = true;
      };
      security.sudo.extraRules = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
      networking.hostName = mkOption {
        type = types.str;
        default = "stub-host";
      };
      networking.firewall.allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      services.postgresql.enable = mkOption {
        type = types.bool;
        default = false;
      };
      nix.package = mkOption {
        type = types.package;
        default = stubDrv "nix" { };
      };
      systemd.package = mkOption {
        type = types.package;
        default = stubDrv "systemd" { };
      };
      systemd.services = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            freeformType = types.attrsOf types.anything;
            options = {
              serviceConfig = mkOption {
                type = types.attrsOf types.anything;
                default = { };
              };
              environment = mkOption {
                type = types.attrsOf types.anything;
                default = { };
              };
            };
          }
        );
      };
    };
  };

  homeManagerStubs = {
    options = {
      assertions = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
      home.homeDirectory = mkOption {
        type = types.str;
        default = "/Users/stub";
      };
      home.username = mkOption {
        type = types.str;
        default = "stub";
      };
      home.profileDirectory = mkOption {
        type = types.str;
        default = "/Users/stub/.nix-profile";
      };
      xdg.dataHome = mkOption {
        type = types.str;
        default = "/Users/stub/.local/share";
      };
      launchd.agents = mkOption {
        type = types.attrsOf (types.attrsOf types.anything);
        default = { };
      };
    };
  };

  modules = {
    nixos-sync = [
      nixosStubs
      (if viaFlake then flake.nixosModules.nixfleet-sync else ../modules/nixfleet-sync.nix)
    ];
    nixos-agent = [
      nixosStubs
      (if viaFlake then flake.nixosModules.nixfleet-agent else ../modules/nixfleet-agent.nix)
    ];
    home-manager-agent = [
      homeManagerStubs
      (if viaFlake then flake.homeManagerModules.nixfleet-agent else ../modules/home-manager-agent.nix)
    ];
  };
  serviceName = if module == "nixos-sync" then "nixfleet-sync" else "nixfleet-agent";

  evaluated = lib.evalModules {
    modules = modules.${module} ++ [ (builtins.fromJSON config) ];
    specialArgs = { inherit pkgs; };
  };
  cfg = evaluated.config;

  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);

  # A derivation stand-in becomes its path, plus its text for the generated files.
  plain =
    value:
    if lib.isDerivation value then
      { path = value.outPath; } // lib.optionalAttrs (value ? text) { inherit (value) text; }
    else if lib.isList value then
      map plain value
    else if lib.isAttrs value then
      lib.mapAttrs (_: plain) value
    else
      value;
in
{
  inherit failedAssertions;
  optionNames = lib.attrNames evaluated.options.services.${serviceName};
}
// (
  # The configuration only means something when every assertion holds.
  if failedAssertions != [ ] then
    { }
  else if module == "home-manager-agent" then
    {
      launchd = plain cfg.launchd.agents;
      opsJson = builtins.toJSON { inherit (cfg.services.nixfleet-agent) ops; };
    }
  else
    {
      warnings = cfg.warnings;
      services = lib.mapAttrs (
        _: service:
        plain {
          inherit (service) serviceConfig environment;
          path = service.path or [ ];
          restartIfChanged = service.restartIfChanged or true;
          wantedBy = service.wantedBy or [ ];
          after = service.after or [ ];
        }
      ) cfg.systemd.services;
      sudoRules = plain cfg.security.sudo.extraRules;
      users = cfg.users.users;
      firewall = cfg.networking.firewall.allowedTCPPorts;
    }
    // lib.optionalAttrs (module == "nixos-agent") {
      opsJson = builtins.toJSON { inherit (cfg.services.nixfleet-agent) ops; };
    }
)
