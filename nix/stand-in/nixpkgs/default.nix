# STAND-IN for `import nixpkgs { system; }` (see README in this directory).
{ system ? builtins.currentSystem or "x86_64-linux", config ? { }, ... }:
import ./pkgs.nix { inherit system config; lib = import ./lib; }
