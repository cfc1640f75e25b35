# STAND-IN for the NixOS systemd service/target options and unit-file rendering
# (nixos/lib/systemd-lib.nix, nixos/lib/systemd-unit-options.nix,
# nixos/modules/system/boot/systemd.nix).  Renders `systemd.services.<name>`,
# `systemd.targets.<name>` and `systemd.sockets.<name>` into `systemd.units."<name>.<type>".text` the way NixOS lays
# them out: dependencies in [Unit], `environment` as Environment="K=V" lines with PATH
# from `path` plus NixOS' default coreutils/findutils/gnugrep/gnused/systemd, `script`,
# `preStart` and `postStart` as ExecStart=/ExecStartPre=/ExecStartPost= scripts run by
# bash with -e, lists as repeated lines, booleans true/false.
# Divergences: NixOS enables units with symlinks in its unit directory; this renders
# WantedBy=/RequiredBy= in an [Install] section instead (rig/nixos_driver.py enables
# from it).  Not nixpkgs code.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;

  unitValue = types.oneOf [ types.bool types.int types.str types.path types.package ];
  unitOption = lib.types.mkOptionType {
    name = "systemd option";
    description = "systemd option value (a value or a list of values)";
    check = v: unitValue.check v || (builtins.isList v && builtins.all unitValue.check v);
    merge = loc: defs:
      let values = map (d: d.value) defs; in
      if builtins.all builtins.isList values then builtins.concatLists values
      else if builtins.length defs == 1 then (builtins.head defs).value
      else if builtins.all (v: v == builtins.head values) values then builtins.head values
      else throw "The option `${lib.showOption loc}' has conflicting definitions; use mkForce.";
  };
  listOpt = description: mkOption { type = types.listOf types.str; default = [ ]; inherit description; };

  commonOptions = {
    enable = mkOption { type = types.bool; default = true; description = "Whether to install this unit."; };
    description = mkOption { type = types.str; default = ""; description = "Description= of the unit."; };
    after = listOpt "After= dependencies.";
    before = listOpt "Before= dependencies.";
    requires = listOpt "Requires= dependencies.";
    wants = listOpt "Wants= dependencies.";
    bindsTo = listOpt "BindsTo= dependencies.";
    partOf = listOpt "PartOf= dependencies.";
    conflicts = listOpt "Conflicts= dependencies.";
    wantedBy = listOpt "Install WantedBy=.";
    requiredBy = listOpt "Install RequiredBy=.";
    unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Unit] section options."; };
  };

  serviceModule = { name, config, ... }: {
    options = commonOptions // {
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
        description = "Environment variables of the service.";
      };
      path = mkOption { type = types.listOf (types.either types.package types.str); default = [ ]; description = "Packages on PATH."; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Service] section options."; };
      startLimitBurst = mkOption { type = types.nullOr types.int; default = null; description = "StartLimitBurst=."; };
      startLimitIntervalSec = mkOption { type = types.nullOr types.int; default = null; description = "StartLimitIntervalSec=."; };
      script = mkOption { type = types.lines; default = ""; description = "Shell commands run as ExecStart."; };
      preStart = mkOption { type = types.lines; default = ""; description = "Shell commands run as ExecStartPre."; };
      postStart = mkOption { type = types.lines; default = ""; description = "Shell commands run as ExecStartPost."; };
    };
  };
  targetModule = { name, ... }: { options = commonOptions; };
  socketModule = { name, ... }: {
    options = commonOptions // {
      listenStreams = listOpt "ListenStream= lines (\"\" clears the ones before it).";
      socketConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Socket] section options."; };
    };
  };

  render = v: if builtins.isBool v then lib.boolToString v else toString v;
  section = attrs: lib.concatStrings (lib.mapAttrsToList (k: v:
    if builtins.isList v then lib.concatMapStrings (x: "${k}=${render x}\n") v
    else "${k}=${render v}\n") attrs);
  deps = name: list: lib.optionalString (list != [ ]) "${name}=${lib.concatStringsSep " " list}\n";
  envLine = k: v: "Environment=${builtins.toJSON "${k}=${toString v}"}\n";

  # makeJobScript: `#!${runtimeShell} -e` (the stand-in's store files are not
  # executable, so the shell is named on the Exec line).
  jobScript = name: kind: text: "${pkgs.runtimeShell} -e ${pkgs.writeText "unit-script-${name}-${kind}" "#!${pkgs.runtimeShell} -e\n${text}\n"}";

  unitSection = s:
    "[Unit]\n"
    + lib.optionalString (s.description != "") "Description=${s.description}\n"
    + deps "After" s.after + deps "Before" s.before + deps "Requires" s.requires + deps "Wants" s.wants
    + deps "BindsTo" s.bindsTo + deps "PartOf" s.partOf + deps "Conflicts" s.conflicts
    + section s.unitConfig;
  installSection = s: lib.optionalString (s.wantedBy != [ ] || s.requiredBy != [ ]) (
    "\n[Install]\n" + deps "WantedBy" s.wantedBy + deps "RequiredBy" s.requiredBy);

  defaultPath = [ pkgs.coreutils pkgs.findutils pkgs.gnugrep pkgs.gnused pkgs.systemd ];
  serviceText = name: s:
    let
      path = s.path ++ defaultPath;
      env = { PATH = "${lib.makeBinPath path}:${lib.makeSearchPathOutput "bin" "sbin" path}"; } // s.environment;
      scripts = lib.optionalAttrs (s.script != "") { ExecStart = jobScript name "start" s.script; }
        // lib.optionalAttrs (s.preStart != "") { ExecStartPre = jobScript name "pre-start" s.preStart; }
        // lib.optionalAttrs (s.postStart != "") { ExecStartPost = jobScript name "post-start" s.postStart; };
    in
    unitSection s
    + lib.optionalString (s.startLimitBurst != null) "StartLimitBurst=${toString s.startLimitBurst}\n"
    + lib.optionalString (s.startLimitIntervalSec != null) "StartLimitIntervalSec=${toString s.startLimitIntervalSec}\n"
    + "\n[Service]\n"
    + lib.concatStrings (lib.mapAttrsToList envLine (lib.filterAttrs (_: v: v != null) env))
    + section (s.serviceConfig // scripts)
    + installSection s;
in
{
  options.systemd = {
    services = mkOption {
      type = types.attrsOf (types.submodule serviceModule);
      default = { };
      description = "systemd services.";
    };
    targets = mkOption {
      type = types.attrsOf (types.submodule targetModule);
      default = { };
      description = "systemd targets.";
    };
    sockets = mkOption {
      type = types.attrsOf (types.submodule socketModule);
      default = { };
      description = "systemd sockets.";
    };
    tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d lines."; };
    units = mkOption {
      type = types.attrsOf (types.attrsOf types.anything);
      readOnly = true;
      description = "Rendered unit files (stand-in: { text; }).";
    };
  };
  config.systemd.units =
    lib.mapAttrs' (name: s: lib.nameValuePair "${name}.service" { text = serviceText name s; })
      (lib.filterAttrs (_: s: s.enable) config.systemd.services)
    // lib.mapAttrs' (name: t: lib.nameValuePair "${name}.target" { text = unitSection t + installSection t; })
      (lib.filterAttrs (_: t: t.enable) config.systemd.targets)
    // lib.mapAttrs' (name: k: lib.nameValuePair "${name}.socket" {
      text = unitSection k + "\n[Socket]\n" + lib.concatMapStrings (l: "ListenStream=${l}\n") k.listenStreams
        + section k.socketConfig + installSection k;
    }) (lib.filterAttrs (_: k: k.enable) config.systemd.sockets);
}
