"""The firewall check on real generations: a NixOS-rendered firewall start script (iptables)
or ruleset (nftables) in a real Nix store, an active SSH session on port 22 (SSH_CONNECTION
or an ESTABLISHED row in a /proc/net/tcp-format file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import unit_is_protected
from ai_sysadmin.preflight.check import Report, SwitchAction, run_preflight
from ai_sysadmin.preflight.verdict import Verdict
from rig.nixstore import variant
from tests.preflight.conftest import Generations

SSH = {"SSH_CONNECTION": "10.0.0.9 51000 10.0.0.1 22"}
# /proc/net/tcp: sl local rem st ... ; 0x16 = 22, state 01 = ESTABLISHED; 0x1F90 = 8080 listening (0A)
PROC_TCP = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100000A:0016 0900000A:C738 01 00000000:00000000 00:00000000 00000000     0        0 1\n"
    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2\n"
)


@pytest.fixture(scope="module")
def fw(generations: Generations) -> dict[str, str]:
    b = generations.store.build
    return {
        "ipt_open": b(variant("fw-ipt-open", firewall={"tcp": [22, 80]})),
        "ipt_closed": b(variant("fw-ipt-closed", firewall={"tcp": [80]})),
        "ipt_range": b(variant("fw-ipt-range", firewall={"tcp": [80], "ranges": [[20, 30]]})),
        "nft_open": b(variant("fw-nft-open", nftables={"tcp": [22, 443]})),
        "nft_closed": b(variant("fw-nft-closed", nftables={"tcp": [443]})),
    }


def check(cur: str, new: str, env: dict[str, str], proc: Path) -> Report:
    return run_preflight(new, cur, SwitchAction.SWITCH, lambda u: unit_is_protected(u, ()), env=env, proc_net=proc)


def flags(r: Report, kind: str) -> list[Any]:
    return [f for f in r.flags if f.kind == kind]


def test_iptables_closing_the_ssh_port_blocks_with_evidence(fw: dict[str, str], tmp_path: Path) -> None:
    r = check(fw["ipt_open"], fw["ipt_closed"], SSH, tmp_path)
    assert r.verdict is Verdict.BLOCK
    (f,) = flags(r, "firewall-closes-ssh")
    assert f.evidence["port"] == 22 and "SSH_CONNECTION" in f.evidence["session"]
    assert any("--dport 22 -j nixos-fw-accept" in e for e in f.evidence["current"])
    assert "no rule accepts TCP port 22" in f.evidence["new"] and "firewall-start" in f.evidence["new"]
    # A range that still covers 22 keeps the session: no block.
    assert not flags(check(fw["ipt_open"], fw["ipt_range"], SSH, tmp_path), "firewall-closes-ssh")


def test_nftables_and_proc_net_session(fw: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "tcp").write_text(PROC_TCP)
    r = check(fw["nft_open"], fw["nft_closed"], {}, tmp_path)
    assert r.verdict is Verdict.BLOCK
    (f,) = flags(r, "firewall-closes-ssh")
    assert "local port 22" in f.evidence["session"]
    assert any("tcp dport { 22, 443 } accept" in e for e in f.evidence["current"])


def test_no_session_or_firewall_off_is_no_block(fw: dict[str, str], generations: Generations, tmp_path: Path) -> None:
    # No SSH session: the firewall is not consulted.
    assert not flags(check(fw["ipt_open"], fw["ipt_closed"], {}, tmp_path), "firewall-closes-ssh")
    # Firewall turned off (no firewall unit in the new system): port 22 open.
    assert not flags(check(fw["ipt_open"], generations.gen1, SSH, tmp_path), "firewall-closes-ssh")
    # Enabling a firewall that leaves 22 out, from none: the current one allows everything -> block.
    assert flags(check(generations.gen1, fw["ipt_closed"], SSH, tmp_path), "firewall-closes-ssh")


def test_unreadable_rules_are_a_note(fw: dict[str, str], tmp_path: Path) -> None:
    # A firewall.service that is not NixOS's: not guessed, said.
    cur = tmp_path / "cur"
    (cur / "etc/systemd/system").mkdir(parents=True)
    (cur / "nixos-version").write_text("25.05\n")
    (cur / "etc/systemd/system/firewall.service").write_text("[Service]\nExecStart=/nonexistent/fw start\n")
    r = check(str(cur), fw["ipt_closed"], SSH, tmp_path)
    assert not flags(r, "firewall-closes-ssh")
    (note,) = flags(r, "firewall-unchecked")
    assert note.message.startswith("firewall not checked for the SSH session on port 22")
