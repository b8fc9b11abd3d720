"""A small OpenAI-compatible HTTP server around the ONNX Runtime GenAI generation loop.

Routes: ``POST /v1/chat/completions`` and ``POST /v1/completions`` (``"stream": true`` answers with
server-sent events), ``GET /v1/models``, ``GET /health`` and ``GET /metrics`` (Prometheus text:
request counts by route and status, prompt and generated token counters, a latency histogram,
running and waiting request gauges; every series carries ``model_name``). ``/v1/*`` requires
``Authorization: Bearer <ENGINE_API_KEY>`` when that variable is set; ``/health`` and ``/metrics``
are left open for the kubelet and Prometheus (the gateway never routes them, NetworkPolicy fences
them).

Generation sits behind the ``Generator`` protocol so the HTTP layer is tested with a fake, without
weights. ``OgGenerator`` is the real one: ``og.Model`` / ``og.Tokenizer`` / ``og.GeneratorParams`` /
``og.Generator`` with ``append_tokens``, then ``generate_next_token`` until ``is_done`` or the token
budget, decoding each ``get_next_tokens()`` through a tokenizer stream. It generates text token by
token (seed defect D9 ran one forward pass and decoded logits). Standard library only, apart from
``onnxruntime_genai``, which is imported when ``OgGenerator`` is built.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

LATENCY_BUCKETS_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    """What to generate: either chat ``messages`` or a plain ``prompt``."""

    messages: tuple[Mapping[str, Any], ...] | None = None
    prompt: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0


@dataclass(kw_only=True)
class Generation:
    """A started generation: the prompt size, the text pieces as they come, and why it stopped."""

    prompt_tokens: int
    pieces: Iterator[str]
    finish_reason: str = "stop"
    """``stop`` (end of sequence) or ``length`` (token budget); final once ``pieces`` is exhausted."""
    completion_tokens: int = 0


class Generator(Protocol):
    """The generation loop the server drives; one call per request."""

    def start(self, request: GenerationRequest) -> Generation:
        """Tokenize the request and return a generation whose ``pieces`` yield decoded text."""
        ...


class OgGenerator:
    """The real generator: ONNX Runtime GenAI's token-by-token loop over a model folder."""

    def __init__(self, model_dir: str, *, context_tokens: int) -> None:
        import onnxruntime_genai  # lazy: the HTTP layer and its tests need no weights

        og: Any = onnxruntime_genai  # a compiled module without type stubs
        self._og = og
        self._model = og.Model(model_dir)
        self._tokenizer = og.Tokenizer(self._model)
        self._context_tokens = context_tokens

    def start(self, request: GenerationRequest) -> Generation:
        """Encode the prompt (chat template for messages) and prepare the loop."""
        if request.messages is not None:
            prompt = self._tokenizer.apply_chat_template(
                json.dumps(list(request.messages)), add_generation_prompt=True)
        else:
            prompt = request.prompt or ""
        tokens = self._tokenizer.encode(prompt)
        prompt_tokens = len(tokens)
        if prompt_tokens >= self._context_tokens:
            msg = f"prompt has {prompt_tokens} tokens; the context is {self._context_tokens}"
            raise ValueError(msg)
        budget = min(request.max_tokens, self._context_tokens - prompt_tokens)
        generation = Generation(prompt_tokens=prompt_tokens, pieces=iter(()))
        generation.pieces = self._loop(tokens, request, budget, generation)
        return generation

    def _loop(self, tokens: Sequence[int], request: GenerationRequest, budget: int,
              generation: Generation) -> Iterator[str]:
        og = self._og
        params = og.GeneratorParams(self._model)
        params.set_search_options(max_length=len(tokens) + budget, temperature=max(request.temperature, 1e-6),
                                  top_p=request.top_p, do_sample=request.temperature > 0)
        generator = og.Generator(self._model, params)
        generator.append_tokens(tokens)
        stream = self._tokenizer.create_stream()
        produced = 0
        while not generator.is_done():
            if produced >= budget:
                generation.finish_reason = "length"
                break
            generator.generate_next_token()
            token = generator.get_next_tokens()[0]
            produced += 1
            generation.completion_tokens = produced
            piece = stream.decode(token)
            if piece:
                yield piece
        else:
            generation.finish_reason = "stop"


