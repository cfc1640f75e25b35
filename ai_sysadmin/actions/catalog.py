"""The action catalog: every action the service can ever take, typed and argv-based.

An action is a catalog id plus parameters that must match that action's JSON schema
(jsonschema, Draft 2020-12, with `additionalProperties: false`) and a few checks a
schema cannot express.  The catalog fixes the risk; nothing a proposal says changes
it.  The argv each action runs is built here from validated values only: no shell,
no string concatenation of model or log text into a command.  Paths (the system
profile) come from the executor's own configuration, never from a proposal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import jsonschema

from ai_sysadmin.actions.types import FieldError

# A systemd unit name: at most 255 characters from systemd's own alphabet, a known
# suffix, never starting with "-" (it would read as an option, though argv also
# separates it with "--").  No "/" so no path; no whitespace or shell syntax.
UNIT_PATTERN = (
    r"^[A-Za-z0-9:_\\][A-Za-z0-9:_.\\@-]{0,240}"
    r"\.(service|socket|target|timer|mount|automount|path|slice|scope|swap)$"
)
SERVICE_PATTERN = r"^[A-Za-z0-9:_\\][A-Za-z0-9:_.\\@-]{0,240}\.service$"
UNIT_RE = re.compile(UNIT_PATTERN)
# Printable text for a notification: no control characters, bounded.
NOTIFY_PATTERN = r"^[^\x00-\x1f\x7f]{1,500}$"

MAX_PARAMS_BYTES = 4096  # a proposal's parameters larger than this are refused outright


class ProposalRejected(Exception):
    """A proposal that does not name a catalog action with valid parameters."""

    def __init__(self, errors: tuple[FieldError, ...]):
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class Step:
    """One argv to run.  `detached`: runs as a transient systemd unit (see executor)."""

    argv: tuple[str, ...]
    detached: bool = False


@dataclass(frozen=True)
class Paths:
    """What argv may name that is not a parameter: from the executor's own config."""

    system_profile: str = "/nix/var/nix/profiles/system"
    current_system: str = "/run/current-system"


class Precondition(Enum):
    """What must hold on the live host for an action to make sense; the executor checks it
    (actions/preconditions.py) right before it runs, whatever the proposal's story said."""

    UNIT_LOADED = "the unit exists (LoadState=loaded)"
    UNIT_FAILED_OR_LOOPING = (
        "the unit is failed (ActiveState=failed) or restart-looping "
        "(SubState=auto-restart, or activating/deactivating with NRestarts>0)"
    )
    JOURNAL_FS_FULL = "the journal's file system is at least thresholds.disk_percent full"
    NIX_STORE_FS_FULL = "the Nix store's file system is at least thresholds.disk_percent full"
    GENERATION_BOUND = (
        "params.from_generation is the system profile's current generation, the running "
        "system (actions.current_system) is that generation, and a previous one exists"
    )


class Verification(Enum):
    """How the executor tells that an action did what it is for (actions/verification.py), beyond
    every step exiting 0: declared on each action, so the check is data in the catalog."""

    STEPS_ONLY = "every step exited 0"
    UNIT_STAYS_ACTIVE = "the unit is active and stays active without restarting; no new failure trigger"
    UNIT_NOT_FAILED = "the unit is no longer failed"
    ARCHIVED_JOURNAL_BOUNDED = "archived journal files within the size and age asked for"
    STORE_SPACE_KEPT = "free space on the Nix store's file system did not fall"
    STORE_VERIFIES = "nix-store --verify --check-contents finds no modified path"
    PREVIOUS_GENERATION_RUNNING = (
        "the profile and the running system are the previous generation, no new failed "
        "unit, the units the incident attributed to the switch are active again"
    )


