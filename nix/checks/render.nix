# Renders one NixOS configuration of services.ai-sysadmin with the nixpkgs STAND-IN and
# prints what the checks in tests/nix/ assert on: every unit file, the service's JSON
# configuration, firewall ports, PostgreSQL wiring, failed assertions and warnings.
#
#   nix-instantiate --eval --strict --json nix/checks/render.nix --argstr caseFile case.json
#
# case.json: { "config": { ...NixOS options... } }.  JSON has no packages or paths, so
# an object { "__package": "/some/dir", "name": "..." } stands for a package whose
# output is that directory (the checks point these at the real llama-server build and
# the Python virtualenv, so the rendered units run as they are).
{ caseFile }:
let
  lib = import ../stand-in/nixpkgs/lib;
  pkgs = import ../stand-in/nixpkgs/pkgs.nix { inherit lib; system = "x86_64-linux"; };
  nixosSystem = import ../stand-in/nixpkgs/nixos { inherit lib; pkgsFor = _: pkgs; };
  case = builtins.fromJSON (builtins.readFile caseFile);

  package = p: flags: {
    type = "derivation";
    name = p.name or "package";
    outPath = p.__package;
    override = f: package p (flags // (if builtins.isFunction f then f flags else f));
    passthru = flags;
  } // flags;
  convert = v:
    if builtins.isAttrs v && v ? __package then package v { }
    else if builtins.isAttrs v then builtins.mapAttrs (_: convert) v
    else if builtins.isList v then map convert v
    else v;

  sys = nixosSystem {
    system = "x86_64-linux";
    modules = [ ../../module.nix (convert case.config) ];
  };
  cfg = sys.checkedConfig;
  pg = cfg.services.postgresql;
in
if sys.failed != [ ] then { assertions = sys.failed; }
else
  builtins.deepSeq cfg.warnings {
    assertions = [ ];
    inherit (cfg) warnings;
    units = builtins.mapAttrs (_: u: u.text) cfg.systemd.units;
    settings = cfg.services.ai-sysadmin.settings;
    configFile = toString cfg.services.ai-sysadmin.configFile;
    firewall = { tcp = cfg.networking.firewall.allowedTCPPorts; udp = cfg.networking.firewall.allowedUDPPorts; };
    postgresql = {
      inherit (pg) enable ensureDatabases authentication;
      ensureUsers = map (u: { inherit (u) name ensureDBOwnership; }) pg.ensureUsers;
      sharedPreloadLibraries = pg.settings.shared_preload_libraries;
      packageName = pg.package.name;
      extensions = map (e: e.name) (if builtins.isFunction pg.extensions then pg.extensions (pg.package.pkgs or pkgs.postgresql.pkgs) else pg.extensions);
    };
    chromadb = cfg.services.chromadb.enable;
  }
