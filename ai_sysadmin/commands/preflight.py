"""`ai-sysadmin preflight NEW_SYSTEM`: judge a NixOS switch before it happens.

Exit status: 0 ok, 1 warn, 2 block (the verdict), 3 bad input (one line naming it).
NixOS runs it from `system.preSwitchChecks` (services.ai-sysadmin.preflight) as
`ai-sysadmin-preflight` (`main` below): the same command without importing every other
subcommand (openai, psycopg, httpx), which would cost seconds on every switch.  See
docs/preflight.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, NoReturn

from ai_sysadmin.preflight.verdict import EXIT_USAGE

if TYPE_CHECKING:
    from ai_sysadmin.preflight.check import Report

_ACTIONS = ("switch", "boot", "test", "dry-activate", "check")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preflight", help="judge a NixOS switch before it happens (exit 0 ok, 1 warn, 2 block)")
    p.add_argument("new_system", metavar="NEW_SYSTEM", help="the system path to switch to (a nixos-system store path)")
    p.add_argument(
        "--current", metavar="PATH", help="the running system (default: actions.current_system, /run/current-system)"
    )
    p.add_argument(
        "--action", choices=_ACTIONS, default="switch", help="switch-to-configuration's verb (default switch)"
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--nix", metavar="PATH", default="nix", help="the nix command for diff-closures (default: nix on PATH)"
    )
    p.add_argument(
        "--model",
        dest="use_model",
        action="store_true",
        default=None,
        help="also ask the review model for a summary (it may raise the verdict, never lower it)",
    )
    p.add_argument(
        "--no-model",
        dest="use_model",
        action="store_false",
        help="do not ask the model (default for ai-sysadmin-preflight; ai-sysadmin preflight asks "
        "when the review role is enabled)",
    )
    p.set_defaults(func=run)

    def usage_error(message: str) -> NoReturn:  # argparse's exit 2 would read as "block"
        print(f"ai-sysadmin preflight: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    p.error = usage_error


def run(args: argparse.Namespace, load) -> int:
    from ai_sysadmin.config import ConfigError, unit_is_protected
    from ai_sysadmin.preflight import history
    from ai_sysadmin.preflight.check import SwitchAction, run_preflight
    from ai_sysadmin.preflight.system import PreflightInputError

    try:
        cfg = load()
    except ConfigError as exc:
        print(f"ai-sysadmin preflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    protected = cfg.protected_units
    try:
        report = run_preflight(
            args.new_system,
            args.current or cfg.actions.current_system,
            SwitchAction(args.action),
            lambda unit: unit_is_protected(unit, protected),
            nix=args.nix,
            extra_flags=lambda planned, diff: history.flags(cfg.database, planned, diff),
        )
    except PreflightInputError as exc:
        print(f"ai-sysadmin preflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file vanished or became unreadable mid-check
        print(f"ai-sysadmin preflight: {exc.filename or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    explicit = bool(args.use_model)
    if args.use_model or (args.use_model is None and cfg.roles.review.enable):
        from ai_sysadmin.preflight import summary

        # The model's time counts into the report's: the whole check stays within ~30 s.
        model = summary.ask(cfg.roles.review, report, cfg.review.preflight_model_timeout)
        report = summary.apply(report, model, explicit)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render_text(report))
    return report.verdict.exit_code


def render_text(report: Report) -> str:
    from ai_sysadmin.preflight.risks import Severity

    lines = [f"preflight {report.action.value}: {report.verdict.value.upper()}"]
    lines += [f"  - {r}" for r in report.decision.reasons]
    lines.append(f"  new:     {report.new}")
    lines.append(f"  current: {report.current or '(none)'}")
    if report.units:
        lines.append("units:")
        lines += [f"  {u.action.value:<10} {u.unit}  ({u.reason})" for u in report.units]
    diff = report.closure
    if diff is not None:
        free = "unknown" if diff.store_free_bytes is None else f"{diff.store_free_bytes / (1 << 20):.1f} MiB"
        lines.append(
            f"closure: {len(diff.changes)} packages changed, adds {diff.added_bytes / (1 << 20):.1f} MiB "
            f"(net {diff.net_bytes / (1 << 20):+.1f} MiB); store free {free}"
        )
        for c in diff.changes[:40]:
            vers = f"{', '.join(c.before) or '∅'} → {', '.join(c.after) or '∅'}" if c.before or c.after else ""
            size = "" if c.size_delta is None else f" {c.size_delta / 1024:+.1f} KiB"
            lines.append(f"  {c.package}: {vers}{size}".rstrip())
        if len(diff.changes) > 40:
            lines.append(f"  ... {len(diff.changes) - 40} more (--format json lists all)")
    if report.model is not None and report.model.summary:
        lines.append(f"model ({report.model.role}, {report.model.elapsed_s:.1f} s): {report.model.verdict}")
        lines.append(f"  {report.model.summary}")
        lines.append(f"  recommendation: {report.model.recommendation}")
    notes = [f for f in report.flags if f.severity is Severity.INFO]
    if notes:
        lines.append("notes:")
        lines += [f"  {f.message}" for f in notes]
    lines.append(f"({report.elapsed_s:.2f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`ai-sysadmin-preflight [--config PATH] NEW_SYSTEM ...`: `ai-sysadmin preflight` alone."""
    from ai_sysadmin.config import load_config

    parser = argparse.ArgumentParser(prog="ai-sysadmin-preflight")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    p = sub.choices["preflight"]
    p.prog = "ai-sysadmin-preflight"
    p.add_argument("--config", metavar="PATH", help="JSON configuration (default: $AI_SYSADMIN_CONFIG, else defaults)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.use_model is None:  # before every switch: the model only when the module option asks (--model)
        args.use_model = False
    try:
        return run(args, lambda: load_config(args.config))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
