# STAND-IN package set: just the attribute names this project's flake.nix, module.nix
# and VM tests refer to.  Every package is a real derivation whose builder only writes
# a marker file, so evaluation (`nix flake check --no-build`, nix-instantiate) works
# and store paths are well-formed; nothing here is meant to be built or run.  Not
# nixpkgs code.
{ system ? builtins.currentSystem or "x86_64-linux", lib ? import ./lib }:
let
  standIn = name: attrs:
    let
      # `env` becomes derivation inputs, so evaluating the .drv forces them.
      drv = derivation ((attrs.env or { }) // {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" "echo 'nixpkgs stand-in: ${name} is not a real package' > $out" ];
      });
    in
    drv // { meta = { description = "stand-in for ${name}"; standIn = true; } // (attrs.meta or { }); }
      // removeAttrs attrs [ "meta" "env" ];

  llamaCpp = flags:
    let
      suffix = lib.concatStrings (lib.mapAttrsToList (n: v: lib.optionalString v "-${n}") flags);
    in
    standIn "llama-cpp${suffix}-stand-in" {
      meta.mainProgram = "llama-server";
      passthru = flags;
      override = f: llamaCpp (flags // (if builtins.isFunction f then f flags else f));
    } // flags;

  postgresqlPkg = version: standIn "postgresql-${version}-stand-in" {
    inherit version;
    pkgs = {
      timescaledb = standIn "timescaledb-stand-in" { };
      pgvector = standIn "pgvector-stand-in" { };
    };
    withPackages = f: postgresqlPkg version;
  };

  pythonPackageNames = [
    "openai" "aiohttp" "psycopg" "psycopg-pool" "chromadb" "drain3" "prometheus-client" "jsonschema"
    "psutil" "pytest" "pytest-asyncio" "pytest-timeout" "setuptools" "setuptools-scm" "wheel"
    "pytestCheckHook"
  ];
  # callPackage: call a function (or a file holding one) with the attributes it names.
  callPackageWith = scope: f: args:
    let fn = if builtins.isFunction f then f else import f; in
    fn (builtins.intersectAttrs (builtins.functionArgs fn) scope // args);
  python3Packages = lib.genAttrs pythonPackageNames (n: standIn "python3-${n}-stand-in" { pname = n; })
    // {
      buildPythonApplication = args: standIn "${args.pname}-${args.version or "0"}-stand-in"
        (removeAttrs args [ "src" "dependencies" "propagatedBuildInputs" "build-system" "nativeCheckInputs" ]
          // { passthru = args.passthru or { }; meta = args.meta or { }; });
      buildPythonPackage = args: python3Packages.buildPythonApplication args;
      callPackage = callPackageWith (self // python3Packages);
      psycopg = standIn "python3-psycopg-stand-in" { pname = "psycopg"; optional-dependencies = { pool = [ ]; binary = [ ]; }; };
    };

  self = {
    inherit lib system;
    isStandIn = true;
    stdenv.hostPlatform = { inherit system; isLinux = true; };

    llama-cpp = llamaCpp { cudaSupport = false; rocmSupport = false; vulkanSupport = false; };
    postgresql = postgresqlPkg "17";
    postgresql_16 = postgresqlPkg "16";
    postgresql_17 = postgresqlPkg "17";
    chromadb = standIn "chromadb-stand-in" { meta.mainProgram = "chroma"; };
    python3 = standIn "python3-stand-in" {
      pkgs = python3Packages;
      withPackages = f: standIn "python3-env-stand-in" { packages = f python3Packages; };
    };
    inherit python3Packages;
    curl = standIn "curl-stand-in" { };
    jq = standIn "jq-stand-in" { };
    coreutils = standIn "coreutils-stand-in" { };
    systemd = standIn "systemd-stand-in" { };
    nixfmt-rfc-style = standIn "nixfmt-stand-in" { meta.mainProgram = "nixfmt"; };
    nixfmt = self.nixfmt-rfc-style;

    fetchurl = { url, hash ? null, sha256 ? null, name ? baseNameOf url, ... }:
      standIn name { inherit url; outputHash = if hash != null then hash else sha256; };

    # builtins.toFile gives real store paths with the exact content at evaluation time.
    writeText = name: text: builtins.toFile name text;
    writeShellScript = name: text: builtins.toFile name "#!/bin/sh\n${text}";
    formats.json = { }: {
      type = lib.types.anything // { name = "json"; description = "JSON value"; };
      generate = name: value: builtins.toFile name (builtins.toJSON value);
    };

    callPackage = callPackageWith self;
    runCommand = name: env: script: standIn name { inherit script; env = removeAttrs env [ "passthru" "meta" ]; };
    mkShell = args: standIn "shell-stand-in" { inherit (args) packages; };

    testers.runNixOSTest = import ./nixos/test.nix { pkgs = self; inherit lib; };
  };
in
self
