"""A secret read from a file: never printed, never written into the configuration's JSON.

Every `*_file` setting names its secret the same two ways: a path, or a bare systemd
credential name (`LoadCredential=`) that resolves in `$CREDENTIALS_DIRECTORY`;
`credential_path` is the one place that tells them apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_core import core_schema


class CredentialUnavailable(Exception):
    """A bare credential name with no `$CREDENTIALS_DIRECTORY` to resolve it in."""


def credential_path(ref: str, what: str, env: Mapping[str, str] | None = None) -> Path:
    """Where the secret `ref` lives: `ref` itself when it is a path (it has a `/`), else the
    credential of that name.  `what` names the secret in the error ("approval key")."""
    if "/" in ref:
        return Path(ref)
    cred_dir = (os.environ if env is None else env).get("CREDENTIALS_DIRECTORY")
    if not cred_dir:
        raise CredentialUnavailable(f"{what} credential {ref!r} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)")
    return Path(cred_dir) / ref


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

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        # A model dump (`config show`, JSON) shows where a secret came from, never its value.
        return core_schema.is_instance_schema(
            cls, serialization=core_schema.plain_serializer_function_ser_schema(lambda _: "<secret>")
        )


class SecretFile(str):
    """A `*_file` value as written (a path or a credential name), with the secret read from it."""

    secret: Secret
