# STAND-IN for nixos/modules/services/databases/chromadb.nix: its options and unit.  Not nixpkgs code.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.chromadb;
in
{
  options.services.chromadb = {
    enable = mkOption { type = types.bool; default = false; description = "Whether to run ChromaDB."; };
    package = mkOption { type = types.package; default = pkgs.python3Packages.chromadb; description = "ChromaDB package (mkPackageOption pkgs [ \"python3Packages\" \"chromadb\" ])."; };
    host = mkOption { type = types.str; default = "127.0.0.1"; description = "Listen address."; };
    port = mkOption { type = types.port; default = 8000; description = "Listen port."; };
    dbpath = mkOption { type = types.str; default = "/var/lib/chromadb"; description = "Data directory."; };
    openFirewall = mkOption { type = types.bool; default = false; description = "Open the port."; };
  };
  config = lib.mkIf cfg.enable {
    systemd.services.chromadb = {
      description = "ChromaDB (stand-in unit)";
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/chroma run --path ${cfg.dbpath} --host ${cfg.host} --port ${toString cfg.port}";
        DynamicUser = true;
        StateDirectory = "chromadb";
      };
    };
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];
  };
}
