# STAND-IN for nixpkgs' nixos/modules/system/activation/pre-switch-check.nix, with the
# same interface:
#  * system.preSwitchChecks: attrsOf str, shell fragments run before a switch; each
#    gets the new system path as $1 and switch-to-configuration's verb as $2; a
#    failing fragment fails the switch;
#  * system.preSwitchChecksScript: internal, read-only, a store path: the
#    `pre-switch-checks` program (writeShellApplication, so errexit/nounset/pipefail)
#    that runs every fragment in a subshell, its output on stderr, and exits 1 naming
#    the first fragment that fails.  switch-to-configuration runs it with the new
#    system (and the verb) unless NIXOS_NO_CHECK=1
#    (pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs, `do_pre_switch_check`).
# Stand-in only: nothing is built, so `system.build.preSwitchChecks` carries the
# program (its text in `scriptText`) for the rig to install and run.  Not nixpkgs code.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  fragments = lib.concatLines (lib.mapAttrsToList (name: text: ''
    # pre-switch check ${name}
    if ! (
      ${text}
    ) >&2 ; then
      echo "Pre-switch check '${name}' failed" >&2
      exit 1
    fi
  '') config.system.preSwitchChecks);
  program = pkgs.writeShellApplication { name = "pre-switch-checks"; text = fragments; };
in
{
  options.system.preSwitchChecksScript = mkOption {
    type = types.pathInStore;
    internal = true;
    readOnly = true;
    default = lib.getExe program;
    description = "The program that runs every system.preSwitchChecks fragment.";
  };
  options.system.preSwitchChecks = mkOption {
    type = types.attrsOf types.str;
    default = { };
    description = ''
      Shell fragments run before switching to a new configuration; a failure fails the
      switch.  They receive the new configuration path as $1 and the action as $2.
    '';
  };
  config.system.build.preSwitchChecks = program;
}
