"""The Ollama planner against Ollama's behaviour as its source defines it (issue #19),
over real HTTP to the stand-in in ``_ollama_server``. Each failure a real server or the
network in front of it can produce ends in a clear PlannerError from ``complete`` and in
an empty plan with the reason from ``plan``, never in an exception that fails the tick.
Where it shows what is at stake, the bare ChatOllama client is the negative control: it
lets the raw exception out.

Tests without the model answer before any generation; the rest use the tiny schema
below so that each reply is a dozen tokens.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import ollama
import pytest
from langchain_core.messages import HumanMessage
from langchain_ollama import ChatOllama

from agents.plan import failed_evidence
from agents.planners import build_planner
from agents.planners.ollama import OllamaPlanner, OllamaUnavailable, model_name
from config.errors import PlannerError
from config.models import Deployment
from tests.agents._ollama_server import MODEL, THINKING, THINKING_LOGPROB, Fault, OllamaStandIn
from tests.agents.conftest import deployment_data, make_observation

TINY = {
    "type": "object",
    "properties": {"pay": {"enum": ["yes", "no"]}},
    "required": ["pay"],
    "additionalProperties": False,
}
QUESTION = [{"role": "user", "content": 'Should we pay? Answer {"pay": "yes"} or {"pay": "no"}.'}]


class _NoModel:
    """Stands in for the model where a test must never reach generation."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the model was used ({name}) where no test needs it")


@pytest.fixture
def server():
    with OllamaStandIn(_NoModel()) as stand_in:  # type: ignore[arg-type]
        yield stand_in


@pytest.fixture(scope="module")
def served(model_engine):
    with OllamaStandIn(model_engine) as stand_in:
        yield stand_in


def planner_for(url: str, **extra: Any) -> OllamaPlanner:
    data = deployment_data()
    data["agents"][0]["schedule"] = extra.pop("schedule", {"every": "10m"})
    planner = {"name": "under-test", "kind": "ollama", "base_url": url, "model": MODEL}
    data["planners"].append(planner | {"temperature": 0.0, "timeout": "60s", **extra})
    data["agents"][0]["planner"] = "under-test"
    built = build_planner(Deployment.model_validate(data), "alice")
    assert isinstance(built, OllamaPlanner)
    return built


def post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/api/chat", json=body, timeout=60)


# --- what the planner sends ----------------------------------------------------------


async def test_requests_carry_think_false_num_predict_keep_alive_and_a_seed_each(server):
    planner = planner_for(server.url, num_predict=200)
    server.fail_next(Fault(status=503, error="busy"), times=3)
    for _ in range(3):
        with pytest.raises(PlannerError):
            await planner.complete(QUESTION, TINY)
    sent = server.requests
    assert [r["think"] for r in sent] == [False] * 3
    assert {r["options"]["num_predict"] for r in sent} == {200}
    assert {r["keep_alive"] for r in sent} == {f"{2 * 600 + 60}s"}  # two 10-minute ticks
    seeds = [r["options"]["seed"] for r in sent]
    assert len(set(seeds)) == 3, "each sample is its own draw"


@pytest.mark.parametrize(
    ("extra", "keep"),
    [
        ({"schedule": {"every": "30s"}}, "300s"),  # never below Ollama's own 5 minutes
        ({"schedule": {"cron": "0 * * * *"}}, "3600s"),
        ({"keep_alive": "2h"}, "7200s"),
    ],
)
async def test_keep_alive_follows_the_schedule_unless_configured(server, extra, keep):
    server.fail_next(Fault(status=503))
    with pytest.raises(PlannerError):
        await planner_for(server.url, **extra).complete(QUESTION, TINY)
    assert server.requests[-1]["keep_alive"] == keep


