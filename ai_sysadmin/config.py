"""The configuration contract: one JSON document, validated whole at start-up.

The NixOS module renders exactly this document from `services.ai-sysadmin.settings`;
the service reads nothing else except secrets, which are never in the JSON: keys
ending in `_file` name a file, or -- when systemd passes credentials through
`LoadCredential=` -- a bare credential name that resolves in `$CREDENTIALS_DIRECTORY`.

Validation collects *every* problem before failing, each with its key path, so an
admin fixes a broken `configuration.nix` in one round instead of one error at a time.
Unknown keys are errors: a typo must not silently fall back to a default.

The documented defaults (an empty `{}` is a valid local configuration) live in
`DEFAULTS` below and in docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

AUTONOMY_LEVELS = ("observe", "suggest", "auto-safe", "auto-full")
LOG_LEVELS = ("debug", "info", "warning", "error")
JOURNAL_SOURCES = ("system", "directory", "file")

# Default ports of the three llama-server units (and the optional embedding server).
ROLE_DEFAULT_PORTS = {"trigger": 40080, "review": 40081, "meta": 40082, "embed": 40084}
# Per-role defaults: the small trigger model answers short classification prompts and
# must fail fast; the meta model runs long tool loops on a large model.
ROLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "trigger": {"timeout": 30.0, "max_tokens": 256, "context_size": 4096},
    "review": {"timeout": 180.0, "max_tokens": 1024, "context_size": 8192},
    "meta": {"timeout": 600.0, "max_tokens": 2048, "context_size": 16384},
    "embed": {"timeout": 120.0, "max_tokens": 0, "context_size": 2048},
}

# Units the service must never act on, whatever a model proposes.  They keep the host
# reachable and the service itself alive.  Entries are unit names or fnmatch globs
# (`unit_is_protected`).  A user's `protected_units` is added to these; only
# `protected_units_replace: true` replaces them.
DEFAULT_PROTECTED_UNITS = (
    "sshd.service",
    "systemd-journald.service",
    "systemd-logind.service",
    "dbus.service",
    "dbus-broker.service",
    "nix-daemon.service",
    "systemd-networkd.service",
    "NetworkManager.service",
    "postgresql.service",
    "polkit.service",
    "ai-sysadmin.service",
    "ai-sysadmin-api.service",
    "ai-sysadmin-executor.service",
    "ai-sysadmin*.service",
    "llama-trigger.service",
    "llama-review.service",
    "llama-meta.service",
    "llama-embed.service",
    "llama-*.service",
    # Reachability and name resolution as NixOS runs them: sshd per connection from
    # sshd.socket (services.openssh.startWhenNeeded), root's user manager, DHCP, the
    # firewall (networking.firewall), resolved, journald's namespace instances and sockets.
    "sshd.socket",
    "sshd@*.service",
    "user@0.service",
    "dhcpcd.service",
    "firewall.service",
    "systemd-resolved.service",
    "systemd-journald@*.service",
    "systemd-journald*.socket",
)

_UNIT_RE = re.compile(
    r"^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|mount|automount|path|slice|scope|device|swap)$"
)
# A glob: unit-name characters plus * ? [ ] !, still ending in a unit type (or a bare `*`).
_UNIT_GLOB_RE = re.compile(
    r"^[A-Za-z0-9:_.\\@*?\[\]!-]+\.(service|socket|target|timer|mount|automount|path|slice|scope|device|swap|\*)$"
)


def unit_is_protected(unit: str, protected: tuple[str, ...] | list[str]) -> bool:
    """True when `unit` is named by an entry of `protected` (exact name or fnmatch glob)."""
    import fnmatch

    name = unit if "." in unit else f"{unit}.service"  # `sshd` means sshd.service, as systemctl reads it
    names = [name]
    if "@" in name:  # an instance (getty@tty1.service) is protected when its template (getty@.service) is
        prefix, _, rest = name.partition("@")
        names.append(f"{prefix}@.{rest.rsplit('.', 1)[-1]}")
    return any(n == p or fnmatch.fnmatchcase(n, p) for n in names for p in protected)
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9._:/@+-]{1,128}$")


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class ConfigError(Exception):
    """The configuration is invalid; `issues` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue], source: str | None = None):
        self.issues = issues
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {i}" for i in issues)
        super().__init__(f"invalid configuration{where} ({len(issues)} problem(s)):\n{lines}")


