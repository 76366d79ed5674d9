"""A loopback HTTP server that speaks the parts of Ollama's API the planner uses
(``GET /api/tags``, ``POST /api/chat``), backed by the embedded llama.cpp model. Ollama
itself cannot be installed here; this lets the real ``ChatOllama`` client run against a
real model.

It follows Ollama's source, not our expectations of it (read at ollama/ollama v0.24.0,
commit c28ddc0a, the last release with Ollama's own Go runners, and at HEAD fb307609,
v0.33.0-rc2, which runs upstream llama-server). Where a rule comes from is named next to
the code that copies its behaviour. In short:

- Errors before the first chunk are a real HTTP status with ``{"error": ...}``; once a
  chunk is out, an error is one more NDJSON line ``{"error": ...}`` after the 200
  (server/routes.go streamResponse).
- Model names resolve case-insensitively, with the tag defaulting to ``latest`` and the
  ``library`` namespace and registry host optional (types/model/name.go ParseName,
  server/routes.go getExistingName); an unknown model is 404.
- ``think`` on a model without thinking is a 400; a thinking model thinks unless told
  not to (ChatHandler, since v0.12.4); ``format`` applies only after the thinking.
- ``format`` with a schema the grammar converter rejects is a 500 ``invalid JSON schema in
  format`` (v0.24.0 llm/server.go Completion); nothing silently falls back to plain JSON.
- Options default as api/types.go DefaultOptions: seed -1 (random), num_predict -1
  (until the context is full), temperature 0.8, top_k 40, top_p 0.9, min_p 0.
- Log-probabilities are the plain log-softmax of the model's raw logits, taken before
  the grammar, penalties and temperature (v0.24.0 runner/common/logprob.go
  CalculateLogprobs on the runner's raw logits). The end-of-sequence token gets none but
  counts in ``eval_count`` (runner/ollamarunner/runner.go computeBatch: the EOS check
  comes before the logprob step, ``numPredicted`` is counted before both).

Not served: ``top_logprobs`` alternatives (validated, never filled in), prompt
truncation at ``num_ctx`` (llama.cpp here refuses an over-long prompt with a 500 where
Ollama keeps the system message and the latest turn and cuts the middle), tools, images.

Faults a test can inject (:class:`Fault`) cover what a real server or the network in
front of it does: a status before the first byte, a mid-stream error line, delayed
headers, an empty 200, a line that is not JSON, a stream cut before its final line.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import numpy as np

from agents.planners.embedded import LlamaModel

MODEL = "gemma3:270m"
THINKING = ("The", " invoice", " is", " listed", ";", " pay", " it", " once", ".")
"""What the thinking-shaped stream thinks, one chunk per piece."""
THINKING_LOGPROB = -9.0
"""The log-probability each thinking chunk carries: the stand-in runs no thinking model,
so these are markers a test can recognise, far below what the content tokens score."""

Thinking = Literal["none", "capable", "always"]


@dataclass(frozen=True)
class Fault:
    """One injected failure of one ``/api/chat`` request."""

    status: int | None = None
    """Answer this status with ``{"error": error}`` before any byte of the stream."""
    error: str = "injected failure"
    after_chunks: int | None = None
    """Send this many content chunks, then the ``{"error": error}`` line, then stop."""
    header_delay: float = 0.0
    """Seconds to wait before the status line (a busy or stuck server)."""
    empty_body: bool = False
    """A 200 with no body at all (a proxy that lost the upstream)."""
    non_json_line: bool = False
    """A 200 whose first line is not JSON (an HTML error page from a proxy)."""
    cut_before_done: bool = False
    """Send the content chunks, then close without the final ``done`` line."""


class _Refused(Exception):
    """An Ollama error answered with a status before the first byte."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OllamaStandIn:
    """Serve `model` as the Ollama model ``gemma3:270m`` on 127.0.0.1 at a random port.

    `thinking`: "none" is a model without the thinking capability (like gemma3);
    "capable" thinks unless the request says ``think: false``; "always" thinks whatever
    the request says (a model whose template cannot switch thinking off).
    """

    def __init__(self, model: LlamaModel, *, thinking: Thinking = "none") -> None:
        self.model = model
        self.thinking = thinking
        self.requests: list[dict[str, Any]] = []
        self.seeds: list[int] = []
        self.faults: list[Fault] = []
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OllamaStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` chat requests."""
        self.faults.extend([fault] * times)

    def next_fault(self) -> Fault | None:
        return self.faults.pop(0) if self.faults else None

    def chat(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Ollama chat chunks for `request`. Raises :class:`_Refused` for what Ollama
        refuses before generating; validation runs before the first chunk is yielded."""
        _resolve_model(request.get("model"))
        if not 0 <= int(request.get("top_logprobs") or 0) <= 20:  # Ollama's bound
            raise _Refused(400, "top_logprobs must be between 0 and 20")
        thinks = self._thinks(request.get("think"))
        _keep_alive(request.get("keep_alive"))
        response_format = _response_format(request.get("format"))
        options = _options(request.get("options") or {})
        self.seeds.append(options["seed"])
        if not request.get("messages"):  # ChatHandler: an empty chat only loads the model
            return iter([self._done(0, 0, 0.0, reason="load")])
        return self._generate(request, thinks, response_format, options)

    def _thinks(self, think: object) -> bool:
        # ChatHandler: a thinking-capable model gets think=true when the request has none;
        # any other model answers 400 to think=true (bool or "low"/"medium"/"high").
        wants = bool(think) and think != "false"
        if self.thinking == "none":
            if wants:
                raise _Refused(400, f'"{MODEL}" does not support thinking')
            return False
        if self.thinking == "always":
            return True
        return think is None or wants

    def _generate(
        self,
        request: dict[str, Any],
        thinks: bool,
        response_format: dict[str, Any] | None,
        options: dict[str, Any],
    ) -> Iterator[dict[str, Any]]:
        started = time.monotonic()
        if thinks:  # the thinking runs unconstrained; the format applies after it
            for piece in THINKING:
                yield self._piece("", [THINKING_LOGPROB], request, thinking=piece)
        with self.model.lock, _raw_logprobs(self.model.llama) as recorded:
            llama = self.model.llama
            llama.recorded = []  # the embedded recorder's list; unused here, kept short
            stream = llama.create_chat_completion(
                messages=request["messages"],
                response_format=response_format,
                stream=True,
                **options,
            )
            pending: list[float] = []
            used = 0
            reason = "stop"
            for chunk in stream:
                choice = chunk["choices"][0]
                piece = choice["delta"].get("content") or ""
                reason = "length" if choice.get("finish_reason") == "length" else reason
                pending.extend(lp for token, lp in recorded[used:] if not _is_eog(llama, token))
                used = len(recorded)
                if piece:  # a token without text yet (part of a UTF-8 sequence) waits
                    yield self._piece(piece, pending, request)
                    pending = []
            # The EOS token was sampled, so it counts, but it has no logprob (above).
            tokens = len(recorded)
            prompt_tokens = max(0, llama.n_tokens - tokens)
        yield self._done(prompt_tokens, tokens, time.monotonic() - started, reason=reason)

    def _piece(
        self, piece: str, logprobs: list[float], request: dict[str, Any], *, thinking: str = ""
    ) -> dict[str, Any]:
        message = {"role": "assistant", "content": piece}
        if thinking:
            message["thinking"] = thinking
        chunk: dict[str, Any] = {
            "model": request["model"],
            "created_at": _now(),
            "message": message,
            "done": False,
        }
        if request.get("logprobs") and logprobs:
            # One entry per token; text only on the last when a piece spans several.
            chunk["logprobs"] = [
                {"token": piece or thinking if i == len(logprobs) - 1 else "", "logprob": lp}
                for i, lp in enumerate(logprobs)
            ]
        return chunk

    def _done(
        self, prompt_tokens: int, tokens: int, seconds: float, *, reason: str = "stop"
    ) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "model": MODEL,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": reason,
            "total_duration": int(seconds * 1e9),
        }
        if tokens:  # api/types.go Metrics: the counts are omitempty
            summary |= {"prompt_eval_count": prompt_tokens, "eval_count": tokens}
        return summary


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is expected; anything else is shown."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def canonical_model(name: str) -> str:
    """`name` as Ollama resolves it: case-insensitive, the default registry host and
    ``library`` namespace dropped, the tag defaulting to ``latest``."""
    name = name.strip().lower()
    for prefix in ("https://", "http://", "registry.ollama.ai/", "library/"):
        name = name.removeprefix(prefix)
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _resolve_model(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise _Refused(400, "model is required")
    if canonical_model(name) != canonical_model(MODEL):
        raise _Refused(404, f"model '{name}' not found")


_GO_DURATION = re.compile(r"-?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+|0")


def _keep_alive(value: object) -> None:
    # api/types.go Duration.UnmarshalJSON: seconds as a number, or a Go duration string;
    # anything else fails the JSON binding, which ChatHandler answers with 400.
    if value is None or isinstance(value, int | float):
        return
    if not isinstance(value, str) or not _GO_DURATION.fullmatch(value):
        raise _Refused(400, f"time: invalid duration {json.dumps(value)}")


def _response_format(fmt: object) -> dict[str, Any] | None:
    # v0.24.0 llm/server.go Completion: "json" is the JSON grammar, an object is a schema
    # converted to a grammar (no grammar: an error), "" and null are unset, anything else
    # an error. The error has no status, so ChatHandler answers 500.
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if not isinstance(fmt, dict):
        raise _Refused(
            500,
            f'invalid format: {json.dumps(fmt)!r}; expected "json" or a valid JSON Schema object',
        )
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False)
    except Exception as exc:  # the converter raises whatever it meets
        raise _Refused(500, "invalid JSON schema in format") from exc
    return {"type": "json_object", "schema": fmt}


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp arguments for Ollama `options`, defaulting as api/types.go DefaultOptions."""
    seed = int(options.get("seed", -1))
    predict = int(options.get("num_predict", -1))
    return {
        "temperature": float(options.get("temperature", 0.8)),
        "top_k": int(options.get("top_k", 40)),
        "top_p": float(options.get("top_p", 0.9)),
        "min_p": float(options.get("min_p", 0.0)),
        "repeat_penalty": float(options.get("repeat_penalty", 1.0)),
        "stop": options.get("stop") or [],
        # -1: a fresh random seed per request (sample/samplers.go NewSampler: no rng).
        "seed": secrets.randbelow(2**31) if seed == -1 else seed,
        # -1 (and -2): until the context is full, which llama-cpp-python spells None.
        "max_tokens": predict if predict > 0 else None,
    }


@contextlib.contextmanager
def _raw_logprobs(llama: Any) -> Iterator[list[tuple[int, float]]]:
    """Record (token, log-softmax of the raw logits) for each token sampled meanwhile.

    The embedded model's sampler chain ends with ``_record_chosen`` (agents/planners/
    _llama.py), which the chain looks up on the instance each time a generation starts;
    shadowing it for the duration of one call adds the raw value without touching how
    tokens are chosen. The raw logits are the context's own output row, read the way
    Ollama's runner reads them (GetLogitsIth): before penalties, grammar, temperature.
    """
    from llama_cpp import llama_cpp

    recorded: list[tuple[int, float]] = []
    chosen = llama._record_chosen
    vocab = llama.n_vocab()

    def record(cur_p: Any) -> None:
        array = cur_p.contents
        if array.selected >= 0:
            token = int(array.data[array.selected].id)
            row = llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1)
            logits = np.ctypeslib.as_array(row, shape=(vocab,)).astype(np.float64)
            top = logits.max()
            log_total = top + np.log(np.exp(logits - top).sum())
            recorded.append((token, float(logits[token] - log_total)))
        chosen(cur_p)

    llama._record_chosen = record
    try:
        yield recorded
    finally:
        del llama._record_chosen


def _is_eog(llama: Any, token: int) -> bool:
    from llama_cpp import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llama.model), token))


def _handler(stand_in: OllamaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the recorded requests instead."""

        def do_GET(self) -> None:
            if self.path != "/api/tags":
                self._json(404, {"error": "404 page not found"})
                return
            self._json(200, {"models": [_listed()]})

        def do_POST(self) -> None:
            if self.path != "/api/chat":
                self._json(404, {"error": "404 page not found"})
                return
            fault = stand_in.next_fault()
            if fault and fault.header_delay:
                time.sleep(fault.header_delay)
            try:
                request = self._body()
                stand_in.requests.append(request)
                if fault and fault.status is not None:
                    raise _Refused(fault.status, fault.error)
                if fault and (fault.empty_body or fault.non_json_line):
                    self._broken(fault)
                    return
                chunks = stand_in.chat(request)
                # gin writes the status with the first byte: a failure before the
                # first chunk still gets its own status (routes.go streamResponse).
                first = next(chunks)
            except _Refused as exc:
                self._json(exc.status, {"error": exc.message})
                return
            except ValueError as exc:  # llama.cpp: e.g. the prompt exceeds the context
                self._json(500, {"error": str(exc)})
                return
            try:
                if request.get("stream", True) is False:
                    self._whole(first, chunks)
                else:
                    self._stream(first, chunks, fault)
            finally:
                # A stream left early (a fault, a client gone) still releases the
                # model's lock now, not whenever the generator is collected.
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", 0))
            if not length:
                raise _Refused(400, "missing request body")
            try:
                request = json.loads(self.rfile.read(length))
            except json.JSONDecodeError as exc:
                raise _Refused(400, str(exc)) from exc
            if not isinstance(request, dict):
                raise _Refused(400, "json: cannot unmarshal into Go value of type api.ChatRequest")
            return request

        def _stream(
            self, first: dict[str, Any], chunks: Iterator[dict[str, Any]], fault: Fault | None
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            try:
                for sent, chunk in enumerate(_chain(first, chunks)):
                    if chunk["done"] and fault and fault.cut_before_done:
                        return
                    if fault and fault.after_chunks is not None and sent == fault.after_chunks:
                        raise _Refused(500, fault.error)
                    self._line(json.dumps(chunk).encode())
            except (_Refused, ValueError) as exc:
                # routes.go streamResponse: after the 200, an error is one more line
                self._line(json.dumps({"error": str(exc)}).encode())

        def _broken(self, fault: Fault) -> None:
            """What a proxy in front of Ollama may answer: 200 and nothing, or not JSON."""
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            if fault.non_json_line:
                self._line(b"<html><body>502 Bad Gateway</body></html>")

        def _whole(self, first: dict[str, Any], chunks: Iterator[dict[str, Any]]) -> None:
            self._json(200, _merge([first, *chunks]))

        def _line(self, data: bytes) -> None:
            self.wfile.write(data + b"\n")
            self.wfile.flush()

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _listed() -> dict[str, Any]:
    details = {
        "format": "gguf",
        "family": "gemma3",
        "parameter_size": "270M",
        "quantization_level": "Q4_K_M",
    }
    return {
        "name": MODEL,
        "model": MODEL,
        "modified_at": _now(),
        "size": 253_000_000,
        "digest": "0" * 64,
        "details": details,
    }


def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streamed reply: the summary with the whole message and all logprobs
    (routes.go writeChatResponse)."""
    final = dict(chunks[-1])
    body = chunks[:-1]
    final["message"] = {
        "role": "assistant",
        "content": "".join(c["message"]["content"] for c in body),
    }
    thinking = "".join(c["message"].get("thinking", "") for c in body)
    if thinking:
        final["message"]["thinking"] = thinking
    logprobs = [item for c in body for item in c.get("logprobs", [])]
    if logprobs:
        final["logprobs"] = logprobs
    return final