# --- failures: each a clear PlannerError ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "hint"),
    [
        (400, "invalid options", "check model of planner 'under-test'"),
        (404, f"model '{MODEL}' not found, try pulling it first", f"`ollama pull {MODEL}`"),
        (499, "request canceled", "cancelled; retry"),
        (500, "invalid JSON schema in format", "cannot turn the plan schema into a grammar"),
        (503, "server busy, please try again.  maximum pending requests exceeded", "queue"),
        (500, "model runner has unexpectedly stopped", "server log"),
    ],
)
async def test_a_status_before_the_first_byte_is_a_planner_error(server, status, error, hint):
    server.fail_next(Fault(status=status, error=error))
    with pytest.raises(PlannerError) as caught:
        await planner_for(server.url).complete(QUESTION, TINY)
    message = str(caught.value)
    assert server.url in message
    assert f"HTTP {status}" in message
    assert hint in message


async def test_the_bare_client_lets_a_status_out_as_response_error(server):
    # Negative control: without the planner the tick would see ollama.ResponseError.
    server.fail_next(Fault(status=503, error="busy"))
    client = ChatOllama(model=MODEL, base_url=server.url)
    with pytest.raises(ollama.ResponseError) as caught:
        await client.ainvoke([HumanMessage(content="hi")])
    assert caught.value.status_code == 503


async def test_an_unknown_model_is_a_404_with_the_pull_command(server):
    planner = planner_for(server.url, model="llama9:70b")
    with pytest.raises(PlannerError, match=r"ollama pull llama9:70b"):
        await planner.complete(QUESTION, TINY)
    assert post(server.url, {"model": "llama9:70b", "messages": []}).status_code == 404


@pytest.mark.parametrize("name", ["gemma3:270m", "Gemma3:270M", "library/gemma3:270m"])
def test_model_names_resolve_as_ollama_resolves_them(server, name):
    answer = post(server.url, {"model": name, "messages": []})  # an empty chat: load only
    assert answer.status_code == 200
    assert answer.json()["done_reason"] == "load"
    assert model_name(name) == model_name(MODEL)


async def test_check_accepts_the_names_ollama_accepts(server):
    await planner_for(server.url, model="GEMMA3:270m").check()
    await planner_for(server.url, model="registry.ollama.ai/library/gemma3:270m").check()
    with pytest.raises(PlannerError, match="has no model 'gemma3'"):
        await planner_for(server.url, model="gemma3").check()  # gemma3:latest is not there


async def test_an_empty_200_is_a_planner_error(server):
    server.fail_next(Fault(empty_body=True))
    with pytest.raises(PlannerError, match="200 with an empty body"):
        await planner_for(server.url).complete(QUESTION, TINY)
    server.fail_next(Fault(empty_body=True))
    with pytest.raises(ValueError, match="No data received"):  # the bare client
        await ChatOllama(model=MODEL, base_url=server.url).ainvoke("hi")


async def test_a_line_that_is_not_json_is_a_planner_error(server):
    server.fail_next(Fault(non_json_line=True))
    with pytest.raises(PlannerError, match="not JSON") as caught:
        await planner_for(server.url).complete(QUESTION, TINY)
    assert "502 Bad Gateway" in str(caught.value)
    server.fail_next(Fault(non_json_line=True))
    with pytest.raises(json.JSONDecodeError):  # the bare client
        await ChatOllama(model=MODEL, base_url=server.url).ainvoke("hi")


async def test_a_read_timeout_says_timeout_not_unreachable(server):
    server.fail_next(Fault(header_delay=2.0, status=503))
    planner = planner_for(server.url, timeout="1s")
    with pytest.raises(PlannerError, match=r"sent nothing for 1s \(ReadTimeout\)") as caught:
        await planner.complete(QUESTION, TINY)
    assert "unreachable" not in str(caught.value)
    assert "raise timeout" in str(caught.value)


async def test_a_refused_connection_is_unreachable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    planner = planner_for(f"http://user:hunter2@127.0.0.1:{port}")
    with pytest.raises(PlannerError, match=r"unreachable.*`ollama serve`") as caught:
        await planner.complete(QUESTION, TINY)
    assert "hunter2" not in str(caught.value), "no credentials in a message that is logged"
    with pytest.raises(PlannerError, match="unreachable"):
        await planner.check()


