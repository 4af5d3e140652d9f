# NixOS VM test of both modules: `nix build .#checks.x86_64-linux.nixos` (or
# `nix flake check`). One machine runs the server, gets an agent token through the HTTP API, and
# starts the agent with that token in a file; the host must come online on the server. It also
# checks the agent's sudo rule and prints systemd's exposure score of the server's sandbox.
{ self }:
{ lib, ... }:
{
  name = "nixfleet";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ self.nixosModules.default ];

      services.nixfleet-sync = {
        enable = true;
        listen = "127.0.0.1:8000";
        environmentFile = "/etc/nixfleet-sync.env";
        settings.NIXFLEET_LOG_LEVEL = "debug";
      };
      # A test VM's secret may be in the store; a real one must not (see docs/INSTALL.md).
      environment.etc."nixfleet-sync.env".text = "NIXFLEET_ADMIN_PASSWORD=vm-test-password\n";

      services.nixfleet-agent = {
        enable = true;
        url = "ws://127.0.0.1:8000/ws";
        tokenFile = "/run/nixfleet-agent-token";
        ops.test = "echo vm test op";
      };
      # Started by the test script once its token exists.
      systemd.services.nixfleet-agent.wantedBy = lib.mkForce [ ];

      environment.systemPackages = [
        pkgs.curl
        pkgs.jq
      ];
    };

  testScript = ''
    import json

    machine.wait_for_unit("nixfleet-sync.service")
    machine.wait_for_open_port(8000)
    print(machine.succeed("curl -sf http://127.0.0.1:8000/healthz"))
    print(machine.succeed("systemd-analyze security nixfleet-sync.service | tail -n 1"))

    login = json.loads(machine.succeed(
        "curl -sf -c /tmp/jar -H 'content-type: application/json' "
        + "-d '{\"username\":\"admin\",\"password\":\"vm-test-password\"}' http://127.0.0.1:8000/api/login"
    ))
    csrf = login["csrf_token"]
    machine.succeed(
        "curl -sf -b /tmp/jar -H 'content-type: application/json' -H 'x-csrf-token: " + csrf + "' "
        + "-d '{\"name\":\"machine agent\",\"role\":\"agent\",\"host_id\":\"machine\"}' "
        + "http://127.0.0.1:8000/api/tokens | jq -r .token > /run/nixfleet-agent-token"
    )
    machine.succeed("chmod 600 /run/nixfleet-agent-token")

    machine.succeed("systemctl start nixfleet-agent.service")
    machine.wait_until_succeeds(
        "curl -sf -b /tmp/jar http://127.0.0.1:8000/api/state "
        + "| jq -e '.payload.hosts[] | select(.id == \"machine\" and .status == \"online\")'",
        timeout=60,
    )

    # The token reached the agent through its credential, and nowhere else.
    machine.fail("systemctl show -p Environment nixfleet-agent.service | grep -q nft_")
    machine.succeed("systemctl show -p RestartForceExitStatus nixfleet-agent.service | grep -q 101")
    machine.succeed("systemctl show -p KillMode nixfleet-agent.service | grep -q control-group")

    # The agent's user may run nixos-rebuild and `systemctl reboot` as root, and nothing else.
    machine.succeed("sudo -u nixfleet-agent sudo -n -l /run/current-system/sw/bin/nixos-rebuild switch")
    machine.succeed("sudo -u nixfleet-agent sudo -n -l /run/current-system/sw/bin/systemctl reboot")
    machine.fail("sudo -u nixfleet-agent sudo -n -l /run/current-system/sw/bin/systemctl poweroff")
    machine.fail("sudo -u nixfleet-agent sudo -n true")

    # Stopping the agent leaves the server up; the host goes offline.
    machine.succeed("systemctl stop nixfleet-agent.service")
    machine.wait_until_succeeds(
        "curl -sf -b /tmp/jar http://127.0.0.1:8000/api/state "
        + "| jq -e '.payload.hosts[] | select(.id == \"machine\" and .status == \"offline\")'",
        timeout=60,
    )
  '';
}