class Secret:
    """A secret value read from a file. Its repr and str never show the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from {self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# --------------------------------------------------------------------------- typed config


@dataclass(frozen=True)
class RoleConfig:
    """One OpenAI-compatible model server (llama-server, or any compatible endpoint)."""

    name: str
    enable: bool
    url: str  # server root, e.g. http://127.0.0.1:40080 (the client appends /v1)
    model: str  # model id sent in requests; llama-server answers to its --alias
    timeout: float  # whole-request timeout, seconds
    connect_timeout: float  # connection set-up; small so a stopped server is seen at once
    max_tokens: int
    context_size: int
    max_retries: int
    api_key_file: str | None
    api_key: Secret | None
    # Seconds of silence after which the service's client asks the server's /health whether it
    # still works (before the first token), or gives up (between tokens); llm/liveness.py.
    idle_timeout: float = 30.0


@dataclass(frozen=True)
class Roles:
    trigger: RoleConfig
    review: RoleConfig
    meta: RoleConfig
    embed: RoleConfig | None

    def enabled(self) -> list[RoleConfig]:
        return [r for r in (self.trigger, self.review, self.meta, self.embed) if r and r.enable]


@dataclass(frozen=True)
class Intervals:
    metrics: float
    review: float


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str | None
    socket_dir: str
    host: str | None
    port: int
    name: str
    user: str | None
    password_file: str | None
    password: Secret | None
    # Least-privilege roles that the orchestrator (schema owner) GRANTs to after migrating
    # (ai_sysadmin/store/grants.py); None: that part has no role of its own.
    executor_role: str | None = None
    api_role: str | None = None

    def conninfo(self) -> str:
        """A libpq conninfo string; the password is passed separately (`password`)."""
        if self.dsn:
            return self.dsn
        from psycopg.conninfo import make_conninfo

        params: dict[str, Any] = {
            "host": self.host or self.socket_dir,
            "port": self.port,
            "dbname": self.name,
        }
        if self.user:
            params["user"] = self.user
        return make_conninfo(**params)


@dataclass(frozen=True)
class KnowledgeConfig:
    path: str  # embedded ChromaDB directory (used when url is None)
    url: str | None  # ChromaDB server, e.g. services.chromadb


class Scope(StrEnum):
    """What an API key may do (the key file's `name[scope,...]:key`)."""

    READ = "read"  # status, incidents, actions (GET), /metrics, /v1/models
    CHAT = "chat"  # /v1/chat/completions, /v1/embeddings, /v1/models
    APPROVE = "approve"  # POST /api/v1/actions/ID/approve and .../reject


# A key line without scopes (the format before scopes existed) may read and chat, never
# approve: approving needs `approve` written out.  The scrape key that docs/openwebui.md
# has always called `prometheus:` reads only.
DEFAULT_KEY_SCOPES = frozenset({Scope.READ, Scope.CHAT})
SCRAPE_KEY_NAME = "prometheus"
SCRAPE_KEY_SCOPES = frozenset({Scope.READ})


@dataclass(frozen=True)
class ApiKey:
    """One bearer key of the API; `name` is the actor recorded on approvals."""

    name: str
    key: Secret
    scopes: frozenset[Scope] = DEFAULT_KEY_SCOPES


CLIENT_TOOLS = ("drop", "pass")  # api.client_tools


@dataclass(frozen=True)
class ApiConfig:
    host: str
    port: int
    api_key_file: str | None
    api_key: Secret | None
    require_auth: bool
    keys: tuple[ApiKey, ...] = ()  # parsed from api_key_file: `name:key` lines or one bare key
    max_body_bytes: int = 8 * 1024 * 1024  # request bodies above this get 413 (images come base64)
    max_concurrent_per_key: int = 4  # in-flight requests per key (or per client address without auth)
    upstream_timeout: float | None = None  # seconds for the upstream's headers / next chunk; None: the role's
    # Seconds without a byte from a model server once its answer has started (between streamed
    # chunks): then the answer ends with an error naming the role.  Separate from upstream_timeout,
    # which also covers the wait for the first token (prompt processing can take minutes on a CPU).
    upstream_idle_timeout: float = 30.0
    client_tools: str = "drop"  # role models: drop | pass the client's `tools` (Open WebUI sends ~29, >20 KB)
    background_max_tokens: int = 256  # max_tokens given to background tasks (titles, tags, follow-ups)
    background_role: str | None = "trigger"  # answers Open WebUI's title/tag requests; None: the selected model
    # Connections (api/connections.py): a new connection must send a request that passes
    # authentication within header_timeout seconds; idle keep-alive connections close after
    # keepalive_timeout; at most max_unauthenticated_connections wait without a valid key
    # (beyond that the oldest is closed, so key-holders still get in).
    header_timeout: float = 5.0
    keepalive_timeout: float = 75.0
    max_unauthenticated_connections: int = 1024
    # In-flight requests per key on every endpoint other than the model ones (REST, /metrics,
    # /v1/models); the model endpoints count against max_concurrent_per_key.
    max_concurrent_rest_per_key: int = 8


@dataclass(frozen=True)
class JournalConfig:
    source: str  # system | directory | file
    path: str | None  # directory or file for the non-system sources
    # (The journal cursor is stored in PostgreSQL with the triggers it covers, not in a file.)


@dataclass(frozen=True)
class SpoolConfig:
    """The outage spool: where records wait while PostgreSQL is unreachable."""

    path: str | None = None  # None: <state_dir>/spool
    max_bytes: int = 64 * 1024 * 1024
    warn_ratio: float = 0.8  # fill ratio at which logs, doctor and /metrics warn

    def directory(self, state_dir: str) -> str:
        return self.path or os.path.join(state_dir, "spool")


@dataclass(frozen=True)
class RetentionConfig:
    """Days kept per table family (0 keeps forever)."""

    metrics_days: int = 30
    events_days: int = 180  # triggers, llm calls
    audit_days: int = 0  # ignored: the audit log is append-only for every role (store/retention.py)


@dataclass(frozen=True)
class ThresholdsConfig:
    """Metric thresholds that raise triggers (collector)."""

    disk_percent: float = 90.0
    inode_percent: float = 90.0
    memory_pressure_avg10: float = 20.0  # PSI "some" avg10, percent of time stalled
    swap_pages_per_s: float = 1000.0  # swap-in + swap-out pages per second
    failed_units: int = 1


@dataclass(frozen=True)
class ReviewConfig:
    """Incidents (correlation, lifecycle), L2 context and L3 review (docs/review.md)."""

    debounce_seconds: float = 10.0  # an early review runs this long after the first critical trigger
    early_min_interval: float = 60.0  # at most one early review per this many seconds
    early_severity: str = "critical"  # triggers at or above this ask for an early review
    context_tokens: int | None = None  # prompt budget; None: roles.review.context_size - max_tokens - 256
    max_triggers: int = 400  # distinct (template, unit) entries the context keeps; older ones are folded
    knowledge_hits: int = 3  # runbooks / past incidents retrieved into the context
    incident_window: float = 900.0  # triggers on the same unit / category within this join one incident
    causal_window: float = 300.0  # an OOM kill or a full disk explains unit failures this long after it
    quiet_seconds: float = 600.0  # an incident resolves by itself after this long without triggers ...
    reopen_window: float = 3600.0  # ... reopens on recurrence within this, and closes after it
    escalate_min_interval: float = 900.0  # at most one escalation to L4 per incident per this many seconds
    max_attempts: int = 2  # model answers tried per review: the first plus one retry showing the error
    # The watch after a switch (docs/preflight.md): new failures of units a NixOS switch
    # touched, this long after it, are attributed to it; the current-system link is read
    # every switch_poll seconds.
    switch_window: float = 900.0
    switch_poll: float = 2.0
    # The review model's summary in `ai-sysadmin preflight` (docs/preflight.md): past this
    # the report says so and the verdict is at least warn (never block from the timeout).
    preflight_model_timeout: float = 25.0


@dataclass(frozen=True)
class TriggerConfig:
    """L1, the journal trigger pipeline (docs/triggers.md)."""

    window_seconds: int = 300  # dedup window: one trigger per (template, unit, source) per window
    commit_interval: float = 0.5  # seconds between checkpoints (triggers + cursor) in follow mode
    poll_interval: float = 0.25  # seconds between reads of a journal directory/file source
    max_message: int = 8192  # characters of MESSAGE used for matching and samples
    rules: tuple[dict[str, Any], ...] = ()  # extra rules, or replacements by id (validated)
    disabled_rules: tuple[str, ...] = ()
    priority_max: int = 2  # PRIORITY at or below this (crit) is a trigger on its own; -1 turns it off
    burst_factor: float = 10.0
    burst_min_count: int = 100
    model: bool = True  # classify new warning-or-worse templates with the trigger role
    model_calls_per_minute: float = 30.0
    model_batch_size: int = 4
    model_min_severity: str = "medium"  # model answers below this are cached but raise no trigger


@dataclass(frozen=True)
class ActionsConfig:
    """The action policy and the executor (docs/actions.md)."""

    # HMAC key that signs a person's approval: a path or a bare systemd credential name.
    # Read when needed (approve, executor), not at load: the orchestrator's config may name
    # it while only the executor, the API and root can read it.
    approval_key_file: str | None = None
    approval_ttl_seconds: int = 3600  # an approval older than this is void
    rate_window_seconds: int = 3600  # window of the two rate limits below
    rate_limit_per_target: int = 3  # automatic executions on one target (unit, nix-store, ...) per window
    rate_limit_per_action: int = 10  # automatic executions of one catalog id per window
    cooldown_seconds: int = 600  # no automatic action on a target this soon after the last one
    poll_interval: float = 30.0  # executor: fallback poll when a NOTIFY was missed
    output_cap_bytes: int = 65536  # stdout and stderr kept per step (each)
    verify_window_seconds: float = 30.0  # how long a restarted unit must stay up to pass verification
    nix_mode: str = "auto"  # auto: run Nix actions on NixOS only, dry-run elsewhere; run; dry-run
    system_profile: str = "/nix/var/nix/profiles/system"
    current_system: str = "/run/current-system"
    protected_patterns: tuple[str, ...] = ("llama-*", "ai-sysadmin*", "polkit*")  # shell-style, never acted on
    # Bounds for running a model's proposal unattended (actions/binding.py); outside them it is queued.
    auto_min_gc_days: int = 7  # collect_garbage keeps at least this many days of generations
    auto_min_journal_mb: int = 512  # vacuum_journal keeps at least this many MiB of archived journal
    auto_min_journal_days: int = 7  # vacuum_journal keeps at least this many days of archived journal


@dataclass(frozen=True)
class MetaConfig:
    """L4 meta analysis: the investigation tool loop (docs/meta.md)."""

    max_steps: int = 12  # model turns with tools offered; then one last turn without tools
    deadline_seconds: float = 600.0  # whole investigation; the answer phase keeps a reserve of it
    max_calls_per_step: int = 4  # tool calls executed from one model turn (more are refused)
    tool_timeout: float = 20.0  # seconds per tool call
    tool_output_share: float = 0.15  # share of roles.meta.context_size one tool result may take ...
    tool_output_max_chars: int = 12000  # ... and never more characters than this
    tool_choice: str = "auto"  # auto | required ("required" makes weak models call tools)
    prefill: str = ""  # assistant text prefilled before each tool turn (weak models: "<tool_call>\n")
    step_max_tokens: int = 512
    answer_max_tokens: int = 768  # 0: no streamed prose answer; the answer is the diagnosis (one call less)
    diagnosis_max_tokens: int = 1024
    transcript_max_chars: int = 60000  # stored with the finding; longer transcripts keep head and tail
    knowledge_hits: int = 3  # runbooks / past incidents put into the investigation's context
    escalation_debounce_seconds: float = 900.0  # at most one escalated investigation per incident per this
    disk_paths: tuple[str, ...] = ("/var", "/nix/var", "/home", "/srv", "/opt", "/tmp")  # largest_dirs roots
    system_profile: str = "/nix/var/nix/profiles/system"
    current_system: str = "/run/current-system"
    booted_system: str = "/run/booted-system"
    nix_store: str | None = None  # a store URI for the nix tools (default: the system's store)
    tools: tuple[str, ...] | None = None  # offer only these tools (small contexts); None: the whole catalog


@dataclass(frozen=True)
class Config:
    state_dir: str
    autonomy_level: str
    log_level: str
    roles: Roles
    intervals: Intervals
    database: DatabaseConfig
    knowledge: KnowledgeConfig
    api: ApiConfig
    journal: JournalConfig
    protected_units: tuple[str, ...]
    source: str | None = field(default=None, compare=False)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    thresholds: ThresholdsConfig = field(default_factory=ThresholdsConfig)
    trigger: TriggerConfig = field(default_factory=TriggerConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)


# --------------------------------------------------------------------------- reading helpers

_MISSING = object()


class _Section:
    """Reads one JSON object, recording problems instead of raising.

    Every `get` consumes a key; `finish` reports the keys nobody asked for.
    """

    def __init__(self, data: Any, path: str, issues: list[ConfigIssue]):
        self.path = path
        self.issues = issues
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error("", f"must be an object, got {_kind(data)}")
            data = {}
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, reason: str) -> None:
        self.issues.append(ConfigIssue(self.key(name) if name else (self.path or "(document)"), reason))

    def raw(self, name: str) -> Any:
        self.seen.add(name)
        return self.data.get(name, _MISSING)

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any,
        check: Callable[[Any], str | None] | None = None,
        nullable: bool = False,
    ) -> Any:
        value = self.raw(name)
        if value is _MISSING:
            return default
        if value is None and nullable:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # JSON has one number type: accept ints for floats, never bools for numbers.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            self.error(name, f"must be {expected}{' or null' if nullable else ''}, got {_kind(value)}")
            return default
        if check is not None:
            problem = check(value)
            if problem:
                self.error(name, problem)
                return default
        return value

    def finish(self) -> None:
        for name in sorted(set(self.data) - self.seen):
            self.error(name, "unknown key" + _did_you_mean(name, self.seen))


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list", dict: "an object"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _did_you_mean(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be 0 or greater"


