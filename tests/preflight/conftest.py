"""Real Nix generations shared by the preflight tests (built once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rig.nixstore import BASE, NixStore, unit, variant


class Generations:
    def __init__(self, store: NixStore):
        self.store = store
        self.gen1 = store.build(BASE)
        # Everything a switch does: a restart, a protected restart, a skip, a reload, a
        # stop, a start; a new kernel and systemd; a package update.  Verdict: warn.
        self.warn = store.build(
            variant(
                "gen2-warn",
                units={
                    "web.service": unit("web", "/bin/web --v2"),
                    "sshd.service": unit("SSH daemon", "/bin/sshd -D -e"),
                    "dbus.service": unit("D-Bus", "/bin/dbus-daemon --v2", "X-RestartIfChanged=false"),
                    "reloader.service": unit("reloader", "/bin/reloader --v2", "X-ReloadIfChanged=true"),
                    "quiet.service": unit("quiet, described anew", "/bin/quiet"),
                    "old.service": None,
                    "new.service": unit("new", "/bin/new"),
                },
                add_wants=["new.service"],
                kernel="6.6.2",
                systemd="256.2",
                packages=[{"name": "hello", "version": "1.1", "kib": 48}, {"name": "tool", "version": "2.0", "kib": 4}],
            )
        )
        # A person's account and a group removed.  Verdict: block.
        self.block = store.build(
            variant(
                "gen3-block",
                users=[u for u in BASE["users"] if u["name"] != "alice"],
                groups=[g for g in BASE["groups"] if g != "alice"],
            )
        )
        # Only an ordinary unit changes.  Verdict: ok.
        self.ok = store.build(variant("gen4-ok", units={"web.service": unit("web", "/bin/web --v4")}))


@pytest.fixture(scope="session")
def generations(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generations]:
    with pytest.MonkeyPatch.context() as mp:
        store = NixStore(tmp_path_factory.mktemp("preflight-nix"))
        for k, v in store.env.items():
            mp.setenv(k, v)  # preflight's `nix store diff-closures` reads the same store
        yield Generations(store)
