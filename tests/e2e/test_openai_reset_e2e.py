"""A provider that fails mid-answer, seen through the OpenAI-compatible stream of the real fleet: chat sends
``reset`` and the next provider starts over; the OpenAI stream cannot take back text, so it ends with an
error instead of gluing the replacement to the partial answer."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .conftest import Fleet, tenant_server_key

pytestmark = [pytest.mark.e2e]
QUESTION = "How long does delivery take?"
STANDIN_ANSWER = "According to our help centre, this is answered in the knowledge base [1]."


def reliability_fleet_module() -> Any:
    """The reliability suite's stand-ins (its LLM has a ``stall`` mode), loaded by path: the test
    directories are not one importable package."""
    name = "switchboard_reliability_fleet"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parents[1] / "reliability" / "fleet.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def stalling(fleet: Fleet) -> Iterator[tuple[openai.OpenAI, Any]]:
    """A tenant whose first provider streams half an answer and then stalls; extractive stands behind it."""
    fleet.require("chat")
    llm = reliability_fleet_module().LLMStandIn()
    llm.app.start()
    llm.mode, llm.hang = "stall", 20.0
    key = tenant_server_key(fleet.gateway, "openai-reset")
    settings = {
        "providers": ["openai-compatible", "extractive"],
        "provider_configs": {
            "openai-compatible": {"base_url": llm.base_url, "model": "standin", "timeout_seconds": 1.5}
        },
    }
    assistant = httpx.put(
        f"{fleet.gateway}/v1/assistant", json=settings, headers={"Authorization": f"Bearer {key}"}
    )
    assert assistant.status_code == 200, assistant.text
    client = openai.OpenAI(base_url=f"{fleet.gateway}/v1", api_key=key, max_retries=0, timeout=60)
    try:
        yield client, llm
    finally:
        client.close()
        llm.app.stop()


def test_a_stream_whose_provider_fails_mid_answer_ends_with_an_error_not_two_answers(
    stalling: tuple[openai.OpenAI, Any],
) -> None:
    client, llm = stalling
    stream = client.chat.completions.create(
        model="switchboard-assistant", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    shown: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            if chunk.choices:
                shown.append(chunk.choices[0].delta.content or "")
    assert llm.requests, "the stand-in was not asked"
    partial = "".join(shown)
    # Only the failed provider's first words reached the customer, and nothing after them.
    assert partial and STANDIN_ANSWER.startswith(partial), partial
    assert "interrupted" in raised.value.message
    assert (raised.value.body or {}).get("code") == "answer_interrupted", raised.value.body


def test_the_json_answer_is_the_replacement_alone(stalling: tuple[openai.OpenAI, Any]) -> None:
    client, _ = stalling
    completion = client.chat.completions.create(
        model="switchboard-assistant", messages=[{"role": "user", "content": QUESTION}]
    )
    answer = completion.choices[0].message.content or ""
    assert answer and STANDIN_ANSWER[:20] not in answer, answer
