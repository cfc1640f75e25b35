"""Tool calls written as text (llm.textcalls): exactly one well-formed call is a call, the rest is text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ai_sysadmin.llm.textcalls import content_tool_call

OFFERED = ("unit_status", "journal_tail", "disk_usage")

names = st.sampled_from(OFFERED)
keys = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=30))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=10,
)
arguments = st.dictionaries(keys, values, max_size=4)
fences = st.sampled_from(("```json\n{}\n```", "```\n{}\n```", "```JSON\n{}```", "{}", "  {}\n", "```json\n\n{}\n\n```"))


def wrap(fence: str, obj: Any, indent: int | None = None) -> str:
    return fence.replace("{}", json.dumps(obj, indent=indent), 1)


@settings(max_examples=300, deadline=None)
@given(name=names, args=arguments, fence=fences, indent=st.sampled_from((None, 2)))
def test_fenced_or_bare_call_is_read(name: str, args: dict[str, Any], fence: str, indent: int | None) -> None:
    call = content_tool_call(wrap(fence, {"name": name, "arguments": args}, indent), OFFERED)
    assert call is not None and call.name == name and call.arguments == args
    assert json.loads(call.raw_arguments) == args


@settings(max_examples=200, deadline=None)
@given(name=names, args=arguments, fence=fences)
def test_nested_call_is_text(name: str, args: dict[str, Any], fence: str) -> None:
    """A call inside another object, a list of calls, or a call with extra keys is not one call."""
    call = {"name": name, "arguments": args}
    for obj in ({"tool": call}, [call], [call, call], {**call, "extra": 1}, {"function": call}):
        assert content_tool_call(wrap(fence, obj), OFFERED) is None, obj


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=20).filter(lambda n: n not in OFFERED), args=arguments, fence=fences)
def test_unoffered_name_is_text(name: str, args: dict[str, Any], fence: str) -> None:
    assert content_tool_call(wrap(fence, {"name": name, "arguments": args}), OFFERED) is None


@settings(max_examples=200, deadline=None)
@given(name=names, args=values.filter(lambda v: not isinstance(v, dict)), fence=fences)
def test_arguments_not_an_object_is_text(name: str, args: Any, fence: str) -> None:
    assert content_tool_call(wrap(fence, {"name": name, "arguments": args}), OFFERED) is None


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_garbage_is_text(text: str) -> None:
    """Arbitrary text never becomes a call unless it is exactly the call shape (then it names an offered tool)."""
    call = content_tool_call(text, OFFERED)
    assert call is None or call.name in OFFERED


@settings(max_examples=200, deadline=None)
@given(
    name=names, args=arguments, prose=st.text(min_size=1, max_size=40).filter(lambda s: s.strip()), before=st.booleans()
)
def test_prose_around_the_call_is_text(name: str, args: dict[str, Any], prose: str, before: bool) -> None:
    block = wrap("```json\n{}\n```", {"name": name, "arguments": args})
    text = f"{prose}\n{block}" if before else f"{block}\n{prose}"
    assert content_tool_call(text, OFFERED) is None


def test_fixed_cases() -> None:
    qwen = '```json\n{"name": "unit_status", "arguments": {"unit": "nginx.service"}}\n```'
    assert content_tool_call(qwen, OFFERED).arguments == {"unit": "nginx.service"}  # type: ignore[union-attr]
    assert content_tool_call(qwen, ()) is None  # no tools offered: always text
    assert content_tool_call(None, OFFERED) is None
    assert content_tool_call('{"name": "unit_status", "arguments": {}', OFFERED) is None  # cut off
    two = qwen + "\n" + qwen
    assert content_tool_call(two, OFFERED) is None
    assert content_tool_call("[" * 5000 + "]" * 5000, OFFERED) is None
    assert content_tool_call("{" + '"a":{' * 3000 + "}" * 3001, OFFERED) is None  # too deep: text, not a crash
