"""A loopback HTTP server that speaks the parts of Ollama's API the planner uses
(``GET /api/tags``, ``POST /api/chat`` with ``format`` and ``logprobs``, streamed as
NDJSON or not), backed by the embedded llama.cpp model. Ollama itself cannot be
installed here; this lets the real ``ChatOllama`` client run against a real model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents.planners.embedded import LlamaModel

MODEL = "gemma3:270m"


class OllamaStandIn:
    """Serve `model` as the Ollama model ``gemma3:270m`` on 127.0.0.1 at a random port."""

    def __init__(self, model: LlamaModel) -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
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

    def chat(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Ollama chat chunks for `request`: one per generated piece, then the summary."""
        options = request.get("options") or {}
        fmt = request.get("format")
        response_format: dict[str, Any] | None = None
        if isinstance(fmt, dict):
            response_format = {"type": "json_object", "schema": fmt}
        elif fmt == "json":
            response_format = {"type": "json_object"}
        started = time.monotonic()
        with self.model.lock:
            llama = self.model.llama
            llama.recorded = []
            stream = llama.create_chat_completion(
                messages=request["messages"],
                response_format=response_format,
                temperature=float(options.get("temperature", 0.8)),
                max_tokens=int(options.get("num_predict", 512)),
                seed=int(options.get("seed", 0)),
                stream=True,
            )
            seen = 0
            for chunk in stream:
                piece = chunk["choices"][0]["delta"].get("content") or ""
                fresh = llama.recorded[seen:]
                seen = len(llama.recorded)
                if piece or fresh:
                    yield self._piece(piece, fresh, request)
            prompt_tokens = llama.n_tokens - seen
        yield self._summary(prompt_tokens, seen, time.monotonic() - started)

    def _piece(self, piece: str, logprobs: list[float], request: dict[str, Any]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "model": MODEL,
            "created_at": _now(),
            "message": {"role": "assistant", "content": piece},
            "done": False,
        }
        if request.get("logprobs"):
            # One entry per sampled token; a piece llama.cpp emits late (an incomplete
            # UTF-8 sequence) carries its text on the last token.
            chunk["logprobs"] = [
                {"token": piece if index == len(logprobs) - 1 else "", "logprob": value}
                for index, value in enumerate(logprobs)
            ]
        return chunk

    def _summary(self, prompt_tokens: int, tokens: int, seconds: float) -> dict[str, Any]:
        return {
            "model": MODEL,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": int(seconds * 1e9),
            "prompt_eval_count": prompt_tokens,
            "eval_count": tokens,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _handler(stand_in: OllamaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the recorded requests instead."""

        def do_GET(self) -> None:
            if self.path != "/api/tags":
                self._json(404, {"error": f"no route {self.path}"})
                return
            details = {
                "format": "gguf",
                "family": "gemma3",
                "parameter_size": "270M",
                "quantization_level": "Q4_K_M",
            }
            self._json(
                200,
                {
                    "models": [
                        {
                            "name": MODEL,
                            "model": MODEL,
                            "modified_at": _now(),
                            "size": 253_000_000,
                            "digest": "0" * 64,
                            "details": details,
                        }
                    ]
                },
            )

        def do_POST(self) -> None:
            if self.path != "/api/chat":
                self._json(404, {"error": f"no route {self.path}"})
                return
            length = int(self.headers.get("Content-Length", 0))
            request = json.loads(self.rfile.read(length))
            stand_in.requests.append(request)
            if request.get("model") != MODEL:
                self._json(404, {"error": f"model '{request.get('model')}' not found"})
                return
            chunks = stand_in.chat(request)
            if request.get("stream", True):
                self._stream(chunks)
            else:
                self._json(200, _merge(list(chunks)))

        def _stream(self, chunks: Iterator[dict[str, Any]]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(json.dumps(chunk).encode() + b"\n")
                self.wfile.flush()

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streamed reply: the summary with the whole message and all logprobs."""
    final = dict(chunks[-1])
    final["message"] = {
        "role": "assistant",
        "content": "".join(c["message"]["content"] for c in chunks[:-1]),
    }
    logprobs = [item for c in chunks[:-1] for item in c.get("logprobs", [])]
    if logprobs:
        final["logprobs"] = logprobs
    return final
