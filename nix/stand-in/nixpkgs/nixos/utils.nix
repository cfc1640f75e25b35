# STAND-IN for the `utils` module argument (nixos/lib/utils.nix): only the systemd
# command-line escaping the project uses.  Not nixpkgs code.
{ lib }:
rec {
  # One argument of an Exec*= line: plain when it has no special characters, otherwise
  # a double-quoted C-style string; `%` and `$` are escaped for systemd's specifiers and
  # environment expansion.
  escapeSystemdExecArg = arg:
    let
      s = toString arg;
      plain = builtins.match "[A-Za-z0-9_./:=@+,-]+" s != null;
      quoted = builtins.toJSON s;
    in
    builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (if plain then s else quoted);
  escapeSystemdExecArgs = args: lib.concatMapStringsSep " " escapeSystemdExecArg args;
}
