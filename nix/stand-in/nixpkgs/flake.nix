{
  # STAND-IN for the nixpkgs flake, used only by this project's CI:
  #   nix flake check --override-input nixpkgs path:./nix/stand-in/nixpkgs
  # It provides the handful of attributes flake.nix and module.nix use (lib with
  # nixosSystem, legacyPackages, a minimal NixOS module set).  It is not nixpkgs.
  description = "ai-sysadmin's nixpkgs stand-in (CI only; not nixpkgs)";
  outputs = { self }:
    let
      baseLib = import ./lib;
      pkgsFor = { system, config ? { } }: import ./pkgs.nix { inherit system config; lib = self.lib; };
    in
    {
      lib = baseLib // {
        nixosSystem = import ./nixos/default.nix { lib = self.lib; inherit pkgsFor; };
      };
      legacyPackages = baseLib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: pkgsFor { inherit system; });
    };
}
