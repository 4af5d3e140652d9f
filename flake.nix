{
  description = "NixFleet sync: the state-sync server with its live dashboard, and the host agent";

  # A NixOS release: nodejs_20, the Node this project is tested on, reached its end of life on
  # 2026-04-30 and is marked insecure (and being removed) on nixos-unstable. Users who follow
  # their own nixpkgs (`inputs.nixfleet.inputs.nixpkgs.follows = "nixpkgs"`) and have no
  # nodejs_20 build with another Node: see docs/INSTALL.md.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The modules default to the packages of the system's own pkgs (built from this source by
      # nix/package.nix and nix/agent.nix); here they default to this flake's, so that a
      # binary cache of this flake's outputs is used.
      withPackages =
        module: optionPath:
        { pkgs, ... }:
        {
          imports = [ module ];
          config = lib.setAttrByPath (optionPath ++ [ "package" ]) (
            lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.${lib.last optionPath}
          );
        };
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          nixfleet-sync = pkgs.callPackage ./nix/package.nix { };
        in
        {
          inherit nixfleet-sync;
          nixfleet-agent = pkgs.callPackage ./nix/agent.nix { inherit nixfleet-sync; };
          default = nixfleet-sync;
        }
      );

      overlays.default = final: _prev: {
        nixfleet-sync = final.callPackage ./nix/package.nix { };
        nixfleet-agent = final.callPackage ./nix/agent.nix { };
      };

      nixosModules = {
        nixfleet-sync = withPackages ./nix/modules/nixfleet-sync.nix [
          "services"
          "nixfleet-sync"
        ];
        nixfleet-agent = withPackages ./nix/modules/nixfleet-agent.nix [
          "services"
          "nixfleet-agent"
        ];
        default = {
          imports = [
            self.nixosModules.nixfleet-sync
            self.nixosModules.nixfleet-agent
          ];
        };
      };

      homeManagerModules = {
        nixfleet-agent = withPackages ./nix/modules/home-manager-agent.nix [
          "services"
          "nixfleet-agent"
        ];
        default = self.homeManagerModules.nixfleet-agent;
      };

      checks = forAllSystems (
        pkgs:
        {
          inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) nixfleet-sync nixfleet-agent;
        }
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          # Boots a VM with both modules: the server, a token, the agent registering.
          nixos = pkgs.testers.runNixOSTest (import ./nix/tests/nixos.nix { inherit self; });
        }
      );
    };
}