def _port(v: Any) -> str | None:
    return None if 1 <= v <= 65535 else "must be a TCP port between 1 and 65535"


def _http_url(v: Any) -> str | None:
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "not an http(s) URL (bad port)"
    if parts.username or parts.password:
        return "must not contain credentials; use the matching *_file key"
    return None


def _model_id(v: Any) -> str | None:
    return None if _MODEL_ID_RE.match(v) else "must be a model id (letters, digits, . _ : / @ + -; at most 128)"


def _abs_path(v: Any) -> str | None:
    p = os.path.expanduser(v)
    return None if os.path.isabs(p) else "must be an absolute path"


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_secret(
    sec: _Section, name: str, value: str | None, env: Mapping[str, str]
) -> Secret | None:
    """Resolve a `*_file` key: an absolute path, or a bare systemd credential name."""
    if value is None:
        return None
    if "/" in value:
        if not os.path.isabs(value):
            sec.error(name, "must be an absolute path or a bare systemd credential name")
            return None
        path = Path(value)
    else:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", value):
            sec.error(name, "not a valid systemd credential name")
            return None
        cred_dir = env.get("CREDENTIALS_DIRECTORY")
        if not cred_dir:
            sec.error(name, f"bare credential name {value!r} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)")
            return None
        path = Path(cred_dir) / value
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        sec.error(name, f"file {str(path)!r} does not exist")
        return None
    except PermissionError:
        sec.error(name, f"file {str(path)!r} is not readable by this user")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        sec.error(name, f"cannot read {str(path)!r}: {exc.__class__.__name__}")
        return None
    secret = text.strip()
    if not secret:
        sec.error(name, f"file {str(path)!r} is empty")
        return None
    return Secret(secret, str(path))


