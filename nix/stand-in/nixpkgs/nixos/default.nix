# STAND-IN for nixpkgs' `nixos/lib/eval-config.nix` (lib.nixosSystem): evaluates a
# NixOS configuration against the small set of stand-in NixOS modules below and
# exposes the rendered systemd units.  Not nixpkgs code.
{ lib, pkgsFor }:
{ modules, system ? null, specialArgs ? { }, ... }:
let
  baseModules = [
    ./modules/base.nix
    ./modules/systemd.nix
    ./modules/postgresql.nix
    ./modules/chromadb.nix
  ];
  pre = lib.evalModules {
    modules = baseModules ++ modules;
    specialArgs = {
      pkgs = pkgsFor sys;
      utils = import ./utils.nix { inherit lib; };
      modulesPath = toString ./modules;
    } // specialArgs;
  };
  sys = if system != null then system else pre.config.nixpkgs.hostPlatform;
  eval = pre;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) eval.config.assertions);
  checked =
    if failed != [ ] then throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
    else lib.foldl' (acc: w: lib.warn w acc) eval.checkedConfig eval.config.warnings;
in
eval // {
  inherit failed;
  config = eval.config // {
    system = eval.config.system // {
      build = eval.config.system.build // {
        # Forces the whole check: undeclared options, failed assertions, every unit text.
        toplevel = builtins.deepSeq (lib.mapAttrs (_: u: u.text) checked.systemd.units)
          ((pkgsFor sys).runCommand "nixos-system-stand-in" { } "");
      };
    };
  };
}
