"""The real `openai` SDK against the real API process over real llama-servers."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from rig.net import wait_until
from tests.api.conftest import ApiProcess, metric, slots_busy, wait_slots_free


def client(api: ApiProcess, key: str | None = None, **kw) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{api.url}/v1", api_key=key or api.keys["admin"], max_retries=0, timeout=kw.pop("timeout", 120), **kw
    )


def test_models_list_has_agent_and_roles_with_upstream_state(api: ApiProcess) -> None:
    models = {m.id: m for m in client(api).models.list().data}
    assert set(models) == {"ai-sysadmin", "trigger", "review", "meta", "embed"}
    assert models["ai-sysadmin"].owned_by == "ai-sysadmin"
    assert models["trigger"].owned_by == "llamacpp"  # what llama-server itself reports
    for m in models.values():
        assert m.model_extra["up"] is True, m


def test_chat_non_streaming(api: ApiProcess) -> None:
    r = client(api).chat.completions.create(
        model="trigger", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
    )
    assert r.choices[0].message.content
    assert r.usage is not None and r.usage.completion_tokens > 0
    assert metric(api, "ai_sysadmin_api_tokens_total", model="trigger", kind="completion") > 0


def test_streaming_with_usage_chunk_and_empty_choices(api: ApiProcess) -> None:
    stream = client(api).chat.completions.create(
        model="trigger",
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert metric(api, "ai_sysadmin_api_ttft_seconds_count", model="trigger") >= 1


def test_stream_bytes_are_passed_through_untouched(api: ApiProcess, llama_trigger) -> None:
    """Same request to the API and to llama-server directly: the same SSE framing and fields."""
    body = {
        "model": "trigger",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        "temperature": 0,
        "seed": 1,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {api.keys['admin']}"}

    def events(url: str) -> list[dict]:
        with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            raw = r.read().decode()
        out = []
        for block in raw.split("\n\n"):
            if block.startswith("data: ") and block != "data: [DONE]":
                e = json.loads(block[6:])
                e.pop("id"), e.pop("created"), e.pop("timings", None), e.pop("usage", None)
                out.append(e)
        assert raw.rstrip().endswith("data: [DONE]")
        return out

    direct = events(f"{llama_trigger.url}/v1/chat/completions")
    via_api = events(f"{api.url}/v1/chat/completions")
    assert via_api == direct


def test_json_schema_response_format(api: ApiProcess) -> None:
    schema = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["up", "down"]}},
        "required": ["status"],
        "additionalProperties": False,
    }
    r = client(api).chat.completions.create(
        model="trigger",
        messages=[{"role": "user", "content": "Is the web server up? Answer in JSON."}],
        max_tokens=32,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}},
    )
    assert json.loads(r.choices[0].message.content)["status"] in ("up", "down")


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_unit_status",
            "description": "Status of a systemd unit",
            "parameters": {"type": "object", "properties": {"unit": {"type": "string"}}, "required": ["unit"]},
        },
    }
]


def test_client_tools_are_dropped_by_default(api: ApiProcess) -> None:
    """api.client_tools = "drop": the request that yields a call with tools passed (test_webui) yields none."""
    r = client(api).chat.completions.create(
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
    assert not r.choices[0].message.tool_calls


def test_empty_tools_list_is_accepted(api: ApiProcess) -> None:
    r = client(api).chat.completions.create(
        model="trigger", messages=[{"role": "user", "content": "Hi"}], tools=[], max_tokens=4
    )
    assert r.choices[0].finish_reason in ("stop", "length")


def test_embeddings_from_the_embed_role(api: ApiProcess) -> None:
    r = client(api).embeddings.create(model="embed", input=["disk full on /var", "nginx failed"])
    assert len(r.data) == 2 and len(r.data[0].embedding) > 8
    with pytest.raises(openai.BadRequestError) as exc:
        client(api).embeddings.create(model="trigger", input="x")
    assert exc.value.body["param"] == "model"


OPEN_WEBUI_TITLE = (
    "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
    "### Guidelines:\n- The title should clearly represent the main theme.\n### Output:\n"
    'JSON format: { "title": "your concise title here" }\n### Chat History:\n<chat_history>\n'
    "USER: why is nginx down?\nASSISTANT: its config has a syntax error\n</chat_history>"
)


def test_open_webui_background_request_goes_to_the_cheap_role(api: ApiProcess, api_meta) -> None:
    before = metric(api, "ai_sysadmin_api_background_requests_total", task="title")
    r = client(api).chat.completions.create(
        model="ai-sysadmin", messages=[{"role": "user", "content": OPEN_WEBUI_TITLE}], max_tokens=16
    )
    assert r.model == "trigger"  # llama-server names the model that answered: not meta, not the agent
    assert r.choices[0].message.content
    assert metric(api, "ai_sysadmin_api_background_requests_total", task="title") == before + 1
    assert slots_busy(api_meta) == 0


def test_client_disconnect_frees_the_llama_server_slot(api: ApiProcess, api_meta) -> None:
    wait_slots_free(api_meta)
    http = httpx.Client(timeout=60)
    with http.stream(
        "POST",
        f"{api.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api.keys['admin']}"},
        json={
            "model": "meta",
            "messages": [{"role": "user", "content": "Write a very long story."}],
            "max_tokens": 4000,
            "stream": True,
            "ignore_eos": True,
        },
    ) as r:
        lines = r.iter_lines()
        while not next(lines).startswith("data: {"):
            pass
        assert slots_busy(api_meta) == 1  # generating for us
    http.close()  # the client goes away mid-answer
    wait_slots_free(api_meta, timeout=10)


@pytest.mark.parametrize(
    "body,param",
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
        (json.dumps({"model": "trigger"}).encode(), "messages"),
        (json.dumps({"model": "trigger", "messages": []}).encode(), "messages"),
        (json.dumps({"model": "trigger", "messages": [{"role": "boss", "content": "x"}]}).encode(), "messages[0].role"),
        (
            json.dumps({"model": "trigger", "messages": [{"role": "user", "content": 5}]}).encode(),
            "messages[0].content",
        ),
        (
            json.dumps(
                {"model": "trigger", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}
            ).encode(),
            "max_tokens",
        ),
        (
            json.dumps({"model": "trigger", "messages": [{"role": "user", "content": "x"}], "tools": {}}).encode(),
            "tools",
        ),
        (
            json.dumps({"model": "trigger", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}).encode(),
            "stream",
        ),
        (
            json.dumps(
                {"model": "trigger", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}
            ).encode(),
            "response_format.type",
        ),
    ],
)
def test_malformed_requests_are_400_naming_the_field(api: ApiProcess, body: bytes, param: str | None) -> None:
    r = httpx.post(
        f"{api.url}/v1/chat/completions",
        content=body,
        timeout=30,
        headers={"Authorization": f"Bearer {api.keys['admin']}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param and err["type"] == "invalid_request_error"
    if param:
        assert param in err["message"]


def test_unknown_model_is_404(api: ApiProcess) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        client(api).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert exc.value.body["param"] == "model" and exc.value.body["code"] == "model_not_found"


def test_body_over_the_limit_is_413(api: ApiProcess) -> None:
    big = "x" * (8 * 1024 * 1024 + 10)
    r = httpx.post(
        f"{api.url}/v1/chat/completions",
        timeout=60,
        headers={"Authorization": f"Bearer {api.keys['admin']}"},
        json={"model": "trigger", "messages": [{"role": "user", "content": big}]},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_concurrency_over_the_per_key_limit_is_429_with_retry_after(api: ApiProcess, api_meta) -> None:
    """Limit 3 per key: three open streams, the fourth is refused; another key is not affected."""
    wait_slots_free(api_meta)
    opened = threading.Barrier(4)
    done = threading.Event()
    errors: list[BaseException] = []

    def hold(model: str) -> None:
        try:
            with httpx.stream(
                "POST",
                f"{api.url}/v1/chat/completions",
                timeout=120,
                headers={"Authorization": f"Bearer {api.keys['ops']}"},
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": "Tell a long story."}],
                    "max_tokens": 2000,
                    "stream": True,
                    "ignore_eos": True,
                },
            ) as r:
                assert r.status_code == 200
                lines = r.iter_lines()  # kept: a discarded httpx line iterator closes the response
                assert next(lines).startswith("data: {")
                opened.wait(60)
                done.wait(120)
        except BaseException as exc:
            errors.append(exc)
            opened.abort()

    threads = [threading.Thread(target=hold, args=(m,)) for m in ("meta", "meta", "trigger")]
    for t in threads:
        t.start()
    try:
        opened.wait(60)
        assert metric(api, "ai_sysadmin_api_in_flight") == 3
        r = httpx.post(
            f"{api.url}/v1/chat/completions",
            timeout=30,
            headers={"Authorization": f"Bearer {api.keys['ops']}"},
            json={"model": "trigger", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1},
        )
        assert r.status_code == 429, r.text
        assert r.headers["Retry-After"] == "1" and r.json()["error"]["type"] == "rate_limit_error"
        other = client(api, api.keys["admin"]).chat.completions.create(
            model="trigger", messages=[{"role": "user", "content": "x"}], max_tokens=1
        )
        assert other.choices
    finally:
        done.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    wait_slots_free(api_meta)


def test_auth_cases(api: ApiProcess) -> None:
    assert httpx.get(f"{api.url}/health").status_code == 200  # liveness needs no key
    r = httpx.get(f"{api.url}/v1/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(api, "k-wrong").models.list()
    r = httpx.get(f"{api.url}/v1/models", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    for key in api.keys.values():
        assert client(api, key).models.list().data
    r = httpx.get(f"{api.url}/metrics")
    assert r.status_code == 401


def test_review_timeout_is_504(api: ApiProcess, api_review) -> None:
    """roles.review.timeout is 1 s: a long non-streamed answer exceeds it."""
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as exc:
        client(api).chat.completions.create(
            model="review",
            messages=[{"role": "user", "content": "Write a long essay about disks."}],
            max_tokens=400,
            temperature=1,
            extra_body={"ignore_eos": True},
        )
    assert exc.value.status_code == 504 and exc.value.body["code"] == "upstream_timeout"
    assert time.monotonic() - t0 < 30


def test_upstream_dying_mid_stream_then_refused_then_back(api: ApiProcess, api_review, open_api: ApiProcess) -> None:
    wait_until(lambda: slots_busy(api_review) == 0, 60, "review idle")
    c = client(api)
    stream = c.chat.completions.create(
        model="review",
        stream=True,
        max_tokens=3000,
        temperature=1,
        extra_body={"ignore_eos": True},
        messages=[{"role": "user", "content": "Write a very long story."}],
    )
    seen = 0
    with pytest.raises(openai.APIError) as exc:
        for _chunk in stream:
            seen += 1
            if seen == 3:
                api_review.proc.kill()  # the model server dies mid-answer
    assert "stopped mid-answer" in str(exc.value)
    # Refused now: 503 within a second, and the server keeps serving other roles.
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as exc2:
        c.chat.completions.create(model="review", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    assert exc2.value.status_code == 503 and exc2.value.body["code"] == "upstream_unavailable"
    assert time.monotonic() - t0 < 1.0
    models = {m.id: m.model_extra["up"] for m in c.models.list().data}
    assert models["review"] is False and models["trigger"] is True
    assert c.chat.completions.create(model="trigger", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    r = httpx.get(f"{api.url}/health/ready")
    assert r.status_code == 503 and r.json()["upstreams"]["review"]["up"] is False
    # A title request whose cheap role (review, on open_api) is down falls back to the selected model.
    title = openai.OpenAI(base_url=f"{open_api.url}/v1", api_key="none", max_retries=0).chat.completions.create(
        model="meta", messages=[{"role": "user", "content": OPEN_WEBUI_TITLE}], max_tokens=8
    )
    assert title.model == "meta" and title.choices[0].message.content is not None
    api_review.restart()
    r = c.chat.completions.create(model="review", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    assert r.choices
    assert httpx.get(f"{api.url}/health/ready").json()["status"] == "ready"
    assert "Traceback" not in api.log()


def test_metrics_page_has_api_and_store_series(api: ApiProcess) -> None:
    r = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {api.keys['admin']}"})
    text = r.text
    for name in (
        "ai_sysadmin_api_requests_total",
        "ai_sysadmin_api_request_seconds_bucket",
        "ai_sysadmin_api_ttft_seconds_bucket",
        "ai_sysadmin_store_up 1.0",
        "ai_sysadmin_incidents",
        "ai_sysadmin_actions",
    ):
        assert name in text, name
