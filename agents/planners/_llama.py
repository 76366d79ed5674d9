"""A ``llama_cpp.Llama`` whose sampler chain records each sampled token's plain
log-probability, and which counts the prompt tokens llama.cpp evaluates per call.

Token evidence. ``recorded`` gets, for each sampled token other than the
end-of-generation token, the model's plain log-softmax of that token: over the full
vocabulary, at temperature 1, before penalties, grammar and any truncation (top-k,
top-p, min-p). That is what Ollama returns as ``logprobs`` (its runner takes the
log-softmax of the raw logits and sends none for the end-of-sequence token), so
``ConfidenceEvidence.mean_token_logprob`` means the same on both backends. A token the
grammar forces (a brace, a key) therefore scores what the unconstrained model gives it,
often far below 0: the evidence measures how much the model itself expected the reply.

The chain is the one ``Llama._init_sampler`` builds for ordinary sampling (penalties,
grammar, top-k, typical, top-p, min-p, temperature, dist; or greedy at temperature 0)
with two recording steps added: ``_record_raw`` first, while the candidate array still
holds the raw logits of the whole vocabulary, and ``_record_chosen`` at the very end,
which looks up the chosen token. The pinned llama-cpp-python version (0.3.36) is what
this mirrors; the embedded tests fail if a new version changes the chain.

Prefill. ``prefill_tokens`` counts the tokens ``eval`` decodes between
:meth:`RecordingLlama.begin_call` and the first sampled token: the part of the prompt
llama.cpp actually evaluated. ``Llama.generate`` (llama_cpp/llama.py, 0.3.36, "Check for
kv cache prefix match") keeps the KV cache for the longest common token prefix of the
new prompt and the tokens already in the context, trims the rest with
``kv_cache_seq_rm`` and evaluates only the suffix (one token when the whole prompt is
cached), so a prompt that repeats the previous call's costs about one token.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_cpp import Llama, llama_cpp
from llama_cpp._internals import LlamaSampler


class RecordingLlama(Llama):
    """``Llama`` that appends one plain log-probability per sampled token to
    ``recorded`` and counts the prompt tokens it evaluates in ``prefill_tokens``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: list[float] = []
        self.prefill_tokens = 0
        self._prefilling = False
        self._raw: tuple[Any, Any, float] | None = None
        self._vocab = llama_cpp.llama_model_get_vocab(self.model)

    def begin_call(self) -> None:
        """Start recording one completion: empty ``recorded``, zero ``prefill_tokens``."""
        self.recorded = []
        self.prefill_tokens = 0
        self._prefilling = True
        self._raw = None

    def eval(self, tokens: Sequence[int]) -> None:
        """Decode `tokens`; those decoded before the first sample count as prefill."""
        if self._prefilling:
            self.prefill_tokens += len(tokens)
        super().eval(tokens)

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        """Sample the next token; from here on ``eval`` decodes sampled tokens."""
        self._prefilling = False
        return super().sample(*args, **kwargs)

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
        sampler.add_custom(self._record_raw)  # first: the raw logits, whole vocabulary
        sampler.add_penalties(
            n_vocab=self._n_vocab,
            penalty_last_n=self.last_n_tokens_size,
            penalty_repeat=repeat_penalty,
            penalty_freq=frequency_penalty,
            penalty_present=presence_penalty,
        )
        if grammar is not None:
            sampler.add_grammar(self._model, grammar)
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

    def _record_raw(self, cur_p: Any) -> None:
        # The later steps rewrite the array in place (-inf from the grammar, sorting,
        # truncation, temperature), so keep the shifted logits (one float32 copy of the
        # vocabulary) and the log of the normaliser; the pick looks its token up in them.
        ids, logits = _view(cur_p)
        shifted = logits - logits.max()
        log_norm = float(np.log(np.exp(shifted).sum(dtype=np.float64)))
        self._raw = (ids.copy() if not _in_id_order(ids) else None, shifted, log_norm)

    def _record_chosen(self, cur_p: Any) -> None:
        array = cur_p.contents
        raw, self._raw = self._raw, None
        if raw is None or array.selected < 0:
            return
        token = int(array.data[array.selected].id)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return  # Ollama sends no logprob for the end-of-sequence token either
        ids, shifted, log_norm = raw
        where = token if ids is None else int(np.flatnonzero(ids == token)[0])
        self.recorded.append(float(shifted[where]) - log_norm)


def _in_id_order(ids: Any) -> bool:
    """Whether row i holds token i (what ``llama_sampler_sample`` builds)."""
    return bool(ids.size and ids[0] == 0 and ids[-1] == ids.size - 1 and np.all(np.diff(ids) == 1))


def _view(cur_p: Any) -> tuple[Any, Any]:
    """The (ids, logits) columns of a llama_token_data_array, without copying."""
    array = cur_p.contents
    records = (llama_cpp.llama_token_data * array.size).from_address(
        ctypes.addressof(array.data.contents)
    )
    table = np.ctypeslib.as_array(records)
    return table["id"], table["logit"]
