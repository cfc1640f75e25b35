"""Request checks before anything reaches a model server: 400 naming the field.

Only the fields the API or llama-server interpret are checked; other fields pass
through untouched (clients send vendor extras).  The checks are what llama-server
would otherwise accept silently (an empty `messages`, an unknown role) or answer with
a 500.
"""

from __future__ import annotations

import json
from typing import Any

from ai_sysadmin.api.errors import ApiError, bad_field

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_INT_FIELDS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_k", "top_logprobs", "n_probs")
_NUM_FIELDS = ("temperature", "top_p", "min_p", "frequency_penalty", "presence_penalty", "repeat_penalty")
_BOOL_FIELDS = ("stream", "logprobs", "parallel_tool_calls")
_FORMATS = ("text", "json_object", "json_schema")


def decode_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise ApiError(400, "request body is empty; expected a JSON object", code="invalid_json")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(400, f"request body is not valid JSON{where}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {_kind(data)}", code="invalid_json")
    return data


def model_name(data: dict[str, Any]) -> str:
    model = data.get("model")
    if model is None:
        raise bad_field("model", "required")
    if not isinstance(model, str) or not model:
        raise bad_field("model", f"must be a non-empty string, got {_kind(model)}")
    return model


def check_chat(data: dict[str, Any]) -> None:
    messages = data.get("messages")
    if messages is None:
        raise bad_field("messages", "required")
    if not isinstance(messages, list):
        raise bad_field("messages", f"must be a list, got {_kind(messages)}")
    if not messages:
        raise bad_field("messages", "must contain at least one message")
    for i, msg in enumerate(messages):
        _check_message(f"messages[{i}]", msg)
    for name in _INT_FIELDS:
        _typed(data, name, int)
    for name in _NUM_FIELDS:
        _typed(data, name, float)
    for name in _BOOL_FIELDS:
        _typed(data, name, bool)
    n = data.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n < 1:
        raise bad_field("n", "must be at least 1")
    for name in ("max_tokens", "max_completion_tokens"):
        v = data.get(name)
        if isinstance(v, int) and not isinstance(v, bool) and v < -1:
            raise bad_field(name, "must be -1 (no limit) or greater")
    _check_stop(data)
    _check_stream_options(data)
    _check_tools(data)
    _check_response_format(data)
    if "user" in data and data["user"] is not None and not isinstance(data["user"], str):
        raise bad_field("user", f"must be a string, got {_kind(data['user'])}")
    if "logit_bias" in data and data["logit_bias"] is not None and not isinstance(data["logit_bias"], (dict, list)):
        raise bad_field("logit_bias", f"must be an object, got {_kind(data['logit_bias'])}")


def check_embeddings(data: dict[str, Any]) -> None:
    inp = data.get("input")
    if inp is None:
        raise bad_field("input", "required")
    if isinstance(inp, str):
        return
    if not isinstance(inp, list) or not inp:
        raise bad_field("input", "must be a string or a non-empty list of strings")
    for i, item in enumerate(inp):
        if isinstance(item, str):
            continue
        # Token arrays are valid OpenAI input: a list of ints, or a list of such lists.
        if _is_int(item) or (isinstance(item, list) and item and all(_is_int(t) for t in item)):
            continue
        raise bad_field(f"input[{i}]", f"must be a string or a list of token ids, got {_kind(item)}")
    fmt = data.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise bad_field("encoding_format", "must be 'float' or 'base64'")


def wants_stream(data: dict[str, Any]) -> bool:
    return data.get("stream") is True