# --------------------------------------------------------------------------- sections


def _default_state_dir(env: Mapping[str, str]) -> str:
    # systemd's StateDirectory= exports the path; a local run keeps state per user.
    if env.get("STATE_DIRECTORY"):
        return env["STATE_DIRECTORY"].split(":")[0]
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "ai-sysadmin")


def _parse_role(name: str, data: Any, issues: list[ConfigIssue], env: Mapping[str, str]) -> RoleConfig:
    sec = _Section(data, f"roles.{name}", issues)
    d = ROLE_DEFAULTS[name]
    role = RoleConfig(
        name=name,
        enable=sec.get("enable", bool, True),
        url=sec.get("url", str, f"http://127.0.0.1:{ROLE_DEFAULT_PORTS[name]}", _http_url).rstrip("/"),
        model=sec.get("model", str, name, _model_id),
        timeout=sec.get("timeout", float, d["timeout"], _positive),
        connect_timeout=sec.get("connect_timeout", float, 1.0, _positive),
        max_tokens=sec.get("max_tokens", int, d["max_tokens"], _non_negative),
        context_size=sec.get("context_size", int, d["context_size"], _positive),
        max_retries=sec.get("max_retries", int, 2, _non_negative),
        api_key_file=sec.get("api_key_file", str, None, nullable=True),
        api_key=None,
        idle_timeout=sec.get("idle_timeout", float, 30.0, _positive),
    )
    key = _read_secret(sec, "api_key_file", role.api_key_file, env)
    sec.finish()
    return _replace(role, api_key=key)


def _parse_roles(data: Any, issues: list[ConfigIssue], env: Mapping[str, str]) -> Roles:
    sec = _Section(data, "roles", issues)
    parsed = {n: _parse_role(n, sec.raw(n) if sec.raw(n) is not _MISSING else None, issues, env)
              for n in ("trigger", "review", "meta")}
    embed_raw = sec.raw("embed")
    embed = None if embed_raw is _MISSING or embed_raw is None else _parse_role("embed", embed_raw, issues, env)
    sec.finish()
    return Roles(embed=embed, **parsed)


def _parse_database(data: Any, issues: list[ConfigIssue], env: Mapping[str, str]) -> DatabaseConfig:
    sec = _Section(data, "database", issues)

    def no_password(v: str) -> str | None:
        # key=value form, URI userinfo, and URI query parameters (?password=... / &password=...)
        if (re.search(r"(^|\s)password\s*=", v) or re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", v)
                or re.search(r"[?&]password=", v, re.IGNORECASE)):
            return "must not contain a password; use database.password_file"
        return None

    db = DatabaseConfig(
        dsn=sec.get("dsn", str, None, no_password, nullable=True),
        socket_dir=sec.get("socket_dir", str, "/run/postgresql", _abs_path),
        host=sec.get("host", str, None, nullable=True),
        port=sec.get("port", int, 5432, _port),
        name=sec.get("name", str, "ai-sysadmin", lambda v: None if v else "must not be empty"),
        user=sec.get("user", str, None, nullable=True),
        password_file=sec.get("password_file", str, None, nullable=True),
        password=None,
        executor_role=sec.get("executor_role", str, None, _role_name, nullable=True),
        api_role=sec.get("api_role", str, None, _role_name, nullable=True),
    )
    pw = _read_secret(sec, "password_file", db.password_file, env)
    sec.finish()
    return _replace(db, password=pw)


