# STAND-IN package set: just the attribute names this project's flake.nix, module.nix
# and VM tests refer to.  Every package is a real derivation whose builder only writes
# a marker file, so evaluation (`nix flake check --no-build`, nix-instantiate) works
# and store paths are well-formed; nothing here is meant to be built or run.  Not
# nixpkgs code.
#
# Faithful where the project's checks depend on it (tests/nix/test_stand_in.py names the
# nixpkgs file each behaviour mirrors):
# * licences: a package whose meta.license is not free refuses to evaluate unless
#   config.allowUnfree or config.allowUnfreePredicate allows it (pkgs/stdenv/generic/check-meta.nix);
#   llama-cpp with cudaSupport depends on the unfree CUDA runtime;
# * formats.json: the recursive JSON value type of pkgs/pkgs-lib/formats.nix; formats.systemd
#   (an INI whose null values are written as "# <key> is unset");
# * postgresql: `pkgs`, `withPackages`, `withJIT`/`withoutJIT`, `psqlSchema`, and the
#   extensions `timescaledb` (TSL, unfree) and `timescaledb-apache` (Apache-2.0) of
#   pkgs/servers/sql/postgresql/ext.nix and ext/timescaledb.nix.
#
# `overrides` replaces attributes (the project's rig points llama-cpp, postgresql, bash,
# coreutils, ... at real programs to run rendered units); `withConfig` re-imports the
# set with another nixpkgs config, keeping the overrides.
{ system ? builtins.currentSystem or "x86_64-linux", lib ? import ./lib, config ? { }, overrides ? { } }:
let
  allowUnfree = config.allowUnfree or false;
  allowUnfreePredicate = config.allowUnfreePredicate or (_: false);
  licensesOf = meta: lib.toList (meta.license or [ ]);
  isFree = meta: lib.all (l: l.free or true) (licensesOf meta);
  # check-meta.nix: evaluating an unfree package's outPath or drvPath throws.
  refuse = name: meta:
    throw ''
      Package ‘${name}’ in the nixpkgs stand-in has an unfree license (‘${
        lib.concatMapStringsSep "’, ‘" (l: l.shortName or "unfree") (lib.filter (l: !(l.free or true)) (licensesOf meta))}’), refusing to evaluate.
      (stand-in for pkgs/stdenv/generic/check-meta.nix: set nixpkgs.config.allowUnfree = true or an allowUnfreePredicate)'';

  standIn = name: attrs:
    let
      # `env` becomes derivation inputs, so evaluating the .drv forces them.
      drv = derivation ((attrs.env or { }) // {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" "echo 'nixpkgs stand-in: ${name} is not a real package' > $out" ];
      });
      meta = { description = "stand-in for ${name}"; standIn = true; } // (attrs.meta or { });
      allowed = isFree meta || allowUnfree || allowUnfreePredicate { inherit name meta; pname = attrs.pname or name; };
      guarded = if allowed then drv else drv // { outPath = refuse name meta; drvPath = refuse name meta; };
    in
    guarded // { inherit meta; } // removeAttrs attrs [ "meta" "env" ];

  # cudaPackages' runtime (cuda_cudart, libcublas): the CUDA EULA, unfree.  A CUDA
  # build depends on it, so instantiating one refuses unless unfree is allowed.
  cudaRuntime = standIn "cuda_cudart-stand-in" { pname = "cuda_cudart"; meta.license = lib.licenses.unfree; };

  llamaCpp = flags:
    let
      suffix = lib.concatStrings (lib.mapAttrsToList (n: v: lib.optionalString v "-${n}") flags);
    in
    standIn "llama-cpp${suffix}-stand-in" {
      pname = "llama-cpp";
      env = lib.optionalAttrs (flags.cudaSupport or false) { cuda = cudaRuntime.outPath; };
      # pkgs/by-name/ll/llama-cpp/package.nix: MIT; its mainProgram is `llama`, the
      # server binary is bin/llama-server.
      meta = { mainProgram = "llama"; license = lib.licenses.mit; };
      passthru = flags;
      override = f: llamaCpp (flags // (if builtins.isFunction f then f flags else f));
    } // flags;

  postgresqlPkg = version: extensions:
    let
      pg = standIn "postgresql-${version}${lib.optionalString (extensions != [ ]) "-and-plugins"}-stand-in" {
        inherit version;
        pname = "postgresql";
        psqlSchema = version;
        meta.license = lib.licenses.postgresql;
        # Forcing the combined package forces each extension (and its licence check).
        env.extensions = map (e: e.outPath) extensions;
        installedExtensions = extensions;
        pkgs = {
          timescaledb = standIn "timescaledb-stand-in" { pname = "timescaledb"; meta.license = lib.licenses.tsl; };
          timescaledb-apache = standIn "timescaledb-apache-stand-in" { pname = "timescaledb-apache"; meta.license = lib.licenses.asl20; };
          pgvector = standIn "pgvector-stand-in" { pname = "pgvector"; meta.license = lib.licenses.postgresql; };
        };
        withPackages = f: postgresqlPkg version (extensions ++ f pg.pkgs);
        withJIT = pg;
        withoutJIT = pg;
      };
    in
    pg;

  pythonPackageNames = [
    "openai" "aiohttp" "psycopg" "psycopg-pool" "chromadb" "prometheus-client" "jsonschema"
    "psutil" "rank-bm25" "google-re2" "pydantic" "cachetools" "jsonpickle" "pytest" "pytest-asyncio" "pytest-timeout"
    "setuptools" "setuptools-scm" "wheel" "pytestCheckHook" "hypothesis" "mypy" "types-psutil" "types-jsonschema"
  ];
  # callPackage: call a function (or a file holding one) with the attributes it names.
  callPackageWith = scope: f: args:
    let fn = if builtins.isFunction f then f else import f; in
    fn (builtins.intersectAttrs (builtins.functionArgs fn) scope // args);
  python3Packages = lib.genAttrs pythonPackageNames (n: standIn "python3-${n}-stand-in" { pname = n; })
    // {
      buildPythonApplication = args: standIn "${args.pname}-${args.version or "0"}-stand-in"
        (removeAttrs args [ "src" "dependencies" "propagatedBuildInputs" "build-system" "nativeCheckInputs" "passthru" ]
          // { passthru = args.passthru or { }; meta = args.meta or { }; });
      buildPythonPackage = args: python3Packages.buildPythonApplication args;
      callPackage = callPackageWith (self // python3Packages);
      psycopg = standIn "python3-psycopg-stand-in" { pname = "psycopg"; optional-dependencies = { pool = [ ]; binary = [ ]; }; };
      fetchPypi = { pname, version, hash ? null, sha256 ? null, ... }:
        standIn "${pname}-${version}.tar.gz" { outputHash = if hash != null then hash else sha256; };
    };

  # pkgs/pkgs-lib/formats.nix
  iniAtom = with lib.types; nullOr (oneOf [ bool int float str ]) // { description = "INI atom (null, bool, int, float or string)"; };
  iniValue = v: if builtins.isBool v then lib.boolToString v else toString v;
  jsonValue = with lib.types;
    nullOr (oneOf [ bool int float str path (attrsOf jsonValue) (listOf jsonValue) ]) // { description = "JSON value"; };

  self = {
    inherit lib system config;
    isStandIn = true;
    stdenv.hostPlatform = { inherit system; isLinux = true; };

    llama-cpp = llamaCpp { cudaSupport = false; rocmSupport = false; vulkanSupport = false; };
    postgresql = postgresqlPkg "17" [ ];
    postgresql_16 = postgresqlPkg "16" [ ];
    postgresql_17 = postgresqlPkg "17" [ ];
    chromadb = python3Packages.chromadb;
    python3 = standIn "python3-stand-in" {
      pkgs = python3Packages;
      withPackages = f: standIn "python3-env-stand-in" { packages = f python3Packages; };
    };
    inherit python3Packages;
    curl = standIn "curl-stand-in" { };
    ruff = standIn "ruff-stand-in" { meta.mainProgram = "ruff"; };
    iptables = standIn "iptables-stand-in" { };
    jq = standIn "jq-stand-in" { };
    bash = standIn "bash-stand-in" { };
    runtimeShell = "${self.bash}/bin/bash";
    coreutils = standIn "coreutils-stand-in" { };
    findutils = standIn "findutils-stand-in" { };
    gnugrep = standIn "gnugrep-stand-in" { };
    gnused = standIn "gnused-stand-in" { };
    systemd = standIn "systemd-stand-in" { };
    nix = standIn "nix-stand-in" { };
    nixfmt-rfc-style = standIn "nixfmt-stand-in" { meta.mainProgram = "nixfmt"; };
    nixfmt = self.nixfmt-rfc-style;

    fetchurl = { url, hash ? null, sha256 ? null, name ? baseNameOf url, meta ? { }, ... }:
      standIn name { inherit url meta; outputHash = if hash != null then hash else sha256; };

    # builtins.toFile gives real store paths with the exact content at evaluation time
    # (with nix-instantiate --read-write-mode they are written to the store).  It
    # cannot record references to derivations, so their context is dropped: nothing
    # the stand-in names is ever built.
    writeText = name: text: builtins.toFile name (builtins.unsafeDiscardStringContext text);
    writeShellScript = name: text: self.writeText name "#!${self.runtimeShell}\n${text}";
    # A package with bin/<name>.  The stand-in cannot make a directory at evaluation
    # time, so the script text rides along (`scriptText`, `binName`): rig/nixos_driver.py
    # installs it when it runs a configuration in the nspawn rig.
    writeShellScriptBin = name: text: standIn name {
      binName = name;
      scriptText = "#!${self.runtimeShell}\n${text}";
      meta.mainProgram = name;
    };
    # trivial-builders.nix: bin/<name> running `text` under bash with errexit, nounset
    # and pipefail (runtimeInputs prepended to PATH).  Carried like writeShellScriptBin.
    writeShellApplication = { name, text, runtimeInputs ? [ ], ... }: standIn name {
      binName = name;
      scriptText = "#!${self.runtimeShell}\nset -o errexit\nset -o nounset\nset -o pipefail\n"
        + lib.optionalString (runtimeInputs != [ ]) "export PATH=\"${lib.makeBinPath runtimeInputs}:$PATH\"\n"
        + "\n${text}\n";
      meta.mainProgram = name;
    };
    formats.json = { }: {
      type = jsonValue;
      generate = name: value: self.writeText name (builtins.toJSON value);
    };
    # formats.nix `systemd`: an INI with lists as duplicate keys, and null writing
    # "# <key> is unset" instead of a value (lib.generators.toINI with mkValueStringDefault).
    formats.systemd = {
      type = with lib.types; attrsOf (attrsOf (either iniAtom (listOf iniAtom)));
      generate = name: value: self.writeText name (lib.concatStrings (lib.mapAttrsToList (section: keys:
        "[${section}]\n" + lib.concatStrings (lib.mapAttrsToList (k: v:
          lib.concatMapStrings (x: if x == null then "# ${k} is unset\n" else "${k} = ${iniValue x}\n") (lib.toList v)) keys))
        value));
    };

    callPackage = callPackageWith self;
    runCommand = name: env: script: standIn name { inherit script; env = removeAttrs env [ "passthru" "meta" ]; };
    mkShell = args: standIn "shell-stand-in" { inherit (args) packages; };

    testers.runNixOSTest = import ./nixos/test.nix { pkgs = self; inherit lib; };
    withConfig = config': import ./pkgs.nix { inherit system lib overrides; config = config'; };
  } // overrides;
in
self
