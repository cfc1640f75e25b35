"""Option sets the checks render (NixOS options as JSON; packages as __package markers)."""

from __future__ import annotations

import copy
from typing import Any

MODEL = "/var/lib/models/tiny.gguf"
AI_PKG = {"__package": "/nix/store/00000000000000000000000000000000-ai-sysadmin-stand-in", "name": "ai-sysadmin"}
SECRET_PATH = "/run/keys/ai-sysadmin-api-key"
DB_SECRET_PATH = "/run/keys/ai-sysadmin-db-password"
FLEET_TLS = {
    "keyFile": "/var/lib/secrets/journal/host.key",
    "certFile": "/var/lib/secrets/journal/host.pem",
    "trustFile": "/var/lib/secrets/journal/ca.pem",
}
FLEET_DB_URL = "postgresql://ai_sysadmin_member_web-1@hub.example.org/ai-sysadmin?sslmode=verify-full"
FLEET_DB_SECRET_PATH = "/run/keys/ai-sysadmin-hub-db"


def base(**svc: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "enable": True,
        "package": AI_PKG,
        "llamacpp": {r: {"model": MODEL} for r in ("trigger", "review", "meta")},
    }
    _merge(cfg, svc)
    # A container: NixOS' root-filesystem and boot-loader assertions do not apply
    # (nixos/modules/system/boot/stage-1.nix, loader/grub/grub.nix).
    return {"services": {"ai-sysadmin": cfg}, "boot": {"isContainer": True}}


def _merge(a: dict[str, Any], b: dict[str, Any]) -> None:
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _merge(a[k], v)
        else:
            a[k] = copy.deepcopy(v)


CASES: dict[str, dict[str, Any]] = {
    "default": base(),
    "cpu": base(llamacpp={"acceleration": "cpu"}),
    "cuda": base(llamacpp={"acceleration": "cuda"}),
    "rocm": base(llamacpp={"acceleration": "rocm"}),
    "vulkan": base(llamacpp={"acceleration": "vulkan"}),
    "api-loopback": base(api={"enable": True}),
    "api-exposed": base(api={"enable": True, "host": "0.0.0.0", "apiKeyFile": SECRET_PATH, "openFirewall": True}),
    "roles-disabled": base(llamacpp={"review": {"enable": False}, "meta": {"enable": False}}, api={"enable": True}),
    "embed": base(llamacpp={"embed": {"enable": True, "model": MODEL}}),
    "remote-db": base(
        database={"createLocally": False, "url": "postgresql://db.example.org/ai", "passwordFile": DB_SECRET_PATH}
    ),
    "chromadb": base(knowledgeBase={"backend": "chromadb"}),
    "llama-off": base(llamacpp={"enable": False}),
    "fleet-hub": base(fleet={"role": "hub", "tls": FLEET_TLS}),
    "fleet-member": base(
        fleet={
            "role": "member",
            "hostId": "web-1",
            "tls": FLEET_TLS,
            "member": {
                "hubUrl": "https://hub.example.org:19532",
                "database": {"url": FLEET_DB_URL, "passwordFile": FLEET_DB_SECRET_PATH},
            },
        }
    ),
}
# CUDA is unfree in nixpkgs (cudaPackages): a CUDA host allows it, so do these cases.
CASES["cuda"]["nixpkgs"] = {"config": {"allowUnfree": True}}
for level in ("observe", "suggest", "auto-safe", "auto-full"):
    CASES[f"autonomy-{level}"] = base(autonomyLevel=level)
