"""The judge model in the rig: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) on a real llama-server.

SmolLM2-135M proves the plumbing but cannot judge; these tests prove that the rig's
instruct model loads, answers a json_schema request validly, and that its tool requests
-- a fenced JSON object in `content`, not `tool_calls` -- reach the caller as tool calls.
"""

from __future__ import annotations

from ai_sysadmin.llm import LLMClient
from rig.llama import LlamaServer
from tests.conftest import role_config

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "unit_status",
            "description": "Show the systemd status of one unit.",
            "parameters": {"type": "object", "properties": {"unit": {"type": "string"}}, "required": ["unit"]},
        },
    }
]

VERDICT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["severity", "action", "unit"],
    "properties": {
        "severity": {"enum": ["critical", "high", "medium", "low", "info"]},
        "action": {"enum": ["restart_unit", "rollback_generation", "notify"]},
        "unit": {"type": "string", "maxLength": 40},
    },
}


async def test_judge_answers_a_json_schema_request(llama_judge: LlamaServer) -> None:
    messages = [
        {"role": "system", "content": "You are a NixOS administrator. Answer in JSON."},
        {
            "role": "user",
            "content": "systemd: nginx.service: Main process exited, code=killed, "
            "status=9/KILL; nginx.service: Failed with result 'signal'. "
            "Which catalog action, for which unit?",
        },
    ]
    async with LLMClient(role_config(llama_judge, "review")) as client:
        answer = await client.structured(messages, VERDICT, max_tokens=60)  # validated against VERDICT
    assert answer["action"] in ("restart_unit", "rollback_generation", "notify")
    assert answer["unit"]  # a 1.5B instruct model names the unit; the 135M model often does not


async def test_judge_tool_request_in_content_becomes_a_tool_call(llama_judge: LlamaServer) -> None:
    messages = [
        {"role": "system", "content": "You are a Linux administrator. Use the tools to look things up."},
        {"role": "user", "content": "Is nginx.service running? Check it with the tool."},
    ]
    async with LLMClient(role_config(llama_judge, "meta")) as client:
        turn = await client.tool_turn(messages, TOOLS, tool_choice="auto", max_tokens=80)
    assert turn.tool_calls, turn  # before llm.textcalls: empty, the call stayed in `content`
    call = turn.tool_calls[0]
    assert call.name == "unit_status" and call.error is None
    assert call.arguments.get("unit", "").startswith("nginx")
    assert turn.as_message()["tool_calls"][0]["function"]["name"] == "unit_status"
