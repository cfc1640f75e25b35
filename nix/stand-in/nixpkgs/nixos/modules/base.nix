# STAND-IN NixOS base options: assertions, warnings, firewall, users, etc, hardware and
# the few other top-level options the project's configurations set.  Not nixpkgs code.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  free = description: mkOption { type = types.attrsOf types.anything; default = { }; inherit description; };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.attrs;
      default = [ ];
      description = "Assertions ({ assertion; message; }) checked when the system is built.";
    };
    warnings = mkOption { type = types.listOf types.str; default = [ ]; description = "Warnings printed at build time."; };
    nixpkgs.hostPlatform = mkOption { type = types.str; default = "x86_64-linux"; description = "Platform (stand-in: a system string)."; };
    networking.hostName = mkOption { type = types.str; default = "nixos"; description = "Host name."; };
    networking.firewall = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to enable the firewall."; };
      allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; description = "Open TCP ports."; };
      allowedUDPPorts = mkOption { type = types.listOf types.port; default = [ ]; description = "Open UDP ports."; };
    };
    environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages in the system profile."; };
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule {
        options.text = mkOption { type = types.nullOr types.lines; default = null; description = "Content."; };
        options.source = mkOption { type = types.nullOr types.path; default = null; description = "Source file."; };
      });
      default = { };
      description = "Files in /etc.";
    };
    users.groups = mkOption { type = types.attrsOf (types.attrsOf types.anything); default = { }; description = "Groups."; };
    hardware.graphics.enable = mkOption { type = types.bool; default = false; description = "Graphics drivers."; };
    hardware.nvidia = free "NVIDIA driver options (stand-in: free-form).";
    services.xserver.videoDrivers = mkOption { type = types.listOf types.str; default = [ ]; description = "Video drivers."; };
    nixpkgs.config = free "nixpkgs configuration (stand-in: free-form; allowUnfree and allowUnfreePredicate reach pkgs).";
    nix.package = mkOption { type = types.package; default = pkgs.nix; description = "The Nix package (nixos/modules/config/nix.nix)."; };
    users.users = mkOption { type = types.attrsOf (types.attrsOf types.anything); default = { }; description = "Users."; };
    virtualisation = free "VM settings of the NixOS test driver (stand-in: free-form).";
    system.stateVersion = mkOption { type = types.str; default = "25.05"; description = "State version."; };
    system.build = mkOption { type = types.lazyAttrsOf types.raw; default = { }; description = "Build products."; };
  };
}
