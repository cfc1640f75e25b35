"""A real llama-server process on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rig.net import free_port, wait_until
from rig.paths import rig_paths
from rig.proc import exit_report, spawn_logged


@dataclass
class LlamaServer:
    alias: str
    model: Path
    binary: Path
    log_path: Path
    port: int = 0
    host: str = "127.0.0.1"
    ctx_size: int = 4096
    parallel: int = 2
    # One thread: llama.cpp's worker threads spin on barriers, so on a loaded 2-core box
    # two threads can be far slower than one; tests must not depend on spare cores.
    threads: int = 1
    chat_template: Path | None = None  # enables --jinja with this template (tool calling)
    embeddings: bool = False
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        args = [
            str(self.binary),
            "--model",
            str(self.model),
            "--alias",
            self.alias,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--ctx-size",
            str(self.ctx_size),
            "--parallel",
            str(self.parallel),
            "--threads",
            str(self.threads),
            "--metrics",
            "--no-webui",
        ]
        if self.chat_template:
            args += ["--jinja", "--chat-template-file", str(self.chat_template)]
        if self.embeddings:
            args += ["--embeddings", "--pooling", "mean"]
        return args + list(self.extra_args)

    def start(self, timeout: float = 120.0) -> LlamaServer:
        if not self.port:
            self.port = free_port()
        self.proc = spawn_logged(self.argv(), self.log_path)
        try:
            wait_until(self.healthy, timeout, f"llama-server {self.alias} on :{self.port}", alive=self._dead)
        except Exception:
            self.stop()
            raise
        return self

    def _dead(self) -> str | None:
        return exit_report(self.proc, self.log_path)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return r.status == 200 and json.load(r).get("status") == "ok"
        except Exception:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout: float = 120.0) -> LlamaServer:
        """Start again on the same port (a stopped role server coming back)."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> LlamaServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _provisioned_server(
    model_key: str, alias: str, log_dir: Path, *, tools: bool, port: int, **kw: object
) -> LlamaServer:
    """A llama-server for one of the rig's provisioned models (`model_key` in rig.env's paths)."""
    paths = rig_paths()
    return LlamaServer(
        alias=alias,
        model=paths.need(model_key),
        binary=paths.need("llama_server"),
        log_path=log_dir / f"llama-{alias}.log",
        port=port,
        chat_template=paths.need("chat_template") if tools else None,
        **kw,  # type: ignore[arg-type]
    )


def tiny_server(
    alias: str, log_dir: Path, *, tools: bool = False, embeddings: bool = False, port: int = 0, **kw: object
) -> LlamaServer:
    """A llama-server serving the provisioned SmolLM2-135M as `alias`."""
    return _provisioned_server("model", alias, log_dir, tools=tools, port=port, embeddings=embeddings, **kw)


def judge_server(alias: str, log_dir: Path, *, tools: bool = False, port: int = 0, **kw: object) -> LlamaServer:
    """A llama-server serving the provisioned Qwen2.5-Coder-1.5B-Instruct (the judge model) as `alias`.

    A model that can judge, unlike SmolLM2-135M: ~2 GiB RSS, loads in ~6 s, about 120
    prompt / 22 generated tokens per second on two idle cores.
    """
    return _provisioned_server("judge_model", alias, log_dir, tools=tools, port=port, **kw)
