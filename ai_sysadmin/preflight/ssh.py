"""The TCP ports of active SSH sessions on this host (the sessions a switch must not cut off).

Two sources: `SSH_CONNECTION` ("client_ip client_port server_ip server_port", which sshd
sets for the session that runs nixos-rebuild; sudo may drop it), and the ESTABLISHED
connections in /proc/net/tcp and tcp6 whose local port is one sshd listens on (the
`Port` lines of the running system's etc/ssh/sshd_config, 22 when it has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

_ESTABLISHED = "01"


def session_ports(env: Mapping[str, str], proc_net: Path, sshd_ports: set[int]) -> dict[int, str]:
    """port -> where it was seen."""
    out: dict[int, str] = {}
    parts = env.get("SSH_CONNECTION", "").split()
    if len(parts) == 4 and parts[3].isdigit():
        out[int(parts[3])] = f"SSH_CONNECTION={' '.join(parts)}"
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc_net / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 4 or f[3] != _ESTABLISHED or ":" not in f[1]:
                continue
            port = int(f[1].rsplit(":", 1)[1], 16)
            if port in sshd_ports and port not in out:
                out[port] = f"an established connection to local port {port} in {proc_net / name}"
    return out


def sshd_ports(system: Path) -> set[int]:
    """The ports in a system's etc/ssh/sshd_config (NixOS renders services.openssh.ports as `Port N`)."""
    try:
        text = (system / "etc" / "ssh" / "sshd_config").read_text(errors="replace")
    except OSError:
        return {22}
    ports = {
        int(w[1])
        for w in (ln.split() for ln in text.splitlines())
        if len(w) == 2 and w[0].lower() == "port" and w[1].isdigit()
    }
    return ports or {22}
