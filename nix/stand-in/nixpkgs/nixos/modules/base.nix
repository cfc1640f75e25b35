# STAND-IN NixOS base options: assertions, warnings, firewall, users, etc, hardware and
# the few other top-level options the project's configurations set.  Not nixpkgs code.
{ lib, pkgs, config, ... }:
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

  # STAND-IN for nixos/modules/services/networking/firewall-iptables.nix: the chain
  # nixos-fw accepts loopback and the allowed ports, refuses the rest; INPUT jumps to it.
  config = lib.mkIf config.networking.firewall.enable {
    systemd.services.firewall = {
      description = "Firewall";
      wantedBy = [ "sysinit.target" ];
      path = [ pkgs.iptables ];
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      script = ''
        for chain in nixos-fw-accept nixos-fw-refuse nixos-fw; do
          iptables -w -N "$chain" 2>/dev/null || iptables -w -F "$chain"
        done
        iptables -w -A nixos-fw-accept -j ACCEPT
        iptables -w -A nixos-fw-refuse -j DROP
        iptables -w -A nixos-fw -i lo -j nixos-fw-accept
        ${lib.concatMapStrings (p: "iptables -w -A nixos-fw -p tcp --dport ${toString p} -j nixos-fw-accept\n") config.networking.firewall.allowedTCPPorts}
        ${lib.concatMapStrings (p: "iptables -w -A nixos-fw -p udp --dport ${toString p} -j nixos-fw-accept\n") config.networking.firewall.allowedUDPPorts}
        iptables -w -A nixos-fw -j nixos-fw-refuse
        iptables -w -C INPUT -j nixos-fw 2>/dev/null || iptables -w -A INPUT -j nixos-fw
      '';
    };
  };
}
