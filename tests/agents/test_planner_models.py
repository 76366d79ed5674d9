"""Planners against a real model: the embedded llama.cpp planner, and the Ollama planner
(the real LangChain ChatOllama client) against a loopback Ollama stand-in backed by the
same model. Slow: each reply takes seconds on two cores."""

from __future__ import annotations

import json
import socket

import pytest

from agents.plan import parse_plan, plan_schema
from agents.planners import build_planner
from agents.planners.embedded import EmbeddedPlanner
from agents.planners.ollama import OllamaPlanner
from config.errors import PlannerError
from config.models import Deployment
from tests.agents._ollama_server import MODEL, OllamaStandIn
from tests.agents.conftest import deployment_data, make_observation

pytestmark = [pytest.mark.model, pytest.mark.slow]


def with_planner(planner: dict[str, object]) -> Deployment:
    data = deployment_data()
    data["planners"].append({"name": "under-test", **planner})
    data["agents"][0]["planner"] = "under-test"
    return Deployment.model_validate(data)


def assert_schema_shaped(deployment: Deployment, text: str) -> None:
    """A grammar-constrained reply is JSON whose names all come from the schema's enums."""
    data = json.loads(text)
    assert set(data) == {"rationale", "actions", "confidence"}
    names = json.dumps(plan_schema(deployment, "alice"))
    for action in data["actions"]:
        for leg in action.get("legs", [action]):
            assert f'"{leg.get("chain", "arb")}"' in names
            assert leg.get("counterparty", "acme") in {"acme", "bob"}


TINY = {
    "type": "object",
    "properties": {"pay": {"enum": ["yes", "no"]}},
    "required": ["pay"],
    "additionalProperties": False,
}
QUESTION = [{"role": "user", "content": 'Should we pay? Answer {"pay": "yes"} or {"pay": "no"}.'}]


def test_engine_records_one_logprob_per_sampled_token(model_engine):
    completion = model_engine.chat(QUESTION, TINY, temperature=0.0, max_tokens=32, seed=1)
    assert json.loads(completion.text)["pay"] in {"yes", "no"}
    logprobs = completion.token_logprobs
    assert logprobs is not None
    # llama.cpp does not count the end-of-text token as a completion token; we record it
    assert len(logprobs) == completion.completion_tokens + 1
    assert all(value <= 0 for value in logprobs)
    assert sum(logprobs) / len(logprobs) > -3  # grammar-renormalised: not the raw -12s


async def test_embedded_planner_plans_through_the_grammar(model_engine):
    deployment = with_planner(
        {"kind": "embedded", "samples": 2, "temperature": 0.0, "max_tokens": 384}
    )
    planner = build_planner(deployment, "alice")
    assert isinstance(planner, EmbeddedPlanner)
    result = await planner.plan(make_observation())
    assert 2 <= result.model_calls <= 4
    for output in result.raw_outputs:
        assert_schema_shaped(deployment, output)
    assert result.evidence.samples == 2
    assert result.prompt_tokens > 200
    if result.plan.actions:
        assert result.evidence.mean_token_logprob is not None
        assert result.plan in [parse_plan(o, deployment, "alice") for o in result.raw_outputs]


def test_a_missing_model_file_is_a_planner_error(tmp_path):
    from agents.planners.embedded import load_model

    with pytest.raises(PlannerError, match="does not exist; fix model_path"):
        load_model(str(tmp_path / "nope.gguf"))


@pytest.fixture(scope="module")
def ollama(model_engine):
    with OllamaStandIn(model_engine) as server:
        yield server


def ollama_deployment(url: str, model: str = MODEL) -> Deployment:
    return with_planner(
        {
            "kind": "ollama",
            "base_url": url,
            "model": model,
            "samples": 2,
            "temperature": 0.0,
            "timeout": "300s",
        }
    )


async def test_chat_ollama_passes_format_and_brings_back_token_logprobs(ollama):
    planner = build_planner(ollama_deployment(ollama.url), "alice")
    assert isinstance(planner, OllamaPlanner)
    await planner.check()
    completion = await planner.complete(QUESTION, TINY)
    request = ollama.requests[-1]
    assert request["format"] == TINY
    assert request["logprobs"] is True
    assert request["options"]["temperature"] == 0.0
    assert json.loads(completion.text)["pay"] in {"yes", "no"}
    assert completion.token_logprobs is not None
    assert len(completion.token_logprobs) == completion.completion_tokens
    assert completion.prompt_tokens > 10


async def test_ollama_planner_plans_with_the_plan_schema(ollama):
    deployment = with_planner(
        {
            "kind": "ollama",
            "base_url": ollama.url,
            "model": MODEL,
            "samples": 1,
            "temperature": 0.0,
            "timeout": "300s",
        }
    )
    planner = build_planner(deployment, "alice")
    ollama.requests.clear()
    result = await planner.plan(make_observation())
    first = ollama.requests[0]
    assert first["format"] == plan_schema(deployment, "alice")
    assert first["messages"][0]["role"] == "system"
    assert "Pay acme 5 USDC on arb." in first["messages"][1]["content"]
    assert len(ollama.requests) == result.model_calls
    for output in result.raw_outputs:
        assert_schema_shaped(deployment, output)
    assert result.completion_tokens > 10


async def test_ollama_check_names_a_missing_model(ollama):
    planner = build_planner(ollama_deployment(ollama.url, model="llama3:8b"), "alice")
    with pytest.raises(
        PlannerError,
        match=r"has no model 'llama3:8b' \(it has: gemma3:270m\); "
        r"run `ollama pull llama3:8b`",
    ):
        await planner.check()
    with pytest.raises(PlannerError, match=r"refused model 'llama3:8b' \(HTTP 404"):
        await planner.plan(make_observation())


async def test_an_unreachable_ollama_is_a_clear_planner_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    planner = build_planner(ollama_deployment(f"http://127.0.0.1:{port}"), "alice")
    with pytest.raises(PlannerError, match=r"is unreachable .*start it with `ollama serve`"):
        await planner.check()
    with pytest.raises(PlannerError, match="is unreachable"):
        await planner.plan(make_observation())
