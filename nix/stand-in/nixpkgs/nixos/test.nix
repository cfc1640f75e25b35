# STAND-IN for pkgs.testers.runNixOSTest.  It cannot boot VMs: it evaluates every
# node's NixOS configuration (failed assertions and unknown options are errors), and
# returns a derivation whose inputs are the nodes' rendered units and the test script,
# so `nix flake check --no-build` proves that the VM test evaluates.  Each node gets
# what the real driver's nixos/modules/virtualisation/qemu-vm.nix gives it (a root file
# system, no boot loader to install), so NixOS' boot assertions hold as in nixpkgs.
# The test script text is exposed as `testScriptText`; rig/nixos_driver.py runs it
# against the nodes' rendered units booted in systemd-nspawn.  Not nixpkgs code.
{ pkgs, lib }:
test:
let
  args = if builtins.isFunction test then test { inherit pkgs lib; } else test;
  nixosSystem = import ./default.nix { inherit lib; pkgsFor = { system, config ? { } }: pkgs.withConfig config; };
  defaults = args.defaults or { };
  # qemu-vm.nix: fileSystems."/" on the VM disk, boot.loader.grub.enable = false (the
  # VM boots its kernel directly).
  vmModule = {
    fileSystems."/" = lib.mkDefault { device = "/dev/vda"; fsType = "ext4"; };
    boot.loader.grub.enable = lib.mkDefault false;
  };
  evalNode = name: node: nixosSystem {
    system = pkgs.system;
    modules = [ node defaults vmModule { networking.hostName = lib.mkDefault name; } ] ++ (args.extraBaseModules or [ ]);
  };
  evaluated = lib.mapAttrs evalNode args.nodes;
  nodes = lib.mapAttrs (_: e: e.config) evaluated;
  testScriptText =
    if builtins.isFunction args.testScript then args.testScript { inherit nodes; } else args.testScript;
  drv = derivation {
    name = "vm-test-run-${args.name}-stand-in";
    inherit (pkgs) system;
    builder = "/bin/sh";
    args = [ "-c" "echo 'VM tests cannot run with the nixpkgs stand-in' > $out" ];
    nodeSystems = map (e: e.config.system.build.toplevel) (builtins.attrValues evaluated);
    testScript = testScriptText;
  };
in
drv // { passthru = { inherit nodes testScriptText; }; inherit nodes testScriptText evaluated; }
