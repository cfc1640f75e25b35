# Renders the nodes of one NixOS VM test (nix/tests/<name>.nix) with the nixpkgs
# STAND-IN, for rig/nixos_driver.py, which boots each node's units in systemd-nspawn and
# runs the test's own testScript against them.
#
#   nix-instantiate --read-write-mode --eval --strict --json nix/checks/render-test.nix \
#     --argstr test basic --argstr caseFile rig.json
#
# rig.json: { "pkgs": { ...package overrides (JSON markers, see common.nix)... },
#             "package": <marker of the ai-sysadmin package>,
#             "nodeModule": { ...NixOS options added to every node... } }
{ test, caseFile }:
let
  lib = import ../stand-in/nixpkgs/lib;
  common = import ./common.nix { inherit lib; };
  case = builtins.fromJSON (builtins.readFile caseFile);
  pkgs = import ../stand-in/nixpkgs/pkgs.nix {
    inherit lib;
    system = "x86_64-linux";
    overrides = common.convert (case.pkgs or { });
  };
  nodeModule = common.convert (case.nodeModule or { });
  module = { imports = [ ../../module.nix nodeModule ]; };
  t = import (../tests + "/${test}.nix") { inherit pkgs module; package = common.convert case.package; };
in
{
  testScript = t.testScriptText;
  nodes = lib.mapAttrs (_: sys: common.describe sys // {
    systemPackages = map (p: "${p}") sys.config.environment.systemPackages;
  }) t.evaluated;
}
