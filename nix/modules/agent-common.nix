# What the NixOS module (./nixfleet-agent.nix) and the Home Manager module
# (./home-manager-agent.nix) of the agent share: the options of services.nixfleet-agent and the
# NIXFLEET_* environment they turn into. Not a module itself.
{ lib, pkgs }:

let
  inherit (lib) mkOption types;

  opCommand = types.nullOr (
    types.either types.str (types.addCheck (types.listOf types.str) (argv: argv != [ ] && lib.head argv != ""))
  );
in
{
  # `defaults`: the values that differ between NixOS and macOS.
  options =
    defaults:
    {
      enable = lib.mkEnableOption "the NixFleet host agent";

      package = mkOption {
        type = types.package;
        default = pkgs.callPackage ../agent.nix { };
        defaultText = lib.literalExpression "nixfleet.packages.\${system}.nixfleet-agent";
        description = "The nixfleet-agent package (its `bin/nixfleet-agent` is started).";
      };

      url = mkOption {
        type = types.str;
        example = "wss://fleet.example.org/ws";
        description = "WebSocket URL of the server (NIXFLEET_URL); http(s):// works too, a bare host gets /ws.";
      };

      tokenFile = mkOption {
        type = types.strMatching "/.+";
        example = "/run/secrets/nixfleet-agent-token";
        description = ''
          File holding this host's agent token (role `agent`, created on the dashboard's Access
          page or with `nixfleet-sync-admin token create … --role agent --host <host>`). Read
          when the agent starts; the token never enters the Nix store. A string path: a Nix
          path literal would copy the secret into the world-readable store.
        '';
      };

      interval = mkOption {
        type = types.either types.ints.positive types.float;
        default = 5;
        description = "Seconds between heartbeats (NIXFLEET_INTERVAL).";
      };

      hostname = mkOption {
        type = types.nullOr types.str;
        default = defaults.hostname;
        defaultText = defaults.hostnameText;
        description = ''
          The host name this agent reports (NIXFLEET_HOSTNAME): the host's name on the
          dashboard and the flake attribute it switches to. null: the OS's short host name.
        '';
      };

      repoUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://git.example.org/infra/fleet.git";
        description = "Git URL of the fleet configuration (NIXFLEET_REPO_URL), cloned into `repoDir` by the `pull` op when missing.";
      };

      repoDir = mkOption {
        type = types.str;
        default = defaults.repoDir;
        defaultText = defaults.repoDirText;
        description = "The agent's clone of the fleet configuration (NIXFLEET_REPO_DIR); `switch` builds `<repoDir>#<hostname>`.";
      };

      branch = mkOption {
        type = types.str;
        default = "main";
        description = "Branch that the `pull` op follows (NIXFLEET_BRANCH).";
      };

      ops = mkOption {
        type = types.attrsOf opCommand;
        default = { };
        example = lib.literalExpression ''
          {
            switch = [ "sudo" "-n" "nixos-rebuild" "switch" "--flake" "{repo_dir}#{hostname}" ];
            test = "systemctl is-system-running --wait";
            update = null; # disabled on this host
          }
        '';
        description = ''
          Overrides of what ops run, written to a JSON file `{"ops": {…}}` that NIXFLEET_OPS_FILE
          names. Per op: an argv list (no shell), a shell string (run by /bin/sh -c), or null
          (disabled). Placeholders: {repo_dir} {repo_url} {hostname} {branch} {op}. Ops not
          listed keep the agent's defaults (`nixfleet-agent --help`).
        '';
      };

      extraEnvironment = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = {
          NIXFLEET_LOCATION = "rack 3";
          NIXFLEET_LOG_LEVEL = "debug";
        };
        description = "Further variables for the agent (`nixfleet-agent --help` lists them). Not for the token: use `tokenFile`.";
      };
    };

  # The agent's NIXFLEET_* variables from `cfg` (all but the token).
  environment =
    cfg:
    {
      NIXFLEET_URL = cfg.url;
      NIXFLEET_INTERVAL = toString cfg.interval;
      NIXFLEET_REPO_DIR = cfg.repoDir;
      NIXFLEET_BRANCH = cfg.branch;
    }
    // lib.optionalAttrs (cfg.hostname != null) { NIXFLEET_HOSTNAME = cfg.hostname; }
    // lib.optionalAttrs (cfg.repoUrl != null) { NIXFLEET_REPO_URL = cfg.repoUrl; }
    // lib.optionalAttrs (cfg.ops != { }) {
      NIXFLEET_OPS_FILE = toString (pkgs.writeText "nixfleet-agent-ops.json" (builtins.toJSON { inherit (cfg) ops; }));
    }
    // cfg.extraEnvironment;

  assertions = prefix: cfg: [
    {
      assertion = !(cfg.extraEnvironment ? NIXFLEET_TOKEN);
      message = "${prefix}.extraEnvironment: the token belongs in tokenFile (extraEnvironment is stored in the Nix store)";
    }
    {
      assertion = !(cfg.ops ? stop || cfg.ops ? restart);
      message = "${prefix}.ops: `stop` and `restart` are carried out by the agent itself and cannot be configured";
    }
  ];
}
