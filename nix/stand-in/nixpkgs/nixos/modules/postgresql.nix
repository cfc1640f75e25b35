# STAND-IN for nixos/modules/services/databases/postgresql.nix (nixos-unstable, 2026):
# the options this project sets, with the same types, defaults and rendering, and the
# same units: postgresql.service (initdb on first start, postgresql.conf with hba_file
# and ident_file, Type=notify), postgresql-setup.service (ensureDatabases, ensureUsers,
# ensureDBOwnership), and postgresql.target that requires both.  The default pg_hba
# rules are mkAfter and "# Generated file" is mkBefore, so a module's own
# `authentication` lines land in between, as in nixpkgs.
# Divergences: postgresql.conf is one file (nixpkgs: writeTextDir); the setup script is
# rendered for a POSIX shell; no configuration syntax check at build time; hardening of
# postgresql.service is a subset.  Not nixpkgs code.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.postgresql;

  toStr = value:
    if true == value then "yes"
    else if false == value then "no"
    else if builtins.isString value then "'${lib.replaceStrings [ "'" ] [ "''" ] value}'"
    else builtins.toString value;
  configFile = pkgs.writeText "postgresql.conf" (lib.concatStringsSep "\n"
    (lib.mapAttrsToList (n: v: "${n} = ${toStr v}") (lib.filterAttrs (_: x: x != null) cfg.settings)) + "\n");
  defaultDataDir = "/var/lib/postgresql/${cfg.package.psqlSchema}";
  psql = "${cfg.finalPackage}/bin/psql";
