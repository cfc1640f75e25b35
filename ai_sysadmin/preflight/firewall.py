"""Whether a NixOS system's firewall lets TCP port P in, from what the system path holds.

NixOS renders `networking.firewall.allowedTCPPorts` (openssh's `openFirewall` adds its
ports there) into the firewall unit's start script:

* iptables backend (nixpkgs `nixos/modules/services/networking/firewall-iptables.nix`):
  `firewall.service` has `ExecStart=@/nix/store/…-firewall-start firewall-start`, and
  that script has one line per port,
  `ip46tables -A nixos-fw -p tcp --dport 22 -j nixos-fw-accept` (ranges `--dport A:B`,
  a trailing `-i IFACE` for `networking.firewall.interfaces.IFACE`);
* nftables backend (`firewall-nftables.nix`): the ruleset that `nftables.service` loads
  has `tcp dport { 22, 8000-8010 } accept` (prefixed `iifname { … }` per interface).

No firewall unit at all means the firewall is off: every port is open.  Anything this
cannot read is Unknown, with the reason: the caller says "firewall not checked".
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ai_sysadmin.preflight.units import parse_unit

_IPT_ACCEPT = re.compile(r"-p tcp\b[^\n]*?--dport (\d+)(?::(\d+))?[^\n]*?-j nixos-fw-accept")
_NFT_ACCEPT = re.compile(r"tcp dport (\{[^}]*\}|\d+(?:-\d+)?) accept")
_STORE_FILE = re.compile(r"(/[^\s'\";]+/[a-z0-9]{32}-[^\s'\";/]+(?:/[^\s'\";]+)?)")
_MAX_READ = 4 << 20  # a start script or ruleset is kilobytes; do not read a binary by mistake


@dataclass(frozen=True)
class PortState:
    """`allowed` is None when the rules could not be read (`why` says what)."""

    allowed: bool | None
    why: str
    evidence: tuple[str, ...] = ()


def tcp_port_allowed(units_dir: Path, port: int) -> PortState:
    fw = units_dir / "firewall.service"
    nft = units_dir / "nftables.service"
    if not os.path.lexists(fw) and not os.path.lexists(nft):
        return PortState(True, "no firewall.service or nftables.service: the firewall is off")
    texts: list[tuple[str, str]] = []
    for unit in (fw, nft):
        if os.path.lexists(unit):
            try:
                texts += _exec_texts(unit)
            except OSError as exc:
                return PortState(None, f"{unit.name}: {exc.strerror or exc}")
    if not texts:
        return PortState(None, "the firewall unit names no readable start script")
    evidence: list[str] = []
    recognised = False
    for path, text in texts:
        if "nixos-fw" in text:
            recognised = True
            for m in _IPT_ACCEPT.finditer(text):
                lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
                if lo <= port <= hi:
                    evidence.append(f"{path}: {m.group(0)}")
        for m in _NFT_ACCEPT.finditer(text):
            recognised = True
            if port in _nft_set(m.group(1)):
                evidence.append(f"{path}: {m.group(0)}")
    if not recognised:
        return PortState(None, "the firewall unit's scripts are not the NixOS firewall (no nixos-fw rules)")
    if evidence:
        return PortState(True, f"TCP port {port} accepted", tuple(evidence))
    return PortState(False, f"no rule accepts TCP port {port} in " + ", ".join(sorted({p for p, _ in texts})))


def _exec_texts(unit: Path) -> list[tuple[str, str]]:
    """The scripts the unit's ExecStart names and the store files those name (the ruleset)."""
    info = parse_unit(unit)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in info.get("Service", {}).get("ExecStart", []):
        try:
            argv = shlex.split(line)
        except ValueError:
            continue
        if not argv:
            continue
        exe = argv[0].lstrip("@-:+!")
        for candidate in [exe, *argv[1:]]:
            text = _read_text(candidate, seen)
            if text is None:
                continue
            out.append((candidate, text))
            for ref in _STORE_FILE.findall(text):  # one level: the ruleset file a start script loads
                sub = _read_text(ref, seen)
                if sub is not None:
                    out.append((ref, sub))
    return out


def _read_text(path: str, seen: set[str]) -> str | None:
    if not path.startswith("/") or path in seen:
        return None
    seen.add(path)
    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size > _MAX_READ:
            return None
        data = p.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:  # a binary (nft itself), not a script
        return None
    return data.decode(errors="replace")


def _nft_set(spec: str) -> _Ranges:
    items = [s.strip() for s in spec.strip("{} ").split(",") if s.strip()]
    return _Ranges(items)


class _Ranges:
    def __init__(self, items: list[str]):
        self.ranges: list[tuple[int, int]] = []
        for it in items:
            lo, _, hi = it.partition("-")
            if lo.isdigit() and (not hi or hi.isdigit()):
                self.ranges.append((int(lo), int(hi or lo)))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(lo <= port <= hi for lo, hi in self.ranges)