def _parse_knowledge(data: Any, issues: list[ConfigIssue], state_dir: str) -> KnowledgeConfig:
    sec = _Section(data, "knowledge", issues)
    path = sec.get("path", str, None, _abs_path, nullable=True)
    url = sec.get("url", str, None, _http_url, nullable=True)
    if path is not None and url is not None:
        sec.error("url", "set either knowledge.path (embedded) or knowledge.url (server), not both")
    sec.finish()
    return KnowledgeConfig(path=os.path.expanduser(path or os.path.join(state_dir, "knowledge")), url=url)


def _parse_api(data: Any, issues: list[ConfigIssue], env: Mapping[str, str]) -> ApiConfig:
    sec = _Section(data, "api", issues)
    host = sec.get("host", str, "127.0.0.1", lambda v: None if v else "must not be empty")
    port = sec.get("port", int, 40083, _port)
    key_file = sec.get("api_key_file", str, None, nullable=True)
    require = sec.get("require_auth", bool, None, nullable=True)
    key = _read_secret(sec, "api_key_file", key_file, env)
    loopback = is_loopback(host)
    if require is None:
        # A key on loopback is still honoured; beyond loopback it is mandatory.
        require = key_file is not None or not loopback
    if not loopback and key_file is None:
        sec.error("api_key_file", f"required when api.host ({host}) is not loopback")
    elif require and key_file is None:
        sec.error("api_key_file", "required when api.require_auth is true")
    if not loopback and require is False:
        sec.error("require_auth", f"cannot be false when api.host ({host}) is not loopback")
    keys = parse_api_keys(key.reveal(), key.source, sec) if key is not None else ()
    d = ApiConfig(host="", port=0, api_key_file=None, api_key=None, require_auth=False)
    background = sec.get("background_role", str, d.background_role,
                         _one_of(("trigger", "review", "meta")), nullable=True)
    cfg = ApiConfig(
        host=host, port=port, api_key_file=key_file, api_key=key, require_auth=bool(require), keys=keys,
        # Below 64 KiB an ordinary chat with some history would be refused; such a bound is a typo.
        max_body_bytes=sec.get("max_body_bytes", int, d.max_body_bytes,
                               lambda v: None if v >= 65536 else "must be at least 65536 (64 KiB)"),
        max_concurrent_per_key=sec.get("max_concurrent_per_key", int, d.max_concurrent_per_key, _positive),
        upstream_timeout=sec.get("upstream_timeout", float, d.upstream_timeout, _positive, nullable=True),
        upstream_idle_timeout=sec.get("upstream_idle_timeout", float, d.upstream_idle_timeout, _positive),
        client_tools=sec.get("client_tools", str, d.client_tools, _one_of(CLIENT_TOOLS)),
        background_max_tokens=sec.get("background_max_tokens", int, d.background_max_tokens, _positive),
        background_role=background,
        header_timeout=sec.get("header_timeout", float, d.header_timeout, _positive),
        keepalive_timeout=sec.get("keepalive_timeout", float, d.keepalive_timeout, _positive),
        max_unauthenticated_connections=sec.get("max_unauthenticated_connections", int,
                                                d.max_unauthenticated_connections, _positive),
        max_concurrent_rest_per_key=sec.get("max_concurrent_rest_per_key", int, d.max_concurrent_rest_per_key,
                                            _positive),
    )
    sec.finish()
    return cfg


_KEY_NAME_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.@-]{1,64})(?:\[(?P<scopes>[^\]]*)\])?$")


def parse_api_keys(text: str, source: str, sec: "_Section | None" = None) -> tuple[ApiKey, ...]:
    """The API key file: one `name:key` or `name[scope,...]:key` per line, or one bare key (named `api`).

    Scopes are `read`, `chat`, `approve`; a line without them gets DEFAULT_KEY_SCOPES
    (read, chat), the `prometheus` line SCRAPE_KEY_SCOPES (read), a bare key the defaults.
    Blank lines and `#` comments are skipped.  Problems name the line, never the key.
    """
    lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1)
             if ln.strip() and not ln.strip().startswith("#")]
    problems: list[str] = []
    keys: list[ApiKey] = []
    for lineno, line in lines:
        head, sep, value = line.partition(":")
        m = _KEY_NAME_RE.match(head.strip()) if sep else None
        if m is None:
            if len(lines) == 1:  # one bare key (it may contain ':' itself)
                keys.append(ApiKey("api", Secret(line, source)))
                continue
            problems.append(f"line {lineno}: expected `name:key` or `name[scope,...]:key` "
                            "(name: letters, digits, _ . @ -)")
            continue
        name, value = m["name"], value.strip()
        scopes, problem = _key_scopes(name, m["scopes"])
        if problem:
            problems.append(f"line {lineno}: {problem}")
        elif not value:
            problems.append(f"line {lineno}: key for {name!r} is empty")
        elif any(k.name == name for k in keys):
            problems.append(f"line {lineno}: name {name!r} appears twice")
        elif any(k.key.reveal() == value for k in keys):
            problems.append(f"line {lineno}: same key as another line")
        else:
            keys.append(ApiKey(name, Secret(value, source), scopes))
    for p in problems:
        if sec is not None:
            sec.error("api_key_file", f"{source}: {p}")
    return tuple(keys)


def _key_scopes(name: str, written: str | None) -> tuple[frozenset[Scope], str | None]:
    """The scopes of one key line: those written in `[...]`, else the default for its name."""
    if written is None:
        return (SCRAPE_KEY_SCOPES if name == SCRAPE_KEY_NAME else DEFAULT_KEY_SCOPES), None
    known = ", ".join(s.value for s in Scope)
    words = [w.strip() for w in written.split(",") if w.strip()]
    if not words:
        return frozenset(), f"no scope inside [] for {name!r} (scopes: {known})"
    unknown = [w for w in words if w not in {s.value for s in Scope}]
    if unknown:
        return frozenset(), f"unknown scope {unknown[0]!r} for {name!r} (scopes: {known})"
    return frozenset(Scope(w) for w in words), None


