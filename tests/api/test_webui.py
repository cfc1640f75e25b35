"""What Open WebUI (0.12.4) meets, over real llama-servers: silent upstreams, background
tasks, its built-in tools, oversized prompts, failed investigations, and the API's log.

Own API processes: `webui_api` (idle limit IDLE seconds) over review and meta servers of this
module's own, which tests stop with SIGSTOP and resume with SIGCONT (always, in a `finally`;
the fixtures stop the servers at the module's end); `dead_meta_api` whose meta role points at
a port where nothing listens, so every investigation fails.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ai_sysadmin.api.background import background_task
from ai_sysadmin.llm.liveness import probe_timeout
from rig.llama import LlamaServer
from rig.net import free_port, wait_until
from tests.api.conftest import ApiProcess, base_config, metric, wait_slots_free
from tests.conftest import _server

IDLE = 2.0  # api.upstream_idle_timeout of webui_api
# A server stopped before its first token is found out after IDLE s of silence plus a failed
# /health probe; the margin covers a loaded 2-core host.  Far below the roles' timeouts (120 s, 600 s).
GONE_WITHIN = IDLE + probe_timeout(IDLE) + 6
LONG_PROMPT = 1000  # tokens: seconds of prompt processing for SmolLM2-135M on one thread (minutes on a loaded host)
BACKGROUND_CAP = 8  # api.background_max_tokens of webui_api

# Open WebUI 0.12.4's DEFAULT_FOLLOW_UP_GENERATION_PROMPT_TEMPLATE (backend/open_webui/config.py),
# its opening and output lines, with a chat history filled in the way Open WebUI does.
OPEN_WEBUI_0124_FOLLOW_UP = (
    "### Task:\nPredict 3-5 useful messages this user might naturally send next to advance their current "
    "objective.\n### Guidelines:\n- Write from the user's point of view, directed to the assistant.\n"
    '- Response must be a JSON object with a "follow_ups" key containing an array of strings, no extra text '
    'or formatting.\n### Output:\nJSON format: { "follow_ups": ["Suggested next message 1", "Suggested '
    'next message 2"] }\n### Chat History:\n<chat_history>\nUSER: why is nginx down?\nASSISTANT: its config '
    "has a syntax error\n</chat_history>"
)


def client_tools(n: int = 29) -> list[dict[str, Any]]:
    """As many tools as Open WebUI attaches, about as large (over 20 KB)."""
    return [
        {
            "type": "function",
            "function": {
                "name": f"owui_tool_{i}",
                "description": f"Open WebUI built-in tool {i}: " + "search notes and memories " * 20,
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "what " * 20}},
                    "required": ["query"],
                },
            },
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def stall_server(rig_logs: Path) -> Iterator[LlamaServer]:
    # 4,096 tokens per slot: room for LONG_PROMPT.
    yield from _server("review", rig_logs, log_name="llama-webui-review.log", ctx_size=8192)


@pytest.fixture(scope="module")
def stall_meta(rig_logs: Path) -> Iterator[LlamaServer]:
    """webui_api's meta server, which a test stops mid-investigation (the agent's tool prompt is ~3k tokens)."""
    yield from _server("meta", rig_logs, log_name="llama-webui-meta.log", tools=True, ctx_size=16384, parallel=2)


@contextmanager
def stopped(server: LlamaServer) -> Iterator[float]:
    """The server SIGSTOPped (its connections stay open, nothing answers); resumed on leaving, always."""
    assert server.proc is not None and server.proc.poll() is None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield time.monotonic()
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def _start(tmp: Path, cfg: dict[str, Any], keys: dict[str, str]) -> ApiProcess:
    return ApiProcess(cfg, tmp, keys=keys).start()


@pytest.fixture(scope="module")
def webui_api(
    tmp_path_factory: pytest.TempPathFactory,
    llama_trigger: LlamaServer,
    stall_server: LlamaServer,
    stall_meta: LlamaServer,
    api_db: dict[str, Any],
) -> Iterator[ApiProcess]:
    tmp = tmp_path_factory.mktemp("webui-api")
    keys = {"webui": "k-" + secrets.token_hex(16)}
    (tmp / "api.keys").write_text("".join(f"{n}:{k}\n" for n, k in keys.items()))
    cfg = base_config(
        tmp,
        trigger=llama_trigger,
        review=stall_server,
        meta=stall_meta,
        embed=None,
        db=api_db,
        api={
            "api_key_file": str(tmp / "api.keys"),
            "upstream_idle_timeout": IDLE,
            "background_max_tokens": BACKGROUND_CAP,
        },
    )
    cfg["roles"]["review"]["timeout"] = 120  # the wait for a first token: far longer than the idle limit
    cfg["roles"]["meta"]["timeout"] = 600
    proc = _start(tmp, cfg, keys)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def dead_meta_api(
    tmp_path_factory: pytest.TempPathFactory,
    llama_trigger: LlamaServer,
    stall_server: LlamaServer,
    api_meta: LlamaServer,
    api_db: dict[str, Any],
) -> Iterator[ApiProcess]:
    tmp = tmp_path_factory.mktemp("dead-meta-api")
    cfg = base_config(tmp, trigger=llama_trigger, review=stall_server, meta=api_meta, embed=None, db=api_db, api={})
    cfg["roles"]["meta"]["url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = _start(tmp, cfg, {})
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def tools_pass_api(
    tmp_path_factory: pytest.TempPathFactory,
    llama_trigger: LlamaServer,
    stall_server: LlamaServer,
    api_meta: LlamaServer,
    api_db: dict[str, Any],
) -> Iterator[ApiProcess]:
    tmp = tmp_path_factory.mktemp("tools-pass-api")
    cfg = base_config(
        tmp,
        trigger=llama_trigger,
        review=stall_server,
        meta=api_meta,
        embed=None,
        db=api_db,
        api={"client_tools": "pass"},
    )
    proc = _start(tmp, cfg, {})
    try:
        yield proc
    finally:
        proc.stop()


def _client(api: ApiProcess) -> openai.OpenAI:
    key = next(iter(api.keys.values()), "none")
    return openai.OpenAI(base_url=f"{api.url}/v1", api_key=key, max_retries=0, timeout=120)


def _headers(api: ApiProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {next(iter(api.keys.values()))}"} if api.keys else {}


def _log_lines(api: ApiProcess, rid: str) -> list[str]:
    return [line for line in api.log().splitlines() if f"rid={rid}" in line]


def _wait_logged(api: ApiProcess, rid: str, *needles: str) -> list[str]:
    wait_until(
        lambda: all(any(n in line for line in _log_lines(api, rid)) for n in needles),
        15,
        f"log lines for {rid} with {needles}",
    )
    return _log_lines(api, rid)


def _props_slot(server: LlamaServer) -> int:
    with urllib.request.urlopen(f"{server.url}/props", timeout=5) as r:
        return int(json.load(r)["default_generation_settings"]["n_ctx"])


def test_open_webui_0124_follow_up_prompt_is_a_background_task() -> None:
    assert background_task({"messages": [{"role": "user", "content": OPEN_WEBUI_0124_FOLLOW_UP}]}) == "follow_ups"


def test_silent_upstream_ends_the_stream_within_the_idle_limit(
    webui_api: ApiProcess, stall_server: LlamaServer
) -> None:
    """SIGSTOP mid-answer: the connection stays open; the API gives up after IDLE s, not the 120 s timeout."""
    wait_slots_free(stall_server)
    assert stall_server.proc is not None
    pid = stall_server.proc.pid
    events: list[str] = []
    stopped_at = ended_at = None
    try:
        with httpx.stream(
            "POST",
            f"{webui_api.url}/v1/chat/completions",
            headers=_headers(webui_api),
            timeout=60,
            json={
                "model": "review",
                "stream": True,
                "max_tokens": 3000,
                "temperature": 1,
                "ignore_eos": True,
                "messages": [{"role": "user", "content": "A long story."}],
            },
        ) as r:
            assert r.status_code == 200
            rid = r.headers["X-Request-Id"]
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                events.append(line[len("data: ") :])
                if len(events) == 3:
                    os.kill(pid, signal.SIGSTOP)
                    stopped_at = time.monotonic()
                if events[-1] == "[DONE]":
                    ended_at = time.monotonic()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stopped_at is not None and ended_at is not None, events[-3:]
    assert ended_at - stopped_at < IDLE + 8, ended_at - stopped_at  # not the role's 120 s
    error = json.loads(events[-2])["error"]
    assert error["code"] == "upstream_idle" and "'review'" in error["message"]
    assert "went silent" in error["message"] and f"{IDLE:g}s" in error["message"]
    lines = _wait_logged(webui_api, rid, "access ", "error ")
    access = next(line for line in lines if "access " in line)
    assert "key=webui" in access and "model=review" in access and "status=200" in access
    assert "stream_error=yes" in access
    assert any("error " in line and "went silent" in line for line in lines)
    # Resumed, the server frees its slot (the API dropped the connection) and answers again.
    wait_slots_free(stall_server)
    r2 = _client(webui_api).chat.completions.create(
        model="review", max_tokens=2, messages=[{"role": "user", "content": "x"}]
    )
    assert r2.choices


def _long_prompt(server: LlamaServer, tokens: int = LONG_PROMPT) -> str:
    """About `tokens` prompt tokens, opened by a fresh nonce so llama-server's prompt cache cannot serve them."""
    unit = "disk inode journal unit restart failed "
    req = urllib.request.Request(
        f"{server.url}/tokenize",
        data=json.dumps({"content": unit * 10}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        per_unit = len(json.load(r)["tokens"]) / 10
    return f"{secrets.token_hex(8)} " + unit * int(tokens / per_unit)


def _sse_events(r: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in r.iter_lines() if line.startswith("data: ")]


def _content(events: list[str]) -> str:
    out = []
    for e in events:
        if e == "[DONE]":
            continue
        for choice in json.loads(e).get("choices") or []:
            out.append(choice.get("delta", {}).get("content") or "")
    return "".join(out)


def test_upstream_stopped_before_the_request_is_a_504_within_the_idle_limit(
    webui_api: ApiProcess, stall_server: LlamaServer
) -> None:
    """SIGSTOP: the kernel still accepts connections, nothing answers; no headers ever come.  The API
    asks the server's /health after IDLE s of silence and gives up when that is silent too."""
    wait_slots_free(stall_server)
    question = {"model": "review", "max_tokens": 8, "messages": [{"role": "user", "content": "Is the disk full?"}]}
    results = []
    with stopped(stall_server) as t0:
        for stream in (True, False):
            started = time.monotonic()
            r = httpx.post(
                f"{webui_api.url}/v1/chat/completions",
                headers=_headers(webui_api),
                timeout=60,
                json={**question, "stream": stream},
            )
            results.append((r, time.monotonic() - started))
    assert t0 > 0
    for r, took in results:
        assert r.status_code == 504, r.text
        assert took < GONE_WITHIN, took  # not the role's 120 s
        error = r.json()["error"]
        assert error["code"] == "upstream_idle" and "'review'" in error["message"]
        assert "stopped answering" in error["message"] and "/health" in error["message"]
        lines = _wait_logged(webui_api, r.headers["X-Request-Id"], "access ", "error ")
        assert any("access " in line and "status=504" in line and "model=review" in line for line in lines)
        assert any("error " in line and "stopped answering" in line for line in lines)
    # Resumed, it answers again.
    ok = _client(webui_api).chat.completions.create(**question)
    assert ok.choices


def test_upstream_stopped_while_processing_the_prompt_ends_the_stream(
    webui_api: ApiProcess, stall_server: LlamaServer
) -> None:
    """Stopped after taking the request, before its first token (the 1,000-token prompt is still being
    processed): the stream ends with an error event naming the role, not after the role's 120 s."""
    wait_slots_free(stall_server)
    prompt = _long_prompt(stall_server)
    with httpx.stream(
        "POST",
        f"{webui_api.url}/v1/chat/completions",
        headers=_headers(webui_api),
        timeout=60,
        json={"model": "review", "stream": True, "max_tokens": 8, "messages": [{"role": "user", "content": prompt}]},
    ) as r:
        assert r.status_code == 200  # a slot took it: llama-server answered with headers (and 0 % progress)
        rid = r.headers["X-Request-Id"]
        with stopped(stall_server) as t0:
            events = _sse_events(r)
            took = time.monotonic() - t0
    assert took < GONE_WITHIN, took
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "upstream_idle" and "'review'" in error["message"]
    assert "stopped answering" in error["message"], error  # before any token, not "went silent mid-answer"
    assert _content(events[:-2]) == ""
    assert not any("prompt_progress" in e for e in events)  # liveness only, never relayed
    lines = _wait_logged(webui_api, rid, "access ", "error ")
    access = next(line for line in lines if "access " in line)
    assert "status=200" in access and "stream_error=yes" in access and "model=review" in access
    assert any("error " in line and "stopped answering" in line for line in lines)
    # Resumed, the server finishes the prompt batch, then sees the dropped connection and frees the slot.
    wait_slots_free(stall_server, timeout=300)


def test_long_prompt_outlasts_the_idle_limit(webui_api: ApiProcess, stall_server: LlamaServer) -> None:
    """A prompt whose processing may take longer than IDLE s is answered: progress events and /health
    show the server working, and none of the progress reaches the client."""
    wait_slots_free(stall_server)
    prompt = _long_prompt(stall_server)
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{webui_api.url}/v1/chat/completions",
        headers=_headers(webui_api),
        timeout=120,
        json={
            "model": "review",
            "stream": True,
            "max_tokens": 4,
            "ignore_eos": True,
            "messages": [{"role": "user", "content": prompt}],
        },
    ) as r:
        assert r.status_code == 200
        events = _sse_events(r)
    took = time.monotonic() - started
    assert events[-1] == "[DONE]" and not any('"error"' in e for e in events), events[-3:]
    assert _content(events) and not any("prompt_progress" in e for e in events)
    first = json.loads(events[0])
    assert first["choices"][0]["delta"].get("role") == "assistant"
    print(f"long prompt ({LONG_PROMPT} tokens) answered in {took:.1f}s with idle limit {IDLE:g}s")


def test_stopped_meta_server_ends_the_investigation_as_an_error(webui_api: ApiProcess, stall_meta: LlamaServer) -> None:
    """The agent's meta calls: a meta server stopped before its first token ends the investigation
    within the idle limit (api.upstream_idle_timeout), as an error event naming the role."""
    wait_slots_free(stall_meta)
    question = [{"role": "user", "content": "why is nginx down?"}]
    with stopped(stall_meta) as t0:
        with httpx.stream(
            "POST",
            f"{webui_api.url}/v1/chat/completions",
            headers=_headers(webui_api),
            timeout=120,
            json={"model": "ai-sysadmin", "stream": True, "messages": question},
        ) as r:
            assert r.status_code == 200
            rid = r.headers["X-Request-Id"]
            events = _sse_events(r)
            took = time.monotonic() - t0
        started = time.monotonic()
        plain = httpx.post(
            f"{webui_api.url}/v1/chat/completions",
            headers=_headers(webui_api),
            timeout=120,
            json={"model": "ai-sysadmin", "messages": question},
        )
        took_plain = time.monotonic() - started
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "investigation_failed", error
    assert "meta" in error["message"] and "stopped answering" in error["message"], error
    assert _content(events[:-2]) == ""
    assert took < GONE_WITHIN, took  # not the meta role's 600 s, nor the investigation deadline
    assert plain.status_code == 502 and plain.json()["error"]["code"] == "investigation_failed"
    assert "stopped answering" in plain.json()["error"]["message"] and took_plain < GONE_WITHIN, took_plain
    for request_id, status in ((rid, "status=200"), (plain.headers["X-Request-Id"], "status=502")):
        lines = _wait_logged(webui_api, request_id, "access ", "error ")
        access = next(line for line in lines if "access " in line)
        assert "model=ai-sysadmin" in access and status in access and "key=webui" in access
        assert any("error " in line and "stopped answering" in line for line in lines)
    wait_slots_free(stall_meta)


def test_client_that_leaves_is_logged_as_499(webui_api: ApiProcess, stall_server: LlamaServer) -> None:
    """Open WebUI's Stop closes the connection: the access line says 499, and the slot is freed."""
    wait_slots_free(stall_server)
    with httpx.stream(
        "POST",
        f"{webui_api.url}/v1/chat/completions",
        headers=_headers(webui_api),
        timeout=60,
        json={
            "model": "review",
            "stream": True,
            "max_tokens": 2000,
            "ignore_eos": True,
            "messages": [{"role": "user", "content": "A long story."}],
        },
    ) as r:
        rid = r.headers["X-Request-Id"]
        for n, _ in enumerate(r.iter_lines()):
            if n >= 4:
                break  # leaving the block closes the connection mid-answer
    lines = _wait_logged(webui_api, rid, "status=499")
    assert any("access " in line and "model=review" in line for line in lines)
    wait_slots_free(stall_server)


def test_background_tasks_are_capped_and_recognised(webui_api: ApiProcess) -> None:
    """0.12.4's follow-up request carries no max_tokens; ignore_eos would have it write to the slot's end."""
    before = metric(webui_api, "ai_sysadmin_api_background_requests_total", task="follow_ups")
    raw = _client(webui_api).chat.completions.with_raw_response.create(
        model="meta",
        temperature=1,
        extra_body={"ignore_eos": True},
        messages=[{"role": "user", "content": OPEN_WEBUI_0124_FOLLOW_UP}],
    )
    r = raw.parse()
    assert r.model == "trigger"  # the cheap role answered
    assert r.usage is not None and 0 < r.usage.completion_tokens <= BACKGROUND_CAP
    assert metric(webui_api, "ai_sysadmin_api_background_requests_total", task="follow_ups") == before + 1
    rid = raw.headers["X-Request-Id"]
    access = _wait_logged(webui_api, rid, "access ")[0]
    assert "model=meta" in access and "status=200" in access and f"+{r.usage.completion_tokens}" in access


def test_client_tools_are_dropped_for_role_models(webui_api: ApiProcess) -> None:
    tools = client_tools()
    assert len(json.dumps(tools)) > 20_000
    r = _client(webui_api).chat.completions.create(
        model="meta", max_tokens=4, tools=tools, messages=[{"role": "user", "content": "Is the disk full?"}]
    )
    # The 29 tools rendered by the template would be thousands of prompt tokens.
    assert r.usage is not None and r.usage.prompt_tokens < 300, r.usage
    assert not r.choices[0].message.tool_calls


def test_client_tools_pass_through_to_meta_when_configured(tools_pass_api: ApiProcess) -> None:
    """api.client_tools = "pass": a client's own tools reach the role's server (the tests/api/test_openai.py
    request, which yields no call with the default "drop")."""
    from tests.api.test_openai import TOOLS

    r = _client(tools_pass_api).chat.completions.create(
        model="meta",
        messages=[
            {"role": "user", "content": "What is the status of nginx.service?"},
            {"role": "assistant", "content": "<tool_call>\n"},
        ],
        tools=TOOLS,
        tool_choice="required",
        max_tokens=64,
        temperature=0,
    )
    calls = r.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_unit_status"
    assert isinstance(json.loads(calls[0].function.arguments), dict)


def test_prompt_larger_than_the_slot_is_a_400_naming_its_size(
    webui_api: ApiProcess, llama_trigger: LlamaServer
) -> None:
    slot = _props_slot(llama_trigger)
    big = "disk inode journal " * slot  # three words per slot token: well over the slot
    raw = httpx.post(
        f"{webui_api.url}/v1/chat/completions",
        headers=_headers(webui_api),
        timeout=60,
        json={"model": "trigger", "max_tokens": 8, "messages": [{"role": "user", "content": big}]},
    )
    assert raw.status_code == 400, raw.text
    err = raw.json()["error"]
    assert err["code"] == "context_length_exceeded" and err["param"] == "messages"
    assert f"serves {slot} tokens per request" in err["message"] and "prompt tokens" in err["message"]
    tokens = int(err["message"].split("the request is ")[1].split(" ")[0])
    assert tokens > slot
    lines = _wait_logged(webui_api, raw.headers["X-Request-Id"], "access ", "error ")
    assert any("status=400" in line and "context_length_exceeded" in line for line in lines)
    # A small request on the same role still goes through (the fast path needs no count).
    ok = _client(webui_api).chat.completions.create(
        model="trigger", max_tokens=2, messages=[{"role": "user", "content": "x"}]
    )
    assert ok.choices


def test_failed_investigation_is_an_error_not_an_answer(dead_meta_api: ApiProcess) -> None:
    question = [{"role": "user", "content": "why is nginx down?"}]
    with httpx.stream(
        "POST",
        f"{dead_meta_api.url}/v1/chat/completions",
        timeout=120,
        json={"model": "ai-sysadmin", "stream": True, "messages": question},
    ) as r:
        assert r.status_code == 200
        rid = r.headers["X-Request-Id"]
        events = [line[len("data: ") :] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "investigation_failed" and "meta" in error["message"]
    assert "the investigation failed" in error["message"] and "Traceback" not in error["message"]
    content = "".join(
        (json.loads(e)["choices"][0]["delta"].get("content") or "") for e in events[:-2] if json.loads(e).get("choices")
    )
    assert content == ""  # no fallback text dressed up as an answer
    with pytest.raises(openai.APIError) as exc:  # the SDK raises on the error event
        for _ in _client(dead_meta_api).chat.completions.create(model="ai-sysadmin", stream=True, messages=question):
            pass
    assert "the investigation failed" in str(exc.value)
    # Not streamed: an error status with the same plain words.
    plain = httpx.post(
        f"{dead_meta_api.url}/v1/chat/completions", timeout=120, json={"model": "ai-sysadmin", "messages": question}
    )
    assert plain.status_code == 502 and plain.json()["error"]["code"] == "investigation_failed"
    for request_id, status in ((rid, "status=200"), (plain.headers["X-Request-Id"], "status=502")):
        lines = _wait_logged(dead_meta_api, request_id, "access ", "error ")
        access = next(line for line in lines if "access " in line)
        assert "model=ai-sysadmin" in access and status in access and "key=-" in access
        assert any("error " in line and "the investigation failed" in line for line in lines)
