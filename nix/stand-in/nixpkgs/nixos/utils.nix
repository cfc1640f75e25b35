# STAND-IN for the `utils` module argument (nixos/lib/utils.nix): the systemd
# command-line escaping the project uses, as nixpkgs writes it -- every argument a
# JSON string ("..."), `%` and `$` doubled for systemd's specifiers and environment
# expansion.  Not nixpkgs code.
{ lib }:
rec {
  escapeSystemdExecArg = arg:
    let
      s =
        if builtins.isPath arg then "${arg}"
        else if builtins.isString arg then arg
        else if builtins.isInt arg || builtins.isFloat arg || lib.isDerivation arg then toString arg
        else throw "escapeSystemdExecArg only allows strings, paths, numbers and derivations";
    in
    builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON s);
  escapeSystemdExecArgs = lib.concatMapStringsSep " " escapeSystemdExecArg;
}