def _parse_journal(data: Any, issues: list[ConfigIssue], state_dir: str) -> JournalConfig:
    sec = _Section(data, "journal", issues)
    source = sec.get("source", str, "system", _one_of(JOURNAL_SOURCES))
    path = sec.get("path", str, None, _abs_path, nullable=True)
    if sec.raw("cursor_file") is not _MISSING:
        sec.error("cursor_file", "no longer used: the journal cursor is stored in PostgreSQL together with the "
                  "triggers it covers (table cursors); remove this key")
    if source in ("directory", "file") and path is None:
        sec.error("path", f"required when journal.source is {source!r}")
    if source == "system" and path is not None:
        sec.error("path", "only used when journal.source is 'directory' or 'file'")
    sec.finish()
    return JournalConfig(
        source=source,
        path=os.path.expanduser(path) if path else None,
    )


def _parse_spool(data: Any, issues: list[ConfigIssue]) -> SpoolConfig:
    sec = _Section(data, "spool", issues)
    d = SpoolConfig()
    path = sec.get("path", str, None, _abs_path, nullable=True)
    cfg = SpoolConfig(
        path=os.path.expanduser(path) if path else None,
        # Below 1 MiB the segment bookkeeping would dominate; such a bound is a typo.
        max_bytes=sec.get("max_bytes", int, d.max_bytes,
                          lambda v: None if v >= 1024 * 1024 else "must be at least 1048576 (1 MiB)"),
        warn_ratio=sec.get("warn_ratio", float, d.warn_ratio,
                           lambda v: None if 0 < v <= 1 else "must be greater than 0 and at most 1"),
    )
    sec.finish()
    return cfg


def _parse_retention(data: Any, issues: list[ConfigIssue]) -> RetentionConfig:
    sec = _Section(data, "retention", issues)
    d = RetentionConfig()
    cfg = RetentionConfig(
        metrics_days=sec.get("metrics_days", int, d.metrics_days, _non_negative),
        events_days=sec.get("events_days", int, d.events_days, _non_negative),
        audit_days=sec.get("audit_days", int, d.audit_days, _non_negative),
    )
    sec.finish()
    return cfg


def _parse_thresholds(data: Any, issues: list[ConfigIssue]) -> ThresholdsConfig:
    sec = _Section(data, "thresholds", issues)
    d = ThresholdsConfig()

    def percent(v: Any) -> str | None:
        return None if 0 < v <= 100 else "must be a percentage greater than 0 and at most 100"

    cfg = ThresholdsConfig(
        disk_percent=sec.get("disk_percent", float, d.disk_percent, percent),
        inode_percent=sec.get("inode_percent", float, d.inode_percent, percent),
        memory_pressure_avg10=sec.get("memory_pressure_avg10", float, d.memory_pressure_avg10, percent),
        swap_pages_per_s=sec.get("swap_pages_per_s", float, d.swap_pages_per_s, _positive),
        failed_units=sec.get("failed_units", int, d.failed_units, _positive),
    )
    sec.finish()
    return cfg


def _parse_trigger(data: Any, issues: list[ConfigIssue]) -> TriggerConfig:
    from ai_sysadmin.trigger.rules import RuleError, parse_rule  # rules are validated by their own parser

    sec = _Section(data, "trigger", issues)
    d = TriggerConfig()
    rules_raw = sec.get("rules", list, [])
    rules = []
    for i, rule in enumerate(rules_raw):
        try:
            parse_rule(rule, f"trigger.rules[{i}]")
            rules.append(rule)
        except RuleError as exc:
            where, _, reason = str(exc).partition(": ")
            issues.append(ConfigIssue(where, reason))
    disabled = sec.get("disabled_rules", list, [])
    from ai_sysadmin.trigger.rules import PRIORITY_RULE_ID, builtin_rule_data

    known = {r["id"] for r in builtin_rule_data()} | {r.get("id") for r in rules} | {PRIORITY_RULE_ID}
    for i, rid in enumerate(disabled):
        if not isinstance(rid, str):
            sec.error(f"disabled_rules[{i}]", f"must be a rule id string, got {_kind(rid)}")
    unknown = sorted(r for r in disabled if isinstance(r, str) and r not in known)
    if unknown:
        sec.error("disabled_rules", f"unknown rule id(s): {', '.join(unknown)}")
    cfg = TriggerConfig(
        window_seconds=sec.get("window_seconds", int, d.window_seconds, _positive),
        commit_interval=sec.get("commit_interval", float, d.commit_interval, _positive),
        poll_interval=sec.get("poll_interval", float, d.poll_interval, _positive),
        max_message=sec.get("max_message", int, d.max_message,
                            lambda v: None if v >= 256 else "must be at least 256"),
        rules=tuple(rules),
        disabled_rules=tuple(r for r in disabled if isinstance(r, str)),
        priority_max=sec.get("priority_max", int, d.priority_max,
                             lambda v: None if -1 <= v <= 7 else "must be a syslog priority 0..7, or -1 for off"),
        burst_factor=sec.get("burst_factor", float, d.burst_factor,
                             lambda v: None if v > 1 else "must be greater than 1"),
        burst_min_count=sec.get("burst_min_count", int, d.burst_min_count, _positive),
        model=sec.get("model", bool, d.model),
        model_calls_per_minute=sec.get("model_calls_per_minute", float, d.model_calls_per_minute, _positive),
        model_batch_size=sec.get("model_batch_size", int, d.model_batch_size,
                                 lambda v: None if 1 <= v <= 16 else "must be between 1 and 16"),
        model_min_severity=sec.get("model_min_severity", str, d.model_min_severity,
                                   _one_of(("critical", "high", "medium", "low", "info"))),
    )
    sec.finish()
    return cfg


