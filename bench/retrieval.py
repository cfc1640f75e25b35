"""Retrieval quality of the knowledge base on the shipped runbooks: top-1 and top-3.

Natural questions, written the way a new admin would type them (not copied from the
runbooks), each with the runbook that answers it.  Ranked three ways against a real
embedded ChromaDB with real vectors from the rig's tiny embedder (SmolLM2-135M via
llama-server --embeddings, a weak embedding model on purpose):

    vector   -- cosine similarity only (the ranking before hybrid retrieval)
    lexical  -- BM25 only
    hybrid   -- BM25 ranks fused with vector ranks (RRF), what `knowledge search` does

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python -m bench.retrieval [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from ai_sysadmin.config import KnowledgeConfig, parse_config
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.store.knowledge import KnowledgeBase
from rig.llama import tiny_server

QUERIES: list[tuple[str, str]] = [
    ("the disk is full, no space left on device", "disk-full"),
    ("writes fail with ENOSPC", "disk-full"),
    ("/var is at 100% and postgres cannot write", "disk-full"),
    ("how do I free space in /nix/store", "disk-full"),
    ("journal is taking too many gigabytes", "disk-full"),
    ("ran out of inodes on the root filesystem", "disk-full"),
    ("the kernel killed my java process, out of memory", "oom"),
    ("oom-kill in dmesg", "oom"),
    ("server runs out of RAM and starts swapping", "oom"),
    ("a unit stopped with Result: oom-kill", "oom"),
    ("memory pressure is high and processes die", "oom"),
    ("nginx keeps restarting every few seconds", "crash-loop"),
    ("Start request repeated too quickly", "crash-loop"),
    ("service hit start-limit-hit and stays failed", "crash-loop"),
    ("restart counter is at 5 for my service", "crash-loop"),
    ("systemd unit fails with exit-code right after start", "crash-loop"),
    ("nixos-rebuild switch fails with an error", "nixos-rebuild-failed"),
    ("builder for a derivation failed during rebuild", "nixos-rebuild-failed"),
    ("after switching configuration some units failed to activate", "nixos-rebuild-failed"),
    ("infinite recursion encountered in my configuration.nix", "nixos-rebuild-failed"),
    ("evaluation error: attribute missing", "nixos-rebuild-failed"),
    ("hash mismatch on a path in the nix store", "nix-store-corruption"),
    ("path in /nix/store is not valid after power loss", "nix-store-corruption"),
    ("nix-store --verify reports modified paths", "nix-store-corruption"),
    ("programs crash with I/O errors from store files", "nix-store-corruption"),
    ("how do I repair a damaged store path", "nix-store-corruption"),
    ("x509: certificate has expired", "certificate-expiry"),
    ("my TLS certificate expired and browsers complain", "certificate-expiry"),
    ("ACME renewal for my domain failed", "certificate-expiry"),
    ("let's encrypt cert did not renew", "certificate-expiry"),
    ("lots of Failed password for invalid user in the sshd log", "ssh-brute-force"),
    ("someone is trying to brute force ssh logins", "ssh-brute-force"),
    ("many login attempts from unknown IP addresses", "ssh-brute-force"),
    ("should I enable fail2ban, sshd is hammered", "ssh-brute-force"),
    ("clock is wrong and not synchronized", "time-sync"),
    ("timedatectl says System clock synchronized: no", "time-sync"),
    ("NTP does not work, time drifts", "time-sync"),
    ("chronyd logged a large time jump", "time-sync"),
    ("TOTP codes rejected because the time is off", "time-sync"),
    ("systemd-timesyncd cannot reach the time servers", "time-sync"),
]


async def run(verbose: bool) -> dict[str, tuple[float, float]]:
    logs = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    server = tiny_server("embed", logs, embeddings=True).start()
    try:
        role = parse_config(
            {"roles": {"embed": {"url": server.url, "model": "embed", "timeout": 300}}}, env={}
        ).roles.embed
        async with LLMClient(role) as embedder:
            kb = await KnowledgeBase.open(KnowledgeConfig(path=str(logs / "kb"), url=None), embedder)
            await kb.index_runbooks()
            results: dict[str, tuple[float, float]] = {}
            for mode in ("vector", "lexical", "hybrid"):
                top1 = top3 = 0
                for query, want in QUERIES:
                    hits = await kb.search(query, ["runbooks"], k=3, mode=mode)
                    ids = [h.id for h in hits]
                    top1 += bool(ids[:1] == [want])
                    top3 += want in ids
                    if verbose and ids[:1] != [want]:
                        print(f"  {mode:<8} miss: {query!r} -> {ids} (want {want})")
                results[mode] = (top1 / len(QUERIES), top3 / len(QUERIES))
            example = await kb.search("the disk is full, no space left on device", ["runbooks"], k=5, mode="vector")
            print("vector-only top 5 for 'the disk is full, no space left on device':", [h.id for h in example])
            return results
    finally:
        server.stop()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    results = asyncio.run(run(args.verbose))
    print(f"{len(QUERIES)} natural queries over 8 shipped runbooks, tiny embedder (SmolLM2-135M)")
    print(f"{'ranking':<10} {'top-1':>6} {'top-3':>6}")
    for mode, (t1, t3) in results.items():
        print(f"{mode:<10} {t1:>6.3f} {t3:>6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
