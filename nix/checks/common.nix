# Shared by render.nix and render-test.nix: JSON package markers, and the description
# of an evaluated NixOS system that tests/nix/ and rig/nixos_driver.py consume.
{ lib }:
rec {
  # { "__package": "/dir", "name": "..." } -> a package whose outPath is /dir; its
  # `override`/`withPackages` keep it (the rig's programs have no variants).
  package = p: flags: {
    type = "derivation";
    name = p.name or "package";
    pname = p.name or "package";
    version = p.version or "0";
    psqlSchema = p.psqlSchema or (p.version or "0");
    outPath = p.__package;
    meta = { };
    override = f: package p (flags // (if builtins.isFunction f then f flags else f));
    withPackages = _: package p flags;
    withJIT = package p flags;
    withoutJIT = package p flags;
    # "extensions": [ names ] gives a PostgreSQL marker its extension set.
    pkgs = builtins.listToAttrs (map (n: { name = n; value = package { __package = "${p.__package}-${n}"; name = n; } { }; })
      (p.extensions or [ ]));
    passthru = flags;
  } // flags;
  convert = v:
    if builtins.isAttrs v && v ? __package then package v { }
    else if builtins.isAttrs v && v ? __file then v.__file
    # { "__fetchurl": "/file" }: a fetchurl whose every download is that local file.
    else if builtins.isAttrs v && v ? __fetchurl then (_: v.__fetchurl)
    else if builtins.isAttrs v then builtins.mapAttrs (_: convert) v
    else if builtins.isList v then map convert v
    else v;

  readJson = f: builtins.fromJSON (builtins.readFile f);

  describe = sys:
    let
      cfg = sys.checkedConfig or sys.config;
      pg = cfg.services.postgresql;
      ai = cfg.services.ai-sysadmin;
      scripts = lib.filter (p: p ? scriptText) cfg.environment.systemPackages;
    in
    if sys.failed != [ ] then { assertions = sys.failed; }
    else
      builtins.deepSeq cfg.warnings {
        assertions = [ ];
        inherit (cfg) warnings;
        units = builtins.mapAttrs (_: u: u.text) cfg.systemd.units;
        settings = ai.settings;
        configFile = toString ai.configFile;
        # Each part's rendered file, as the unit reads it.
        unitConfigs = lib.mapAttrs (_: f: { path = toString f; content = readJson f; }) ai.unitConfigFiles;
        firewall = { tcp = cfg.networking.firewall.allowedTCPPorts; udp = cfg.networking.firewall.allowedUDPPorts; };
        postgresql = {
          inherit (pg) enable;
        } // lib.optionalAttrs pg.enable {
          inherit (pg) ensureDatabases authentication identMap;
          ensureUsers = map (u: { inherit (u) name ensureDBOwnership; }) pg.ensureUsers;
          sharedPreloadLibraries = pg.settings.shared_preload_libraries;
          packageName = pg.package.name;
          extensions = map (e: e.pname or e.name) (pg.extensions (pg.package.pkgs or { }));
          hbaFile = pg.settings.hba_file;
          identFile = pg.settings.ident_file;
        };
        chromadb = cfg.services.chromadb.enable;
        # nixpkgs' services.journald.remote / .upload as the configuration set them.
        journald = {
          remote = { inherit (cfg.services.journald.remote) enable listen port output settings; };
          upload = { inherit (cfg.services.journald.upload) enable; } // lib.optionalAttrs cfg.services.journald.upload.enable {
            inherit (cfg.services.journald.upload) settings;
          };
        };
        # Programs the configuration puts on the system PATH that the rig can install
        # (the stand-in's writeShellScriptBin carries its text).
        binScripts = map (p: { name = p.binName; text = p.scriptText; }) scripts;
        # Static system users and groups (users.users / users.groups).
        users = lib.mapAttrs (n: u: { group = u.group or n; isSystemUser = u.isSystemUser or false; }) cfg.users.users;
        groups = builtins.attrNames cfg.users.groups;
        etc = lib.mapAttrs (_: e: { inherit (e) text; source = if e.source == null then null else toString e.source; }) cfg.environment.etc;
        # system.preSwitchChecks and the program that runs them (its text: the stand-in
        # builds nothing, the rig installs it at a path of its own).
        preSwitch = {
          checks = cfg.system.preSwitchChecks;
          script = toString cfg.system.preSwitchChecksScript;
          text = cfg.system.build.preSwitchChecks.scriptText or null;
        };
      };
}
