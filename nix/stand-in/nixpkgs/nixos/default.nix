# STAND-IN for nixpkgs' `nixos/lib/eval-config.nix` (lib.nixosSystem): evaluates a
# NixOS configuration against the small set of stand-in NixOS modules below and
# exposes the rendered systemd units.  `pkgs` is built from the configuration's own
# `nixpkgs.config` (allowUnfree, allowUnfreePredicate), as nixos/modules/misc/nixpkgs.nix
# does.  Not nixpkgs code.
{ lib, pkgsFor }:
{ modules, system ? null, specialArgs ? { }, ... }:
let
  baseModules = [
    ./modules/base.nix
    ./modules/boot.nix
    ./modules/systemd.nix
    ./modules/postgresql.nix
    ./modules/chromadb.nix
    ./modules/pre-switch-check.nix
    ./modules/journald-remote.nix
    ./modules/journald-upload.nix
  ];
  pkgs = pkgsFor { system = sys; config = pre.config.nixpkgs.config; };
  pre = lib.evalModules {
    modules = baseModules ++ modules;
    specialArgs = {
      inherit pkgs;
      utils = import ./utils.nix { inherit lib; };
      modulesPath = toString ./modules;
    } // specialArgs;
  };
  sys = if system != null then system else pre.config.nixpkgs.hostPlatform;
  eval = pre;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) eval.config.assertions);
  checked =
    if failed != [ ] then throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
    else lib.foldl' (acc: w: lib.warn w acc) (eval.checkedConfig or eval.config) eval.config.warnings;
in
eval // {
  inherit failed pkgs;
  config = eval.config // {
    system = eval.config.system // {
      build = eval.config.system.build // {
        # Forces the whole check: undeclared options, failed assertions, every unit text,
        # every system package (so an unfree one refuses here, as in nixpkgs).
        toplevel = builtins.deepSeq (lib.mapAttrs (_: u: u.text) checked.systemd.units)
          (builtins.deepSeq (map (p: "${p}") checked.environment.systemPackages)
            (pkgs.runCommand "nixos-system-stand-in" { } ""));
      };
    };
  };
}
