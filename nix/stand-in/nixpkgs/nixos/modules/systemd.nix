# STAND-IN for the NixOS systemd service options and unit-file rendering.  Renders
# `systemd.services.<name>` into `systemd.units."<name>.service".text`, following the
# unit-file layout NixOS produces (lists become repeated lines; booleans true/false).
# Not nixpkgs code.
{ lib, config, ... }:
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

  serviceModule = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to install this unit."; };
      description = mkOption { type = types.str; default = ""; description = "Description= of the unit."; };
      after = listOpt "After= dependencies.";
      before = listOpt "Before= dependencies.";
      requires = listOpt "Requires= dependencies.";
      wants = listOpt "Wants= dependencies.";
      bindsTo = listOpt "BindsTo= dependencies.";
      partOf = listOpt "PartOf= dependencies.";
      wantedBy = listOpt "Install WantedBy=.";
      requiredBy = listOpt "Install RequiredBy=.";
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
        description = "Environment variables of the service.";
      };
      path = mkOption { type = types.listOf (types.either types.package types.str); default = [ ]; description = "Packages on PATH."; };
      unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Unit] section options."; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Service] section options."; };
      startLimitBurst = mkOption { type = types.nullOr types.int; default = null; description = "StartLimitBurst=."; };
      startLimitIntervalSec = mkOption { type = types.nullOr types.int; default = null; description = "StartLimitIntervalSec=."; };
      script = mkOption { type = types.lines; default = ""; description = "Shell commands run as ExecStart (stand-in: written with builtins.toFile)."; };
    };
  };

  render = v: if builtins.isBool v then lib.boolToString v else toString v;
  section = attrs: lib.concatStrings (lib.mapAttrsToList (k: v:
    if builtins.isList v then lib.concatMapStrings (x: "${k}=${render x}\n") v
    else "${k}=${render v}\n") attrs);
  deps = name: list: lib.optionalString (list != [ ]) "${name}=${lib.concatStringsSep " " list}\n";
  envLine = k: v: "Environment=${builtins.toJSON "${k}=${toString v}"}\n";

  unitText = name: s:
    let
      path = s.path ++ [ "/run/wrappers" "/run/current-system/sw" ];
      execStart = lib.optionalAttrs (s.script != "") {
        ExecStart = builtins.toFile "unit-script-${name}-start" "#!/bin/sh\nset -e\n${s.script}\n";
      };
    in
    "[Unit]\n"
    + lib.optionalString (s.description != "") "Description=${s.description}\n"
    + deps "After" s.after + deps "Before" s.before + deps "Requires" s.requires + deps "Wants" s.wants
    + deps "BindsTo" s.bindsTo + deps "PartOf" s.partOf
    + lib.optionalString (s.startLimitBurst != null) "StartLimitBurst=${toString s.startLimitBurst}\n"
    + lib.optionalString (s.startLimitIntervalSec != null) "StartLimitIntervalSec=${toString s.startLimitIntervalSec}\n"
    + section s.unitConfig
    + "\n[Service]\n"
    + lib.concatStrings (lib.mapAttrsToList envLine (lib.filterAttrs (_: v: v != null) s.environment))
    + section (s.serviceConfig // execStart)
    + lib.optionalString (s.wantedBy != [ ] || s.requiredBy != [ ]) (
      "\n[Install]\n" + deps "WantedBy" s.wantedBy + deps "RequiredBy" s.requiredBy);
in
{
  options.systemd = {
    services = mkOption {
      type = types.attrsOf (types.submodule serviceModule);
      default = { };
      description = "systemd services.";
    };
    tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d lines."; };
    units = mkOption {
      type = types.attrsOf (types.attrsOf types.anything);
      readOnly = true;
      description = "Rendered unit files (stand-in: { text; }).";
    };
  };
  config.systemd.units = lib.mapAttrs' (name: s: lib.nameValuePair "${name}.service" { text = unitText name s; })
    (lib.filterAttrs (_: s: s.enable) config.systemd.services);
}
