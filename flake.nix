{
  description = "ai-sysadmin: an autonomous system administrator for NixOS hosts, running on local models";

  # No flake.lock is checked in: none can be made on the project's (offline) build
  # machines.  `nix flake lock` (or the first `nix build`) creates it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # Evaluates a NixOS configuration using the module and fails on failed assertions
      # or unknown options.  The check depends on the toplevel's .drv path only (its
      # context dropped): `nix flake check` proves the system instantiates without
      # building or downloading a whole NixOS closure.  boot.isContainer: a container
      # has no root file system or boot loader to declare, so NixOS' assertions for those
      # (nixos/modules/system/boot/stage-1.nix, loader/grub/grub.nix) do not apply, as
      # in nixpkgs; a host configuration brings its own fileSystems and boot.loader.
      evalSystem = system: modules:
        builtins.unsafeDiscardStringContext (lib.nixosSystem {
          inherit system;
          modules = [ self.nixosModules.default { boot.isContainer = true; system.stateVersion = "25.11"; } ] ++ modules;
        }).config.system.build.toplevel.drvPath;

      # Option sets the module must evaluate for (tests/nix/ renders and checks many more).
      evalCases = model: {
        cpu = { services.ai-sysadmin.llamacpp.acceleration = "cpu"; };
        # CUDA is unfree (cudaPackages): as on a real CUDA host, allowed explicitly.
        cuda = { services.ai-sysadmin.llamacpp.acceleration = "cuda"; nixpkgs.config.allowUnfree = true; };
        rocm = { services.ai-sysadmin.llamacpp.acceleration = "rocm"; };
        vulkan = { services.ai-sysadmin.llamacpp.acceleration = "vulkan"; };
        # The TimescaleDB builds: free by default; TSL (unfree) when allowed; none.
        timescaledb-none = { services.ai-sysadmin.database.timescaledb = "none"; };
        timescaledb-tsl = {
          services.ai-sysadmin.database.timescaledb = "tsl";
          nixpkgs.config.allowUnfreePredicate = pkg: lib.getName pkg == "timescaledb";
        };
        admins-and-protected = {
          services.ai-sysadmin.admins = [ "alice" ];
          services.ai-sysadmin.protectedUnits = [ "nginx.service" ];
          services.ai-sysadmin.actions.approvalKeyFile = "/run/keys/ai-sysadmin-approval";
        };
        api-exposed = {
          services.ai-sysadmin.api = {
            enable = true;
            host = "0.0.0.0";
            apiKeyFile = "/run/keys/ai-sysadmin-api";
            openFirewall = true;
          };
        };
        remote-db-chromadb = {
          services.ai-sysadmin.database = { createLocally = false; url = "postgresql://db.example.org/ai"; };
          services.ai-sysadmin.knowledgeBase.backend = "chromadb";
          services.ai-sysadmin.autonomyLevel = "observe";
        };
      };
    in
    {
      # (`import`: Nix 2.8's flake check accepts only functions or attribute sets here.)
      nixosModules.ai-sysadmin = import ./module.nix;
      # The module, with `package` defaulting to this flake's build of the service.
      nixosModules.default =
        { pkgs, lib, ... }:
        {
          imports = [ ./module.nix ];
          services.ai-sysadmin.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      packages = forAllSystems (system: pkgs: rec {
        ai-sysadmin = pkgs.python3Packages.callPackage ./nix/package.nix { };
        default = ai-sysadmin;
      });

      checks = forAllSystems (system: pkgs:
        let
          package = self.packages.${system}.default;
          model = (import ./nix/tests/common.nix { inherit pkgs lib; }).tinyModel;
          base = {
            services.ai-sysadmin = {
              enable = true;
              llamacpp.trigger.model = model;
              llamacpp.review.model = model;
              llamacpp.meta.model = model;
            };
          };
        in
        import ./nix/tests { inherit pkgs package; module = self.nixosModules.default; }
        // lib.mapAttrs' (name: case: lib.nameValuePair "module-eval-${name}"
          (pkgs.runCommand "ai-sysadmin-module-eval-${name}" { toplevelDrv = evalSystem system [ base case ]; } "touch $out"))
          (evalCases model)
        // { inherit package; });

      # `nix develop`: the package's Python dependencies and test runners (nix/package.nix's
      # passthru, the lists its build uses), the type checker with the stubs pyproject's `test`
      # extra names, ruff, and the real parts the tests start.  scripts/lint.sh and
      # .pre-commit-config.yaml run ruff and mypy from $AI_SYSADMIN_VENV, which may point here.
      devShells = forAllSystems (system: pkgs:
        let
          package = self.packages.${system}.default;
        in
        {
          default = pkgs.mkShell {
            packages = [
              (pkgs.python3.withPackages (ps: package.passthru.dependencies ++ package.passthru.testDependencies
                ++ [ ps.mypy ps.types-psutil ps.types-jsonschema ]))
              pkgs.ruff
              pkgs.llama-cpp
              pkgs.postgresql
            ];
          };
        });

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-rfc-style);
    };
}