@dataclass(frozen=True)
class ActionSpec:
    id: str
    description: str
    risk: str  # low | medium | high: fixed here, never taken from a proposal
    parameters: dict[str, Any]  # JSON schema of params
    verification: str  # what the executor checks afterwards, in words
    target_of: Callable[[dict[str, Any]], str]  # what rate limits, cool-downs and breakers key on
    steps_of: Callable[[dict[str, Any], Paths], tuple[Step, ...]]
    # No default: every action states its world preconditions, `()` when it has none.
    requires: tuple[Precondition, ...]
    # No default either: every action states how it is verified (STEPS_ONLY when exiting 0 is all).
    verified_by: Verification
    needs_nixos: bool = False  # off NixOS these run as a named dry run
    timeout: float = 120.0  # seconds per step

    def target(self, params: dict[str, Any]) -> str:
        return self.target_of(params)

    def steps(self, params: dict[str, Any], paths: Paths) -> tuple[Step, ...]:
        return self.steps_of(params, paths)

    def unit(self, params: dict[str, Any]) -> str | None:
        """The systemd unit this action touches, if any (the protected-unit check)."""
        u = params.get("unit")
        return u if isinstance(u, str) else None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "risk": self.risk,
            "parameters": self.parameters,
            "verification": self.verification,
            "preconditions": [p.value for p in self.requires],
            "timeout_seconds": self.timeout,
            "needs_nixos": self.needs_nixos,
        }


@dataclass(frozen=True)
class ValidatedAction:
    spec: ActionSpec
    params: dict[str, Any]

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def risk(self) -> str:
        return self.spec.risk

    @property
    def target(self) -> str:
        return self.spec.target(self.params)

    @property
    def unit(self) -> str | None:
        return self.spec.unit(self.params)

    def steps(self, paths: Paths) -> tuple[Step, ...]:
        return self.spec.steps(self.params, paths)


def _schema(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False, **extra}


_UNIT_PARAM = {
    "type": "string",
    "pattern": UNIT_PATTERN,
    "maxLength": 256,
    "description": "a full systemd unit name, e.g. nginx.service",
}
_SERVICE_PARAM = {
    "type": "string",
    "pattern": SERVICE_PATTERN,
    "maxLength": 256,
    "description": "a full systemd service name, e.g. nginx.service",
}


def _unit_target(params: dict[str, Any]) -> str:
    return str(params["unit"])


def _vacuum_steps(params: dict[str, Any], _: Paths) -> tuple[Step, ...]:
    vacuum = ["journalctl"]
    if "max_size_mb" in params:
        vacuum.append(f"--vacuum-size={int(params['max_size_mb'])}M")
    if "max_age_days" in params:
        vacuum.append(f"--vacuum-time={int(params['max_age_days'])}d")
    return (Step(("journalctl", "--rotate")), Step(tuple(vacuum)))


