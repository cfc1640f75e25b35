# STAND-IN for the NixOS PostgreSQL module's options that the project sets.  Renders a
# placeholder postgresql.service so dependencies resolve.  Not nixpkgs code.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.postgresql;
in
{
  options.services.postgresql = {
    enable = mkOption { type = types.bool; default = false; description = "Whether to run PostgreSQL."; };
    package = mkOption { type = types.package; default = pkgs.postgresql; description = "PostgreSQL package."; };
    extensions = mkOption {
      type = types.either (types.listOf types.package) (types.functionTo (types.listOf types.package));
      default = [ ];
      description = "Extensions (a list, or a function of the package's extension set).";
    };
    settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf (types.oneOf [ types.bool types.int types.float types.str ]);
        options.shared_preload_libraries = mkOption {
          type = types.nullOr (types.coercedTo (types.listOf types.str) (lib.concatStringsSep ",") types.commas);
          default = null;
          description = "Libraries preloaded by the server.";
        };
      };
      default = { };
      description = "postgresql.conf settings.";
    };
    ensureDatabases = mkOption { type = types.listOf types.str; default = [ ]; description = "Databases to create."; };
    ensureUsers = mkOption {
      type = types.listOf (types.submodule {
        options.name = mkOption { type = types.str; description = "Role name."; };
        options.ensureDBOwnership = mkOption { type = types.bool; default = false; description = "Own the database of the same name."; };
        options.ensureClauses = mkOption { type = types.attrsOf types.anything; default = { }; description = "Role clauses."; };
      });
      default = [ ];
      description = "Roles to create.";
    };
    authentication = mkOption { type = types.lines; default = ""; description = "pg_hba.conf lines placed before the defaults."; };
    enableTCPIP = mkOption { type = types.bool; default = false; description = "Listen on TCP."; };
  };
  config = lib.mkIf cfg.enable {
    assertions = map (u: {
      assertion = !u.ensureDBOwnership || builtins.elem u.name cfg.ensureDatabases;
      message = "services.postgresql.ensureUsers.${u.name}.ensureDBOwnership needs a database of the same name.";
    }) cfg.ensureUsers;
    systemd.services.postgresql = {
      description = "PostgreSQL Server (stand-in unit)";
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/postgres";
        User = "postgres";
        RuntimeDirectory = "postgresql";
      };
    };
  };
}
