# STAND-IN for nixpkgs' nixos/modules/system/boot/systemd/journald-upload.nix
# (services.journald.upload): the same options and types -- enable; settings (freeform
# systemd INI) with Upload.URL (str, no default), Upload.ServerKeyFile,
# Upload.ServerCertificateFile, Upload.TrustedCertificateFile and
# Upload.NetworkTimeoutSec (nullOr str) -- and the same configuration: the unit
# systemd-journal-upload wanted by multi-user.target with Restart=always, RestartSec=3sec,
# /etc/systemd/journal-upload.conf from settings.  Defaults: ServerCertificateFile and
# TrustedCertificateFile default to null in every nixpkgs revision read; ServerKeyFile
# and NetworkTimeoutSec have none in some (commit 15162cff) and null in others
# (fca69bec), so the stand-in gives them none: a configuration must set them, and then
# evaluates under both.  Not nixpkgs code.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.journald.upload;
  format = pkgs.formats.systemd;
in
{
  options.services.journald.upload = {
    enable = mkOption { type = types.bool; default = false; description = "Whether to enable uploading the systemd journal to a remote server."; };
    settings = mkOption {
      default = { };
      description = "journal-upload.conf(5).";
      type = types.submodule {
        freeformType = format.type;
        options.Upload = {
          URL = mkOption { type = types.str; description = "The URL to upload the journal entries to."; };
          ServerKeyFile = mkOption { type = types.nullOr types.str; description = "Client key (PEM)."; };
          ServerCertificateFile = mkOption { type = types.nullOr types.str; default = null; description = "Client certificate (PEM)."; };
          TrustedCertificateFile = mkOption { type = types.nullOr types.str; default = null; description = "CA of the server's certificate."; };
          NetworkTimeoutSec = mkOption { type = types.nullOr types.str; description = "How long to wait for the network to come back."; };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.systemd-journal-upload = {
      wantedBy = [ "multi-user.target" ];
      serviceConfig = { Restart = "always"; RestartSec = "3sec"; };
    };
    environment.etc."systemd/journal-upload.conf".source = format.generate "journal-upload.conf" cfg.settings;
  };
}
