from __future__ import annotations

from collections.abc import Iterator

import pytest

from ai_sysadmin.llm import LLMClient
from tests.conftest import role_config


@pytest.fixture()
async def review_client(llama_review) -> Iterator[LLMClient]:
    client = LLMClient(role_config(llama_review, "review"))
    try:
        yield client
    finally:
        await client.aclose()