def _parse_review(data: Any, issues: list[ConfigIssue]) -> ReviewConfig:
    sec = _Section(data, "review", issues)
    d = ReviewConfig()
    cfg = ReviewConfig(
        debounce_seconds=sec.get("debounce_seconds", float, d.debounce_seconds, _non_negative),
        early_min_interval=sec.get("early_min_interval", float, d.early_min_interval, _non_negative),
        early_severity=sec.get("early_severity", str, d.early_severity,
                               _one_of(("critical", "high", "medium", "low", "info"))),
        context_tokens=sec.get("context_tokens", int, d.context_tokens,
                               lambda v: None if v >= 512 else "must be at least 512", nullable=True),
        max_triggers=sec.get("max_triggers", int, d.max_triggers,
                             lambda v: None if 10 <= v <= 100_000 else "must be between 10 and 100000"),
        knowledge_hits=sec.get("knowledge_hits", int, d.knowledge_hits,
                               lambda v: None if 0 <= v <= 20 else "must be between 0 and 20"),
        incident_window=sec.get("incident_window", float, d.incident_window, _positive),
        causal_window=sec.get("causal_window", float, d.causal_window, _positive),
        quiet_seconds=sec.get("quiet_seconds", float, d.quiet_seconds, _positive),
        reopen_window=sec.get("reopen_window", float, d.reopen_window, _positive),
        escalate_min_interval=sec.get("escalate_min_interval", float, d.escalate_min_interval, _non_negative),
        max_attempts=sec.get("max_attempts", int, d.max_attempts,
                             lambda v: None if 1 <= v <= 5 else "must be between 1 and 5"),
        switch_window=sec.get("switch_window", float, d.switch_window, _positive),
        switch_poll=sec.get("switch_poll", float, d.switch_poll,
                            lambda v: None if 0.1 <= v <= 3600 else "must be between 0.1 and 3600"),
        preflight_model_timeout=sec.get("preflight_model_timeout", float, d.preflight_model_timeout,
                                        lambda v: None if 0 < v <= 30 else "must be between 0 and 30 seconds"),
    )
    sec.finish()
    return cfg


def _role_name(v: Any) -> str | None:
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}", v) else "not a PostgreSQL role name"


NIX_MODES = ("auto", "run", "dry-run")


def _parse_actions(data: Any, issues: list[ConfigIssue]) -> ActionsConfig:
    sec = _Section(data, "actions", issues)
    d = ActionsConfig()

    def key_ref(v: Any) -> str | None:
        if "/" in v:
            return None if os.path.isabs(v) else "must be an absolute path or a bare systemd credential name"
        return None if re.fullmatch(r"[A-Za-z0-9_.:-]+", v) else "not a valid systemd credential name"

    def patterns(v: Any) -> str | None:
        bad = [p for p in v if not isinstance(p, str) or not re.fullmatch(r"[A-Za-z0-9:_.@*?-]{1,256}", p)]
        return f"not unit name patterns: {bad!r}" if bad else None

    cfg = ActionsConfig(
        approval_key_file=sec.get("approval_key_file", str, None, key_ref, nullable=True),
        approval_ttl_seconds=sec.get("approval_ttl_seconds", int, d.approval_ttl_seconds, _positive),
        rate_window_seconds=sec.get("rate_window_seconds", int, d.rate_window_seconds, _positive),
        rate_limit_per_target=sec.get("rate_limit_per_target", int, d.rate_limit_per_target, _non_negative),
        rate_limit_per_action=sec.get("rate_limit_per_action", int, d.rate_limit_per_action, _non_negative),
        cooldown_seconds=sec.get("cooldown_seconds", int, d.cooldown_seconds, _non_negative),
        poll_interval=sec.get("poll_interval", float, d.poll_interval, _positive),
        output_cap_bytes=sec.get("output_cap_bytes", int, d.output_cap_bytes,
                                 lambda v: None if 1024 <= v <= 16 * 1024 * 1024
                                 else "must be between 1024 and 16777216"),
        verify_window_seconds=sec.get("verify_window_seconds", float, d.verify_window_seconds, _non_negative),
        nix_mode=sec.get("nix_mode", str, d.nix_mode, _one_of(NIX_MODES)),
        system_profile=sec.get("system_profile", str, d.system_profile, _abs_path),
        current_system=sec.get("current_system", str, d.current_system, _abs_path),
        protected_patterns=tuple(sec.get("protected_patterns", list, list(d.protected_patterns), patterns)),
        auto_min_gc_days=sec.get("auto_min_gc_days", int, d.auto_min_gc_days, _positive),
        auto_min_journal_mb=sec.get("auto_min_journal_mb", int, d.auto_min_journal_mb, _positive),
        auto_min_journal_days=sec.get("auto_min_journal_days", int, d.auto_min_journal_days, _positive),
    )
    sec.finish()
    return cfg


def _meta_tools(sec: _Section) -> tuple[str, ...] | None:
    from ai_sysadmin.meta.tools.names import TOOL_NAMES  # the catalog's names, without importing the tools

    def known(v: list[Any]) -> str | None:
        bad = [x for x in v if x not in TOOL_NAMES]
        return f"unknown tool(s) {', '.join(map(repr, bad))}; known: {', '.join(TOOL_NAMES)}" if bad else None

    value = sec.get("tools", list, None, known, nullable=True)
    return tuple(value) if value is not None else None


