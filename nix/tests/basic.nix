# VM test: every unit active, only the configured ports open, each role answers /health
# and a chat completion, the orchestrator runs with journal access.
# Runs on a NixOS machine with KVM:  nix build .#checks.x86_64-linux.vm-basic
# (not run on the project's CI machines, which have no nixpkgs and no KVM).
{ pkgs, module, package }:
let
  inherit (pkgs) lib;
  common = import ./common.nix { inherit pkgs lib; };
in
pkgs.testers.runNixOSTest {
  name = "ai-sysadmin-basic";
  nodes.machine = common.machine {
    inherit module package;
    model = common.tinyModel;
    extra = {
      services.ai-sysadmin.api.enable = true;
      environment.systemPackages = [ pkgs.curl pkgs.jq ];
    };
  };
  nodes.exposed = common.machine {
    inherit module package;
    model = common.tinyModel;
    extra = {
      services.ai-sysadmin.llamacpp.review.enable = false;
      services.ai-sysadmin.llamacpp.meta.enable = false;
      services.ai-sysadmin.api = {
        enable = true;
        host = "0.0.0.0";
        apiKeyFile = "/etc/ai-sysadmin-test-key";
        openFirewall = true;
      };
      environment.etc."ai-sysadmin-test-key".text = "test-key-not-secret";
    };
  };

  testScript = ''
    import json

    ROLES = {"trigger": 40080, "review": 40081, "meta": 40082}

    start_all()
    machine.wait_for_unit("postgresql.service")
    for role, port in ROLES.items():
        machine.wait_for_unit(f"llama-{role}.service")
        machine.wait_until_succeeds(f"curl -sf http://127.0.0.1:{port}/health", timeout=300)
        body = json.dumps({"model": role, "max_tokens": 8,
                           "messages": [{"role": "user", "content": "Say hi"}]})
        out = machine.succeed(
            f"curl -sf http://127.0.0.1:{port}/v1/chat/completions "
            f"-H 'Content-Type: application/json' -d '{body}'")
        assert json.loads(out)["choices"][0]["message"]["content"] is not None, out

    machine.wait_for_unit("ai-sysadmin.service")
    # The orchestrator started after the model servers and holds the journal group.
    pid = machine.succeed("systemctl show -p MainPID --value ai-sysadmin.service").strip()
    groups = machine.succeed(f"grep ^Groups: /proc/{pid}/status").split()[1:]
    journal_gid = machine.succeed("getent group systemd-journal | cut -d: -f3").strip()
    assert journal_gid in groups, groups

    # The admin command reads the host's configuration; the approval key is root's alone.
    machine.succeed("ai-sysadmin config check")
    assert machine.succeed("stat -c '%U %a' /var/lib/ai-sysadmin-executor/approval-key").split() == ["root", "600"]

    # A model server is wanted, not required: stopping it leaves the orchestrator running.
    machine.succeed("systemctl stop llama-meta.service")
    assert machine.succeed("systemctl show -p MainPID --value ai-sysadmin.service").strip() == pid
    machine.succeed("systemctl is-active ai-sysadmin.service")
    machine.succeed("systemctl start llama-meta.service")
    machine.wait_until_succeeds(f"curl -sf http://127.0.0.1:{ROLES['meta']}/health", timeout=300)

    # Listening sockets: the model servers on loopback only; nothing else of ours.
    listening = machine.succeed("ss -ltnH | awk '{print $4}'").split()
    for port in ROLES.values():
        assert f"127.0.0.1:{port}" in listening, listening
        assert f"0.0.0.0:{port}" not in listening and f"*:{port}" not in listening, listening
    # The firewall opens nothing for the service unless api.openFirewall is set.
    rules = machine.succeed("iptables -S nixos-fw || nft list ruleset")
    assert "40083" not in rules, rules
    exposed.wait_for_unit("llama-trigger.service")
    exposed.fail("systemctl is-active llama-review.service")
    rules = exposed.succeed("iptables -S nixos-fw || nft list ruleset")
    assert "40083" in rules, rules
  '';
}