@dataclass
class Metrics:
    """Prometheus counters, gauges and one histogram, rendered as text exposition format."""

    model_name: str
    requests: dict[tuple[str, str], int] = field(default_factory=dict[tuple[str, str], int])
    prompt_tokens: int = 0
    generation_tokens: int = 0
    running: int = 0
    waiting: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_SECONDS) + 1))
    latency_sum: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_request(self, route: str, status: int) -> None:
        """Count one finished request on ``route`` with HTTP ``status``."""
        with self.lock:
            key = (route, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1

    def observe(self, *, seconds: float, prompt_tokens: int, generation_tokens: int) -> None:
        """Record one completed generation."""
        with self.lock:
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += generation_tokens
            self.latency_sum += seconds
            index = next((i for i, b in enumerate(LATENCY_BUCKETS_SECONDS) if seconds <= b),
                         len(LATENCY_BUCKETS_SECONDS))
            self.latency_counts[index] += 1

    def add_gauge(self, name: str, delta: int) -> None:
        """Move the ``running`` or ``waiting`` gauge."""
        with self.lock:
            setattr(self, name, getattr(self, name) + delta)

    def render(self) -> str:
        """The exposition text."""
        label = f'model_name="{_escape(self.model_name)}"'
        with self.lock:
            lines = [
                "# HELP onnxgenai_requests_total Finished HTTP requests by route and status.",
                "# TYPE onnxgenai_requests_total counter",
            ]
            for (route, status), value in sorted(self.requests.items()):
                lines.append(f'onnxgenai_requests_total{{{label},route="{_escape(route)}",'
                             f'status="{status}"}} {value}')
            lines += [
                "# HELP onnxgenai_prompt_tokens_total Prompt tokens processed.",
                "# TYPE onnxgenai_prompt_tokens_total counter",
                f"onnxgenai_prompt_tokens_total{{{label}}} {self.prompt_tokens}",
                "# HELP onnxgenai_generation_tokens_total Tokens generated.",
                "# TYPE onnxgenai_generation_tokens_total counter",
                f"onnxgenai_generation_tokens_total{{{label}}} {self.generation_tokens}",
                "# HELP onnxgenai_requests_running Generations in progress.",
                "# TYPE onnxgenai_requests_running gauge",
                f"onnxgenai_requests_running{{{label}}} {self.running}",
                "# HELP onnxgenai_requests_waiting Requests queued for a generation slot (KEDA scales on it).",
                "# TYPE onnxgenai_requests_waiting gauge",
                f"onnxgenai_requests_waiting{{{label}}} {self.waiting}",
                "# HELP onnxgenai_e2e_request_latency_seconds End-to-end generation latency.",
                "# TYPE onnxgenai_e2e_request_latency_seconds histogram",
            ]
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS_SECONDS, None), self.latency_counts, strict=True):
                cumulative += count
                le = "+Inf" if bound is None else f"{bound:g}"
                lines.append(f'onnxgenai_e2e_request_latency_seconds_bucket{{{label},le="{le}"}} {cumulative}')
            lines += [
                f"onnxgenai_e2e_request_latency_seconds_sum{{{label}}} {self.latency_sum:.6f}",
                f"onnxgenai_e2e_request_latency_seconds_count{{{label}}} {cumulative}",
            ]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class BadRequestError(ValueError):
    """A client error, answered with HTTP 400 and an OpenAI-style error body."""


def parse_request(body: Mapping[str, Any], *, chat: bool) -> GenerationRequest:
    """Validate an OpenAI request body into a ``GenerationRequest``."""
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", DEFAULT_MAX_TOKENS))
    temperature = body.get("temperature", 0.0)
    top_p = body.get("top_p", 1.0)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        msg = "max_tokens must be a positive integer"
        raise BadRequestError(msg)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        msg = "temperature must be a number between 0 and 2"
        raise BadRequestError(msg)
    if not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        msg = "top_p must be a number in (0, 1]"
        raise BadRequestError(msg)
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            msg = "messages must be a non-empty list of {role, content} objects"
            raise BadRequestError(msg)
        return GenerationRequest(messages=tuple(messages), max_tokens=max_tokens,
                                 temperature=float(temperature), top_p=float(top_p))
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        msg = "prompt must be a string"
        raise BadRequestError(msg)
    return GenerationRequest(prompt=prompt, max_tokens=max_tokens, temperature=float(temperature),
                             top_p=float(top_p))