def _builtin_specs() -> list[ActionSpec]:
    return [
        ActionSpec(
            id="restart_unit",
            risk="low",
            description="Restart one systemd service (systemctl restart).",
            parameters=_schema({"unit": _SERVICE_PARAM}, ["unit"]),
            verification="the unit is active after the restart and stays active, without restarting again, "
            "for actions.verify_window_seconds; no new failure trigger for it meanwhile",
            target_of=_unit_target,
            steps_of=lambda p, _: (Step(("systemctl", "restart", "--", str(p["unit"]))),),
            requires=(Precondition.UNIT_LOADED, Precondition.UNIT_FAILED_OR_LOOPING),
            verified_by=Verification.UNIT_STAYS_ACTIVE,
            timeout=120.0,
        ),
        ActionSpec(
            id="reset_failed_unit",
            risk="low",
            description="Clear the failed state of one systemd unit (systemctl reset-failed).",
            parameters=_schema({"unit": _UNIT_PARAM}, ["unit"]),
            verification="the unit is no longer in the failed state",
            target_of=_unit_target,
            steps_of=lambda p, _: (Step(("systemctl", "reset-failed", "--", str(p["unit"]))),),
            requires=(Precondition.UNIT_LOADED, Precondition.UNIT_FAILED_OR_LOOPING),
            verified_by=Verification.UNIT_NOT_FAILED,
            timeout=30.0,
        ),
        ActionSpec(
            id="vacuum_journal",
            risk="low",
            description="Rotate the journal, then delete archived journal files down to a size and/or age.",
            parameters=_schema(
                {
                    "max_size_mb": {
                        "type": "integer",
                        "minimum": 64,
                        "maximum": 1048576,
                        "description": "keep at most this many MiB of archived journal",
                    },
                    "max_age_days": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 3650,
                        "description": "delete archived journal files older than this",
                    },
                },
                [],
                minProperties=1,
            ),
            verification="the archived journal files take at most max_size_mb and none is older than "
            "max_age_days (journalctl deletes only archived files)",
            target_of=lambda _: "journal",
            steps_of=_vacuum_steps,
            requires=(Precondition.JOURNAL_FS_FULL,),
            verified_by=Verification.ARCHIVED_JOURNAL_BOUNDED,
            timeout=300.0,
        ),
        ActionSpec(
            id="collect_garbage",
            risk="medium",
            needs_nixos=True,
            description="Delete Nix profile generations older than N days, then unreachable store paths "
            "(nix-collect-garbage --delete-older-than Nd; never plain -d).",
            parameters=_schema(
                {
                    "older_than_days": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 3650,
                        "description": "keep generations younger than this",
                    }
                },
                ["older_than_days"],
            ),
            verification="nix-collect-garbage exited 0 and free space on the Nix store's file system did not "
            "fall (it rose by what was freed)",
            target_of=lambda _: "nix-store",
            steps_of=lambda p, _: (
                Step(("nix-collect-garbage", "--delete-older-than", f"{int(p['older_than_days'])}d")),
            ),
            requires=(Precondition.NIX_STORE_FS_FULL,),
            verified_by=Verification.STORE_SPACE_KEPT,
            timeout=1800.0,
        ),
        ActionSpec(
            id="rollback_generation",
            risk="high",
            needs_nixos=True,
            description="Roll the system profile back one generation and activate it "
            "(nix-env --rollback, then that generation's bin/switch-to-configuration switch, "
            "run detached with systemd-run so it survives the service restarting).",
            # The generation it rolls back *from*: a proposal may name it (nixos_generations);
            # when it does not, the proposer binds the current one (actions/preconditions.bind),
            # so the row, and the approval's signature, always say which system is undone.
            parameters=_schema(
                {
                    "from_generation": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1000000,
                        "description": "the system generation running now, which this rolls back from",
                    }
                },
                [],
            ),
            verification="the system profile and /run/current-system point at the previous generation, "
            "switch-to-configuration exited 0, and no more units are failed than before",
            requires=(Precondition.GENERATION_BOUND,),
            verified_by=Verification.PREVIOUS_GENERATION_RUNNING,
            target_of=lambda _: "system-profile",
            steps_of=lambda _, paths: (
                Step(("nix-env", "--rollback", "-p", paths.system_profile)),
                # The executor resolves this link after the rollback and runs the
                # store path it points at, not the mutable profile link.
                Step((f"{paths.system_profile}/bin/switch-to-configuration", "switch"), detached=True),
            ),
            timeout=900.0,
        ),
        ActionSpec(
            id="nix_store_repair",
            risk="high",
            needs_nixos=True,
            description="Verify every Nix store path's contents and repair corrupted ones "
            "(nix-store --verify --check-contents --repair).",
            parameters=_schema({}, []),
            verification="a second nix-store --verify --check-contents exits 0 and reports no modified path",
            target_of=lambda _: "nix-store",
            steps_of=lambda *_: (Step(("nix-store", "--verify", "--check-contents", "--repair")),),
            requires=(),  # corruption is not visible without the (long) verify this action runs
            verified_by=Verification.STORE_VERIFIES,
            timeout=3600.0,
        ),
        ActionSpec(
            id="notify",
            risk="low",
            description="Write a notice for the admins to the journal (logger -t ai-sysadmin).",
            parameters=_schema(
                {"message": {"type": "string", "pattern": NOTIFY_PATTERN, "maxLength": 500}}, ["message"]
            ),
            verification="logger exited 0",
            target_of=lambda _: "notify",
            steps_of=lambda p, _: (Step(("logger", "-t", "ai-sysadmin", "--", str(p["message"]))),),
            requires=(),  # telling the admins is always allowed
            verified_by=Verification.STEPS_ONLY,
            timeout=10.0,
        ),
    ]