def _parse_meta(data: Any, issues: list[ConfigIssue]) -> MetaConfig:
    sec = _Section(data, "meta", issues)
    d = MetaConfig()

    def paths(v: list[Any]) -> str | None:
        for i, p in enumerate(v):
            if not isinstance(p, str) or not os.path.isabs(p) or ".." in p.split("/"):
                return f"item {i} must be an absolute path without '..'"
        return None

    def ranged(lo: float, hi: float) -> Callable[[Any], str | None]:
        return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"

    cfg = MetaConfig(
        max_steps=sec.get("max_steps", int, d.max_steps, ranged(1, 100)),
        deadline_seconds=sec.get("deadline_seconds", float, d.deadline_seconds, _positive),
        max_calls_per_step=sec.get("max_calls_per_step", int, d.max_calls_per_step, ranged(1, 32)),
        tool_timeout=sec.get("tool_timeout", float, d.tool_timeout, _positive),
        tool_output_share=sec.get("tool_output_share", float, d.tool_output_share, ranged(0.01, 0.5)),
        tool_output_max_chars=sec.get("tool_output_max_chars", int, d.tool_output_max_chars, ranged(600, 200000)),
        tool_choice=sec.get("tool_choice", str, d.tool_choice, _one_of(("auto", "required"))),
        prefill=sec.get("prefill", str, d.prefill, lambda v: None if len(v) <= 64 else "must be at most 64 characters"),
        step_max_tokens=sec.get("step_max_tokens", int, d.step_max_tokens, _positive),
        answer_max_tokens=sec.get("answer_max_tokens", int, d.answer_max_tokens, _non_negative),
        diagnosis_max_tokens=sec.get("diagnosis_max_tokens", int, d.diagnosis_max_tokens, _positive),
        transcript_max_chars=sec.get("transcript_max_chars", int, d.transcript_max_chars, ranged(1000, 10_000_000)),
        knowledge_hits=sec.get("knowledge_hits", int, d.knowledge_hits, ranged(0, 20)),
        escalation_debounce_seconds=sec.get("escalation_debounce_seconds", float, d.escalation_debounce_seconds,
                                            _non_negative),
        disk_paths=tuple(sec.get("disk_paths", list, list(d.disk_paths), paths)),
        system_profile=sec.get("system_profile", str, d.system_profile, _abs_path),
        current_system=sec.get("current_system", str, d.current_system, _abs_path),
        booted_system=sec.get("booted_system", str, d.booted_system, _abs_path),
        nix_store=sec.get("nix_store", str, d.nix_store,
                          lambda v: None if re.fullmatch(r"[A-Za-z0-9_./:?&=%+-]{1,300}", v) else "not a store URI",
                          nullable=True),
        tools=_meta_tools(sec),
    )
    sec.finish()
    return cfg


def _parse_units(value: Any, issues: list[ConfigIssue]) -> tuple[str, ...]:
    if not isinstance(value, list):
        issues.append(ConfigIssue("protected_units", f"must be a list, got {_kind(value)}"))
        return DEFAULT_PROTECTED_UNITS
    out = []
    for i, unit in enumerate(value):
        if not isinstance(unit, str) or not (_UNIT_RE.match(unit) or _UNIT_GLOB_RE.match(unit)):
            issues.append(ConfigIssue(f"protected_units[{i}]",
                                      f"not a systemd unit name or glob (e.g. nginx.service, llama-*.service): {unit!r}"))
        else:
            out.append(unit)
    return tuple(out)


def _effective_units(user: tuple[str, ...] | None, replace: bool) -> tuple[str, ...]:
    """The safe defaults plus the user's entries (in that order, no duplicates), or the user's alone."""
    if user is None:
        return DEFAULT_PROTECTED_UNITS
    base = () if replace else DEFAULT_PROTECTED_UNITS
    return tuple(dict.fromkeys(base + user))


def parse_config(data: Any, env: Mapping[str, str] | None = None, source: str | None = None) -> Config:
    """Validate a decoded JSON document. Raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    issues: list[ConfigIssue] = []
    top = _Section(data, "", issues)
    state_dir = os.path.expanduser(top.get("state_dir", str, _default_state_dir(env), _abs_path))
    autonomy = top.get("autonomy_level", str, "suggest", _one_of(AUTONOMY_LEVELS))
    log_level = top.get("log_level", str, "info", _one_of(LOG_LEVELS))
    roles = _parse_roles(_or_none(top.raw("roles")), issues, env)
    isec = _Section(_or_none(top.raw("intervals")), "intervals", issues)
    intervals = Intervals(
        metrics=isec.get("metrics", float, 30.0, _positive),
        review=isec.get("review", float, 900.0, _positive),
    )
    isec.finish()
    database = _parse_database(_or_none(top.raw("database")), issues, env)
    knowledge = _parse_knowledge(_or_none(top.raw("knowledge")), issues, state_dir)
    api = _parse_api(_or_none(top.raw("api")), issues, env)
    journal = _parse_journal(_or_none(top.raw("journal")), issues, state_dir)
    spool = _parse_spool(_or_none(top.raw("spool")), issues)
    retention = _parse_retention(_or_none(top.raw("retention")), issues)
    thresholds = _parse_thresholds(_or_none(top.raw("thresholds")), issues)
    trigger = _parse_trigger(_or_none(top.raw("trigger")), issues)
    actions = _parse_actions(_or_none(top.raw("actions")), issues)
    review = _parse_review(_or_none(top.raw("review")), issues)
    meta = _parse_meta(_or_none(top.raw("meta")), issues)
    units_raw = top.raw("protected_units")
    units_replace = top.get("protected_units_replace", bool, False)
    if units_replace and units_raw is _MISSING:
        issues.append(ConfigIssue("protected_units_replace",
                                  "true without protected_units would protect nothing; list the units to protect"))
    units = _effective_units(None if units_raw is _MISSING else _parse_units(units_raw, issues), units_replace)
    top.finish()
    if issues:
        raise ConfigError(issues, source)
    return Config(
        state_dir=state_dir,
        autonomy_level=autonomy,
        log_level=log_level,
        roles=roles,
        intervals=intervals,
        database=database,
        knowledge=knowledge,
        api=api,
        journal=journal,
        protected_units=units,
        source=source,
        spool=spool,
        retention=retention,
        thresholds=thresholds,
        trigger=trigger,
        actions=actions,
        review=review,
        meta=meta,
    )


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load from `path`, else `$AI_SYSADMIN_CONFIG`, else the embedded defaults (`{}`)."""
    env = os.environ if env is None else env
    if path is None:
        path = env.get("AI_SYSADMIN_CONFIG") or None
    if path is None:
        return parse_config({}, env, source=None)
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue("(file)", f"cannot read {source}: {exc.strerror or exc}")], source) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([ConfigIssue("(document)", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")], source) from None
    return parse_config(data, env, source=source)


def _or_none(value: Any) -> Any:
    return None if value is _MISSING else value


def _replace(obj: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)
