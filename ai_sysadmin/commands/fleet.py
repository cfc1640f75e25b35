"""`ai-sysadmin fleet members|add-member|remove-member`: the members' database roles on the hub.

Run on the hub by an admin whose database role has CREATEROLE and may grant on the
schema's tables (the schema owner or a superuser: `postgres` over the socket).  The
connection is the configuration's `database` section, or `--dsn` (no password in it:
libpq's PGPASSFILE, a service file or peer authentication supply it).  docs/fleet.md.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from ai_sysadmin.store import fleet

CONNECT_TIMEOUT = 10  # seconds for PostgreSQL to answer before the command says so


class PasswordUnavailable(Exception):
    """The password option names nothing usable."""


def dsn_arg(value: str) -> str:
    """`--dsn`: refused when it carries a password (it would sit in the shell history and ps)."""
    from ai_sysadmin.config import dsn_has_password

    if dsn_has_password(value):  # the message must not repeat the value
        raise argparse.ArgumentTypeError(
            "must not contain a password; use PGPASSFILE (~/.pgpass) or peer authentication"
        )
    return value


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dsn",
        type=dsn_arg,
        help="libpq connection of an admin role with CREATEROLE (default: the database section), "
        "e.g. 'host=/run/postgresql dbname=ai-sysadmin user=postgres'; no password in it",
    )
    p = sub.add_parser("fleet", help="the fleet members' database roles, on the hub (needs CREATEROLE)")
    s = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = s.add_parser("members", parents=[common], help="the member roles and whether each has a password")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    add = s.add_parser(
        "add-member", parents=[common], help="create (or re-grant) HOST's role; set its password (as a SCRAM verifier)"
    )
    add.add_argument("host", metavar="HOST", help="the member's fleet.hostId")
    pw = add.add_mutually_exclusive_group()
    pw.add_argument("--password-file", metavar="PATH", help="read the password from PATH (the member's passwordFile)")
    pw.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input (prompted on a terminal)"
    )
    rm = s.add_parser("remove-member", parents=[common], help="revoke HOST's grants and drop its role")
    rm.add_argument("host", metavar="HOST")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    verb = f"fleet {args.verb}"
    try:
        host = getattr(args, "host", None)
        if host is not None:
            fleet.member_role_name(host)  # a bad host id is refused before anything is read or opened
        password = read_password(args, host) if args.verb == "add-member" else None
    except (fleet.FleetError, PasswordUnavailable) as exc:
        return _fail(verb, str(exc))
    return asyncio.run(_run(args, load(), password))


def read_password(args: argparse.Namespace, host: str | None) -> str | None:
    """The password asked for, stripped as the member strips its password file; None when none was asked for."""
    if args.password_file:
        try:
            text = Path(args.password_file).read_text()
        except OSError as exc:
            raise PasswordUnavailable(f"cannot read {args.password_file!r}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise PasswordUnavailable(f"{args.password_file!r} is not UTF-8 text") from None
    elif args.password_stdin:
        text = getpass.getpass(f"password of {host}'s role: ") if sys.stdin.isatty() else sys.stdin.read()
    else:
        return None
    password = text.strip()
    if not password:
        raise PasswordUnavailable("the password is empty")
    return password


async def _run(args: argparse.Namespace, cfg, password: str | None) -> int:
    verb = f"fleet {args.verb}"
    try:
        conn = await _connect(cfg, args.dsn)
    except psycopg.OperationalError as exc:
        from ai_sysadmin.store.db import DatabaseUnavailable

        message = str(DatabaseUnavailable.from_error(exc))
        return _fail(verb, message.replace("the database section", "--dsn") if args.dsn else message)
    try:
        async with conn:
            if args.verb == "members":
                return await _members(conn, args.format)
            if args.verb == "add-member":
                return await _add(conn, args.host, password)
            return await _remove(conn, args.host)
    except fleet.FleetError as exc:
        return _fail(verb, str(exc))
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _fail(verb, f"PostgreSQL refused: {first}")


async def _connect(cfg, dsn: str | None) -> psycopg.AsyncConnection:
    from ai_sysadmin.store.db import connect_kwargs

    if dsn is None:
        return await psycopg.AsyncConnection.connect(
            cfg.database.conninfo(), autocommit=True, **connect_kwargs(cfg.database, CONNECT_TIMEOUT)
        )
    # Not the configured role's password: --dsn names another role, whose password libpq finds itself.
    return await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name="ai-sysadmin"
    )


async def _members(conn: psycopg.AsyncConnection, fmt: str) -> int:
    roles = await fleet.list_member_roles(conn)
    if fmt == "json":
        rows: list[dict[str, Any]] = [
            {"host": r.host, "role": r.role, "can_login": r.can_login, "password": r.password} for r in roles
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not roles:
        print("no member roles")
        return 0
    hw, rw = max(len(r.host) for r in roles), max(len(r.role) for r in roles)
    print(f"{'HOST':<{hw}}  {'ROLE':<{rw}}  LOGIN  PASSWORD")
    for r in roles:
        print(f"{r.host:<{hw}}  {r.role:<{rw}}  {'yes' if r.can_login else 'no':<5}  {r.password}")
    if any(r.password == "unknown" for r in roles):
        print("(password unknown: only a superuser may read pg_authid)")
    return 0


async def _add(conn: psycopg.AsyncConnection, host: str, password: str | None) -> int:
    existed = host in await fleet.member_roles(conn)
    role = await fleet.create_member_role(conn, host)
    print(f"member role {role} " + ("exists; its grants are renewed" if existed else "created"))
    if password is None:
        print(
            f"password: still to be set (`ai-sysadmin fleet add-member {host} --password-file PATH` or "
            "--password-stdin); without one the role cannot pass scram-sha-256 authentication"
        )
    else:
        await fleet.set_member_password(conn, host, password)
        print("password set, as a SCRAM-SHA-256 verifier computed here: the clear text did not reach the server")
    database = await fleet.database_name(conn)
    url = f"postgresql://{quote(role)}@HUB/{quote(database)}?sslmode=verify-full&sslrootcert=CA.pem"
    print(f"on the member {host} (NixOS; HUB: this hub's name in its certificate, CA.pem: the CA that signed it):")
    print(f'  services.ai-sysadmin.fleet.member.database.url = "{url}";')
    print('  services.ai-sysadmin.fleet.member.database.passwordFile = "/path/to/the/same/password";')
    print(f"on this hub, in pg_hba.conf: hostssl {database} {role} MEMBER-ADDRESS/32 scram-sha-256")
    return 0


async def _remove(conn: psycopg.AsyncConnection, host: str) -> int:
    role = fleet.member_role_name(host)
    if await fleet.drop_member_role(conn, host):
        print(f"member role {role} dropped (its pg_hba.conf line, if any, can go too)")
    else:
        print(f"no member role {role}: nothing dropped")
    return 0


def _fail(verb: str, message: str) -> int:
    print(f"ai-sysadmin {verb}: {message}", file=sys.stderr)
    return 1
