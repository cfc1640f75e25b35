"""scripts/local.sh's choice of model per role (rig/local.py `server_plan`)."""

from rig.local import JUDGE_ROLES, server_plan


def test_the_roles_that_judge_get_the_judge_model_by_default() -> None:
    plan = server_plan(tiny=False, cpus=2)
    assert {role for role, opts in plan.items() if opts["model"] == "judge"} == set(JUDGE_ROLES) == {"review", "meta"}
    assert plan["trigger"]["model"] == plan["embed"]["model"] == "tiny"
    assert plan["embed"]["embeddings"] is True
    # Every core for the judge; the tiny servers keep the rig's one thread.
    assert plan["review"]["threads"] == plan["meta"]["threads"] == 2
    assert "threads" not in plan["trigger"]
    # The meta role offers tools (chat template) and both judge roles get a full slot each.
    assert plan["meta"]["tools"] is True and plan["review"]["tools"] is False
    assert plan["meta"]["ctx_size"] == plan["review"]["ctx_size"] == 16384


def test_tiny_keeps_every_role_on_smollm2() -> None:
    plan = server_plan(tiny=True, cpus=8)
    assert {opts["model"] for opts in plan.values()} == {"tiny"}
    assert all("threads" not in opts for opts in plan.values())
    assert "ctx_size" not in plan["review"]
    assert plan["meta"]["ctx_size"] == 16384


def test_every_default_role_is_planned() -> None:
    assert list(server_plan(tiny=False, cpus=1)) == ["trigger", "review", "meta", "embed"]
