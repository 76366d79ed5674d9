"""A ``llama_cpp.Llama`` whose sampler chain records each chosen token's log-probability
under the grammar-constrained, temperature-1 distribution.

The chain is the one ``Llama._init_sampler`` builds for ordinary sampling (penalties,
grammar, top-k, typical, top-p, min-p, temperature, dist; or greedy at temperature 0)
with two recording steps added: one right after the grammar, one at the very end. The
pinned llama-cpp-python version (0.3.36) is what this mirrors; the embedded tests fail
if a new version changes the chain.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from llama_cpp import Llama, llama_cpp
from llama_cpp._internals import LlamaSampler


class RecordingLlama(Llama):
    """``Llama`` that appends one log-probability per sampled token to ``recorded``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: list[float] = []
        self._allowed: tuple[Any, Any] | None = None

    def _init_sampler(  # noqa: PLR0917 - mirrors the parent signature
        self,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        temp: float = 0.80,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_eta: float = 0.1,
        mirostat_tau: float = 5.0,
        penalize_nl: bool = True,
        logits_processor: Any = None,
        grammar: Any = None,
    ) -> Any:
        if mirostat_mode != 0 or logits_processor:  # not used by Covenant: no recording
            return super()._init_sampler(
                top_k,
                top_p,
                min_p,
                typical_p,
                temp,
                repeat_penalty,
                frequency_penalty,
                presence_penalty,
                tfs_z,
                mirostat_mode,
                mirostat_eta,
                mirostat_tau,
                penalize_nl,
                logits_processor,
                grammar,
            )
        sampler: Any = LlamaSampler()  # type: ignore[no-untyped-call]
        sampler.add_penalties(
            n_vocab=self._n_vocab,
            penalty_last_n=self.last_n_tokens_size,
            penalty_repeat=repeat_penalty,
            penalty_freq=frequency_penalty,
            penalty_present=presence_penalty,
        )
        if grammar is not None:
            sampler.add_grammar(self._model, grammar)
        sampler.add_custom(self._record_allowed)
        if temp == 0.0:
            sampler.add_greedy()
        else:
            sampler.add_top_k(top_k)
            sampler.add_typical(typical_p, 1)
            sampler.add_top_p(top_p, 1)
            sampler.add_min_p(min_p, 1)
            sampler.add_temp(temp)
            sampler.add_dist(self._seed)
        sampler.add_custom(self._record_chosen)
        return sampler

    def _record_allowed(self, cur_p: Any) -> None:
        ids, logits = _view(cur_p)
        finite = np.isfinite(logits)
        allowed_ids, allowed = ids[finite], logits[finite].astype(np.float64)
        top = allowed.max()
        log_total = top + np.log(np.exp(allowed - top).sum())
        self._allowed = (allowed_ids.copy(), allowed - log_total)

    def _record_chosen(self, cur_p: Any) -> None:
        array = cur_p.contents
        if self._allowed is None or array.selected < 0:
            return
        token = array.data[array.selected].id
        ids, logprobs = self._allowed
        where = np.flatnonzero(ids == token)
        if where.size:
            self.recorded.append(float(logprobs[where[0]]))
        self._allowed = None


def _view(cur_p: Any) -> tuple[Any, Any]:
    """The (ids, logits) columns of a llama_token_data_array, without copying."""
    array = cur_p.contents
    records = (llama_cpp.llama_token_data * array.size).from_address(
        ctypes.addressof(array.data.contents)
    )
    table = np.ctypeslib.as_array(records)
    return table["id"], table["logit"]
