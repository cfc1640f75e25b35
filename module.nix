# NixOS module: services.ai-sysadmin
#
# Three llama.cpp servers (trigger / review / meta, plus an optional embedding server),
# the ai-sysadmin orchestrator, its privileged executor, its OpenAI-compatible API and an
# `ai-sysadmin` command for admins.  The Python service reads only the JSON file
# rendered from `settings` -- one file per unit, each naming exactly the credentials that
# unit gets (docs: docs/nixos.md; the contract: ai_sysadmin/config.py).  Secrets never
# enter the Nix store: options ending in `File` take a path that systemd hands to the
# service with LoadCredential=.
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

  # Units and database roles of the privileged and the client-facing parts.  Each trust
  # boundary (DESIGN.md section 1) is its own PostgreSQL role; the orchestrator owns the
  # schema and GRANTs the other two what they need when it migrates.
  executorUser = "${cfg.database.user}-executor";
  apiUser = "${cfg.database.user}-api";
  stateDirs = {
    orchestrator = "/var/lib/ai-sysadmin";
    api = "/var/lib/ai-sysadmin-api";
    executor = "/var/lib/ai-sysadmin-executor";
  };

  # The approval signing key (HMAC over a person's approval).  The orchestrator never
  # gets it: it can queue actions but cannot forge an approval.
  generatedKeyPath = "${stateDirs.executor}/approval-key";
  generateKey = cfg.actions.approvalKeyFile == null;
  approvalKeyPath = if generateKey then generatedKeyPath else cfg.actions.approvalKeyFile;
  keyUnit = "ai-sysadmin-approval-key.service";

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
  bracketHost = host: if lib.hasInfix ":" host && !(lib.hasPrefix "[" host) then "[${host}]" else host;

  # The host part of a URL (null: none, or a unix socket such as postgresql:///db?host=/run/postgresql).
  hostOfUrl = url:
    let m = builtins.match "[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*@)?([[][0-9A-Fa-f:.]*[]]|[^/?#:]*).*" url; in
    if m == null then null
    else
      let h = builtins.elemAt m 1; in
      if h == "" || lib.hasPrefix "%2F" h || lib.hasPrefix "%2f" h then null
      else lib.removeSuffix "]" (lib.removePrefix "[" h);
  isIpLiteral = h: builtins.match "[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+" h != null || lib.hasInfix ":" h;
  # Every host a unit talks to over IP, read from its *rendered* settings: role and
  # knowledge URLs set through `settings` count as much as the typed options.
  settingsHosts = s:
    let
      roleUrls = lib.mapAttrsToList (_: r: if r.enable or true then r.url or null else null) (s.roles or { });
      urls = lib.filter builtins.isString (roleUrls ++ [ (s.knowledge.url or null) (s.database.dsn or null) (s.database.host or null) (s.fleet.hub_dsn or null) ]);
    in
    lib.unique (lib.filter (h: h != null) (map (u: if lib.hasInfix "://" u then hostOfUrl u else if lib.hasPrefix "/" u then null else u) urls));
  # IPAddressAllow= takes addresses, not names: when a name is among the hosts the unit
  # keeps only its address-family restriction (a firewall is the place for names).
  ipPolicy = hosts:
    let remote = lib.filter (h: !(isLoopback h)) hosts; in
    if remote == [ ] then { IPAddressDeny = "any"; IPAddressAllow = [ "localhost" ]; }
    else if lib.all isIpLiteral remote then { IPAddressDeny = "any"; IPAddressAllow = [ "localhost" ] ++ remote; }
    else { };

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

  # What a part that investigates the host needs: the orchestrator, and the API (its
  # `ai-sysadmin` model runs the same read-only investigation tools: journal, processes,
  # disks, unit states, generations).  Nothing it measures may be hidden:
  hostView = {
    # A static system user, not DynamicUser=: unit states are read over D-Bus
    # (systemctl), and dbus-daemon refuses dynamic users (nixpkgs#297756,
    # systemd#22737; systemd.exec(5) on DynamicUser=).  What DynamicUser= implied
    # (ProtectSystem=strict, PrivateTmp=, RemoveIPC=, NoNewPrivileges=, ...) is set
    # explicitly by commonHardening.
    DynamicUser = false;
    # Reads the whole system journal: the only privilege it gets (no capabilities, no
    # sudo, no polkit rule; actions go through the executor).
    SupplementaryGroups = [ "systemd-journal" ];
    # The journal group must map to the real group: no user namespace.
    PrivateUsers = false;
    # Every process (top-N by CPU and memory): other users' /proc/<pid>/stat and statm
    # are world-readable once ProtectProc=invisible is off; ProcSubset stays "all" for
    # /proc/pressure, /proc/vmstat and /proc/meminfo.
    ProtectProc = "default";
    # Every real mount's space and inodes: "read-only" keeps /home (and mounts under it)
    # visible to statvfs(), where "true" would put an empty tmpfs over it.
    # ProtectSystem=strict and PrivateMounts= only remount read-only and keep
    # propagation from the host (mounts made later appear too); PrivateTmp= binds a
    # directory of the host's /tmp file system, so /tmp reports that file system;
    # PrivateDevices= replaces /dev, a pseudo file system the collector skips.
    ProtectHome = "read-only";
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
        description = ''
          Context size in tokens (`--ctx-size`): the total of all parallel slots.  Each
          slot (one request) gets `contextSize / parallel`, and that per-slot size is what
          the service is told (`settings.roles.${role}.context_size`).
        '';
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

  roleUrl = role: "http://${bracketHost (if isLoopback llama.${role}.host then llama.${role}.host else "127.0.0.1")}:${toString llama.${role}.port}";

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

  localDb = cfg.database.createLocally;

  dbSettings =
    if localDb then {
      socket_dir = "/run/postgresql";
      # The socket's name carries the port (.s.PGSQL.<port>).
      port = config.services.postgresql.settings.port;
      name = cfg.database.name;
      user = cfg.database.user;
    }
    else {
      dsn = cfg.database.url;
    };

  chromaUrl = "http://${bracketHost config.services.chromadb.host}:${toString config.services.chromadb.port}";

  # ------------------------------------------------------------ one configuration per unit
  # Every unit that runs ai-sysadmin gets its own rendered file and exactly the
  # credentials that file names (LoadCredential=), nothing more:
  #   orchestrator  database password (remote database) only: no API key, no approval key
  #   api           API key, approval key, database password
  #   executor      approval key, database password
  #   admin command absolute paths instead of credentials (root-only files: run it as root)
  base = cfg.settings;
  # Where another unit reaches the API on this host; null when it only listens elsewhere.
  apiLocalHost =
    if isLoopback cfg.api.host then cfg.api.host
    else if builtins.elem cfg.api.host [ "0.0.0.0" "::" "[::]" ] then "127.0.0.1"
    else null;
  apiForClients = lib.optionalAttrs (cfg.api.enable && apiLocalHost != null) {
    api = { host = apiLocalHost; port = cfg.api.port; };
  };
  actionsBase = removeAttrs (base.actions or { }) [ "approval_key_file" ];
  dbAs = user: extra: (base.database or { }) // lib.optionalAttrs localDb { inherit user; } // extra;

  unitSettings = {
    orchestrator = removeAttrs base [ "api" ] // apiForClients // {
      database = dbAs cfg.database.user (lib.optionalAttrs localDb {
        executor_role = executorUser;
        api_role = apiUser;
      });
      actions = actionsBase;
      fleet = fleetFor "orchestrator";
    };
    api = base // {
      state_dir = stateDirs.api;
      database = dbAs apiUser { };
      actions = actionsBase // { approval_key_file = "approval-key"; };
      fleet = fleetFor "api";
    };
    executor = removeAttrs base [ "api" ] // {
      state_dir = stateDirs.executor;
      database = dbAs executorUser { };
      actions = actionsBase // { approval_key_file = "approval-key"; };
      fleet = fleetFor "executor";
    };
    # `ai-sysadmin` on the host: the service's configuration, the API's database role
    # (read incidents and actions, write approvals), secrets as root-only paths.
    admin = removeAttrs base [ "api" ] // apiForClients // {
      database = dbAs apiUser (lib.optionalAttrs (cfg.database.passwordFile != null) {
        password_file = cfg.database.passwordFile;
      });
      actions = actionsBase // { approval_key_file = approvalKeyPath; };
      fleet = fleetFor "admin";
    };
  };
  configFiles = lib.mapAttrs (name: s: settingsFormat.generate "ai-sysadmin-${name}.json" s) unitSettings;
  configFile = configFiles.orchestrator;

  dbCredential = lib.optional (cfg.database.passwordFile != null) "db-password:${cfg.database.passwordFile}";
  apiKeyCredential = lib.optional (cfg.api.apiKeyFile != null) "api-key:${cfg.api.apiKeyFile}";
  approvalKeyCredential = [ "approval-key:${approvalKeyPath}" ];

  adminCommand = pkgs.writeShellScriptBin "ai-sysadmin" ''
    # ai-sysadmin with this host's service configuration (services.ai-sysadmin);
    # --config or AI_SYSADMIN_CONFIG still choose another file.
    export AI_SYSADMIN_CONFIG="''${AI_SYSADMIN_CONFIG:-${configFiles.admin}}"
    exec ${cfg.package}/bin/ai-sysadmin "$@"
  '';

  # Model units and the database are wanted, not required: stopping llama-meta or
  # postgresql (or a crash past the restart limit) must leave the orchestrator running
  # in its degraded mode, spooling, instead of stopping it with them.
  # postgresql.target (nixpkgs) is reached once postgresql-setup.service has created
  # the database and roles; ordering after postgresql.service alone would race it.
  pgUnits = lib.optionals localDb [ "postgresql.target" "postgresql.service" ];
  orchestratorDeps =
    map unitOf enabledRoles
    ++ pgUnits
    ++ lib.optional (cfg.knowledgeBase.backend == "chromadb") "chromadb.service";

  # The lowest preflight exit status that stops a switch (4: none does).
  preflightFailsFrom = { block = 2; warn = 1; never = 4; }.${cfg.preflight.blockOn};

  secretOptions = [
    [ "api" "apiKeyFile" ]
    [ "database" "passwordFile" ]
    [ "actions" "approvalKeyFile" ]
    [ "fleet" "tls" "keyFile" ]
    [ "fleet" "member" "database" "passwordFile" ]
  ];

  # ------------------------------------------------------------ many hosts (docs/fleet.md)
  # A hub receives its members' journals with nixpkgs' services.journald.remote
  # (systemd-journal-remote), a member sends its own with services.journald.upload
  # (systemd-journal-upload): journald's own protocol, no agent of ours on the wire.
  fleet = cfg.fleet;
  tls = fleet.tls;
  tlsFiles = [ tls.keyFile tls.certFile tls.trustFile ];
  # Mutual TLS needs all three: the key and certificate this host shows, and the CA it
  # checks the other end's certificate against.
  tlsOn = lib.all (f: f != null) tlsFiles;
  tlsPartial = !tlsOn && lib.any (f: f != null) tlsFiles;
  plainAllowed = fleet.privateNetwork != null;
  isHub = fleet.role == "hub";
  isMember = fleet.role == "member";
  hubUrl = fleet.member.hubUrl;
  hubScheme = if hubUrl == null then null else builtins.head (lib.splitString "://" hubUrl);
  memberDb = fleet.member.database;
  # libpq verifies the server's certificate only with these sslmode values.
  dbVerified = url: builtins.match ".*[?&]sslmode=verify-(ca|full)(&.*)?" url != null;
  # A member with the hub's database runs its executor from there: it needs the network.
  executorLocal = localDb && !(isMember && memberDb.url != null);
  fleetDbCredential = lib.optional (isMember && memberDb.passwordFile != null)
    "fleet-db-password:${memberDb.passwordFile}";
  # What each rendered file says about the fleet: the password is a credential of the
  # parts that write to the hub (the orchestrator's collector, the member's executor), a
  # root-only path for the admin command, and absent elsewhere.
  fleetFor = part:
    let f = base.fleet or { }; in
    if part == "orchestrator" || part == "executor" then f
    else if part == "admin" && memberDb.passwordFile != null && (f ? hub_password_file) then f // { hub_password_file = memberDb.passwordFile; }
    else removeAttrs f [ "hub_password_file" ];
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
        medium-risk actions.  High-risk actions always wait for a person.  The executor
        re-reads this level from its own rendered configuration before every action.
      '';
    };

    protectedUnits = lib.mkOption {
      type = lib.types.listOf (lib.types.strMatching "[A-Za-z0-9:_.\\\\@-]+\\.(service|socket|target|timer|mount|automount|path|slice|scope|device|swap)");
      default = [ ];
      example = [ "nginx.service" "borgbackup-job-home.service" ];
      description = ''
        Units the service must never act on, *added* to the built-in safe list (sshd,
        journald, logind, D-Bus, nix-daemon, networking, polkit, PostgreSQL, the `llama-*`
        and `ai-sysadmin*` units; also `sshd.socket` and its `sshd@*` instances, `user@0`,
        dhcpcd, the firewall, resolved and journald's namespaces and sockets).  Actions on them are refused whatever a model proposes.
        To replace the built-in list instead, set `settings.protected_units_replace = true`.
      '';
    };

    actions.approvalKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/keys/ai-sysadmin-approval-key";
      description = ''
        File holding the key that signs a person's approval of an action (HMAC).  The
        executor, the API and root's `ai-sysadmin actions approve` get it; the
        orchestrator never does, so it cannot forge an approval.  `null` generates 32
        random bytes into ${generatedKeyPath} (mode 0600, root) on first boot
        (unit `ai-sysadmin-approval-key`).  A string path, read by systemd
        (LoadCredential=): never a Nix path literal.
      '';
    };

    admins = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "alice" ];
      description = ''
        Local users who may run `ai-sysadmin status`, `incidents` and `doctor` against the
        service's database (peer authentication, mapped to the API's read-mostly role).
        root always may.  Approving an action also needs the approval key, which only
        root can read: run `sudo ai-sysadmin actions approve ID --reason ...`.
      '';
    };

    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = {
          state_dir = lib.mkOption {
            type = lib.types.str;
            default = stateDirs.orchestrator;
            readOnly = true;
            description = ''
              State directory: the units' fixed `StateDirectory=` (the API and the executor
              get /var/lib/ai-sysadmin-api and /var/lib/ai-sysadmin-executor).  Read-only,
              because systemd creates and owns exactly that directory.
            '';
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
          actions.cooldown_seconds = 1800;
        }
      '';
      description = ''
        The service's configuration (JSON), rendered from these settings into one file per
        unit.  The module fills `roles`, `database`, `knowledge`, `api`, `journal`,
        `protected_units` and `actions.approval_key_file` from its other options; anything
        set here is merged over them.  The keys are documented in docs/configuration.md;
        unknown keys are rejected when the service starts.
      '';
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalExpression "a JSON file in the Nix store rendered from settings";
      description = "The orchestrator's rendered configuration file (read-only).";
    };

    unitConfigFiles = lib.mkOption {
      type = lib.types.attrsOf lib.types.path;
      readOnly = true;
      internal = true;
      default = configFiles;
      description = "The rendered configuration file of each part (orchestrator, api, executor, admin).";
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
          CUDA is unfree in nixpkgs (`nixpkgs.config.allowUnfree` or a predicate).
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
          File holding the API keys clients must send (`Authorization: Bearer ...`): one
          `name[scope,...]:key` per line with the scopes `read`, `chat`, `approve` (the
          name is recorded as the approver; a `name:key` line without scopes may read and
          chat, never approve), or one bare key.
          Read by systemd (LoadCredential=) for the API unit only, never copied into the
          Nix store: give a string path, not a Nix path literal.
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
          Create the database and its roles (`user`, `user`-executor, `user`-api) on this
          host's `services.postgresql`, with peer authentication over the unix socket.
          The host's package choice and other pg_hba rules are left as they are.
        '';
      };
      timescaledb = lib.mkOption {
        type = lib.types.coercedTo lib.types.bool (b: if b then "apache" else "none")
          (lib.types.enum [ "none" "apache" "tsl" ]);
        default = "apache";
        example = "tsl";
        description = ''
          TimescaleDB in the local PostgreSQL: `"apache"` loads nixpkgs'
          `timescaledb-apache` (Apache-2.0: hypertables; the service drops old chunks with
          its own retention job), `"tsl"` the Timescale-licensed build (unfree: needs
          `nixpkgs.config.allowUnfree` or a predicate; adds compression), `"none"` plain
          PostgreSQL (daily partitions).  `true`/`false` mean `"apache"`/`"none"`.
          `ai-sysadmin doctor` says which one the database uses.
        '';
      };
      name = lib.mkOption {
        type = lib.types.str;
        default = "ai-sysadmin";
        description = "Database name.  With `createLocally` it must equal `user` (nixpkgs' ensureDBOwnership).";
      };
      user = lib.mkOption {
        type = lib.types.str;
        default = "ai-sysadmin";
        description = ''
          Database role of the orchestrator, also its system user's name (peer
          authentication).  The executor and the API get the roles `user`-executor and
          `user`-api.
        '';
      };
      url = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "postgresql://ai-sysadmin@db.example.org/ai-sysadmin";
        description = ''
          libpq URL of an existing server, used when `createLocally` is false (every part
          then connects with it: the per-part roles need a local database).  No password
          here: see `passwordFile`.
        '';
      };
      passwordFile = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        description = "File holding the database password (LoadCredential=), for `url`.";
      };
    };

    fleet = {
      role = lib.mkOption {
        type = lib.types.enum [ "standalone" "hub" "member" ];
        default = "standalone";
        description = ''
          This host's part in a fleet (docs/fleet.md).  `standalone`: one host, as before.
          `hub`: receives the members' journals with systemd-journal-remote
          (nixpkgs `services.journald.remote`), one journal file per sending host.
          `member`: sends its journal to the hub with systemd-journal-upload (nixpkgs
          `services.journald.upload`), which resumes from its saved cursor after an outage.
          The hub's per-host pipelines, fleet incidents and the member's collector and
          executor are not built yet: each host otherwise runs as `standalone`.
        '';
      };
      hostId = lib.mkOption {
        type = lib.types.str;
        default = config.networking.hostName;
        defaultText = lib.literalExpression "config.networking.hostName";
        example = "web-1";
        description = ''
          This host's id in the fleet: the `host` of its rows in the database and the name
          its database role is made from.  Letters, digits, `.`, `_`, `-`; at most 63.
          nixpkgs' systemd-journal-remote is built without GnuTLS: it names each member's
          journal file after the member's address, not a certificate, so on the hub map
          that address to this id in `fleet.hub.members`.
        '';
      };
      privateNetwork = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "10.42.0.0/24, the rack's backplane";
        description = ''
          Plain HTTP (journals) and an unverified database connection are refused unless
          this names the private network they stay on: an explicit, recorded decision, not
          a default.  `null`: mutual TLS (`tls.*`) is required.
        '';
      };
      tls = {
        keyFile = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "/var/lib/secrets/journal/host.key";
          description = ''
            Private key (PEM) this host presents: the hub's server key
            (`services.journald.remote.settings.Remote.ServerKeyFile`, read by the
            `systemd-journal-remote` user) or the member's client key
            (`services.journald.upload.settings.Upload.ServerKeyFile`, read through the
            `systemd-journal` group).  A string path outside the Nix store, never a Nix path
            literal: the store is world-readable.
          '';
        };
        certFile = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "/var/lib/secrets/journal/host.pem";
          description = "Certificate (PEM) of that key: the hub's server certificate or the member's client certificate.";
        };
        trustFile = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "/var/lib/secrets/journal/ca.pem";
          description = ''
            CA certificate (PEM) the other end's certificate must be signed by: on the hub,
            the members' client certificates (journal-remote then refuses uploads without
            one); on a member, the hub's server certificate.
          '';
        };
      };
      hub = {
        listenAddress = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "10.42.0.1";
          description = ''
            Address systemd-journal-remote's socket listens on; `null`: every address (nixpkgs'
            own socket, port only).
          '';
        };
        port = lib.mkOption {
          type = lib.types.port;
          default = 19532;
          description = "TCP port of systemd-journal-remote (`services.journald.remote.port`).";
        };
        journalDirectory = lib.mkOption {
          type = lib.types.str;
          default = "/var/log/journal/remote/";
          description = ''
            Where systemd-journal-remote writes the members' journals
            (`services.journald.remote.output`): one `remote-<sender>.journal` file (set) per
            sending host (`settings.Remote.SplitMode = "host"`), named after the member's
            address (`remote-10.42.0.2.journal`).
          '';
        };
        members = lib.mkOption {
          type = lib.types.attrsOf lib.types.str;
          default = { };
          example = { "10.42.0.2" = "web-1"; "10.42.0.3" = "db-1"; };
          description = ''
            The sender address (or name) systemd-journal-remote uses for each member, mapped
            to that member's `fleet.hostId` (the host its actions and database role are for).
            nixpkgs' systemd-journal-remote is built without GnuTLS: it checks no client
            certificate and names each member's file after the peer's address
            (`remote-10.42.0.2.journal`), so the address is what identifies a member; write
            it as the file name has it.  When set, a file of any other sender is skipped (an
            unknown machine that reaches the port is no host); `{ }`: the address itself is
            the host id.  Hub only.
          '';
        };
        openFirewall = lib.mkOption {
          type = lib.types.bool;
          default = false;
          description = "Open `hub.port` in the firewall.";
        };
      };
      member = {
        hubUrl = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "https://hub.example.org:19532";
          description = ''
            The hub's systemd-journal-remote, where this member's journal goes
            (`services.journald.upload.settings.Upload.URL`).  `https://` needs `tls.*`;
            `http://` needs `privateNetwork`.
          '';
        };
        database = {
          url = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = null;
            example = "postgresql://ai_sysadmin_member_web-1@hub.example.org/ai-sysadmin?sslmode=verify-full&sslrootcert=/etc/ssl/hub-ca.pem";
            description = ''
              libpq URL of the hub's PostgreSQL as this member's own role (created on the hub
              with `ai-sysadmin fleet add-member HOST`; it writes its metrics only through the
              hub's function, as its own host's rows, and row-level security lets it read and
              change only its own host's other rows).  Without `sslmode=verify-full` (or
              `verify-ca`) it needs `privateNetwork`.  No password here: `passwordFile`.
            '';
          };
          passwordFile = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = null;
            example = "/run/keys/ai-sysadmin-hub-db";
            description = ''
              File holding that role's password: the orchestrator gets it as the credential
              `fleet-db-password` (LoadCredential=), never through the Nix store.
            '';
          };
        };
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

    preflight = {
      enable = lib.mkEnableOption ''
        `ai-sysadmin preflight` before every switch (nixpkgs' `system.preSwitchChecks`):
        it compares the new system with the running one (closure, units started,
        stopped or restarted, removed users, reboot) and stops the switch on its verdict.
        `NIXOS_NO_CHECK=1 nixos-rebuild switch` skips it once'';
      blockOn = lib.mkOption {
        type = lib.types.enum [ "block" "warn" "never" ];
        default = "block";
        description = ''
          Which verdict stops the switch: `block` (a protected unit removed, a person's
          account removed; also when preflight cannot read a system), `warn` (a warning too:
          a protected unit restarted, a system user or group removed, low store space),
          `never` (report only).  See docs/preflight.md.
        '';
      };
      model = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = ''
          Also ask the review model for a summary and a recommendation (`--model`).  It
          may raise the verdict, never lower it; past `review.preflight_model_timeout`
          (default 25 s) the report says so and the verdict is at least `warn`.  Off by
          default: every switch would wait for the model.
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
          {
            # nixpkgs' ensureDBOwnership grants the database *of the same name* only.
            assertion = !cfg.database.createLocally || cfg.database.name == cfg.database.user;
            message = "services.ai-sysadmin.database.name (${cfg.database.name}) must equal database.user (${cfg.database.user}) with createLocally = true: services.postgresql.ensureUsers.*.ensureDBOwnership owns only the database of the same name.";
          }
          {
            assertion = !((cfg.settings.actions or { }) ? approval_key_file);
            message = "services.ai-sysadmin.settings.actions.approval_key_file is set per unit by the module: set services.ai-sysadmin.actions.approvalKeyFile instead.";
          }
        ]
        ++ [
          {
            assertion = builtins.match "[A-Za-z0-9][A-Za-z0-9._-]{0,62}" fleet.hostId != null;
            message = "services.ai-sysadmin.fleet.hostId (\"${fleet.hostId}\") must be a host id: letters, digits, . _ -, at most 63, starting with a letter or digit (it defaults to networking.hostName; set it when that is empty).";
          }
          {
            assertion = !tlsPartial;
            message = "services.ai-sysadmin.fleet.tls: set keyFile, certFile and trustFile together (mutual TLS), or none of them.";
          }
          {
            assertion = !isHub || tlsOn || plainAllowed;
            message = "services.ai-sysadmin.fleet.role = \"hub\" receives journals over HTTPS: set fleet.tls.keyFile, certFile and trustFile, or name the private network plain HTTP stays on in fleet.privateNetwork.";
          }
          {
            assertion = !isMember || hubUrl != null;
            message = "services.ai-sysadmin.fleet.role = \"member\" needs fleet.member.hubUrl (the hub's systemd-journal-remote, e.g. https://hub:19532).";
          }
          {
            assertion = !isMember || hubUrl == null || builtins.elem hubScheme [ "https" "http" ];
            message = "services.ai-sysadmin.fleet.member.hubUrl must start with https:// (or http:// on a private network).";
          }
          {
            assertion = !isMember || hubScheme != "https" || tlsOn;
            message = "services.ai-sysadmin.fleet.member.hubUrl is https://: set fleet.tls.keyFile, certFile and trustFile (the hub checks this member's certificate).";
          }
          {
            assertion = !isMember || hubScheme != "http" || plainAllowed;
            message = "services.ai-sysadmin.fleet.member.hubUrl is plain http://: name the private network it stays on in fleet.privateNetwork, or use https:// with fleet.tls.";
          }
          {
            assertion = !isMember || memberDb.url == null || dbVerified memberDb.url || plainAllowed;
            message = "services.ai-sysadmin.fleet.member.database.url does not verify the hub's certificate: add sslmode=verify-full (and sslrootcert=...), or name the private network in fleet.privateNetwork.";
          }
          {
            assertion = !isMember || memberDb.passwordFile == null || memberDb.url != null;
            message = "services.ai-sysadmin.fleet.member.database.passwordFile is set without fleet.member.database.url.";
          }
          {
            assertion = lib.length (lib.unique (lib.attrValues fleet.hub.members)) == lib.length (lib.attrValues fleet.hub.members);
            message = "services.ai-sysadmin.fleet.hub.members maps two senders to one host id: one sender per member.";
          }
          {
            assertion = isHub || fleet.hub.members == { };
            message = "services.ai-sysadmin.fleet.hub.members is only used with fleet.role = \"hub\" (it is \"${fleet.role}\").";
          }
          {
            assertion = isMember || (hubUrl == null && memberDb.url == null && memberDb.passwordFile == null);
            message = "services.ai-sysadmin.fleet.member.* is only used with fleet.role = \"member\" (it is \"${fleet.role}\").";
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
          {
            assertion = !(llama.enable && llama.${role}.enable) || llama.${role}.contextSize >= llama.${role}.parallel * 128;
            message = "services.ai-sysadmin.llamacpp.${role}.contextSize (${toString llama.${role}.contextSize}) leaves under 128 tokens per slot for parallel = ${toString llama.${role}.parallel}.";
          }
        ]) roleNames;

      # The configuration contract (ai_sysadmin/config.py).  mkDefault: settings win.
      services.ai-sysadmin.settings = {
        roles = lib.genAttrs (lib.filter (r: r != "embed" || llama.embed.enable) roleNames) (role: {
          enable = lib.mkDefault (llama.enable && llama.${role}.enable);
          url = lib.mkDefault (roleUrl role);
          model = lib.mkDefault llama.${role}.alias;
          # What one request may use: llama-server splits --ctx-size over --parallel slots.
          context_size = lib.mkDefault (llama.${role}.contextSize / llama.${role}.parallel);
        });
        database = lib.mapAttrs (_: lib.mkDefault) dbSettings
          // lib.optionalAttrs (cfg.database.passwordFile != null) { password_file = lib.mkDefault "db-password"; };
        knowledge = lib.mkIf (cfg.knowledgeBase.backend == "chromadb") { url = lib.mkDefault chromaUrl; };
        api = {
          host = lib.mkDefault cfg.api.host;
          port = lib.mkDefault cfg.api.port;
        } // lib.optionalAttrs (cfg.api.apiKeyFile != null) { api_key_file = lib.mkDefault "api-key"; };
        journal.source = lib.mkDefault "system";
        protected_units = lib.mkIf (cfg.protectedUnits != [ ]) cfg.protectedUnits;
        fleet = {
          role = lib.mkDefault fleet.role;
          host = lib.mkDefault fleet.hostId;
        } // lib.optionalAttrs isHub {
          journal_dir = lib.mkDefault fleet.hub.journalDirectory;
        } // lib.optionalAttrs (isHub && fleet.hub.members != { }) {
          members = lib.mkDefault fleet.hub.members;
        } // lib.optionalAttrs isMember ({
          hub_url = lib.mkDefault hubUrl;
        } // lib.optionalAttrs (memberDb.url != null) {
          hub_dsn = lib.mkDefault memberDb.url;
        } // lib.optionalAttrs (memberDb.passwordFile != null) {
          hub_password_file = lib.mkDefault "fleet-db-password";
        });
      };

      systemd.services.ai-sysadmin = {
        description = "ai-sysadmin orchestrator (journal triggers, review, meta analysis, policy)";
        after = [ "network.target" ] ++ orchestratorDeps;
        wants = orchestratorDeps;
        wantedBy = [ "multi-user.target" ];
        environment.AI_SYSADMIN_CONFIG = "${configFiles.orchestrator}";
        # The watch after a switch judges each switch (docs/preflight.md): `nix store
        # diff-closures`, through the Nix daemon (read-only queries).
        path = [ config.nix.package ];
        serviceConfig = commonHardening // hostView // ipPolicy (settingsHosts unitSettings.orchestrator) // {
          Type = "exec";
          ExecStart = "${cfg.package}/bin/ai-sysadmin run";
          Restart = "on-failure";
          RestartSec = 5;
          # PostgreSQL peer authentication maps the user to the role of the same name.
          User = cfg.database.user;
          Group = cfg.database.user;
          StateDirectory = "ai-sysadmin";
          StateDirectoryMode = "0700";
          CacheDirectory = "ai-sysadmin";
          LoadCredential = dbCredential ++ fleetDbCredential;
          # Unix sockets: PostgreSQL, D-Bus (unit states).  IP: the hosts of its
          # rendered configuration only (IPAddressAllow= from settings, see ipPolicy).
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        } // lib.optionalAttrs isHub {
          # The members' journals (docs/fleet.md): systemd-journal-remote runs as
          # User=systemd-journal-remote and creates each host's file 0640 with that group.
          SupplementaryGroups = [ "systemd-journal" "systemd-journal-remote" ];
        };
      };

      systemd.services.ai-sysadmin-executor = {
        description = "ai-sysadmin executor (runs approved catalog actions after re-validating them)";
        after = [ "network.target" ] ++ pgUnits ++ lib.optional generateKey keyUnit;
        wants = pgUnits;
        requires = lib.optional generateKey keyUnit;
        wantedBy = [ "multi-user.target" ];
        environment = {
          AI_SYSADMIN_CONFIG = "${configFiles.executor}";
          # Store writes (garbage collection, repair) go through nix-daemon, which owns
          # /nix/store and its database: the executor needs neither writable.
          NIX_REMOTE = "daemon";
        };
        # nix-env, nix-collect-garbage, nix-store for the Nix actions; systemctl,
        # journalctl and systemd-run come with the default unit PATH.
        path = [ config.nix.package ];
        serviceConfig = removeAttrs commonHardening [ "DynamicUser" ] // {
          Type = "exec";
          ExecStart = "${cfg.package}/bin/ai-sysadmin executor";
          Restart = "on-failure";
          RestartSec = 5;
          # root, but otherwise locked down.  root talks to systemd over D-Bus without a
          # polkit rule (restart_unit, reset_failed_unit, systemd-run for the rollback),
          # and owns /nix/var/nix/profiles and /var/log/journal: no capability is needed.
          User = "root";
          Group = "root";
          # The writable paths, each for its actions (ProtectSystem=strict keeps the rest
          # read-only).  "-": a host without one (a volatile journal) still starts the
          # executor; the action that needs it then fails on its own.
          ReadWritePaths = [
            "-/nix/var/nix/profiles" # rollback_generation (nix-env --rollback), collect_garbage (old generations)
            "-/var/log/journal" # vacuum_journal (journalctl --vacuum-size/--vacuum-time)
          ];
          # its own state (crash marker, output buffers) and the generated approval key.
          StateDirectory = "ai-sysadmin-executor";
          StateDirectoryMode = "0700";
          LoadCredential = approvalKeyCredential ++ dbCredential ++ fleetDbCredential;
          # No network: PostgreSQL, D-Bus, nix-daemon and journald are unix sockets,
          # which a private network namespace keeps.  A remote database, or a member's
          # hub (its executor runs the actions the hub's database addresses to it), needs IP.
          PrivateNetwork = executorLocal;
          RestrictAddressFamilies = [ "AF_UNIX" ] ++ lib.optionals (!executorLocal) [ "AF_INET" "AF_INET6" ];
        } // lib.optionalAttrs executorLocal { IPAddressDeny = "any"; } // lib.optionalAttrs (!executorLocal) (ipPolicy (settingsHosts unitSettings.executor));
      };

      # Creates the approval key once; never overwrites it, never logs it.
      systemd.services.ai-sysadmin-approval-key = lib.mkIf generateKey {
        description = "ai-sysadmin: create the approval signing key";
        wantedBy = [ "multi-user.target" ];
        before = [ "ai-sysadmin-executor.service" "ai-sysadmin-api.service" ];
        unitConfig.ConditionPathExists = "!${generatedKeyPath}";
        serviceConfig = removeAttrs commonHardening [ "DynamicUser" ] // {
          Type = "oneshot";
          RemainAfterExit = true;
          StateDirectory = "ai-sysadmin-executor";
          StateDirectoryMode = "0700";
          PrivateNetwork = true;
          RestrictAddressFamilies = [ "AF_UNIX" ];
          IPAddressDeny = "any";
        };
        script = ''
          umask 077
          head -c 32 /dev/urandom | base64 > ${generatedKeyPath}.tmp
          mv ${generatedKeyPath}.tmp ${generatedKeyPath}
        '';
      };

      # Static users of the two host-investigating parts (see hostView).
      users.users.${cfg.database.user} = {
        isSystemUser = true;
        group = cfg.database.user;
        description = "ai-sysadmin orchestrator";
      };
      users.groups.${cfg.database.user} = { };
      users.users.${apiUser} = lib.mkIf cfg.api.enable {
        isSystemUser = true;
        group = apiUser;
        description = "ai-sysadmin API";
      };
      users.groups.${apiUser} = lib.mkIf cfg.api.enable { };

      # `ai-sysadmin status|incidents|doctor|actions ...` for admins, with the host's
      # configuration.  hiPrio: it wins over the bare package in systemPackages.
      environment.systemPackages = [ (lib.hiPrio adminCommand) ];
    }

    (lib.mkIf llama.enable {
      systemd.services = lib.listToAttrs (map (role: lib.nameValuePair "llama-${role}" (llamaService role)) enabledRoles);
    })

    (lib.mkIf cfg.api.enable {
      systemd.services.ai-sysadmin-api = {
        description = "ai-sysadmin OpenAI-compatible API";
        after = [ "network.target" ] ++ lib.optional (lib.elem "meta" enabledRoles) (unitOf "meta")
          ++ pgUnits ++ lib.optional generateKey keyUnit;
        # wants, as for the orchestrator: the API answers 503 for a stopped model.
        wants = lib.optional (lib.elem "meta" enabledRoles) (unitOf "meta") ++ pgUnits;
        requires = lib.optional generateKey keyUnit;
        wantedBy = [ "multi-user.target" ];
        environment.AI_SYSADMIN_CONFIG = "${configFiles.api}";
        serviceConfig = commonHardening // hostView // {
          Type = "exec";
          ExecStart = "${cfg.package}/bin/ai-sysadmin api";
          Restart = "on-failure";
          RestartSec = 5;
          # Peer authentication maps this user to the API's database role.
          User = apiUser;
          Group = apiUser;
          StateDirectory = "ai-sysadmin-api";
          StateDirectoryMode = "0700";
          LoadCredential = apiKeyCredential ++ approvalKeyCredential ++ dbCredential;
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
          # Every client connection is a file descriptor.  With systemd's default soft
          # limit of 1,024, a flood of half-open connections exhausts it and asyncio stops
          # accepting anyone (key-holders included) until they close; the API also closes
          # such connections itself (api.header_timeout, api.max_unauthenticated_connections).
          LimitNOFILE = 65536;
        }
        # Reachable from this host only, unless it listens beyond loopback (with a key).
        // lib.optionalAttrs (isLoopback cfg.api.host) (ipPolicy (settingsHosts unitSettings.api));
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
            ensureDBOwnership = true;
          }
          { name = executorUser; }
          { name = apiUser; }
        ];
        # root runs the executor and may use the API role (the admin command); the API
        # unit's user and the listed admins map to the API role.  Every other local
        # user keeps nixpkgs' default: peer authentication as the role of its own name.
        identMap = ''
          ai-sysadmin-executor root ${executorUser}
          ai-sysadmin-api ${apiUser} ${apiUser}
          ai-sysadmin-api root ${apiUser}
        '' + lib.concatMapStrings (u: "ai-sysadmin-api ${u} ${apiUser}\n") cfg.admins;
        # Placed before nixpkgs' default rules (those are mkAfter); first match wins.
        authentication = ''
          local ${cfg.database.name} ${executorUser} peer map=ai-sysadmin-executor
          local ${cfg.database.name} ${apiUser} peer map=ai-sysadmin-api
        '';
        extensions = lib.mkIf (cfg.database.timescaledb != "none")
          (ps: [ (if cfg.database.timescaledb == "tsl" then ps.timescaledb else ps.timescaledb-apache) ]);
        settings.shared_preload_libraries = lib.mkIf (cfg.database.timescaledb != "none") [ "timescaledb" ];
      };
    })

    # The hub: nixpkgs' systemd-journal-remote, one journal file (set) per sending host.
    (lib.mkIf isHub {
      services.journald.remote = {
        enable = true;
        listen = if tlsOn then "https" else "http";
        port = fleet.hub.port;
        output = fleet.hub.journalDirectory;
        settings.Remote = {
          SplitMode = "host";
        } // lib.optionalAttrs tlsOn {
          ServerKeyFile = tls.keyFile;
          ServerCertificateFile = tls.certFile;
          TrustedCertificateFile = tls.trustFile;
        };
      };
      # nixpkgs' socket listens on the port alone (every address); "" clears that first.
      systemd.sockets.systemd-journal-remote.listenStreams = lib.mkIf (fleet.hub.listenAddress != null)
        (lib.mkForce [ "" "${bracketHost fleet.hub.listenAddress}:${toString fleet.hub.port}" ]);
      networking.firewall.allowedTCPPorts = lib.mkIf fleet.hub.openFirewall [ fleet.hub.port ];
    })

    # A member: nixpkgs' systemd-journal-upload to the hub.  Every Upload key is set, null
    # included: some nixpkgs revisions give ServerKeyFile and NetworkTimeoutSec no default.
    (lib.mkIf isMember {
      services.journald.upload = {
        enable = true;
        settings.Upload = {
          URL = hubUrl;
          ServerKeyFile = if tlsOn then tls.keyFile else null;
          ServerCertificateFile = if tlsOn then tls.certFile else null;
          TrustedCertificateFile = if tlsOn then tls.trustFile else null;
          NetworkTimeoutSec = lib.mkDefault null;
        };
      };
    })

    (lib.mkIf (cfg.knowledgeBase.backend == "chromadb") {
      services.chromadb.enable = true;
    })

    # nixos/modules/system/activation/pre-switch-check.nix: each fragment gets the new
    # system as $1 and switch-to-configuration's verb as $2; a failing fragment stops
    # the switch (unless NIXOS_NO_CHECK=1).  preflight exits 0 ok, 1 warn, 2 block,
    # 3 bad input; blockOn picks the status that fails the fragment.
    (lib.mkIf cfg.preflight.enable {
      system.preSwitchChecks.ai-sysadmin-preflight = ''
        case "''${2:-switch}" in
          switch|boot|test|dry-activate|check) action="''${2:-switch}" ;;
          *) action=switch ;;
        esac
        rc=0
        ${cfg.package}/bin/ai-sysadmin-preflight --config ${configFiles.admin} "$1" --action "$action" \
          --nix ${config.nix.package}/bin/nix${lib.optionalString cfg.preflight.model " --model"} || rc=$?
        if [ "$rc" -ge ${toString preflightFailsFrom} ]; then
          echo "ai-sysadmin preflight stopped the switch (exit $rc; blockOn = ${cfg.preflight.blockOn}); NIXOS_NO_CHECK=1 skips the check once" >&2
          exit 1
        fi
      '';
    })
  ]);
}
