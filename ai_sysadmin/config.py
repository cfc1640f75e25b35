"""The configuration contract: one JSON document, validated whole at start-up.

The NixOS module renders exactly this document from `services.ai-sysadmin.settings`;
the service reads nothing else except secrets, which are never in the JSON: keys
ending in `_file` name a file, or -- when systemd passes credentials through
`LoadCredential=` -- a bare credential name that resolves in `$CREDENTIALS_DIRECTORY`.

The document is a tree of frozen pydantic models (`extra="forbid"`): each key is
written once, with its type, default, check and description; docs/configuration.md is
generated from them (`ai-sysadmin config docs`, ai_sysadmin/configdoc.py).

Validation collects *every* problem before failing, each with its key path, so an
admin fixes a broken `configuration.nix` in one round instead of one error at a time:
pydantic's errors are mapped to `ConfigIssue`s (`_issues`), and the checks that span
keys or name items of a list append theirs to the validation context (`_report`).
Unknown keys are errors, with "did you mean": a typo must not silently fall back to
a default.

This module is the ground floor: it imports the vocabulary (`vocab.py`) and the rule
definition (`rulespec.py`), never a layer.
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import json
import os
import re
import socket
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError

from ai_sysadmin.apikeys import (  # noqa: F401 (re-exported)
    DEFAULT_KEY_SCOPES,
    SCRAPE_KEY_NAME,
    SCRAPE_KEY_SCOPES,
    ApiKey,
    Scope,
    key_file_problems,
    parse_api_keys,
)
from ai_sysadmin.rulespec import PRIORITY_RULE_ID, RuleError, builtin_rule_data, parse_rule
from ai_sysadmin.secret import CredentialUnavailable, Secret, SecretFile, credential_path
from ai_sysadmin.vocab import (  # noqa: F401 (the tuples are re-exported)
    AUTONOMY_LEVELS,
    CLIENT_TOOLS,
    JOURNAL_SOURCES,
    LOG_LEVELS,
    NIX_MODES,
    TOOL_NAMES,
    AutonomyLevel,
    ChatRole,
    ClientTools,
    FleetRole,
    JournalSourceKind,
    LogLevel,
    NixMode,
    Severity,
    ToolChoice,
)

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
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9._:/@+-]{1,128}$")


def unit_is_protected(unit: str, protected: tuple[str, ...] | list[str]) -> bool:
    """True when `unit` is named by an entry of `protected` (exact name or fnmatch glob)."""
    name = unit if "." in unit else f"{unit}.service"  # `sshd` means sshd.service, as systemctl reads it
    names = [name]
    if "@" in name:  # an instance (getty@tty1.service) is protected when its template (getty@.service) is
        prefix, _, rest = name.partition("@")
        names.append(f"{prefix}@.{rest.rsplit('.', 1)[-1]}")
    return any(n == p or fnmatch.fnmatchcase(n, p) for n in names for p in protected)


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


# --------------------------------------------------------------------------- checks
#
# A check takes a value of the right type and returns a problem (str) or None; `_checked`
# turns it into a pydantic validator whose error message is exactly that problem.


def _checked(*checks: Callable[[Any], str | None]) -> list[AfterValidator]:
    def wrap(check: Callable[[Any], str | None]) -> AfterValidator:
        def validate(value: Any) -> Any:
            problem = check(value)
            if problem:
                raise PydanticCustomError("config", problem)
            return value

        return AfterValidator(validate)

    return [wrap(c) for c in checks]


def _report(info: ValidationInfo, path: str, reason: str) -> None:
    """Record one more problem (cross-key checks, list items) without stopping validation."""
    issues = (info.context or {}).get("issues")
    if issues is None:  # a model built directly, outside parse_config
        raise PydanticCustomError("config", f"{path}: {reason}")
    issues.append(ConfigIssue(path, reason))


def _env(info: ValidationInfo) -> Mapping[str, str]:
    env: Mapping[str, str] = (info.context or {}).get("env", os.environ)
    return env


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be 0 or greater"


def _between(lo: float, hi: float, unit: str = "") -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}{unit}"


def _at_least(lo: int, shown: str = "") -> Callable[[Any], str | None]:
    return lambda v: None if v >= lo else f"must be at least {lo}{shown}"


def _port(v: Any) -> str | None:
    return None if 1 <= v <= 65535 else "must be a TCP port between 1 and 65535"


def _not_empty(v: Any) -> str | None:
    return None if v else "must not be empty"


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
    return None if os.path.isabs(os.path.expanduser(v)) else "must be an absolute path"


def _percent(v: Any) -> str | None:
    return None if 0 < v <= 100 else "must be a percentage greater than 0 and at most 100"


def _role_name(v: Any) -> str | None:
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}", v) else "not a PostgreSQL role name"


def _key_ref(v: Any) -> str | None:
    if "/" in v:
        return None if os.path.isabs(v) else "must be an absolute path or a bare systemd credential name"
    return None if re.fullmatch(r"[A-Za-z0-9_.:-]+", v) else "not a valid systemd credential name"


def dsn_has_password(v: str) -> bool:
    """Whether a libpq DSN carries a password: key=value form, URI userinfo, or URI query
    parameters (?password=... / &password=...)."""
    return bool(
        re.search(r"(^|\s)password\s*=", v)
        or re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", v)
        or re.search(r"[?&]password=", v, re.IGNORECASE)
    )


def _no_password(v: str) -> str | None:
    return "must not contain a password; use database.password_file" if dsn_has_password(v) else None


def _unit_patterns(v: Any) -> str | None:
    bad = [p for p in v if not re.fullmatch(r"[A-Za-z0-9:_.@*?-]{1,256}", p)]
    return f"not unit name patterns: {bad!r}" if bad else None


def _safe_paths(v: Any) -> str | None:
    for i, p in enumerate(v):
        if not os.path.isabs(p) or ".." in p.split("/"):
            return f"item {i} must be an absolute path without '..'"
    return None


def _read_secret(value: str, info: ValidationInfo) -> SecretFile:
    """Resolve a `*_file` key: an absolute path, or a bare systemd credential name."""
    problem = _key_ref(value)
    if problem:
        raise PydanticCustomError("config", problem)
    try:
        path = credential_path(value, "secret", _env(info))
    except CredentialUnavailable as exc:
        raise PydanticCustomError("config", str(exc)) from None
    where = repr(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PydanticCustomError("config", f"file {where} does not exist") from None
    except PermissionError:
        raise PydanticCustomError("config", f"file {where} is not readable by this user") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PydanticCustomError("config", f"cannot read {where}: {exc.__class__.__name__}") from None
    if not text.strip():
        raise PydanticCustomError("config", f"file {where} is empty")
    ref = SecretFile(value)
    ref.secret = Secret(text.strip(), str(path))
    return ref


# The JSON types.  JSON has one number type: a float key takes integers, never booleans.
Num = Annotated[float, Strict()]
PositiveNum = Annotated[Num, *_checked(_positive)]
NonNegativeNum = Annotated[Num, *_checked(_non_negative)]
PositiveInt = Annotated[StrictInt, *_checked(_positive)]
NonNegativeInt = Annotated[StrictInt, *_checked(_non_negative)]
Port = Annotated[StrictInt, *_checked(_port)]
AbsPath = Annotated[StrictStr, *_checked(_abs_path), AfterValidator(os.path.expanduser)]
HttpUrl = Annotated[StrictStr, *_checked(_http_url)]
SecretRef = Annotated[StrictStr, AfterValidator(_read_secret)]
ServerUrl = Annotated[HttpUrl, AfterValidator(lambda v: v.rstrip("/"))]  # the client appends /v1
ModelId = Annotated[StrictStr, *_checked(_model_id)]


def _f(default: Any, doc: str, shown: str | None = None, **kw: Any) -> Any:
    """A field with its meaning for docs/configuration.md (and a default written out, if not plain JSON)."""
    extra: JsonDict | None = {"shown": shown} if shown is not None else None
    if isinstance(default, type) and issubclass(default, BaseModel):
        return Field(default_factory=default, description=doc, json_schema_extra=extra, **kw)
    return Field(default, description=doc, json_schema_extra=extra, **kw)


class _Section(BaseModel):
    """A section of the document: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- roles


