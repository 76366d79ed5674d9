"""Planners against a real model: the embedded llama.cpp planner, and the Ollama planner
(the real LangChain ChatOllama client) against a loopback Ollama stand-in backed by the
same model. Slow: each reply takes seconds on two cores."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest

from agents.plan import parse_plan, plan_schema
from agents.planners import build_planner
from agents.planners._prompt import build_messages
from agents.planners.embedded import EmbeddedPlanner
from agents.planners.ollama import OllamaPlanner
from agents.planners.types import Completion, PlanResult
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
    # Like Ollama: one value per completion token, none for the end-of-text token
    assert len(logprobs) == completion.completion_tokens
    assert all(value <= 0 for value in logprobs)
    # Plain log-softmax, before the grammar: the forced opening brace is no log 1 = 0
    assert logprobs[0] < -1


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


def spy_on(planner: EmbeddedPlanner) -> list[Completion]:
    """The completions `planner` returns from now on, in the order they are made."""
    seen: list[Completion] = []
    complete = planner.complete

    async def recording(messages, schema):
        completion = await complete(messages, schema)
        seen.append(completion)
        return completion

    planner.complete = recording  # type: ignore[method-assign]
    return seen


def assert_one_prefill(result: PlanResult, seen: list[Completion], samples: int) -> None:
    """The decision's prompt was evaluated once: by its first call, and every later call
    of the decision evaluated at most what it adds to that prompt (one token for a
    sample of the same prompt, the reply and errors for a repair)."""
    assert result.model_calls == len(seen) >= samples
    first = seen[0]
    assert first.prefill_tokens is not None
    # at most all of it (another decision's call may have left a common prefix cached)
    assert 0 < first.prefill_tokens <= first.prompt_tokens
    prompt = first.prompt_tokens
    for later in seen[1:]:
        assert later.prefill_tokens is not None
        assert later.prefill_tokens <= later.prompt_tokens - prompt + 1, seen
    firsts = [c for c in seen if c.prompt_tokens == prompt]
    assert len(firsts) == samples  # every sample asks the same prompt first
    assert sum(c.prefill_tokens or 0 for c in firsts) < 1.2 * prompt
    assert result.prefill_tokens == sum(c.prefill_tokens or 0 for c in seen)


async def test_a_decision_evaluates_its_prompt_once(model_engine):
    deployment = with_planner(
        {"kind": "embedded", "samples": 2, "temperature": 0.0, "max_tokens": 384}
    )
    planner = build_planner(deployment, "alice")
    assert isinstance(planner, EmbeddedPlanner)
    model_engine.llama.reset()  # nothing of the prompt in the cache
    seen = spy_on(planner)
    result = await planner.plan(make_observation())
    assert_one_prefill(result, seen, samples=2)
    prompt = seen[0].prompt_tokens
    assert seen[0].prefill_tokens == prompt  # after the reset: the whole prompt
    assert result.prefill_tokens is not None
    print(
        f"prompt {prompt} tokens; decision of {result.model_calls} calls prefilled "
        f"{result.prefill_tokens} ({result.prompt_tokens} sent)"
    )


async def test_concurrent_decisions_do_not_evict_each_others_prompt(model_engine):
    deployment = with_planner(
        {"kind": "embedded", "samples": 2, "temperature": 0.0, "max_tokens": 16}
    )
    planners = [build_planner(deployment, "alice") for _ in range(2)]
    assert all(isinstance(p, EmbeddedPlanner) for p in planners)
    model_engine.llama.reset()
    spies = [spy_on(p) for p in planners]  # type: ignore[arg-type]
    observations = [
        make_observation(),
        make_observation(mandate="Pay bob 7 USDC on arb when the invoice arrives."),
    ]
    results = await asyncio.gather(
        *(p.plan(o) for p, o in zip(planners, observations, strict=True))
    )
    for result, seen in zip(results, spies, strict=True):
        assert_one_prefill(result, seen, samples=2)


def test_without_a_shared_prefix_the_prompt_is_evaluated_again(model_engine):
    # Negative control for the two tests above: the count is of evaluated tokens, so it
    # rises when the cache does not hold the prompt (another agent's call in between,
    # or a reset), and is about one token when it does.
    deployment = with_planner({"kind": "embedded"})
    messages = build_messages(deployment, make_observation())
    schema = plan_schema(deployment, "alice")

    def ask(prompt: list[dict[str, str]], shape: dict[str, Any] = schema) -> Completion:
        reply: Completion = model_engine.chat(prompt, shape, temperature=0.0, max_tokens=16, seed=1)
        return reply

    first = ask(messages)
    again = ask(messages)
    assert again.prefill_tokens == 1  # the whole prompt was cached: one token replayed
    ask(QUESTION, TINY)  # another agent's call slips in between
    evicted = ask(messages)
    assert evicted.prompt_tokens == first.prompt_tokens
    assert evicted.prefill_tokens is not None
    assert evicted.prefill_tokens > 0.9 * first.prompt_tokens
    model_engine.llama.reset()
    assert ask(messages).prefill_tokens == first.prompt_tokens
    # Reusing the cache changes nothing of the (greedy) reply, and its evidence only by
    # float rounding: llama.cpp's sums depend on how the tokens were split into batches
    # (CI measured -13.4832 against -13.4288 for one token), so compare within 0.2.
    assert again.text == first.text == evicted.text
    assert again.token_logprobs is not None
    assert first.token_logprobs is not None
    assert len(again.token_logprobs) == len(first.token_logprobs)
    pairs = zip(again.token_logprobs, first.token_logprobs, strict=True)
    assert all(abs(reused - fresh) < 0.2 for reused, fresh in pairs)
