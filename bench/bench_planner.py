"""Planner cost per decision with the embedded model (Gemma 3 270M via llama.cpp).

    .venv/bin/python bench/bench_planner.py [--decisions 3] [--agent payer] [--file FILE]

A decision is one ``Planner.plan()`` call: k samples (the planner's ``samples``), each
with one repair re-ask if its reply does not validate. Printed per decision: model calls,
prompt tokens (as sent), prefill tokens (of those, what llama.cpp evaluated: the rest was
in its KV cache; the k samples of a decision share the prompt), completion tokens, wall
time, completion tokens per second of wall time, and the evidence's mean token
log-probability and confidence score; then the medians and the model's load time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.planners import build_planner
from agents.planners.embedded import EmbeddedPlanner, load_model
from agents.planners.types import Balance, Observation
from config.loader import load_deployment


def observation(deployment, agent: str) -> Observation:
    config = deployment.agent(agent)
    balances = tuple(
        Balance(chain=asset.chain, asset=asset.symbol, amount=Decimal(10))
        for asset in deployment.assets
        if asset.chain in config.chains
    )
    return Observation(agent=agent, at=datetime.now(UTC), mandate=config.mandate, balances=balances)


async def main(args: argparse.Namespace) -> None:
    deployment = load_deployment(args.file)
    planner = build_planner(deployment, args.agent)
    if not isinstance(planner, EmbeddedPlanner):
        raise SystemExit(f"agent {args.agent} does not use an embedded planner")
    started = time.perf_counter()
    load_model(planner.config.model_path)
    print(
        f"model load: {time.perf_counter() - started:.2f} s; samples per decision: "
        f"{planner.samples}"
    )
    print(
        f"{'decision':>8} {'calls':>5} {'prompt tok':>10} {'prefill':>7} {'compl tok':>9} "
        f"{'seconds':>8} {'tok/s':>6} {'logprob':>9}  plan"
    )
    rows = []
    for index in range(args.decisions):
        started = time.perf_counter()
        result = await planner.plan(observation(deployment, args.agent))
        seconds = time.perf_counter() - started
        rate = result.completion_tokens / seconds
        prefill = getattr(result, "prefill_tokens", None)
        logprob = result.evidence.mean_token_logprob
        score = result.evidence.score
        rows.append(
            (
                result.model_calls,
                result.prompt_tokens,
                -1 if prefill is None else prefill,
                result.completion_tokens,
                seconds,
                rate,
                float("nan") if logprob is None else float(logprob),
                float(score),
            )
        )
        summary = f"{len(result.plan.actions)} action(s), score {score}"
        print(
            f"{index + 1:>8} {result.model_calls:>5} {result.prompt_tokens:>10} "
            f"{'-' if prefill is None else prefill:>7} {result.completion_tokens:>9} "
            f"{seconds:>8.1f} {rate:>6.1f} {'-' if logprob is None else f'{logprob:.4f}':>9}"
            f"  {summary}"
        )
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(
        f"{'median':>8} {medians[0]:>5.0f} {medians[1]:>10.0f} {medians[2]:>7.0f} "
        f"{medians[3]:>9.0f} {medians[4]:>8.1f} {medians[5]:>6.1f} {medians[6]:>9.4f}"
        f"  score {medians[7]:.4f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="config/demo.yaml")
    parser.add_argument("--agent", default="payer")
    parser.add_argument("--decisions", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
