# STAND-IN for nixpkgs' nixos/modules/system/boot/systemd/journald-remote.nix
# (services.journald.remote): the same options, types and defaults -- enable; listen
# (enum "https" "http", default "https"); output (str, "/var/log/journal/remote/");
# port (port, 19532); settings (freeform systemd INI) with Remote.Seal (bool, false),
# Remote.SplitMode (enum "host" "none", "host"), Remote.ServerKeyFile,
# Remote.ServerCertificateFile, Remote.TrustedCertificateFile (str, defaults under
# /etc/ssl) -- and the same configuration: ExecStart cleared and replaced with
# `systemd-journal-remote --output=<output> --listen-<listen>=-3`, the socket
# systemd-journal-remote listening on the port, the systemd-journal-remote user and
# group, /etc/systemd/journal-remote.conf from settings.  Stand-in: the upstream unit
# files (systemd.additionalUpstreamSystemUnits) are not rendered.  Not nixpkgs code.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.journald.remote;
  format = pkgs.formats.systemd;
in
{
  options.services.journald.remote = {
    enable = mkOption { type = types.bool; default = false; description = "Whether to enable receiving systemd journals from the network."; };
    listen = mkOption { type = types.enum [ "https" "http" ]; default = "https"; description = "Which protocol to listen to."; };
    output = mkOption { type = types.str; default = "/var/log/journal/remote/"; description = "The location of the output journal."; };
    port = mkOption { type = types.port; default = 19532; description = "The port to listen to."; };
    settings = mkOption {
      default = { };
      description = "journal-remote.conf(5).";
      type = types.submodule {
        freeformType = format.type;
        options.Remote = {
          Seal = mkOption { type = types.bool; default = false; description = "Forward Secure Sealing."; };
          SplitMode = mkOption { type = types.enum [ "host" "none" ]; default = "host"; description = "One output file per host, or one."; };
          ServerKeyFile = mkOption { type = types.str; default = "/etc/ssl/private/journal-remote.pem"; description = "Server key (PEM)."; };
          ServerCertificateFile = mkOption { type = types.str; default = "/etc/ssl/certs/journal-remote.pem"; description = "Server certificate (PEM)."; };
          TrustedCertificateFile = mkOption { type = types.str; default = "/etc/ssl/ca/trusted.pem"; description = "CA of the clients' certificates (PEM), or `all`."; };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.systemd-journal-remote.serviceConfig.ExecStart = [
      ""
      "${pkgs.systemd}/lib/systemd/systemd-journal-remote --output=${cfg.output} --listen-${cfg.listen}=-3"
    ];
    systemd.sockets.systemd-journal-remote = {
      wantedBy = [ "sockets.target" ];
      listenStreams = [ "" (toString cfg.port) ];
    };
    users.groups.systemd-journal-remote = { };
    users.users.systemd-journal-remote = { isSystemUser = true; group = "systemd-journal-remote"; };
    environment.etc."systemd/journal-remote.conf".source = format.generate "journal-remote.conf" cfg.settings;
  };
}