def _field_of(err: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        m = re.search(r"'([^']+)' is a required property", err.message)
        if m:
            path = f"{path}.{m.group(1)}" if path else m.group(1)
    elif err.validator == "additionalProperties":
        props = err.schema.get("properties", {}) if isinstance(err.schema, Mapping) else {}
        extra = sorted(set(err.instance) - set(props)) if isinstance(err.instance, dict) else []
        if extra:
            name = str(extra[0])
            name = name if re.fullmatch(r"[A-Za-z0-9_]{1,64}", name) else "(unknown)"
            path = f"{path}.{name}" if path else name
    return "params" + (f".{path}" if path else "")


def _reason_of(err: jsonschema.ValidationError) -> str:
    """A bounded reason that never echoes a hostile value back at length."""
    v = err.validator
    if v == "pattern":
        return "not allowed (wrong form; see the parameter's schema)"
    if v == "maxLength":
        return f"too long (at most {err.validator_value} characters)"
    if v == "type":
        return f"must be of type {err.validator_value}"
    if v in ("minimum", "maximum"):
        return f"must be {'at least' if v == 'minimum' else 'at most'} {err.validator_value}"
    if v == "required":
        return "required"
    if v == "additionalProperties":
        return "unknown parameter"
    if v == "minProperties":
        props = err.schema.get("properties", {}) if isinstance(err.schema, Mapping) else {}
        return f"needs at least {err.validator_value} of: {', '.join(sorted(props))}"
    msg = err.message
    return msg if len(msg) <= 200 else msg[:200] + "..."


@dataclass
class Catalog:
    specs: dict[str, ActionSpec] = field(default_factory=dict)

    def get(self, action_id: Any) -> ActionSpec | None:
        return self.specs.get(action_id) if isinstance(action_id, str) else None

    def ids(self) -> list[str]:
        return list(self.specs)

    def validate(self, action_id: Any, params: Any) -> ValidatedAction:
        """The typed action, or ProposalRejected naming every bad field."""
        spec = self.get(action_id)
        if spec is None:
            shown = action_id if isinstance(action_id, str) and re.fullmatch(r"[a-z_]{1,40}", action_id) else None
            raise ProposalRejected(
                (
                    FieldError(
                        "action", f"unknown action{f' {shown!r}' if shown else ''}; known: {', '.join(self.ids())}"
                    ),
                )
            )
        if not isinstance(params, dict):
            raise ProposalRejected((FieldError("params", "must be an object"),))
        try:
            size = len(json.dumps(params, default=str))
        except (TypeError, ValueError, RecursionError):
            raise ProposalRejected((FieldError("params", "not JSON"),)) from None
        if size > MAX_PARAMS_BYTES:
            raise ProposalRejected((FieldError("params", f"too large ({size} bytes; at most {MAX_PARAMS_BYTES})"),))
        validator = jsonschema.Draft202012Validator(spec.parameters)
        errors = sorted(validator.iter_errors(params), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
        if errors:
            seen: dict[str, FieldError] = {}
            for e in errors:
                f = _field_of(e)
                seen.setdefault(f, FieldError(f, _reason_of(e)))
            raise ProposalRejected(tuple(seen.values()))
        # Python's `$` also matches before a final newline: no string may carry control characters.
        bad = [
            FieldError(f"params.{k}", "control characters not allowed")
            for k, v in params.items()
            if isinstance(v, str) and re.search(r"[\x00-\x1f\x7f]", v)
        ]
        if bad:
            raise ProposalRejected(tuple(bad))
        # A copy of only the known, validated values: nothing else reaches argv.
        clean = {k: params[k] for k in spec.parameters.get("properties", {}) if k in params}
        return ValidatedAction(spec, clean)

    def describe(self) -> list[dict[str, Any]]:
        return [s.describe() for s in self.specs.values()]


def load_catalog() -> Catalog:
    return Catalog({s.id: s for s in _builtin_specs()})