class RoleConfig(_Section):
    """One OpenAI-compatible model server (llama-server, or any compatible endpoint)."""

    role: ClassVar[str] = ""

    enable: StrictBool = _f(True, "a disabled role is neither used nor checked")
    url: ServerUrl = _f("", "server root; the client appends `/v1`")
    model: ModelId = _f(
        "", "model id sent with each request; llama-server answers to its `--alias`", shown="the role name"
    )
    timeout: PositiveNum = _f(0.0, "whole-request timeout, seconds")
    connect_timeout: PositiveNum = _f(1.0, "seconds; keeps a stopped server from stalling callers")
    max_tokens: NonNegativeInt = _f(0, "default completion budget")
    context_size: PositiveInt = _f(0, "the server's context, used for prompt budgeting")
    max_retries: NonNegativeInt = _f(
        2, "retries with exponential backoff, only for 5xx (e.g. 503 while the model loads)"
    )
    # A stopped server keeps its socket open: silence is answered by a /health probe (llm/liveness.py).
    idle_timeout: PositiveNum = _f(
        30.0,
        "seconds of silence in the service's own calls to this server (before the first token, between "
        "tokens, or a whole non-streamed call) after which the server's `/health` is asked; the call fails "
        "(*timeout*) only if that does not answer within this many seconds (at least 1, at most 5) -- a long "
        "prompt being processed is not silence. Streamed calls to llama-server ask for its prompt-progress "
        "events, which count as signs of life. The API's calls use `api.upstream_idle_timeout` instead",
    )
    api_key_file: SecretRef | None = _f(None, "bearer key for the server, if it needs one")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        return self.role

    @computed_field  # type: ignore[prop-decorator]
    @property
    def api_key(self) -> Secret | None:
        return _secret_of(self.api_key_file)


def _settle(model: BaseModel, **values: Any) -> None:
    """Set a frozen model's values that follow from other keys, once, while it is being validated."""
    for name, value in values.items():
        object.__setattr__(model, name, value)


def _secret_of(ref: str | None) -> Secret | None:
    return ref.secret if isinstance(ref, SecretFile) else None


# Per-role defaults: the small trigger model answers short classification prompts and
# must fail fast; the meta model runs long tool loops on a large model.
class TriggerRole(RoleConfig):
    role: ClassVar[str] = "trigger"
    url: ServerUrl = "http://127.0.0.1:40080"
    model: ModelId = "trigger"
    timeout: PositiveNum = 30.0
    max_tokens: NonNegativeInt = 256
    context_size: PositiveInt = 4096


class ReviewRole(RoleConfig):
    role: ClassVar[str] = "review"
    url: ServerUrl = "http://127.0.0.1:40081"
    model: ModelId = "review"
    timeout: PositiveNum = 180.0
    max_tokens: NonNegativeInt = 1024
    context_size: PositiveInt = 8192


class MetaRole(RoleConfig):
    role: ClassVar[str] = "meta"
    url: ServerUrl = "http://127.0.0.1:40082"
    model: ModelId = "meta"
    timeout: PositiveNum = 600.0
    max_tokens: NonNegativeInt = 2048
    context_size: PositiveInt = 16384


class EmbedRole(RoleConfig):
    role: ClassVar[str] = "embed"
    url: ServerUrl = "http://127.0.0.1:40084"
    model: ModelId = "embed"
    timeout: PositiveNum = 120.0
    max_tokens: NonNegativeInt = 0
    context_size: PositiveInt = 2048


ROLE_CLASSES: dict[str, type[RoleConfig]] = {
    "trigger": TriggerRole,
    "review": ReviewRole,
    "meta": MetaRole,
    "embed": EmbedRole,
}
# Default ports of the three llama-server units (and the optional embedding server).
ROLE_DEFAULT_PORTS = {name: urlsplit(cls.model_fields["url"].default).port for name, cls in ROLE_CLASSES.items()}


class Roles(_Section):
    """The model servers, one per role."""

    trigger: TriggerRole = _f(TriggerRole, "the L1 classifier")
    review: ReviewRole = _f(ReviewRole, "the L3 reviewer")
    meta: MetaRole = _f(MetaRole, "the L4 investigator and the chat agent")
    embed: EmbedRole | None = _f(None, "embeddings for the knowledge base")

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        if isinstance(data, dict):  # `trigger: null` keeps the defaults, as an absent key does
            data = {k: v for k, v in data.items() if not (v is None and k in CHAT_ROLE_KEYS)}
        return data

    def enabled(self) -> list[RoleConfig]:
        return [r for r in (self.trigger, self.review, self.meta, self.embed) if r and r.enable]


