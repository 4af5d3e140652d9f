# NixOS module: the NixFleet host agent as a systemd service.
#
#   services.nixfleet-agent = {
#     enable = true;
#     url = "wss://fleet.example.org/ws";
#     tokenFile = "/run/secrets/nixfleet-agent-token";
#     repoUrl = "https://git.example.org/infra/fleet.git";
#   };
#
# The agent runs as the system user `nixfleet-agent`, which may run exactly
# `sudo -n nixos-rebuild …` and `sudo -n systemctl reboot` without a password (the agent's
# default `switch`, `rollback` and `reboot` ops). After a successful switch the agent exits 101
# and systemd starts it again, on the new build.
#
# contrib/systemd/nixfleet-agent.service is the unit this module generates, as a plain file for
# other distributions; test/packaging.test.ts keeps the two in step.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.nixfleet-agent;
  common = import ./agent-common.nix { inherit lib pkgs; };
  user = "nixfleet-agent";
  stateDir = "/var/lib/nixfleet-agent";

  # The token is read from the credential systemd copied from `tokenFile` (LoadCredential=, as
  # root, before the service starts; only this service can read the copy), exported for this
  # process only, and never written anywhere else.
  start = pkgs.writeShellScript "nixfleet-agent-start" ''
    set -eu
    NIXFLEET_TOKEN="$(cat "$CREDENTIALS_DIRECTORY/token")"
    export NIXFLEET_TOKEN
    exec ${cfg.package}/bin/nixfleet-agent "$@"
  '';

  sudoRules = [
    "/run/current-system/sw/bin/nixos-rebuild"
    "/run/current-system/sw/bin/systemctl reboot"
    "${config.systemd.package}/bin/systemctl reboot"
  ];
in
{
  options.services.nixfleet-agent = common.options {
    hostname = config.networking.hostName;
    hostnameText = lib.literalExpression "config.networking.hostName";
    repoDir = "${stateDir}/repo";
    repoDirText = "${stateDir}/repo";
  };

  config = lib.mkIf cfg.enable {
    assertions = common.assertions "services.nixfleet-agent" cfg;
    warnings = lib.optional (!config.security.sudo.enable) ''
      services.nixfleet-agent: security.sudo is disabled, so the agent's switch, rollback and
      reboot ops (sudo -n …) will fail. With sudo-rs, give the user nixfleet-agent the same
      rules in security.sudo-rs.extraRules, or set services.nixfleet-agent.ops.
    '';

    users.users.${user} = {
      isSystemUser = true;
      group = user;
      home = stateDir;
      description = "NixFleet host agent";
    };
    users.groups.${user} = { };

    # Exactly what the default ops run as root: nothing else, and no password (the agent has no
    # terminal). sudo resolves the command through the service's PATH below.
    security.sudo.extraRules = [
      {
        users = [ user ];
        runAs = "root";
        commands = map (command: {
          inherit command;
          options = [ "NOPASSWD" ];
        }) sudoRules;
      }
    ];

    systemd.services.nixfleet-agent = {
      description = "NixFleet host agent";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];

      # sudo (/run/wrappers/bin), git and nix for the ops, then the system's own tools
      # (nixos-rebuild, as the sudo rule names it).
      path = [
        "/run/wrappers"
        pkgs.git
        pkgs.openssh
        config.nix.package
        "/run/current-system/sw"
      ];

      environment = common.environment cfg;

      # A switch must not restart the agent under its own nixos-rebuild (which runs in this
      # service's control group and would be killed with it): the agent exits 101 when the
      # switch has succeeded, and systemd then starts the new build.
      restartIfChanged = false;

      serviceConfig = {
        ExecStart = start;
        LoadCredential = "token:${cfg.tokenFile}";
        User = user;
        Group = user;
        StateDirectory = "nixfleet-agent";
        StateDirectoryMode = "0750";
        WorkingDirectory = stateDir;

        Restart = "always";
        RestartSec = "2s";
        # 101: "restart me on the new build" after a successful switch.
        RestartForceExitStatus = "101";
        # Stopping the agent stops its ops too: every process of the unit, including an op
        # run under sudo, is in its control group.
        KillMode = "control-group";
        TimeoutStopSec = "30s";

        # Deliberately little sandboxing: the agent's job is to run nixos-rebuild as root (via
        # sudo) in this unit, and every restriction here (ProtectSystem, NoNewPrivileges, which
        # would also stop sudo, SystemCallFilter, PrivateTmp, …) would be inherited by the
        # rebuild and the activation it runs. The boundary is the unprivileged user and a sudo
        # rule for two commands.
        NoNewPrivileges = false;
      };
    };
  };
}
