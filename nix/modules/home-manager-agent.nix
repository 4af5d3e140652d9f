# Home Manager module: the NixFleet host agent on macOS, as a launchd agent of the user.
#
#   services.nixfleet-agent = {
#     enable = true;
#     url = "wss://fleet.example.org/ws";
#     tokenFile = "/Users/me/.config/nixfleet/token";   # chmod 600, not in the Nix store
#     repoUrl = "https://git.example.org/infra/fleet.git";
#   };
#
# The agent's default macOS ops run `home-manager switch --flake <repoDir>#<hostname>` as this
# user. After a successful switch it exits 0 and launchd starts it again (KeepAlive), on the
# new build. The `reboot` op runs `sudo -n shutdown -r now`: allow that in the sudoers of the
# machine (nix-darwin: security.sudo.extraConfig) or disable it with ops.reboot = null.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.nixfleet-agent;
  common = import ./agent-common.nix { inherit lib pkgs; };

  # The token is read from `tokenFile` when the agent starts, exported for this process only.
  start = pkgs.writeShellScript "nixfleet-agent-start" ''
    set -eu
    NIXFLEET_TOKEN="$(cat ${lib.escapeShellArg cfg.tokenFile})"
    export NIXFLEET_TOKEN
    exec ${cfg.package}/bin/nixfleet-agent "$@"
  '';

  logFile = "${config.home.homeDirectory}/Library/Logs/nixfleet-agent.log";
in
{
  options.services.nixfleet-agent = common.options {
    hostname = null;
    hostnameText = lib.literalExpression "null";
    repoDir = "${config.xdg.dataHome}/nixfleet/repo";
    repoDirText = lib.literalExpression ''"''${config.xdg.dataHome}/nixfleet/repo"'';
  };

  config = lib.mkIf cfg.enable {
    assertions = common.assertions "services.nixfleet-agent" cfg ++ [
      {
        assertion = pkgs.stdenv.hostPlatform.isDarwin;
        message = "services.nixfleet-agent (Home Manager) runs the agent with launchd, on macOS only; on NixOS use the NixOS module.";
      }
    ];

    launchd.agents.nixfleet-agent = {
      enable = true;
      config = {
        Label = "org.nixfleet.agent";
        ProgramArguments = [ "${start}" ];
        EnvironmentVariables = common.environment cfg // {
          # launchd starts agents with a minimal PATH: the ops need home-manager, nix, git, sudo.
          PATH = lib.concatStringsSep ":" [
            "${config.home.profileDirectory}/bin"
            "/etc/profiles/per-user/${config.home.username}/bin"
            "/run/current-system/sw/bin"
            "/nix/var/nix/profiles/default/bin"
            "/usr/local/bin"
            "/usr/bin"
            "/bin"
            "/usr/sbin"
            "/sbin"
          ];
        };
        # Started at login and whenever it exits: on macOS the agent exits 0 after a
        # successful switch to be restarted on the new build, so this must be `true`, not
        # { SuccessfulExit = false; }.
        RunAtLoad = true;
        KeepAlive = true;
        # Seconds launchd waits before starting it again.
        ThrottleInterval = 5;
        ProcessType = "Background";
        WorkingDirectory = config.home.homeDirectory;
        StandardOutPath = logFile;
        StandardErrorPath = logFile;
      };
    };
  };
}