class InferenceServer(ThreadingHTTPServer):
    """The HTTP server; holds the generator, the metrics and the concurrency slots."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, generator: Generator, served_model_name: str,
                 api_key: str | None, max_concurrency: int = 1) -> None:
        super().__init__(address, Handler)
        self.generator = generator
        self.served_model_name = served_model_name
        self.api_key = api_key or None
        self.metrics = Metrics(model_name=served_model_name)
        self.slots = threading.BoundedSemaphore(max_concurrency)
        self.created = int(time.time())


class Handler(BaseHTTPRequestHandler):
    """Routes requests; one handler instance per request."""

    server: InferenceServer  # pyright: ignore[reportIncompatibleVariableOverride]
    server_version = "slm-onnx-genai"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 (stdlib signature)
        """No per-request access log (it would carry client addresses); metrics count requests."""
        return

    # -- routing -------------------------------------------------------------------------

    def do_GET(self) -> None:
        """GET routes."""
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send_text(HTTPStatus.OK, "ok\n")
        elif path == "/metrics":
            self._send_text(HTTPStatus.OK, self.server.metrics.render(),
                            content_type="text/plain; version=0.0.4; charset=utf-8")
        elif path == "/v1/models":
            if self._authorized(path):
                self._send_json(HTTPStatus.OK, {"object": "list", "data": [{
                    "id": self.server.served_model_name, "object": "model",
                    "created": self.server.created, "owned_by": "slm-platform"}]}, route=path)
        else:
            self._send_error(HTTPStatus.NOT_FOUND, f"no route {path}", route="other")

    def do_POST(self) -> None:
        """POST routes."""
        path = self.path.split("?", 1)[0]
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self._send_error(HTTPStatus.NOT_FOUND, f"no route {path}", route="other")
            return
        if not self._authorized(path):
            return
        try:
            body = self._read_json()
            request = parse_request(body, chat=path == "/v1/chat/completions")
            model = body.get("model", self.server.served_model_name)
            if model != self.server.served_model_name:
                msg = f"model {model!r} is not served here; use {self.server.served_model_name!r}"
                raise BadRequestError(msg)
        except BadRequestError as error:
            self._send_error(HTTPStatus.BAD_REQUEST, str(error), route=path)
            return
        self._generate(path, request, stream=bool(body.get("stream", False)))

    # -- generation ------------------------------------------------------------------------

    def _generate(self, path: str, request: GenerationRequest, *, stream: bool) -> None:
        metrics = self.server.metrics
        metrics.add_gauge("waiting", 1)
        with self.server.slots:
            metrics.add_gauge("waiting", -1)
            metrics.add_gauge("running", 1)
            started = time.monotonic()
            try:
                try:
                    generation = self.server.generator.start(request)
                except ValueError as error:
                    self._send_error(HTTPStatus.BAD_REQUEST, str(error), route=path)
                    return
                chat = path == "/v1/chat/completions"

                def done() -> None:
                    # Recorded before the last byte goes out, so a client that reads the response
                    # and then scrapes /metrics always sees its own request counted.
                    metrics.observe(seconds=time.monotonic() - started, prompt_tokens=generation.prompt_tokens,
                                    generation_tokens=generation.completion_tokens)

                if stream:
                    self._stream(path, generation, chat=chat, before_done=done)
                else:
                    text = "".join(generation.pieces)
                    done()
                    self._send_json(HTTPStatus.OK, self._completion(generation, text, chat=chat), route=path)
            finally:
                metrics.add_gauge("running", -1)

    def _completion(self, generation: Generation, text: str, *, chat: bool) -> dict[str, Any]:
        usage = {"prompt_tokens": generation.prompt_tokens, "completion_tokens": generation.completion_tokens,
                 "total_tokens": generation.prompt_tokens + generation.completion_tokens}
        base = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": self.server.served_model_name, "usage": usage}
        if chat:
            return {**base, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": generation.finish_reason}]}
        return {**base, "object": "text_completion", "choices": [{
            "index": 0, "text": text, "finish_reason": generation.finish_reason}]}

    def _stream(self, path: str, generation: Generation, *, chat: bool, before_done: Callable[[], None]) -> None:
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def event(choice: dict[str, Any]) -> None:
            chunk = {"id": ident, "object": obj, "created": created, "model": self.server.served_model_name,
                     "choices": [choice]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        for piece in generation.pieces:
            event({"index": 0, "delta": {"content": piece}, "finish_reason": None} if chat
                  else {"index": 0, "text": piece, "finish_reason": None})
        event({"index": 0, "delta": {}, "finish_reason": generation.finish_reason} if chat
              else {"index": 0, "text": "", "finish_reason": generation.finish_reason})
        before_done()
        self.server.metrics.count_request(path, HTTPStatus.OK)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    # -- helpers -------------------------------------------------------------------------

    def _authorized(self, route: str) -> bool:
        expected = self.server.api_key
        if expected is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode()):
            return True
        self._send_error(HTTPStatus.UNAUTHORIZED, "missing or invalid API key", route=route)
        return False

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY_BYTES:
            msg = f"request body must be 1..{MAX_BODY_BYTES} bytes of JSON"
            raise BadRequestError(msg)
        try:
            body = json.loads(self.rfile.read(length))
        except json.JSONDecodeError as error:
            msg = f"request body is not JSON: {error.msg}"
            raise BadRequestError(msg) from None
        if not isinstance(body, dict):
            msg = "request body must be a JSON object"
            raise BadRequestError(msg)
        return body

    def _send_json(self, status: HTTPStatus, payload: Mapping[str, Any], *, route: str) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.server.metrics.count_request(route, status)  # before the body: see _generate
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: HTTPStatus, message: str, *, route: str) -> None:
        kind = "authentication_error" if status == HTTPStatus.UNAUTHORIZED else "invalid_request_error"
        self._send_json(status, {"error": {"message": message, "type": kind, "code": int(status)}}, route=route)

    def _send_text(self, status: HTTPStatus, text: str, *, content_type: str = "text/plain") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def build_parser() -> argparse.ArgumentParser:
    """The server's command line (the policy pack checks container args against this very parser)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 (listens on the pod IP)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--context-tokens", type=int, default=4096)
    parser.add_argument("--max-concurrency", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Serve ``--model-dir`` until killed."""
    options = build_parser().parse_args(argv)
    generator = OgGenerator(options.model_dir, context_tokens=options.context_tokens)
    server = InferenceServer((options.host, options.port), generator=generator,
                             served_model_name=options.served_model_name,
                             api_key=os.environ.get("ENGINE_API_KEY"), max_concurrency=options.max_concurrency)
    server.serve_forever()


if __name__ == "__main__":
    main()
