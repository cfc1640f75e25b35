# VM test: a unit made to fail inside the VM produces a recorded trigger of category
# `unit-failure` in the service's database.
# Runs on a NixOS machine with KVM:  nix build .#checks.x86_64-linux.vm-trigger
{ pkgs, module, package }:
let
  inherit (pkgs) lib;
  common = import ./common.nix { inherit pkgs lib; };
in
pkgs.testers.runNixOSTest {
  name = "ai-sysadmin-trigger";
  nodes.machine = common.machine {
    inherit module package;
    model = common.tinyModel;
    extra = {
      services.ai-sysadmin.autonomyLevel = "observe";
      systemd.services.doomed = {
        description = "A unit that fails on purpose";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "/bin/sh -c 'echo failing on purpose; exit 3'";
        };
      };
    };
  };

  testScript = ''
    machine.wait_for_unit("ai-sysadmin.service")
    machine.fail("systemctl start doomed.service")
    # The trigger layer records the failure (the triggers table: one row per template,
    # unit and window, its subject in `unit`).
    machine.wait_until_succeeds(
        "sudo -u postgres psql -d ai-sysadmin -tAc "
        "\"select count(*) from triggers where category = 'unit-failure' "
        "and unit = 'doomed.service'\" | grep -qv '^0$'",
        timeout=300)
  '';
}
