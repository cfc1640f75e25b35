# NixOS module: services.ai-sysadmin
#
# Three llama.cpp servers (trigger / review / meta, plus an optional embedding server),
# the ai-sysadmin orchestrator and its OpenAI-compatible API.  The Python service reads
# only the JSON file rendered from `settings` (docs: docs/nixos.md; the contract:
# ai_sysadmin/config.py).  Secrets never enter the Nix store: options ending in `File`
# take a path that systemd hands to the service with LoadCredential=.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:

let
  cfg = config.services.ai-sysadmin;
  llama = cfg.llamacpp;
  settingsFormat = pkgs.formats.json { };

  roleNames = [ "trigger" "review" "meta" "embed" ];
  roleDefaults = {
    trigger = { port = 40080; contextSize = 4096; parallel = 2; enable = true; };
    review = { port = 40081; contextSize = 8192; parallel = 1; enable = true; };
    meta = { port = 40082; contextSize = 16384; parallel = 1; enable = true; };
    embed = { port = 40084; contextSize = 2048; parallel = 1; enable = false; };
  };
  enabledRoles = lib.filter (r: llama.enable && llama.${r}.enable) roleNames;
  unitOf = role: "llama-${role}.service";

  isLoopback = host:
    builtins.elem host [ "localhost" "::1" "[::1]" ] || builtins.match "127\\.[0-9]+\\.[0-9]+\\.[0-9]+" host != null;
  urlHost = host: if lib.hasInfix ":" host && !(lib.hasPrefix "[" host) then "[${host}]" else host;

  # The llama-cpp build matching `acceleration` (nixpkgs' llama-cpp exposes these flags).
  llamaPackage =
    let
      pkg = llama.package;
      flags = {
        cuda = { cudaSupport = true; };
        rocm = { rocmSupport = true; };
        vulkan = { vulkanSupport = true; };
      };
    in
    if llama.acceleration == null || llama.acceleration == "cpu" || !(pkg ? override) then pkg
    else pkg.override flags.${llama.acceleration};

  gpu = llama.acceleration != null && llama.acceleration != "cpu";
  defaultGpuLayers = if gpu then 999 else 0;

  # Device access per backend: everything else stays closed (DevicePolicy=closed).
  deviceAllow = {
    cuda = [ "char-nvidiactl rw" "char-nvidia-caps rw" "char-nvidia-frontend rw" "char-nvidia-uvm rw" ];
    rocm = [ "char-drm rw" "char-fb rw" "char-kfd rw" ];
    vulkan = [ "char-drm rw" "char-fb rw" ];
  };
  # /dev/dri and /dev/kfd nodes are group-owned by render/video.
  gpuGroups = {
    cuda = [ ];
    rocm = [ "render" "video" ];
    vulkan = [ "render" "video" ];
  };

  # Hardening shared by every unit of this module.  Each relaxation is done where it is
  # needed, with the reason next to it.
  commonHardening = {
    DynamicUser = true;
    UMask = "0077";
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    PrivateMounts = true;
    DevicePolicy = "closed";
    ProtectClock = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectControlGroups = true;
    ProtectProc = "invisible";
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    RemoveIPC = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
    SystemCallErrorNumber = "EPERM";
  };

  roleModule = role: { config, ... }: {
    options = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = roleDefaults.${role}.enable;
        description = "Whether to run the `llama-${role}` llama-server for the ${role} role.";
      };
      model = lib.mkOption {
        type = lib.types.nullOr lib.types.path;
        default = null;
        example = lib.literalExpression ''
          pkgs.fetchurl {
            url = "https://huggingface.co/unsloth/SmolLM2-135M-Instruct-GGUF/resolve/9e6855bc4be717fca1ef21360a1db4b29d5c559a/SmolLM2-135M-Instruct-Q4_K_M.gguf";
            hash = "sha256-7V+jDEh7KC7BVsKQYvEiLlwgh1qUSsmCidvSQulH90c=";
          }'';
        description = ''
          GGUF model served for the ${role} role: a path, or a derivation such as
          `pkgs.fetchurl { url; hash; }`.  Nothing is downloaded at run time.
        '';
      };
      alias = lib.mkOption {
        type = lib.types.str;
        default = role;
        description = "Model name the server answers to (`--alias`); sent by the service as the model id.";
      };
      host = lib.mkOption {
        type = lib.types.str;
        default = "127.0.0.1";
        description = "Address llama-server listens on.  Must be a loopback address.";
      };
      port = lib.mkOption {
        type = lib.types.port;
        default = roleDefaults.${role}.port;
        description = "TCP port of the ${role} llama-server.";
      };
      contextSize = lib.mkOption {
        type = lib.types.ints.positive;
        default = roleDefaults.${role}.contextSize;
        description = "Context size in tokens (`--ctx-size`), shared by all parallel slots.";
      };
      parallel = lib.mkOption {
        type = lib.types.ints.positive;
        default = roleDefaults.${role}.parallel;
        description = "Number of parallel request slots (`--parallel`).";
      };
      gpuLayers = lib.mkOption {
        type = lib.types.nullOr lib.types.ints.unsigned;
        default = null;
        description = ''
          Layers offloaded to the GPU (`--n-gpu-layers`).  `null` means all layers with a
          GPU `acceleration` and none on the CPU.
        '';
      };
      threads = lib.mkOption {
        type = lib.types.nullOr lib.types.ints.positive;
        default = null;
        description = "CPU threads (`--threads`); `null` lets llama-server decide.";
      };
      extraArgs = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "--flash-attn" "on" ];
        description = "Extra command-line arguments for this llama-server.";
      };
    };
  };

  roleOption = role: lib.mkOption {
    type = lib.types.submodule (roleModule role);
    default = { };
    description = "The ${role} role's llama-server (unit `llama-${role}`).";
  };

  roleUrl = role: "http://${urlHost (if isLoopback llama.${role}.host then llama.${role}.host else "127.0.0.1")}:${toString llama.${role}.port}";

  llamaArgs = role:
    let r = llama.${role}; in
    [
      "--model" "${r.model}"
      "--alias" r.alias
      "--host" r.host
      "--port" (toString r.port)
      "--ctx-size" (toString r.contextSize)
      "--parallel" (toString r.parallel)
      "--n-gpu-layers" (toString (if r.gpuLayers == null then defaultGpuLayers else r.gpuLayers))
      "--metrics"
      "--no-webui"
    ]
    ++ lib.optionals (role != "embed") [ "--jinja" ]
    ++ lib.optionals (role == "embed") [ "--embeddings" "--pooling" "mean" ]
    ++ lib.optionals (r.threads != null) [ "--threads" (toString r.threads) ]
    ++ r.extraArgs;

  llamaService = role: {
    description = "llama.cpp server for the ai-sysadmin ${role} role";
    after = [ "network.target" ];
    wantedBy = [ "multi-user.target" ];
    serviceConfig = commonHardening // {
      Type = "exec";
      ExecStart = "${llamaPackage}/bin/llama-server ${utils.escapeSystemdExecArgs (llamaArgs role)}";
      Restart = "always";
      RestartSec = 2;
      StateDirectory = "llama-${role}";
      CacheDirectory = "llama-${role}";
      WorkingDirectory = "%S/llama-${role}";
      # llama.cpp keeps its own downloads cache here (unused: models come from the store).
      Environment = [ "LLAMA_CACHE=%C/llama-${role}" ];
      PrivateUsers = true;
      ProcSubset = "pid";
      # Loopback only: the server never talks to the network, and only this host may reach it.
      RestrictAddressFamilies = [ "AF_INET" "AF_INET6" ];
      IPAddressDeny = "any";
      IPAddressAllow = "localhost";
    }
    // lib.optionalAttrs gpu {
      # GPU backends need their device nodes: PrivateDevices=true would hide them, so
      # the device list is closed explicitly instead (DevicePolicy=closed above).
      PrivateDevices = false;
      DeviceAllow = deviceAllow.${llama.acceleration};
      SupplementaryGroups = gpuGroups.${llama.acceleration};
      # CUDA and ROCm JIT-compile kernels into executable memory.
      MemoryDenyWriteExecute = false;
      # The GPU user-space drivers look up devices and topology under /proc and /sys.
      ProcSubset = "all";
      # Group-based device access (render/video) does not work inside a user namespace.
      PrivateUsers = false;
    };
  };

  dbSettings =
    if cfg.database.createLocally then {
      socket_dir = "/run/postgresql";
      name = cfg.database.name;
      user = cfg.database.user;
    }
    else {
      dsn = cfg.database.url;
    };

  chromaUrl = "http://${urlHost config.services.chromadb.host}:${toString config.services.chromadb.port}";

  credentials =
    lib.optional (cfg.database.passwordFile != null) "db-password:${cfg.database.passwordFile}";
  apiCredentials = lib.optional (cfg.api.apiKeyFile != null) "api-key:${cfg.api.apiKeyFile}";

  configFile = settingsFormat.generate "ai-sysadmin.json" cfg.settings;

  remoteDb = !cfg.database.createLocally;

  orchestratorDeps =
    map unitOf enabledRoles
    ++ lib.optional cfg.database.createLocally "postgresql.service"
    ++ lib.optional (cfg.knowledgeBase.backend == "chromadb") "chromadb.service";

  secretOptions = [
    [ "api" "apiKeyFile" ]
    [ "database" "passwordFile" ]
  ];