CHAT_ROLE_KEYS = ("trigger", "review", "meta")


# --------------------------------------------------------------------------- sections


class Intervals(_Section):
    metrics: PositiveNum = _f(30.0, "seconds between metric collections")
    review: PositiveNum = _f(900.0, "seconds between periodic reviews (critical triggers start one early)")


class DatabaseConfig(_Section):
    dsn: Annotated[StrictStr, *_checked(_no_password)] | None = _f(
        None,
        "libpq connection string or URI; must not contain a password (neither `password=`, nor `user:pw@` "
        "in a URI, nor `?password=` in its query string): use `password_file`",
    )
    socket_dir: AbsPath = _f("/run/postgresql", "used when `dsn` is null (peer authentication on NixOS)")
    host: StrictStr | None = _f(None, "TCP host instead of the socket directory")
    port: Port = _f(5432, "")
    name: Annotated[StrictStr, *_checked(_not_empty)] = _f("ai-sysadmin", "database name")
    user: StrictStr | None = _f(None, "", shown="`null` (the OS user)")
    password_file: SecretRef | None = _f(None, "secret, see above")
    # Least-privilege roles that the orchestrator (schema owner) GRANTs to after migrating
    # (ai_sysadmin/store/grants.py); None: that part has no role of its own.
    executor_role: Annotated[StrictStr, *_checked(_role_name)] | None = _f(
        None,
        "the executor's own PostgreSQL role; after migrating, the service (schema owner) GRANTs it only "
        "what the executor needs ([actions.md](actions.md#database-roles))",
    )
    api_role: Annotated[StrictStr, *_checked(_role_name)] | None = _f(
        None, "the API's own role, granted read access plus approvals/rejections"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def password(self) -> Secret | None:
        return _secret_of(self.password_file)

    def conninfo(self) -> str:
        """A libpq conninfo string; the password is passed separately (`password`)."""
        if self.dsn:
            return self.dsn
        from psycopg.conninfo import make_conninfo

        params: dict[str, Any] = {"host": self.host or self.socket_dir, "port": self.port, "dbname": self.name}
        if self.user:
            params["user"] = self.user
        return make_conninfo(**params)


class KnowledgeConfig(_Section):
    path: AbsPath | None = _f(None, "embedded ChromaDB directory", shown="`<state_dir>/knowledge`")
    url: HttpUrl | None = _f(None, "a ChromaDB server (`services.chromadb`), instead of the embedded one")

    @model_validator(mode="before")
    @classmethod
    def _one_store(cls, data: Any, info: ValidationInfo) -> Any:
        # On the keys as written, so this is reported together with any problem of their values.
        if isinstance(data, dict) and data.get("path") is not None and data.get("url") is not None:
            _report(info, "knowledge.url", "set either knowledge.path (embedded) or knowledge.url (server), not both")
        return data


def _require_auth(written: Any, has_key: bool, host: str) -> Any:
    """`api.require_auth` unless written: a key on loopback is still honoured; beyond loopback it is mandatory."""
    return (has_key or not is_loopback(host)) if written is None else written


def _api_key_file(value: str, info: ValidationInfo) -> SecretFile:
    ref = _read_secret(value, info)
    for problem in key_file_problems(ref.secret):
        _report(info, "api.api_key_file", problem)
    return ref


class ApiConfig(_Section):
    host: Annotated[StrictStr, *_checked(_not_empty)] = _f("127.0.0.1", "listen address")
    port: Port = _f(40083, "")
    api_key_file: Annotated[StrictStr, AfterValidator(_api_key_file)] | None = _f(
        None, "bearer keys, required whenever `host` is not loopback (format below)"
    )
    require_auth: StrictBool | None = _f(
        None, "cannot be `false` beyond loopback", shown="`true` when a key is configured or `host` is not loopback"
    )
    # Below 64 KiB an ordinary chat with some history would be refused; such a bound is a typo.
    max_body_bytes: Annotated[StrictInt, *_checked(_at_least(65536, " (64 KiB)"))] = _f(
        8 * 1024 * 1024,
        "larger request bodies get 413; at least 64 KiB (images arrive base64 inside the JSON)",
        shown="`8388608` (8 MiB)",
    )
    max_concurrent_per_key: PositiveInt = _f(
        4,
        "model requests (`/v1/chat/completions`, `/v1/embeddings`) in flight per key (per client address "
        "without keys); the next one gets 429 with `Retry-After: 1`, before its body is read",
    )
    upstream_timeout: PositiveNum | None = _f(
        None,
        "seconds the API waits for a model server's headers or its next streamed chunk before 504 / an "
        "error event; `null` uses `roles.<role>.timeout`",
    )
    # Silence is probed, not trusted: a long prompt (minutes on a CPU) or another slot's prompt
    # batch is a pause, a stopped server is not; /health tells them apart (llm/liveness.py).
    upstream_idle_timeout: PositiveNum = _f(
        30.0,
        "seconds of silence from a model server (role models and the agent's meta calls) -- no headers, "
        "no prompt-progress event, no token, no non-streamed answer -- after which its `/health` is asked. "
        "If that answers, the wait goes on (up to `upstream_timeout` / the role's `timeout`): a long prompt, "
        "or another slot's prompt batch, is not silence. If not within this many seconds (at least 1, at "
        "most 5) the request ends with 504, or an error event naming the role once streaming "
        '(`code: "upstream_idle"`) ([openwebui.md](openwebui.md#open-webui-on-a-small-host))',
    )
    client_tools: ClientTools = _f(
        "drop",
        "`drop` removes a client's `tools` / `tool_choice` / `parallel_tool_calls` before relaying to a "
        "role model (Open WebUI attaches ~29 of its own, over 20 KB); `pass` relays them. The "
        "`ai-sysadmin` agent always ignores client tools",
    )
    background_max_tokens: PositiveInt = _f(
        256,
        "`max_tokens` given to Open WebUI's background tasks (title, tags, follow-ups, queries), which carry "
        "none; a smaller limit the client set is kept",
    )
    background_role: ChatRole | None = _f(
        "trigger",
        "the role that answers Open WebUI's title / tag / follow-up requests, whatever model was "
        "selected (when that role is down, the selected model's server answers; never the agent); "
        "`null` sends them to the selected model",
    )
    # Connections (api/connections.py).
    header_timeout: PositiveNum = _f(
        5.0, "seconds a new connection has to send a complete request header; then it is closed"
    )
    keepalive_timeout: PositiveNum = _f(75.0, "seconds an idle keep-alive connection stays open between requests")
    max_unauthenticated_connections: PositiveInt = _f(
        1024,
        "connections that have not yet made a request with a valid key (or, without keys, any request); "
        "beyond it the oldest such connection is closed, so key-holders still get in during a flood",
    )
    max_concurrent_rest_per_key: PositiveInt = _f(
        8,
        "requests in flight per key on every other endpoint (`/api/v1/*`, `/metrics`, `/v1/models`); the next "
        "one gets 429 with `Retry-After: 1`. Counted apart from the model endpoints, so a dashboard does not "
        "take the chat's slots",
    )

    @model_validator(mode="before")
    @classmethod
    def _auth_fits_host(cls, data: Any, info: ValidationInfo) -> Any:
        # On the keys as written, so this is reported together with any problem of their values.
        if not isinstance(data, dict) or not isinstance(data.get("host", ""), str):
            return data
        host, key_file = data.get("host", "127.0.0.1"), data.get("api_key_file")
        require = _require_auth(data.get("require_auth"), key_file is not None, host)
        if not is_loopback(host) and key_file is None:
            _report(info, "api.api_key_file", f"required when api.host ({host}) is not loopback")
        elif require and key_file is None:
            _report(info, "api.api_key_file", "required when api.require_auth is true")
        if not is_loopback(host) and require is False:
            _report(info, "api.require_auth", f"cannot be false when api.host ({host}) is not loopback")
        return data

    @model_validator(mode="after")
    def _settle_auth(self) -> ApiConfig:
        _settle(self, require_auth=bool(_require_auth(self.require_auth, self.api_key_file is not None, self.host)))
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def api_key(self) -> Secret | None:
        return _secret_of(self.api_key_file)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def keys(self) -> tuple[ApiKey, ...]:
        """Parsed from api_key_file: `name:key` lines or one bare key."""
        key = self.api_key
        return parse_api_keys(key.reveal(), key.source) if key is not None else ()


class JournalConfig(_Section):
    source: JournalSourceKind = _f("system", "`system` (the host's journal), `directory` or `file`")
    path: AbsPath | None = _f(None, "the directory or file, required for those sources")

    @model_validator(mode="before")
    @classmethod
    def _path_fits_source(cls, data: Any, info: ValidationInfo) -> Any:
        # On the keys as written, so this is reported together with any problem of their values.
        if not isinstance(data, dict):
            return data
        source, path = data.get("source", "system"), data.get("path")
        if source in ("directory", "file") and path is None:
            _report(info, "journal.path", f"required when journal.source is {source!r}")
        if source == "system" and path is not None:
            _report(info, "journal.path", "only used when journal.source is 'directory' or 'file'")
        return data


class SpoolConfig(_Section):
    """The outage spool: where records wait while PostgreSQL is unreachable."""

    path: AbsPath | None = _f(None, "where records wait while PostgreSQL is unreachable", shown="`<state_dir>/spool`")
    # Below 1 MiB the segment bookkeeping would dominate; such a bound is a typo.
    max_bytes: Annotated[StrictInt, *_checked(_at_least(1024 * 1024, " (1 MiB)"))] = _f(
        64 * 1024 * 1024,
        "bound; oldest metrics are dropped first, triggers and audit records never",
        shown="`67108864` (64 MiB)",
    )
    warn_ratio: Annotated[Num, *_checked(lambda v: None if 0 < v <= 1 else "must be greater than 0 and at most 1")] = (
        _f(0.8, "fill ratio at which logs, `doctor` and `/metrics` warn")
    )

    def directory(self, state_dir: str) -> str:
        return self.path or os.path.join(state_dir, "spool")


# A host id names rows in the database and, on a member, part of its role name: a host
# name's characters, at most 63 (a DNS label's length).
HOST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def host_id_problem(value: str) -> str | None:
    """Why `value` is not a host id, None when it is one (also the `--host` / `?host=` filters' check)."""
    if HOST_ID_RE.fullmatch(value):  # fullmatch: `$` alone would take a trailing newline
        return None
    return "must be a host id (letters, digits, . _ -; at most 63, starting with a letter or digit)"


HostId = Annotated[StrictStr, *_checked(host_id_problem)]


class HostRetention(_Section):
    """One host's days (`retention.hosts.<host>`): its rows' own setting instead of the global one."""

    metrics_days: NonNegativeInt | None = _f(
        None, "this host's metric rows older than this are deleted; `null`: the global `metrics_days`"
    )
    events_days: NonNegativeInt | None = _f(
        None, "this host's triggers, by `last_seen`; `0` keeps them forever; `null`: the global `events_days`"
    )


class RetentionConfig(_Section):
    """Days kept per table family (0 keeps forever)."""

    metrics_days: NonNegativeInt = _f(
        30, "metric partitions (or TimescaleDB chunks) older than this are dropped; `0` keeps forever"
    )
    events_days: NonNegativeInt = _f(180, "triggers and LLM-call accounting, by `last_seen`")
    audit_days: NonNegativeInt = _f(
        0, "ignored since migration 6: the audit log is append-only for every role and kept forever"
    )
    hosts: dict[HostId, HostRetention] = _f(
        {},
        "fleet hub: host id -> `{metrics_days, events_days}` for that host's rows (e.g. a noisy lab member "
        '`{"metrics_days": 3}`); a host\'s `metrics_days` cannot exceed the global one, which drops whole '
        "days of every host; hosts not listed keep the global days ([fleet.md](fleet.md#retention-per-host))",
    )

    @model_validator(mode="after")
    def _host_metrics_within_global(self, info: ValidationInfo) -> RetentionConfig:
        # Metric partitions hold every host's rows of a day and are dropped whole at the
        # global age: a host cannot keep its metrics longer than that.
        if not self.metrics_days:
            return self
        for host, days in self.hosts.items():
            if days.metrics_days is not None and not 0 < days.metrics_days <= self.metrics_days:
                shown = "0 (forever)" if days.metrics_days == 0 else str(days.metrics_days)
                _report(
                    info,
                    f"retention.hosts.{host}.metrics_days",
                    f"{shown} is longer than retention.metrics_days ({self.metrics_days}): metric partitions "
                    "hold every host's rows and are dropped at the global age",
                )
        return self

    def host_overrides(self, family: Literal["metrics_days", "events_days"]) -> dict[str, int]:
        """Host id -> days for `family` ("metrics_days" or "events_days"), for the hosts that set it."""
        return {h: d for h, r in self.hosts.items() if (d := getattr(r, family)) is not None}


class ThresholdsConfig(_Section):
    """Metric thresholds that raise triggers (collector)."""

    disk_percent: Annotated[Num, *_checked(_percent)] = _f(90.0, "disk space used on a real mount")
    inode_percent: Annotated[Num, *_checked(_percent)] = _f(90.0, "inodes used")
    memory_pressure_avg10: Annotated[Num, *_checked(_percent)] = _f(
        20.0, 'PSI memory "some" avg10, percent of time stalled'
    )
    swap_pages_per_s: PositiveNum = _f(1000.0, "swap-in + swap-out pages per second")
    failed_units: PositiveInt = _f(1, "failed systemd units")


class ReviewConfig(_Section):
    """Incidents (correlation, lifecycle), L2 context and L3 review (docs/review.md)."""

    debounce_seconds: NonNegativeNum = _f(
        10.0, "an early review runs this long after the first trigger at or above `early_severity`"
    )
    early_min_interval: NonNegativeNum = _f(60.0, "at most one early review per this many seconds")
    early_severity: Severity = _f(
        "critical", "triggers at or above this ask for an early review (model-only triggers never do)"
    )
    context_tokens: Annotated[StrictInt, *_checked(_at_least(512))] | None = _f(
        None, "prompt budget in tokens; `null`: `roles.review.context_size - roles.review.max_tokens - 256`"
    )
    max_triggers: Annotated[StrictInt, *_checked(_between(10, 100_000))] = _f(
        400, "distinct (template, unit) entries the context keeps; older ones fold into tallies"
    )
    knowledge_hits: Annotated[StrictInt, *_checked(_between(0, 20))] = _f(
        3, "runbooks / past incidents retrieved from the knowledge base into the context"
    )
    incident_window: PositiveNum = _f(
        900.0, "seconds: triggers on the same unit, or of the same host-wide category, within this join one incident"
    )
    causal_window: PositiveNum = _f(
        300.0, "seconds an OOM kill, a full disk or a crash explains the failures of the units it named"
    )
    quiet_seconds: PositiveNum = _f(
        600.0, "an incident resolves by itself after this long without triggers, once its units are not failed"
    )
    reopen_window: PositiveNum = _f(
        3600.0, "a recurrence within this reopens a resolved incident; after it the incident is closed"
    )
    fleet_window: PositiveNum = _f(
        600.0,
        "seconds: the same rule (or model-classified template) on the same unit firing on another host within "
        "this joins that host's open incident, which becomes one fleet incident listing the hosts "
        "([fleet.md](fleet.md#fleet-incidents))",
    )
    escalate_min_interval: NonNegativeNum = _f(900.0, "at most one escalation to L4 per incident per this many seconds")
    max_attempts: Annotated[StrictInt, *_checked(_between(1, 5))] = _f(
        2, "model answers tried per review: the first plus one retry that shows the error"
    )
    switch_window: PositiveNum = _f(
        900.0,
        "seconds after a NixOS switch during which new failures of the units it touched are attributed "
        "to it ([preflight.md](preflight.md))",
    )
    switch_poll: Annotated[Num, *_checked(_between(0.1, 3600))] = _f(
        2.0, "seconds between reads of the current-system link, to notice a switch"
    )
    preflight_model_timeout: Annotated[
        Num, *_checked(lambda v: None if 0 < v <= 30 else "must be between 0 and 30 seconds")
    ] = _f(
        25.0,
        "seconds for the review model's summary in `ai-sysadmin preflight`; past this the report says so "
        "and the verdict is at least warn (never block from the timeout)",
    )


class TriggerConfig(_Section):
    """L1, the journal trigger pipeline (docs/triggers.md)."""

    window_seconds: PositiveInt = _f(
        300, "dedup window: one trigger per (template, unit, source) per window, with a count and samples"
    )
    commit_interval: PositiveNum = _f(
        0.5, "seconds between checkpoints (triggers and the journal cursor, one transaction)"
    )
    poll_interval: PositiveNum = _f(0.25, "seconds between reads of a `directory`/`file` journal source")
    max_message: Annotated[StrictInt, *_checked(_at_least(256))] = _f(
        8192, "characters of `MESSAGE` used for matching and samples"
    )
    rules: tuple[dict[str, Any], ...] = _f(
        (), "extra rules, or replacements of built-in ones by `id` (validated like the built-ins)"
    )
    disabled_rules: tuple[str, ...] = _f((), "ids of built-in rules to switch off")
    priority_max: Annotated[
        StrictInt, *_checked(lambda v: None if -1 <= v <= 7 else "must be a syslog priority 0..7, or -1 for off")
    ] = _f(2, "entries at this journal priority or more severe (crit) are triggers on their own; `-1` turns this off")
    burst_factor: Annotated[Num, *_checked(lambda v: None if v > 1 else "must be greater than 1")] = _f(
        10.0,
        "a template or unit firing this many times above its recent rate (and at least `burst_min_count` "
        "times) is a burst",
    )
    burst_min_count: PositiveInt = _f(100, "the least count of a burst (see `burst_factor`)")
    model: StrictBool = _f(True, "classify new warning-or-worse templates with the trigger role")
    model_calls_per_minute: PositiveNum = _f(30.0, "budget for the trigger model")
    model_batch_size: Annotated[StrictInt, *_checked(_between(1, 16))] = _f(4, "templates per model call")
    model_min_severity: Severity = _f("medium", "model answers below this are cached but raise no trigger")

    @field_validator("rules", mode="before")
    @classmethod
    def _valid_rules(cls, value: Any, info: ValidationInfo) -> Any:
        """Each rule through the rule parser; an invalid one is reported (with its key) and left out."""
        if not isinstance(value, list | tuple):
            return value
        rules = []
        for i, rule in enumerate(value):
            try:
                parse_rule(rule, f"trigger.rules[{i}]")
                rules.append(rule)
            except RuleError as exc:
                where, _, reason = str(exc).partition(": ")
                _report(info, where, reason)
        return rules

    @field_validator("disabled_rules", mode="before")
    @classmethod
    def _known_rules(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list | tuple):
            return value
        for i, rid in enumerate(value):
            if not isinstance(rid, str):
                _report(info, f"trigger.disabled_rules[{i}]", f"must be a rule id string, got {_kind(rid)}")
        ids = [r for r in value if isinstance(r, str)]
        known = (
            {r["id"] for r in builtin_rule_data()}
            | {r.get("id") for r in info.data.get("rules", ())}
            | {PRIORITY_RULE_ID}
        )
        unknown = sorted(r for r in ids if r not in known)
        if unknown:
            _report(info, "trigger.disabled_rules", f"unknown rule id(s): {', '.join(unknown)}")
        return ids


class ActionsConfig(_Section):
    """The action policy and the executor (docs/actions.md)."""

    # Read when needed (approve, executor), not at load: the orchestrator's config may name
    # it while only the executor, the API and root can read it.
    approval_key_file: Annotated[StrictStr, *_checked(_key_ref)] | None = _f(
        None,
        "HMAC key that signs a person's approval (path or bare credential name). Read when needed, not at "
        "load: only root's CLI, the API and the executor can read it; the orchestrator may name it but "
        "cannot read it. Without it nobody can approve and the executor runs only what its own policy runs "
        "automatically",
    )
    approval_ttl_seconds: PositiveInt = _f(
        3600, "an approval older than this is void (the executor marks the action `expired`)"
    )
    rate_window_seconds: PositiveInt = _f(3600, "the window of both rate limits")
    rate_limit_per_target: NonNegativeInt = _f(
        3,
        "automatic actions on one target (a unit, `nix-store`, `journal`, `system-profile`) per window; "
        "beyond it proposals are queued for a person",
    )
    rate_limit_per_action: NonNegativeInt = _f(10, "automatic actions of one catalog id per window")
    cooldown_seconds: NonNegativeInt = _f(600, "no automatic action on a target this soon after the last one")
    poll_interval: PositiveNum = _f(30.0, "executor: seconds between fallback polls (it wakes at once on NOTIFY)")
    output_cap_bytes: Annotated[StrictInt, *_checked(_between(1024, 16 * 1024 * 1024))] = _f(
        65536, "stdout and stderr kept per step, each (the rest is read and dropped)"
    )
    verify_window_seconds: NonNegativeNum = _f(30.0, "a restarted unit must stay active, without restarting, this long")
    nix_mode: NixMode = _f("auto", "`auto`: Nix actions run on NixOS, are a named dry run elsewhere; `run`; `dry-run`")
    system_profile: AbsPath = _f("/nix/var/nix/profiles/system", "the profile `rollback_generation` rolls back")
    current_system: AbsPath = _f("/run/current-system", "checked after a rollback")
    protected_patterns: Annotated[tuple[StrictStr, ...], *_checked(_unit_patterns)] = _f(
        ("llama-*", "ai-sysadmin*", "polkit*"),
        "shell-style unit patterns never acted on, in addition to `protected_units`",
    )
    # Bounds for running a model's proposal unattended (actions/binding.py); outside them it is queued.
    auto_min_gc_days: PositiveInt = _f(
        7,
        "a model's `collect_garbage` runs unattended only when it keeps at least this many days; below, it "
        "is queued for a person with the bound as reason",
    )
    auto_min_journal_mb: PositiveInt = _f(
        512, "a model's `vacuum_journal` runs unattended only when `max_size_mb` keeps at least this many MiB"
    )
    auto_min_journal_days: PositiveInt = _f(
        7, "a model's `vacuum_journal` runs unattended only when `max_age_days` keeps at least this many days"
    )


class MetaConfig(_Section):
    """L4 meta analysis: the investigation tool loop (docs/meta.md)."""

    max_steps: Annotated[StrictInt, *_checked(_between(1, 100))] = _f(
        12, "model turns with the tools offered (1–100); then one last turn without tools"
    )
    deadline_seconds: PositiveNum = _f(
        600.0, "the whole investigation; the tool phase leaves about 30 % (at most 180 s) for the answer"
    )
    max_calls_per_step: Annotated[StrictInt, *_checked(_between(1, 32))] = _f(
        4, "tool calls executed from one model turn (1–32); more are refused"
    )
    tool_timeout: PositiveNum = _f(20.0, "seconds per tool call (commands are killed with their process group)")
    tool_output_share: Annotated[Num, *_checked(_between(0.01, 0.5))] = _f(
        0.15,
        "share of `roles.meta.context_size` (tokens, ~3.5 characters each) one tool result may take (0.01–0.5) ...",
    )
    tool_output_max_chars: Annotated[StrictInt, *_checked(_between(600, 200000))] = _f(
        12000, "... and never more characters than this (600–200000)"
    )
    tool_choice: ToolChoice = _f(
        "auto", "`auto` or `required` (the server forces a tool call each turn: for weak models)"
    )
    prefill: Annotated[StrictStr, *_checked(lambda v: None if len(v) <= 64 else "must be at most 64 characters")] = _f(
        "",
        "assistant text put before each tool turn (weak models with the Qwen2.5 template: "
        '`"<tool_call>\\n"`); at most 64 characters',
    )
    opening_calls: StrictBool = _f(
        True,
        "an incident's investigation starts with the reads its category and unit call for (the unit's "
        "journal and state, disk usage, memory, generations; at most 2), made by the loop before the "
        "model's first turn",
    )
    step_max_tokens: PositiveInt = _f(512, "tokens per tool turn")
    answer_max_tokens: NonNegativeInt = _f(
        768,
        "tokens of the streamed answer; `0`: no separate answer, it is rendered from the diagnosis "
        "(one model call less)",
    )
    diagnosis_max_tokens: PositiveInt = _f(1024, "tokens of the json_schema diagnosis")
    transcript_max_chars: Annotated[StrictInt, *_checked(_between(1000, 10_000_000))] = _f(
        60000, "transcript stored with the finding (long messages cut, then the middle dropped)"
    )
    knowledge_hits: Annotated[StrictInt, *_checked(_between(0, 20))] = _f(
        3, "runbooks / past incidents put into the investigation's context (0–20)"
    )
    escalation_debounce_seconds: NonNegativeNum = _f(
        900.0, "an escalated incident is not investigated again within this (also across restarts)"
    )
    disk_paths: Annotated[tuple[StrictStr, ...], *_checked(_safe_paths)] = _f(
        ("/var", "/nix/var", "/home", "/srv", "/opt", "/tmp"),
        "the only roots `largest_dirs` may look under (absolute, no `..`)",
    )
    system_profile: AbsPath = _f(
        "/nix/var/nix/profiles/system", "the profile whose generations `nixos_generations` lists"
    )
    current_system: AbsPath = _f("/run/current-system", "which generation runs")
    booted_system: AbsPath = _f("/run/booted-system", "which generation was booted")
    nix_store: (
        Annotated[
            StrictStr,
            *_checked(lambda v: None if re.fullmatch(r"[A-Za-z0-9_./:?&=%+-]{1,300}", v) else "not a store URI"),
        ]
        | None
    ) = _f(None, "a store URI passed as `--store` to the nix tools (default: the system store)")
    tools: tuple[StrictStr, ...] | None = _f(
        None, "offer only these tools (names from `ai-sysadmin tools list`; unknown names are errors); `null`: all"
    )

    @field_validator("tools", mode="after")
    @classmethod
    def _known_tools(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        bad = [t for t in value or () if t not in TOOL_NAMES]
        if bad:
            raise PydanticCustomError(
                "config", f"unknown tool(s) {', '.join(map(repr, bad))}; known: {', '.join(TOOL_NAMES)}"
            )
        return value


def sender_problem(value: str) -> str | None:
    """Why `value` is not a sender name as systemd-journal-remote names a file after; None when it is one.

    The sender is the peer's address (journal-remote built without GnuTLS, as Debian's and
    nixpkgs' are) or a client certificate's distinguished name (`CN=web-1`).  An address is
    matched as text, so it must be written the way journal-remote prints it (inet_ntop).
    """
    if not value or len(value) > 255 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "must be a sender name (an address such as 10.213.0.2, or a certificate name), at most 255 characters"
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None  # a name
    # A v4-mapped IPv6 address prints differently across Python versions: taken as written.
    mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
    if str(address) != value and not mapped:
        return f"write the address as journal-remote names the file: {address}"
    return None


SenderName = Annotated[StrictStr, *_checked(sender_problem)]
_HUB_KEYS = ("journal_dir", "members")
_MEMBER_KEYS = ("hub_url", "hub_dsn", "hub_password_file")


class FleetConfig(_Section):
    """Many hosts (docs/fleet.md): this host's role and id, and what a hub or a member needs."""

    role: FleetRole = _f(
        "standalone",
        "`standalone` (one host), `hub` (receives the members' journals) or `member` (uploads its journal to the hub)",
    )
    host: HostId | None = _f(
        None,
        "this host's id in the fleet (NixOS: `fleet.hostId`); the database's existing rows belong to the "
        "host name that migrated it (docs/fleet.md)",
        shown="`null` (the host name)",
    )
    journal_dir: AbsPath | None = _f(
        None, "hub only: the directory systemd-journal-remote writes the members' journals to"
    )
    members: dict[SenderName, HostId] = _f(
        {},
        "hub only: the sender journal-remote names each member's file after (its address, e.g. "
        "`10.213.0.2`) -> that member's `fleet.host`; when not empty, a file of any other sender is "
        "skipped; `{}`: the sender is the host id ([fleet.md](fleet.md#which-host))",
    )
    hub_url: HttpUrl | None = _f(None, "member only, required there: where systemd-journal-upload sends the journal")
    hub_dsn: Annotated[StrictStr, *_checked(_no_password)] | None = _f(
        None,
        "member only: libpq URI of the hub's PostgreSQL as this member's own role; no password (use "
        "`hub_password_file`)",
    )
    # Read when used, not at load (like actions.approval_key_file): only the part that
    # connects to the hub needs to be able to read it.
    hub_password_file: Annotated[StrictStr, *_checked(_key_ref)] | None = _f(
        None, "member only: the password of that role (path or bare credential name), read when used"
    )

    @model_validator(mode="before")
    @classmethod
    def _keys_fit_role(cls, data: Any, info: ValidationInfo) -> Any:
        # On the keys as written, so these are reported together with problems of the values.
        if not isinstance(data, dict):
            return data
        role = data.get("role", "standalone")
        for key in _HUB_KEYS if role != "hub" else ():
            if data.get(key) not in (None, {}):
                _report(info, f"fleet.{key}", f"only used when fleet.role is 'hub' (it is {role!r})")
        for key in _MEMBER_KEYS if role != "member" else ():
            if data.get(key) is not None:
                _report(info, f"fleet.{key}", f"only used when fleet.role is 'member' (it is {role!r})")
        if role == "member" and data.get("hub_url") is None:
            _report(info, "fleet.hub_url", "required when fleet.role is 'member'")
        return data

    @model_validator(mode="after")
    def _one_sender_per_host(self, info: ValidationInfo) -> FleetConfig:
        # Two senders as one host would interleave two journals under one cursor; and a
        # member named as the hub would speak for the hub (hostset.py skips it anyway).
        seen: dict[str, str] = {}
        for sender, host in self.members.items():
            if host in seen:
                _report(
                    info,
                    f"fleet.members.{sender}",
                    f"host id {host!r} is already the host of sender {seen[host]!r}: one sender per host",
                )
            elif host == self.host:
                _report(info, f"fleet.members.{sender}", f"{host!r} is the hub's own host id (fleet.host)")
            seen.setdefault(host, sender)
        return self

    def host_id(self) -> str:
        """This host's id: `host`, else the host name (NixOS: networking.hostName)."""
        return self.host or socket.gethostname()


# --------------------------------------------------------------------------- the document


def _unit_list(value: Any, info: ValidationInfo) -> Any:
    """Report each entry that is not a unit name or glob (with its index); keep the rest."""
    if not isinstance(value, list | tuple):
        return value
    good = []
    for i, unit in enumerate(value):
        if not isinstance(unit, str) or not (_UNIT_RE.match(unit) or _UNIT_GLOB_RE.match(unit)):
            _report(
                info,
                f"protected_units[{i}]",
                f"not a systemd unit name or glob (e.g. nginx.service, llama-*.service): {unit!r}",
            )
        else:
            good.append(unit)
    return good


_SECTIONS = (
    "roles",
    "intervals",
    "database",
    "knowledge",
    "api",
    "journal",
    "spool",
    "retention",
    "thresholds",
    "trigger",
    "actions",
    "review",
    "meta",
    "fleet",
)


class Config(_Section):
    """The whole document."""

    state_dir: AbsPath = _f(
        "",
        "cursors, caches, embedded knowledge base, spool",
        shown="`$STATE_DIRECTORY` (systemd `StateDirectory=`), else `$XDG_STATE_HOME/ai-sysadmin` or "
        "`~/.local/state/ai-sysadmin`",
    )
    autonomy_level: AutonomyLevel = _f(
        "suggest",
        "`observe` records only; `suggest` queues every action for approval; `auto-safe` runs low-risk "
        "actions; `auto-full` runs low and medium; high risk always waits for a person",
    )
    log_level: LogLevel = _f("info", "`debug`, `info`, `warning`, `error`")
    protected_units: tuple[StrictStr, ...] = _f(
        DEFAULT_PROTECTED_UNITS,
        "units no action may touch, whatever a model proposes: exact names (`nginx.service`) or shell globs "
        "(`backup-*.timer`); **added** to the defaults",
        shown="`[]` added to the safe defaults below",
    )
    protected_units_replace: StrictBool = _f(
        False,
        "`true` replaces the safe defaults with `protected_units` alone (knowingly: sshd is then not "
        "protected unless listed)",
    )
    roles: Roles = _f(Roles, "")
    intervals: Intervals = _f(Intervals, "")
    database: DatabaseConfig = _f(DatabaseConfig, "")
    knowledge: KnowledgeConfig = _f(KnowledgeConfig, "")
    api: ApiConfig = _f(ApiConfig, "")
    journal: JournalConfig = _f(JournalConfig, "")
    spool: SpoolConfig = _f(SpoolConfig, "")
    retention: RetentionConfig = _f(RetentionConfig, "")
    thresholds: ThresholdsConfig = _f(ThresholdsConfig, "")
    trigger: TriggerConfig = _f(TriggerConfig, "")
    actions: ActionsConfig = _f(ActionsConfig, "")
    review: ReviewConfig = _f(ReviewConfig, "")
    meta: MetaConfig = _f(MetaConfig, "")
    fleet: FleetConfig = _f(FleetConfig, "")

    _source: str | None = PrivateAttr(default=None)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source(self) -> str | None:
        """The file the document came from (None: the built-in defaults)."""
        return self._source

    @field_validator("protected_units", mode="before")
    @classmethod
    def _units(cls, value: Any, info: ValidationInfo) -> Any:
        return _unit_list(value, info)

    @model_validator(mode="before")
    @classmethod
    def _document(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if not (v is None and k in _SECTIONS)}  # null: the defaults
        data.setdefault("state_dir", _default_state_dir(_env(info)))
        if data.get("protected_units_replace") is True and "protected_units" not in data:
            _report(
                info,
                "protected_units_replace",
                "true without protected_units would protect nothing; list the units to protect",
            )
        return data

    @model_validator(mode="after")
    def _effective(self) -> Config:
        """Values that follow from others: the protected units, the knowledge directory."""
        given = self.protected_units if "protected_units" in self.model_fields_set else None
        _settle(self, protected_units=_effective_units(given, self.protected_units_replace))
        if self.knowledge.path is None:
            _settle(
                self, knowledge=self.knowledge.model_copy(update={"path": os.path.join(self.state_dir, "knowledge")})
            )
        return self


def _default_state_dir(env: Mapping[str, str]) -> str:
    # systemd's StateDirectory= exports the path; a local run keeps state per user.
    if env.get("STATE_DIRECTORY"):
        return env["STATE_DIRECTORY"].split(":")[0]
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "ai-sysadmin")


def _effective_units(user: tuple[str, ...] | None, replace: bool) -> tuple[str, ...]:
    """The safe defaults plus the user's entries (in that order, no duplicates), or the user's alone."""
    if user is None:
        return DEFAULT_PROTECTED_UNITS
    base = () if replace else DEFAULT_PROTECTED_UNITS
    return tuple(dict.fromkeys(base + user))


# --------------------------------------------------------------------------- pydantic errors -> the report

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
# Keys that once existed: refused with what replaced them.
_RETIRED = {
    "journal.cursor_file": "no longer used: the journal cursor is stored in PostgreSQL together with the "
    "triggers it covers (table cursors); remove this key",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation (`X`, `X | None`, `Annotated[X, ...]`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, Annotated) or isinstance(annotation, types.UnionType):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None


def _allows_null(annotation: Any) -> bool:
    if annotation is type(None):
        return True
    if get_origin(annotation) is Annotated:
        return _allows_null(get_args(annotation)[0])
    if get_origin(annotation) is Union or isinstance(annotation, types.UnionType):
        return any(_allows_null(a) for a in get_args(annotation))
    return False


def _locate(loc: tuple[int | str, ...]) -> tuple[type[BaseModel] | None, Any]:
    """The model holding the last key of `loc`, and that key's field (None: not a field)."""
    model: type[BaseModel] | None = Config
    holder, fld = None, None
    for part in loc:
        if isinstance(part, int):
            fld = None  # an item of a list: not itself nullable
            continue
        if model is None:
            return None, None
        holder, fld = model, model.model_fields.get(part)
        model = _model_in(fld.annotation) if fld is not None else None
    return holder, fld


def _issues(exc: ValidationError) -> list[ConfigIssue]:
    out = []
    for err in exc.errors(include_url=False):
        loc, kind = tuple(err["loc"]), err["type"]
        path = _key_path(loc)
        holder, fld = _locate(loc)
        if kind == "config":
            reason = err["msg"]
        elif kind == "extra_forbidden":
            known = sorted(holder.model_fields) if holder is not None else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            reason = _RETIRED.get(path) or "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif kind == "literal_error":
            reason = "must be one of " + ", ".join(re.findall(r"'([^']*)'", err["ctx"]["expected"]))
        elif kind in _EXPECTED:
            null = " or null" if fld is not None and _allows_null(fld.annotation) else ""
            reason = f"must be {_EXPECTED[kind]}{null}, got {_kind(err['input'])}"
        else:
            reason = err["msg"]
        out.append(ConfigIssue(path, reason))
    return out


# --------------------------------------------------------------------------- entry points


def parse_config(data: Any, env: Mapping[str, str] | None = None, source: str | None = None) -> Config:
    """Validate a decoded JSON document. Raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    reported: list[ConfigIssue] = []
    try:
        cfg = Config.model_validate(data, context={"env": env, "issues": reported})
    except ValidationError as exc:
        raise ConfigError(sorted(_issues(exc) + reported, key=lambda i: i.path), source) from None
    if reported:
        raise ConfigError(sorted(reported, key=lambda i: i.path), source)
    cfg._source = source
    return cfg


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
        raise ConfigError(
            [ConfigIssue("(document)", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")], source
        ) from None
    return parse_config(data, env, source=source)