def _check_message(where: str, msg: Any) -> None:
    if not isinstance(msg, dict):
        raise bad_field(where, f"must be an object, got {_kind(msg)}")
    role = msg.get("role")
    if role not in ROLES:
        raise bad_field(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {_show(role)}")
    content = msg.get("content")
    if content is None:
        if role in ("user", "system", "developer") and "content" not in msg:
            raise bad_field(f"{where}.content", "required")
        if role in ("user", "system", "developer"):
            raise bad_field(f"{where}.content", "must be a string or a list of content parts, got null")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            _check_part(f"{where}.content[{j}]", part)
    elif not isinstance(content, str):
        raise bad_field(f"{where}.content", f"must be a string or a list of content parts, got {_kind(content)}")
    calls = msg.get("tool_calls")
    if calls is not None:
        if role != "assistant":
            raise bad_field(f"{where}.tool_calls", "only assistant messages carry tool calls")
        if not isinstance(calls, list):
            raise bad_field(f"{where}.tool_calls", f"must be a list, got {_kind(calls)}")
        for j, call in enumerate(calls):
            cw = f"{where}.tool_calls[{j}]"
            if not isinstance(call, dict):
                raise bad_field(cw, f"must be an object, got {_kind(call)}")
            fn = call.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise bad_field(f"{cw}.function", "must be an object with a string `name`")
            args = fn.get("arguments")
            if args is not None and not isinstance(args, str):
                raise bad_field(f"{cw}.function.arguments", f"must be a JSON string, got {_kind(args)}")
    if role == "tool":
        tcid = msg.get("tool_call_id")
        if tcid is not None and not isinstance(tcid, str):
            raise bad_field(f"{where}.tool_call_id", f"must be a string, got {_kind(tcid)}")
    name = msg.get("name")
    if name is not None and not isinstance(name, str):
        raise bad_field(f"{where}.name", f"must be a string, got {_kind(name)}")


def _check_part(where: str, part: Any) -> None:
    if not isinstance(part, dict):
        raise bad_field(where, f"must be an object, got {_kind(part)}")
    kind = part.get("type")
    if not isinstance(kind, str):
        raise bad_field(f"{where}.type", "required (a string such as 'text')")
    if kind == "text" and not isinstance(part.get("text"), str):
        raise bad_field(f"{where}.text", "must be a string")
    if kind == "image_url":
        img = part.get("image_url")
        url = img.get("url") if isinstance(img, dict) else img
        if not isinstance(url, str):
            raise bad_field(f"{where}.image_url", "must be an object with a string `url`")


def _check_stop(data: dict[str, Any]) -> None:
    stop = data.get("stop")
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise bad_field("stop", "must be a string or a list of strings")


def _check_stream_options(data: dict[str, Any]) -> None:
    opts = data.get("stream_options")
    if opts is None:
        return
    if not isinstance(opts, dict):
        raise bad_field("stream_options", f"must be an object, got {_kind(opts)}")
    if "include_usage" in opts and not isinstance(opts["include_usage"], bool):
        raise bad_field("stream_options.include_usage", "must be a boolean")


def _check_tools(data: dict[str, Any]) -> None:
    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_field("tools", f"must be a list, got {_kind(tools)}")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise bad_field(f"tools[{i}]", f"must be an object, got {_kind(tool)}")
            if tool.get("type", "function") != "function":
                raise bad_field(f"tools[{i}].type", "must be 'function'")
            fn = tool.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise bad_field(f"tools[{i}].function", "must be an object with a non-empty string `name`")
            params = fn.get("parameters")
            if params is not None and not isinstance(params, dict):
                raise bad_field(f"tools[{i}].function.parameters", "must be a JSON schema object")
    choice = data.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise bad_field("tool_choice", "must be 'none', 'auto', 'required' or an object")
    elif isinstance(choice, dict):
        fn = choice.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad_field("tool_choice.function", "must be an object with a string `name`")
    else:
        raise bad_field("tool_choice", f"must be a string or an object, got {_kind(choice)}")


def _check_response_format(data: dict[str, Any]) -> None:
    rf = data.get("response_format")
    if rf is None:
        return
    if not isinstance(rf, dict):
        raise bad_field("response_format", f"must be an object, got {_kind(rf)}")
    kind = rf.get("type")
    if kind not in _FORMATS:
        raise bad_field("response_format.type", f"must be one of {', '.join(_FORMATS)}")
    if kind == "json_schema":
        js = rf.get("json_schema")
        if not isinstance(js, dict):
            raise bad_field("response_format.json_schema", "must be an object with a `schema`")
        schema = js.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise bad_field("response_format.json_schema.schema", "must be a JSON schema object")
    if kind == "json_object":
        schema = rf.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise bad_field("response_format.schema", "must be a JSON schema object")


def _typed(data: dict[str, Any], name: str, kind: type) -> None:
    if name not in data or data[name] is None:
        return
    v = data[name]
    if kind is bool:
        ok = isinstance(v, bool)
    elif kind is int:
        ok = _is_int(v)
    else:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
    if not ok:
        raise bad_field(name, f"must be {_NAMES[kind]}, got {_kind(v)}")


_NAMES = {bool: "a boolean", int: "an integer", float: "a number"}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**53) <= v <= 2**53


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = json.dumps(value)[:40] if not isinstance(value, str) else repr(value[:40])
    return text