in
{
  imports =
    # The earlier Ollama-based design had flat options; say what replaces each one.
    [
      (lib.mkRemovedOptionModule [ "services" "ai-sysadmin" "ollamaHost" ] ''
        ai-sysadmin no longer talks to Ollama: it runs its own llama.cpp servers.  Set
        services.ai-sysadmin.llamacpp.{trigger,review,meta}.model to GGUF files instead
        (each role listens on its own loopback port: llamacpp.<role>.port).'')
      (lib.mkRenamedOptionModule [ "services" "ai-sysadmin" "ollamaAcceleration" ] [ "services" "ai-sysadmin" "llamacpp" "acceleration" ])
      (lib.mkRemovedOptionModule [ "services" "ai-sysadmin" "ollamaModels" ] ''
        Models are no longer pulled by Ollama at run time.  Set
        services.ai-sysadmin.llamacpp.<role>.model to a GGUF path or a pkgs.fetchurl derivation.'')
      (lib.mkRenamedOptionModule [ "services" "ai-sysadmin" "apiPort" ] [ "services" "ai-sysadmin" "api" "port" ])
      (lib.mkRenamedOptionModule [ "services" "ai-sysadmin" "apiHost" ] [ "services" "ai-sysadmin" "api" "host" ])
    ]
    ++ map (role: lib.mkRemovedOptionModule [ "services" "ai-sysadmin" "${role}Model" ] ''
      Ollama model tags are gone.  Set services.ai-sysadmin.llamacpp.${role}.model to a GGUF file
      (a path or pkgs.fetchurl { url; hash; }).'') [ "trigger" "review" "meta" ];

  options.services.ai-sysadmin = {
    enable = lib.mkEnableOption "ai-sysadmin, an autonomous system administrator running on local models";

    package = lib.mkPackageOption pkgs "ai-sysadmin" {
      extraDescription = "Provides the `ai-sysadmin` command (the flake's `packages.<system>.default`).";
    };

    autonomyLevel = lib.mkOption {
      type = lib.types.enum [ "observe" "suggest" "auto-safe" "auto-full" ];
      default = "suggest";
      description = ''
        What the service may do on its own: `observe` only records, `suggest` queues every
        action for approval, `auto-safe` runs low-risk actions, `auto-full` runs low- and
        medium-risk actions.  High-risk actions always wait for a person.
      '';
    };

    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = {
          state_dir = lib.mkOption {
            type = lib.types.str;
            default = "/var/lib/ai-sysadmin";
            description = "State directory (the unit's StateDirectory).";
          };
          autonomy_level = lib.mkOption {
            type = lib.types.enum [ "observe" "suggest" "auto-safe" "auto-full" ];
            default = cfg.autonomyLevel;
            defaultText = lib.literalExpression "config.services.ai-sysadmin.autonomyLevel";
            description = "Autonomy level; set `autonomyLevel` instead.";
          };
          log_level = lib.mkOption {
            type = lib.types.enum [ "debug" "info" "warning" "error" ];
            default = "info";
            description = "Log level of the service.";
          };
        };
      };
      default = { };
      example = lib.literalExpression ''
        {
          intervals.review = 600;
          protected_units = [ "sshd.service" "nginx.service" ];
        }
      '';
      description = ''
        The service's configuration file (JSON), rendered from these settings.  The module
        fills `roles`, `database`, `knowledge`, `api` and `journal` from its other
        options; anything set here is merged over them.  The keys are documented in
        docs/configuration.md; unknown keys are rejected when the service starts.
      '';
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalExpression "a JSON file in the Nix store rendered from settings";
      description = "The rendered configuration file (read-only).";
    };

    llamacpp = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Whether to run the llama.cpp model servers on this host.";
      };
      package = lib.mkPackageOption pkgs "llama-cpp" { };
      acceleration = lib.mkOption {
        type = lib.types.nullOr (lib.types.enum [ "cpu" "cuda" "rocm" "vulkan" ]);
        default = null;
        example = "cuda";
        description = ''
          Backend of llama-cpp: `null` uses `package` as it is, `"cpu"` the CPU build,
          `"cuda"`, `"rocm"` and `"vulkan"` override the package with the matching support
          flag, offload every layer unless `gpuLayers` says otherwise, and open exactly
          the device nodes that backend needs (DevicePolicy=closed plus DeviceAllow).
        '';
      };
      trigger = roleOption "trigger";
      review = roleOption "review";
      meta = roleOption "meta";
      embed = roleOption "embed";
    };

    api = {
      enable = lib.mkEnableOption "the OpenAI-compatible API server (unit ai-sysadmin-api)";
      host = lib.mkOption {
        type = lib.types.str;
        default = "127.0.0.1";
        description = "Address the API listens on.  A non-loopback address requires `apiKeyFile`.";
      };
      port = lib.mkOption {
        type = lib.types.port;
        default = 40083;
        description = "TCP port of the API.";
      };
      apiKeyFile = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "/run/keys/ai-sysadmin-api-key";
        description = ''
          File holding the API key clients must send (`Authorization: Bearer ...`).  Read by
          systemd (LoadCredential=), never copied into the Nix store: give a string path,
          not a Nix path literal.
        '';
      };
      openFirewall = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Open `api.port` in the firewall.";
      };
    };

    database = {
      createLocally = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Create a PostgreSQL role and database on this host's `services.postgresql`
          (peer authentication over the unix socket).  The host's package choice and
          other pg_hba rules are left as they are.
        '';
      };
      timescaledb = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Load the TimescaleDB extension into the local PostgreSQL (metrics hypertables).";
      };
      name = lib.mkOption {
        type = lib.types.str;
        default = "ai-sysadmin";
        description = "Database name.";
      };
      user = lib.mkOption {
        type = lib.types.str;
        default = "ai-sysadmin";
        description = "Database role, also the service's (dynamic) user name for peer authentication.";
      };
      url = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "postgresql://ai-sysadmin@db.example.org/ai-sysadmin";
        description = "libpq URL of an existing server, used when `createLocally` is false.  No password here: see `passwordFile`.";
      };
      passwordFile = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        description = "File holding the database password (LoadCredential=), for `url`.";
      };
    };

    knowledgeBase = {
      backend = lib.mkOption {
        type = lib.types.enum [ "embedded" "chromadb" ];
        default = "embedded";
        description = ''
          `embedded`: ChromaDB inside the service's state directory.  `chromadb`: enable
          `services.chromadb` on this host and talk to it over HTTP.
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      assertions =
        [
          {
            assertion = isLoopback cfg.api.host || cfg.api.apiKeyFile != null;
            message = "services.ai-sysadmin.api.host (${cfg.api.host}) is not a loopback address: set services.ai-sysadmin.api.apiKeyFile.";
          }
          {
            assertion = cfg.database.createLocally || cfg.database.url != null;
            message = "services.ai-sysadmin.database: set createLocally = true or a database.url.";
          }
          {
            assertion = !(cfg.database.createLocally && cfg.database.url != null);
            message = "services.ai-sysadmin.database.url is only used with createLocally = false.";
          }
        ]
        ++ map (p: let v = lib.getAttrFromPath p cfg; in {
          assertion = v == null || (lib.hasPrefix "/" v && !(lib.hasPrefix builtins.storeDir v));
          message = "services.ai-sysadmin.${lib.concatStringsSep "." p} must be an absolute path outside the Nix store (secrets must not enter the store).";
        }) secretOptions
        ++ lib.concatMap (role: [
          {
            assertion = !(llama.enable && llama.${role}.enable) || llama.${role}.model != null;
            message = "services.ai-sysadmin.llamacpp.${role}.model must be set (or set llamacpp.${role}.enable = false).";
          }
          {
            assertion = !(llama.enable && llama.${role}.enable) || isLoopback llama.${role}.host;
            message = "services.ai-sysadmin.llamacpp.${role}.host must be a loopback address: model servers never listen beyond this host.";
          }
        ]) roleNames;

      # The configuration contract (ai_sysadmin/config.py).  mkDefault: settings win.
      services.ai-sysadmin.settings = {
        roles = lib.genAttrs (lib.filter (r: r != "embed" || llama.embed.enable) roleNames) (role: {
          enable = lib.mkDefault (llama.enable && llama.${role}.enable);
          url = lib.mkDefault (roleUrl role);
          model = lib.mkDefault llama.${role}.alias;
          context_size = lib.mkDefault llama.${role}.contextSize;
        });
        database = lib.mapAttrs (_: lib.mkDefault) dbSettings
          // lib.optionalAttrs (cfg.database.passwordFile != null) { password_file = lib.mkDefault "db-password"; };
        knowledge = lib.mkIf (cfg.knowledgeBase.backend == "chromadb") { url = lib.mkDefault chromaUrl; };
        api = {
          host = lib.mkDefault cfg.api.host;
          port = lib.mkDefault cfg.api.port;
        } // lib.optionalAttrs (cfg.api.apiKeyFile != null) { api_key_file = lib.mkDefault "api-key"; };
        journal.source = lib.mkDefault "system";
      };

      systemd.services.ai-sysadmin = {
        description = "ai-sysadmin orchestrator (journal triggers, review, meta analysis, policy)";
        after = [ "network.target" ] ++ orchestratorDeps;
        requires = orchestratorDeps;
        wantedBy = [ "multi-user.target" ];
        environment.AI_SYSADMIN_CONFIG = "${configFile}";
        serviceConfig = commonHardening // {
          Type = "exec";
          ExecStart = "${cfg.package}/bin/ai-sysadmin run";
          Restart = "on-failure";
          RestartSec = 5;
          # A stable name for the dynamic user: PostgreSQL peer authentication maps it
          # to the database role of the same name.
          User = cfg.database.user;
          Group = cfg.database.user;
          # Reads the whole system journal.  This is the only privilege it gets: no
          # capabilities, no sudo, no polkit rule.
          SupplementaryGroups = [ "systemd-journal" ];
          # The journal group must map to the real group: no user namespace.
          PrivateUsers = false;
          StateDirectory = "ai-sysadmin";
          StateDirectoryMode = "0700";
          CacheDirectory = "ai-sysadmin";
          LoadCredential = credentials;
          # Unix sockets: PostgreSQL, D-Bus (unit states).  IP: the model servers and
          # ChromaDB on loopback, or the remote database.
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
          IPAddressDeny = lib.mkIf (!remoteDb) "any";
          IPAddressAllow = lib.mkIf (!remoteDb) "localhost";
        };
      };
    }

    (lib.mkIf llama.enable {
      systemd.services = lib.listToAttrs (map (role: lib.nameValuePair "llama-${role}" (llamaService role)) enabledRoles);
    })

    (lib.mkIf cfg.api.enable {
      systemd.services.ai-sysadmin-api = {
        description = "ai-sysadmin OpenAI-compatible API";
        after = [ "network.target" ] ++ lib.optional (lib.elem "meta" enabledRoles) (unitOf "meta")
          ++ lib.optional cfg.database.createLocally "postgresql.service";
        requires = lib.optional (lib.elem "meta" enabledRoles) (unitOf "meta")
          ++ lib.optional cfg.database.createLocally "postgresql.service";
        wantedBy = [ "multi-user.target" ];
        environment.AI_SYSADMIN_CONFIG = "${configFile}";
        serviceConfig = commonHardening // {
          Type = "exec";
          ExecStart = "${cfg.package}/bin/ai-sysadmin api";
          Restart = "on-failure";
          RestartSec = 5;
          User = "${cfg.database.user}-api";
          PrivateUsers = true;
          ProcSubset = "pid";
          StateDirectory = "ai-sysadmin-api";
          LoadCredential = apiCredentials ++ credentials;
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
          # Reachable from this host only, unless it listens beyond loopback (with a key).
          IPAddressDeny = lib.mkIf (isLoopback cfg.api.host && !remoteDb) "any";
          IPAddressAllow = lib.mkIf (isLoopback cfg.api.host && !remoteDb) "localhost";
        };
      };
      networking.firewall.allowedTCPPorts = lib.mkIf cfg.api.openFirewall [ cfg.api.port ];
    })

    (lib.mkIf cfg.database.createLocally {
      services.postgresql = {
        enable = true;
        ensureDatabases = [ cfg.database.name ];
        ensureUsers = [
          {
            name = cfg.database.user;
            ensureDBOwnership = cfg.database.name == cfg.database.user;
          }
        ];
        extensions = lib.mkIf cfg.database.timescaledb (ps: [ ps.timescaledb ]);
        settings.shared_preload_libraries = lib.mkIf cfg.database.timescaledb [ "timescaledb" ];
      };
    })

    (lib.mkIf (cfg.knowledgeBase.backend == "chromadb") {
      services.chromadb.enable = true;
    })
  ]);
}