# --- the decision: an empty plan with the reason -------------------------------------


async def test_a_failing_server_gives_an_empty_plan_with_the_reason(server):
    planner = planner_for(server.url, samples=3)
    server.fail_next(Fault(status=503, error="server busy"), times=3)
    result = await planner.plan(make_observation())
    assert result.plan.actions == ()
    assert any("HTTP 503" in error and server.url in error for error in result.errors)
    assert result.evidence == failed_evidence(3, 0)  # what the circuit breaker counts
    # One request at a time (parallel 1), and the failure cancels the ones still queued.
    assert len(server.requests) == 1
    assert result.model_calls == 1


async def test_only_an_ollama_that_cannot_serve_at_all_is_raised_from_plan(server):
    # The Planner contract: unreachable or without the model, an operator must act.
    planner = planner_for(server.url, model="llama9:70b", samples=2)
    with pytest.raises(OllamaUnavailable, match="`ollama pull llama9:70b`"):
        await planner.plan(make_observation())
    assert len(server.requests) == 1, "the queued sample was not sent"


async def test_with_parallel_requests_a_failure_cancels_the_others(server):
    planner = planner_for(server.url, samples=3, parallel=3, timeout="30s")
    server.fail_next(Fault(status=503))
    server.fail_next(Fault(header_delay=5.0, status=503), times=2)
    started = time.monotonic()
    result = await planner.plan(make_observation())
    assert time.monotonic() - started < 4, "the delayed requests were not waited for"
    assert result.plan.actions == ()
    assert any("HTTP 503" in error for error in result.errors)
    assert result.model_calls == 3


def test_the_stand_in_answers_what_ollama_answers_before_generating(server):
    assert post(server.url, {"model": MODEL, "messages": [], "think": True}).json() == {
        "error": f'"{MODEL}" does not support thinking'
    }
    assert post(server.url, {"model": MODEL, "messages": [], "think": False}).status_code == 200
    bad_schema = {"model": MODEL, "messages": QUESTION, "format": {"type": "bogus"}}
    answer = post(server.url, bad_schema)
    assert (answer.status_code, answer.json()) == (500, {"error": "invalid JSON schema in format"})
    answer = post(server.url, {"model": MODEL, "messages": [], "keep_alive": "soon"})
    assert answer.status_code == 400
    answer = post(server.url, {"model": MODEL, "messages": [], "keep_alive": "90s"})
    assert answer.status_code == 200


def test_the_stand_in_seed_is_random_unless_sent(server):
    for options in ({}, {}, {"seed": 7}):
        post(server.url, {"model": MODEL, "messages": [], "options": options})
    assert server.seeds[2] == 7
    assert server.seeds[0] != server.seeds[1]


async def test_a_schema_ollama_cannot_convert_is_a_planner_error_not_a_fallback(server):
    with pytest.raises(PlannerError, match="invalid JSON schema in format"):
        await planner_for(server.url).complete(QUESTION, {"type": "bogus"})


def test_thinking_defaults_follow_the_model():
    capable = OllamaStandIn(_NoModel(), thinking="capable")  # type: ignore[arg-type]
    assert capable._thinks(None), "a thinking model thinks by default (Ollama 0.12.4)"
    assert capable._thinks(True)
    assert not capable._thinks(False)
    always = OllamaStandIn(_NoModel(), thinking="always")  # type: ignore[arg-type]
    assert always._thinks(False)


