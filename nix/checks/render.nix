# Renders one NixOS configuration of services.ai-sysadmin with the nixpkgs STAND-IN and
# prints what the checks in tests/nix/ assert on: every unit file, each part's JSON
# configuration, firewall ports, PostgreSQL wiring, failed assertions and warnings.
#
#   nix-instantiate --eval --strict --json nix/checks/render.nix --argstr caseFile case.json
#
# case.json: { "config": { ...NixOS options... }, "pkgs": { ...overrides... } }.  JSON
# has no packages or paths, so an object { "__package": "/some/dir", "name": "..." }
# stands for a package whose output is that directory (the checks point these at the
# real llama-server build, the Python virtualenv, Debian's PostgreSQL, so the rendered
# units run as they are).  `libPath` evaluates with another `lib` (the real nixpkgs lib
# when one is on the machine) instead of the stand-in's.
{ caseFile, libPath ? null }:
let
  lib = if libPath == null then import ../stand-in/nixpkgs/lib else import libPath;
  common = import ./common.nix { inherit lib; };
  case = builtins.fromJSON (builtins.readFile caseFile);
  pkgs = import ../stand-in/nixpkgs/pkgs.nix {
    inherit lib;
    system = "x86_64-linux";
    overrides = common.convert (case.pkgs or { });
  };
  nixosSystem = import ../stand-in/nixpkgs/nixos { inherit lib; pkgsFor = { system, config ? { } }: pkgs.withConfig config; };
  sys = nixosSystem {
    system = "x86_64-linux";
    modules = [ ../../module.nix (common.convert case.config) ];
  };
in
common.describe sys