in
{
  options.services.postgresql = {
    enable = lib.mkEnableOption "PostgreSQL Server";
    enableJIT = lib.mkEnableOption "JIT support";
    package = mkOption { type = types.package; description = "The package being used by postgresql."; };
    finalPackage = mkOption {
      type = types.package;
      readOnly = true;
      default =
        let withJit = if cfg.enableJIT then cfg.package.withJIT else cfg.package.withoutJIT; in
        if cfg.extensions == [ ] then withJit else withJit.withPackages cfg.extensions;
      description = "The postgresql package that will effectively be used in the system.";
    };
    extensions = mkOption {
      type = with types; coercedTo (listOf path) (path: _ignorePg: path) (functionTo (listOf path));
      default = _: [ ];
      description = "List of PostgreSQL extensions to install.";
    };
    dataDir = mkOption { type = types.path; description = "The data directory for PostgreSQL."; };
    settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf (types.oneOf [ types.bool types.float types.int types.str ]);
        options = {
          shared_preload_libraries = mkOption {
            type = types.nullOr (types.coercedTo (types.listOf types.str) (lib.concatStringsSep ",") types.commas);
            default = null;
            description = "List of libraries to be preloaded.";
          };
          log_line_prefix = mkOption { type = types.str; default = "[%p] "; description = "Log line prefix."; };
          port = mkOption { type = types.port; default = 5432; description = "The port on which PostgreSQL listens."; };
        };
      };
      default = { };
      description = "postgresql.conf settings.";
    };
    ensureDatabases = mkOption { type = types.listOf types.str; default = [ ]; description = "Databases to create."; };
    ensureUsers = mkOption {
      type = types.listOf (types.submodule {
        options.name = mkOption { type = types.str; description = "Name of the user to ensure."; };
        options.ensureDBOwnership = mkOption { type = types.bool; default = false; description = "Grants the user ownership to a database with the same name."; };
        options.ensureClauses = mkOption {
          type = types.submodule {
            options = lib.genAttrs [ "superuser" "createrole" "createdb" "inherit" "login" "replication" "bypassrls" ]
              (c: mkOption { type = types.nullOr types.bool; default = null; description = "ALTER ROLE ... ${c}."; });
          };
          default = { };
          description = "Clauses granted to the user.";
        };
      });
      default = [ ];
      description = "Roles to create.";
    };
    authentication = mkOption { type = types.lines; default = ""; description = "pg_hba.conf lines; module lines land before nixpkgs' default rules."; };
    identMap = mkOption { type = types.lines; default = ""; description = "pg_ident.conf: map-name system-username database-username."; };
    initdbArgs = mkOption { type = types.listOf types.str; default = [ ]; description = "Additional arguments passed to initdb."; };
    enableTCPIP = mkOption { type = types.bool; default = false; description = "Listen on all network interfaces."; };
    superUser = mkOption { type = types.str; default = "postgres"; internal = true; readOnly = true; description = "Superuser."; };
  };

  config = lib.mkIf cfg.enable {
    assertions = map ({ name, ensureDBOwnership, ... }: {
      assertion = ensureDBOwnership -> builtins.elem name cfg.ensureDatabases;
      message = ''
        For each database user defined with `services.postgresql.ensureUsers` and
        `ensureDBOwnership = true;`, a database with the same name must be defined
        in `services.postgresql.ensureDatabases`.

        Offender: ${name} has not been found among databases.
      '';
    }) cfg.ensureUsers;

    services.postgresql.package = lib.mkDefault pkgs.postgresql_17;
    services.postgresql.dataDir = lib.mkDefault defaultDataDir;
    services.postgresql.settings = {
      hba_file = "${pkgs.writeText "pg_hba.conf" cfg.authentication}";
      ident_file = "${pkgs.writeText "pg_ident.conf" cfg.identMap}";
      log_destination = "stderr";
      listen_addresses = if cfg.enableTCPIP then "*" else "localhost";
      jit = lib.mkDefault (if cfg.enableJIT then "on" else "off");
    };
    services.postgresql.authentication = lib.mkMerge [
      (lib.mkBefore "# Generated file; do not edit!")
      (lib.mkAfter ''
        # default value of services.postgresql.authentication
        local all postgres         peer map=postgres
        local all all              peer
        host  all all 127.0.0.1/32 md5
        host  all all ::1/128      md5
      '')
    ];
    services.postgresql.identMap = lib.mkAfter ''
      postgres postgres postgres
    '';

    users.users.postgres = { name = "postgres"; group = "postgres"; description = "PostgreSQL server user"; };
    users.groups.postgres = { };
    environment.systemPackages = [ cfg.finalPackage ];

    systemd.targets.postgresql = {
      description = "PostgreSQL";
      wantedBy = [ "multi-user.target" ];
      requires = [ "postgresql.service" "postgresql-setup.service" ];
    };

    systemd.services.postgresql = {
      description = "PostgreSQL Server";
      after = [ "network.target" ];
      wants = [ "postgresql.target" ];
      partOf = [ "postgresql.target" ];
      environment.PGDATA = cfg.dataDir;
      path = [ cfg.finalPackage ];
      preStart = ''
        if ! test -e ${cfg.dataDir}/PG_VERSION; then
          rm -f ${cfg.dataDir}/*.conf
          initdb -U ${cfg.superUser} ${lib.escapeShellArgs cfg.initdbArgs}
          touch "${cfg.dataDir}/.first_startup"
        fi
        ln -sfn "${configFile}" "${cfg.dataDir}/postgresql.conf"
      '';
      serviceConfig = {
        User = "postgres";
        Group = "postgres";
        RuntimeDirectory = "postgresql";
        Type = "notify";
        KillSignal = "SIGINT";
        KillMode = "mixed";
        TimeoutSec = 120;
        ExecStart = "${cfg.finalPackage}/bin/postgres";
        Restart = "always";
        PrivateTmp = true;
        ProtectHome = true;
        ProtectSystem = "strict";
        NoNewPrivileges = true;
        UMask = "0027";
      } // (if cfg.dataDir == defaultDataDir then {
        StateDirectory = "postgresql postgresql/${cfg.package.psqlSchema}";
        StateDirectoryMode = "0750";
      } else { ReadWritePaths = [ cfg.dataDir ]; });
    };

    systemd.services.postgresql-setup = {
      description = "PostgreSQL Setup Scripts";
      requires = [ "postgresql.service" ];
      after = [ "postgresql.service" ];
      serviceConfig = { User = "postgres"; Group = "postgres"; Type = "oneshot"; RemainAfterExit = true; };
      path = [ cfg.finalPackage ];
      environment.PGPORT = toString cfg.settings.port;
      script = ''
        while ! ${psql} -d postgres -c "" 2> /dev/null; do
          if ! systemctl is-active --quiet postgresql.service; then exit 1; fi
          sleep 0.1
        done
        rm -f "${cfg.dataDir}/.first_startup"
      '' + lib.concatMapStrings (database: ''
        ${psql} -tAc "SELECT 1 FROM pg_database WHERE datname = '${database}'" | grep -q 1 || ${psql} -tAc 'CREATE DATABASE "${database}"'
      '') cfg.ensureDatabases
      + lib.concatMapStrings (user:
        let
          clauses = lib.mapAttrsToList (n: v: if v then n else "no${n}") (lib.filterAttrs (_: v: v != null) user.ensureClauses);
        in
        ''
          ${psql} -tAc "SELECT 1 FROM pg_roles WHERE rolname='${user.name}'" | grep -q 1 || ${psql} -tAc 'CREATE USER "${user.name}"'
        '' + lib.optionalString (clauses != [ ]) ''
          ${psql} -tAc 'ALTER ROLE "${user.name}" ${lib.concatStringsSep " " clauses}'
        '' + lib.optionalString user.ensureDBOwnership ''
          ${psql} -tAc 'ALTER DATABASE "${user.name}" OWNER TO "${user.name}";'
        '') cfg.ensureUsers;
    };
  };
}