# --- with the model ------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
async def test_logprobs_are_plain_log_softmax_without_the_eos(served, model_engine):
    planner = planner_for(served.url, model="library/Gemma3:270m")
    completion = await planner.complete(QUESTION, TINY)
    assert json.loads(completion.text)["pay"] in {"yes", "no"}
    logprobs = completion.token_logprobs
    assert logprobs is not None
    # eval_count counted the EOS, which has no logprob; the planner counts like llama.cpp
    assert len(logprobs) == completion.completion_tokens
    # The same greedy reply on the embedded engine means the same: the stand-in reads
    # the context's logit row as Ollama's runner does, the embedded recorder the sampler's
    # candidates before the grammar; per token they agree, the EOS left out by both.
    embedded = model_engine.chat(QUESTION, TINY, temperature=0.0, max_tokens=32, seed=1)
    assert embedded.text == completion.text
    assert embedded.token_logprobs is not None
    assert len(embedded.token_logprobs) == len(logprobs)
    # Within float rounding only: llama.cpp's sums depend on how the prompt was split
    # into batches (a cached prefix or not), which moved one token by 0.05 on CI. A
    # grammar-renormalised value would differ by more than 1 on a forced token (below).
    assert logprobs == pytest.approx(embedded.token_logprobs, abs=0.2)
    assert min(logprobs) < -1  # a token the grammar forces: plain, not renormalised


@pytest.mark.model
@pytest.mark.slow
def test_num_predict_is_honoured(served):
    body = {"model": MODEL, "messages": QUESTION, "format": TINY, "stream": False, "logprobs": True}
    answer = post(served.url, body | {"options": {"temperature": 0, "num_predict": 3}}).json()
    assert (answer["done_reason"], answer["eval_count"]) == ("length", 3)
    assert len(answer["logprobs"]) == 3  # no EOS was sampled


@pytest.mark.model
@pytest.mark.slow
async def test_a_mid_stream_error_line_is_a_planner_error(served):
    error = "an error was encountered while running the model"
    served.fail_next(Fault(after_chunks=2, error=error))
    with pytest.raises(PlannerError, match=r"mid-stream error: an error was encountered"):
        await planner_for(served.url).complete(QUESTION, TINY)
    served.fail_next(Fault(after_chunks=2, error="boom"))
    bare = ChatOllama(model=MODEL, base_url=served.url, num_predict=16, temperature=0)
    with pytest.raises(ollama.ResponseError) as caught:  # the bare client
        await bare.ainvoke([HumanMessage(content=QUESTION[0]["content"])], format=TINY)
    assert caught.value.status_code == -1


@pytest.mark.model
@pytest.mark.slow
async def test_a_stream_cut_before_its_final_line_is_a_planner_error(served):
    served.fail_next(Fault(cut_before_done=True))
    with pytest.raises(PlannerError, match="before its final line"):
        await planner_for(served.url).complete(QUESTION, TINY)


@pytest.mark.model
@pytest.mark.slow
async def test_thinking_stays_out_of_the_text_and_the_evidence(model_engine):
    with OllamaStandIn(model_engine, thinking="always") as thinker:
        completion = await planner_for(thinker.url).complete(QUESTION, TINY)
        assert thinker.requests[-1]["think"] is False
        assert json.loads(completion.text)["pay"] in {"yes", "no"}
        assert completion.token_logprobs is not None
        assert THINKING_LOGPROB not in completion.token_logprobs
        assert len(completion.token_logprobs) == completion.completion_tokens
        # Negative control: ChatOllama alone adds the thinking's logprobs to the reply's.
        bare = ChatOllama(
            model=MODEL, base_url=thinker.url, logprobs=True, num_predict=32, temperature=0
        )
        reply = await bare.ainvoke([HumanMessage(content=QUESTION[0]["content"])], format=TINY)
        mixed = [item["logprob"] for item in reply.response_metadata["logprobs"]]
        assert THINKING_LOGPROB in mixed


@pytest.mark.model
@pytest.mark.slow
async def test_a_thinking_model_thinks_by_default_and_not_when_the_planner_asks(model_engine):
    with OllamaStandIn(model_engine, thinking="capable") as thinker:
        completion = await planner_for(thinker.url).complete(QUESTION, TINY)
        assert completion.token_logprobs is not None
        assert THINKING_LOGPROB not in completion.token_logprobs
        # Negative control: the same model asked without `think` thinks first.
        body = {"model": MODEL, "messages": QUESTION, "format": TINY, "stream": False}
        answer = post(thinker.url, body | {"options": {"num_predict": 1}}).json()
        assert answer["message"]["thinking"] == "".join(THINKING)
