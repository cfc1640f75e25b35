"""api/progress.py: the relay's hold-back of llama-server's prompt-progress events (no server needed:
the bytes are the shapes llama-server 11434's tools/server/server-task.cpp writes)."""

from __future__ import annotations

import json

from ai_sysadmin.api.progress import Gate, ask

PROGRESS = (
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],'
    b'"object":"chat.completion.chunk","prompt_progress":{"total":3000,"cache":0,"processed":%d,'
    b'"time_ms":%d}}\n\n'
)
PING = b":\n\n"  # llama-server's SSE ping while a prompt is processed
TOKEN = b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}]}\n\n'


def test_progress_events_are_held_back_until_the_answer_in_any_split() -> None:
    stream = PROGRESS % (0, 0) + PING + PROGRESS % (2048, 900) + TOKEN + TOKEN
    for size in (1, 7, 64, len(stream)):
        gate, out, answering = Gate(), b"", False
        for i in range(0, len(stream), size):
            chunk = stream[i : i + size]
            if answering:
                out += chunk  # the relay copies bytes untouched once the answer began
                continue
            passed, answering = gate.feed(chunk)
            out += passed
        assert out == PING + TOKEN + TOKEN, size


def test_a_stream_that_ends_before_an_answer_leaves_its_bytes() -> None:
    gate = Gate()
    assert gate.feed(PROGRESS % (0, 0) + b'data: {"error":') == (b"", False)
    assert gate.leftover() == b'data: {"error":'


def test_ask_splices_the_flag_and_respects_the_client() -> None:
    body = b' {"model":"meta","stream":true}'
    asked = ask(json.loads(body), body)
    assert asked is not None and json.loads(asked) == {"return_progress": True, "model": "meta", "stream": True}
    assert ask({"return_progress": False}, b'{"return_progress":false}') is None
