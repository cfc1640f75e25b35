"""Hypothesis against the running API: any body, any headers -> never a 5xx, never a traceback.

Requests that happen to be valid reach the real trigger llama-server (max_tokens is
kept tiny so they stay cheap); everything else must be refused with a 4xx in OpenAI's
error shape.  The server must still be healthy afterwards.
"""

from __future__ import annotations

import json
import string

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.api.conftest import ApiProcess

json_scalar = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20)
)
json_value = st.recursive(
    json_scalar,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)

role = st.sampled_from(["user", "system", "assistant", "tool", "developer", "boss", "", None]) | json_scalar
content = (
    st.text(max_size=40)
    | json_value
    | st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image_url", "x"]) | json_scalar},
            optional={"text": json_value, "image_url": json_value},
        ),
        max_size=3,
    )
)
message = st.fixed_dictionaries(
    {"role": role},
    optional={"content": content, "tool_calls": json_value, "name": json_value, "tool_call_id": json_value},
)
tool = st.fixed_dictionaries(
    {"type": st.just("function") | json_scalar},
    optional={
        "function": st.fixed_dictionaries(
            {"name": st.text(max_size=10) | json_scalar}, optional={"parameters": json_value, "description": json_value}
        )
    },
)
response_format = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "json_object", "json_schema", "xml"])},
    optional={"json_schema": json_value, "schema": json_value},
)
good_messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]), "content": st.text(max_size=40)}),
    min_size=1,
    max_size=3,
)
chat_body = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["trigger", "trigger", "nope", "embed", "", "TRIGGER"]) | json_scalar,
        "messages": good_messages | good_messages | st.lists(message, max_size=3) | json_value,
        "max_tokens": st.integers(0, 2),
    },
    optional={
        "stream": st.booleans() | json_scalar,
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans() | json_value}) | json_value,
        "temperature": st.floats(0, 2) | json_scalar,
        "top_p": st.floats(0, 1) | json_scalar,
        "seed": st.integers(0, 2**31) | json_scalar,
        "stop": st.lists(st.text(max_size=5), max_size=2) | json_value,
        "tools": st.lists(tool, max_size=2) | json_value,
        "tool_choice": json_value,
        "response_format": response_format | json_value,
        "user": st.text(max_size=8) | json_value,
        "logit_bias": json_value,
        "n": st.integers(-1, 1) | json_scalar,
    },
)
embed_body = st.fixed_dictionaries(
    {"model": st.sampled_from(["embed", "trigger", "x"]) | json_scalar},
    optional={"input": json_value, "encoding_format": json_value},
)

header_text = st.text(alphabet=string.ascii_letters + string.digits + " -_.:;,/=+*'\"()[]{}<>?!@#$%^&~", max_size=40)


@st.composite
def request(draw):
    kind = draw(st.sampled_from(["chat", "chat", "chat", "embed", "raw", "rest"]))
    headers = {}
    auth = draw(st.sampled_from(["good", "good", "good", "good", "bad", "none", "weird"]))
    if auth == "good":
        headers["Authorization"] = "Bearer {good}"
    elif auth == "bad":
        headers["Authorization"] = "Bearer " + draw(header_text)
    elif auth == "weird":
        headers["Authorization"] = draw(header_text)
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/plain", "", "multipart/form-data"]) | header_text
        )
    for name in draw(
        st.lists(st.sampled_from(["X-Junk", "Accept", "Accept-Encoding", "User-Agent", "OpenAI-Beta"]), max_size=2)
    ):
        headers[name] = draw(header_text)
    if kind == "chat":
        return "POST", "/v1/chat/completions", json.dumps(draw(chat_body)).encode(), headers
    if kind == "embed":
        return "POST", "/v1/embeddings", json.dumps(draw(embed_body)).encode(), headers
    if kind == "raw":
        path = draw(st.sampled_from(["/v1/chat/completions", "/v1/embeddings", "/api/v1/actions/1/reject"]))
        return "POST", path, draw(st.binary(max_size=200) | json_value.map(lambda v: json.dumps(v).encode())), headers
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    path = draw(st.sampled_from(["/api/v1/actions/", "/api/v1/incidents/", "/v1/models/", "/api/v1/actions/1/"]))
    path += draw(st.text(alphabet=string.ascii_letters + string.digits + "-_%.", max_size=12))
    return method, path, draw(st.binary(max_size=50)), headers


@pytest.fixture(scope="module")
def http(api: ApiProcess):
    with httpx.Client(base_url=api.url, timeout=60) as c:
        yield c


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(req=request())
def test_no_5xx_and_no_traceback(api: ApiProcess, http: httpx.Client, req) -> None:
    method, path, body, headers = req
    headers = {k: v.replace("{good}", api.keys["admin"]).strip() for k, v in headers.items()}  # h11: no edge spaces
    r = http.request(method, path, content=body, headers=headers)
    event(f"HTTP {r.status_code}")
    assert r.status_code < 500, (r.status_code, r.text[:500], method, path, body[:300], headers)
    assert "Traceback" not in r.text and 'File "' not in r.text
    if r.status_code >= 400:
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"]


def test_still_healthy_after_the_fuzz(api: ApiProcess) -> None:
    assert httpx.get(f"{api.url}/health/ready", timeout=30).status_code == 200
    assert "Traceback" not in api.log()
