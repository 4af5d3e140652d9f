# NixOS module: the NixFleet sync server and dashboard as a hardened systemd service.
#
#   services.nixfleet-sync = {
#     enable = true;
#     listen = "127.0.0.1:8000";
#     environmentFile = "/run/secrets/nixfleet-sync.env";  # NIXFLEET_ADMIN_PASSWORD=…
#   };
#
# contrib/systemd/nixfleet-sync.service is the unit this module generates, as a plain file for
# other distributions; test/packaging.test.ts keeps the two in step.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.nixfleet-sync;
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  port = lib.toInt (lib.last (lib.splitString ":" cfg.listen));
  # Ports below 1024 need CAP_NET_BIND_SERVICE; every other capability is dropped.
  privilegedPort = port < 1024;

  # The settings the module sets itself, from its own options.
  ownVariables = [
    "NIXFLEET_LISTEN"
    "NIXFLEET_DATA_DIR"
    "NIXFLEET_DATABASE_URL"
  ];
  # Secrets: never in `settings`, whose values land in the world-readable Nix store.
  secretVariables = [
    "NIXFLEET_ADMIN_PASSWORD"
    "NIXFLEET_DATABASE_URL"
  ];
in
{
  options.services.nixfleet-sync = {
    enable = mkEnableOption "the NixFleet sync server and live dashboard";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { };
      defaultText = lib.literalExpression "nixfleet.packages.\${system}.nixfleet-sync";
      description = "The nixfleet-sync package (its `bin/nixfleet-sync` is started).";
    };

    listen = mkOption {
      type = types.strMatching "(\\[[^]]+]|[^:]*):[0-9]{1,5}";
      default = "127.0.0.1:8000";
      example = "0.0.0.0:8000";
      description = ''
        `host:port` for HTTP and WebSocket (NIXFLEET_LISTEN): `:8000` or `0.0.0.0:8000` for
        all interfaces, `[::]:8000` for IPv6. Behind a reverse proxy on the same machine keep
        the default and set NIXFLEET_ALLOWED_ORIGINS and NIXFLEET_TRUSTED_PROXIES in `settings`.
      '';
    };

    dataDir = mkOption {
      type = types.strMatching "/var/lib/[^/]+";
      default = "/var/lib/nixfleet-sync";
      description = ''
        Directory of the SQLite store (NIXFLEET_DATA_DIR). It is the service's systemd
        `StateDirectory` (created and owned by the service's dynamic user, mode 0700), so it
        must be a directory directly under /var/lib. Unused with a PostgreSQL `databaseUrl`.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr (types.strMatching "/.+");
      default = null;
      example = "/run/secrets/nixfleet-sync.env";
      description = ''
        File of `NAME=value` lines read by systemd (as root, before the service starts) for
        secrets: `NIXFLEET_ADMIN_PASSWORD`, a `NIXFLEET_DATABASE_URL` with a password. A string
        path, so the file never enters the world-readable Nix store.
      '';
    };

    databaseUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "postgres:///nixfleet?host=/run/postgresql";
      description = ''
        NIXFLEET_DATABASE_URL: use a shared PostgreSQL store instead of SQLite (several
        instances). It is stored in the Nix store: put a URL with a password in
        `environmentFile` instead. For a local PostgreSQL over its Unix socket, the database
        user is `nixfleet-sync` (the service's user name, peer authentication).
      '';
    };

    settings = mkOption {
      type = types.attrsOf (
        types.oneOf [
          types.str
          types.int
        ]
      );
      default = { };
      example = {
        NIXFLEET_ALLOWED_ORIGINS = "https://fleet.example.org";
        NIXFLEET_TRUSTED_PROXIES = "127.0.0.1";
        NIXFLEET_LOG_LEVEL = "info";
      };
      description = ''
        Further NIXFLEET_* variables of the server (README, "Configuration"), by their full
        names. Not secrets (they are stored in the Nix store; use `environmentFile`), and not
        those set by `listen`, `dataDir` and `databaseUrl`.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the TCP port of `listen` in the firewall.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.all (name: lib.hasPrefix "NIXFLEET_" name) (lib.attrNames cfg.settings);
        message = "services.nixfleet-sync.settings: every name must be a NIXFLEET_* variable, got: ${lib.concatStringsSep ", " (lib.filter (name: !(lib.hasPrefix "NIXFLEET_" name)) (lib.attrNames cfg.settings))}";
      }
      {
        assertion = !(lib.any (name: cfg.settings ? ${name}) ownVariables);
        message = "services.nixfleet-sync.settings: set NIXFLEET_LISTEN, NIXFLEET_DATA_DIR and NIXFLEET_DATABASE_URL with the options listen, dataDir and databaseUrl (or environmentFile)";
      }
      {
        assertion = !(lib.any (name: cfg.settings ? ${name}) secretVariables);
        message = "services.nixfleet-sync.settings: secrets such as NIXFLEET_ADMIN_PASSWORD belong in environmentFile, not in the Nix store";
      }
      {
        assertion = port >= 0 && port <= 65535;
        message = "services.nixfleet-sync.listen: the port must be 0 to 65535, got ${toString port}";
      }
    ];

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall port;

    systemd.services.nixfleet-sync = {
      description = "NixFleet sync server and dashboard";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
      ]
      ++ lib.optional config.services.postgresql.enable "postgresql.service";

      environment = {
        NIXFLEET_LISTEN = cfg.listen;
        NIXFLEET_DATA_DIR = cfg.dataDir;
      }
      // lib.optionalAttrs (cfg.databaseUrl != null) { NIXFLEET_DATABASE_URL = cfg.databaseUrl; }
      // lib.mapAttrs (_: toString) cfg.settings;

      serviceConfig = {
        ExecStart = "${cfg.package}/bin/nixfleet-sync";
        EnvironmentFile = mkIf (cfg.environmentFile != null) cfg.environmentFile;
        WorkingDirectory = cfg.dataDir;
        # SIGTERM drains: closes the sockets and flushes the store (forced after 10 s).
        KillSignal = "SIGTERM";
        TimeoutStopSec = "30s";
        Restart = "on-failure";
        RestartSec = "2s";
        # The server accepts up to (open-file limit − 256) connections.
        LimitNOFILE = 65536;

        # No account on the system: a transient user owns the state directory.
        DynamicUser = true;
        StateDirectory = lib.removePrefix "/var/lib/" cfg.dataDir;
        StateDirectoryMode = "0700";
        UMask = "0077";

        # Hardening: the server needs its state directory, the network and nothing else.
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateUsers = !privilegedPort;
        NoNewPrivileges = true;
        ProtectProc = "invisible";
        ProtectHostname = true;
        ProtectClock = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        RemoveIPC = true;
        DevicePolicy = "closed";
        # AF_NETLINK: listing this machine's addresses (the dashboard's own origins when
        # listening on all interfaces). AF_UNIX: PostgreSQL over its socket.
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        SystemCallErrorNumber = "EPERM";
        CapabilityBoundingSet = if privilegedPort then "CAP_NET_BIND_SERVICE" else "";
        AmbientCapabilities = if privilegedPort then "CAP_NET_BIND_SERVICE" else "";
        # NOT MemoryDenyWriteExecute: V8, Node's JavaScript engine, compiles to machine code at
        # run time in memory that is writable and then executable; with W^X enforced the
        # process is killed (or its JIT fails) on the first compiled function.
        MemoryDenyWriteExecute = false;
      };
    };
  };
}
