"""A small OpenAI-compatible HTTP server around the ONNX Runtime GenAI generation loop.

Routes: ``POST /v1/chat/completions`` and ``POST /v1/completions`` (``"stream": true`` answers with
server-sent events), ``GET /v1/models``, ``GET /health`` and ``GET /metrics`` (Prometheus text:
request counts by route and status, prompt and generated token counters, a latency histogram,
running and waiting request gauges; every series carries ``model_name``). ``/v1/*`` requires
``Authorization: Bearer <ENGINE_API_KEY>`` when that variable is set; ``/health`` and ``/metrics``
are left open for the kubelet and Prometheus (the gateway never routes them, NetworkPolicy fences
them). The API contract (what is supported, what is refused with 400, the errors) is in
``docs/components/onnx-server.md``.

Generation sits behind the ``Generator`` protocol so the HTTP layer is tested with a fake, without
weights. ``OgGenerator`` is the real one: ``og.Model`` / ``og.Tokenizer`` / ``og.GeneratorParams`` /
``og.Generator`` with ``append_tokens``, then ``generate_next_token`` until EOS or the token
budget, decoding each ``get_next_tokens()`` through a tokenizer stream; it is tested on a real
tiny model built by the tests. Standard library only, apart from ``onnxruntime_genai`` (imported
when ``OgGenerator`` is built), so ``build_parser`` imports anywhere the policy pack runs.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

LATENCY_BUCKETS_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_TOKENS = 256
MAX_STOP_SEQUENCES = 4
RETRY_AFTER_SECONDS = 1
CLIENT_CLOSED = 499
"""Counted (never sent) when the client went away or stopped reading mid-answer (nginx's code)."""
LOG = logging.getLogger("onnx-server")


class BadRequestError(ValueError):
    """A client error, answered with HTTP 400 and an OpenAI-style error body."""


class GenerationError(RuntimeError):
    """onnxruntime-genai failed (e.g. a model without a chat template): HTTP 500, JSON body."""


@dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    """What to generate: either chat ``messages`` (text content) or a plain ``prompt``."""

    messages: tuple[Mapping[str, Any], ...] | None = None
    prompt: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(kw_only=True)
class Generation:
    """A started generation: the prompt size, the text pieces as they come, and why it stopped."""

    prompt_tokens: int
    pieces: Iterator[str]
    finish_reason: str = "stop"
    """``stop`` (end of sequence or a stop sequence) or ``length`` (token budget); final once
    ``pieces`` is exhausted."""
    completion_tokens: int = 0


class Generator(Protocol):
    """The generation loop the server drives; one call per request."""

    def start(self, request: GenerationRequest) -> Generation:
        """Tokenize the request and return a generation whose ``pieces`` yield decoded text.

        Raises ``BadRequestError`` for a request the model cannot take (prompt too long) and
        ``GenerationError`` when the runtime fails; ``pieces`` may raise ``GenerationError`` too."""
        ...


class OgGenerator:
    """The real generator: ONNX Runtime GenAI's token-by-token loop over a model folder."""

    def __init__(self, model_dir: str, *, context_tokens: int) -> None:
        import onnxruntime_genai  # lazy: the HTTP layer and its tests need no weights

        og: Any = onnxruntime_genai  # a compiled module without type stubs
        self._og = og
        self._model = og.Model(model_dir)
        self._tokenizer = og.Tokenizer(self._model)
        self._eos = frozenset(int(token) for token in self._tokenizer.eos_token_ids)
        # The runtime refuses max_length above the model's context_length: never ask for more.
        config = json.loads((Path(model_dir) / "genai_config.json").read_text())
        model_context = int(config.get("model", {}).get("context_length") or context_tokens)
        self._context_tokens = min(context_tokens, model_context)

    def start(self, request: GenerationRequest) -> Generation:
        """Encode the prompt (chat template for messages), prefill it, and prepare the loop."""
        tokens = self._encode(request)
        prompt_tokens = len(tokens)
        if prompt_tokens >= self._context_tokens:
            msg = f"prompt has {prompt_tokens} tokens; the context is {self._context_tokens}"
            raise BadRequestError(msg)
        budget = min(request.max_tokens, self._context_tokens - prompt_tokens)
        options: dict[str, Any] = {"max_length": prompt_tokens + budget, "do_sample": request.temperature > 0,
                                   "temperature": max(request.temperature, 1e-6), "top_p": request.top_p}
        if request.seed is not None:
            options["random_seed"] = request.seed
        try:
            params = self._og.GeneratorParams(self._model)
            params.set_search_options(**options)
            generator = self._og.Generator(self._model, params)
            generator.append_tokens(tokens)
        except RuntimeError as error:
            msg = f"onnxruntime-genai could not start the generation: {error}"
            raise GenerationError(msg) from None
        generation = Generation(prompt_tokens=prompt_tokens, pieces=iter(()))
        generation.pieces = self._loop(generator, budget, generation)
        return generation

    def _encode(self, request: GenerationRequest) -> Sequence[int]:
        prompt = request.prompt or ""
        if request.messages is not None:
            try:
                prompt = self._tokenizer.apply_chat_template(json.dumps(list(request.messages)),
                                                             add_generation_prompt=True)
            except RuntimeError as error:
                msg = (f"the model's chat template could not be applied ({error}); add a chat_template to "
                       "its tokenizer_config.json or use /v1/completions")
                raise GenerationError(msg) from None
        try:
            return self._tokenizer.encode(prompt)
        except RuntimeError as error:
            msg = f"the model's tokenizer failed: {error}"
            raise GenerationError(msg) from None

    def _loop(self, generator: Any, budget: int, generation: Generation) -> Iterator[str]:
        stream = self._tokenizer.create_stream()
        produced = 0
        try:
            while produced < budget and not generator.is_done():
                generator.generate_next_token()
                token = int(generator.get_next_tokens()[0])
                produced += 1
                generation.completion_tokens = produced
                if token in self._eos:
                    generation.finish_reason = "stop"
                    return
                piece = stream.decode(token)
                if piece:
                    yield piece
        except RuntimeError as error:
            msg = f"generation failed after {produced} tokens: {error}"
            raise GenerationError(msg) from None
        generation.finish_reason = "length"  # the budget (max_tokens or the context) ran out first


def stop_at(pieces: Iterator[str], stops: Sequence[str], generation: Generation) -> Iterator[str]:
    """``pieces`` (of ``generation``) cut before the first stop sequence (OpenAI ``stop``: not included).

    Text that could be the start of a stop sequence is held back until it is known not to be one,
    so a stream never shows part of a stop sequence. On a match the underlying loop is closed
    (no more tokens are generated) and ``finish_reason`` is ``stop``."""
    if not stops:
        yield from pieces
        return
    held = ""
    try:
        for piece in pieces:
            held += piece
            cut = min((at for at in (held.find(stop) for stop in stops) if at >= 0), default=-1)
            if cut >= 0:
                if cut:
                    yield held[:cut]
                generation.finish_reason = "stop"
                return
            keep = _stop_prefix_length(held, stops)
            if len(held) > keep:
                yield held[: len(held) - keep]
                held = held[len(held) - keep:]
        if held:
            yield held
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


def _stop_prefix_length(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that a stop sequence starts with."""
    for length in range(min(len(text), max(map(len, stops)) - 1), 0, -1):
        if any(stop.startswith(text[-length:]) for stop in stops):
            return length
    return 0


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


UNSUPPORTED: Mapping[str, Callable[[Any], bool]] = {
    "tools": bool, "tool_choice": lambda v: v not in (None, "none"), "functions": bool,
    "function_call": lambda v: v not in (None, "none"), "logprobs": bool, "top_logprobs": bool,
    "logit_bias": bool, "echo": bool, "suffix": bool, "audio": bool, "prediction": bool,
    "response_format": lambda v: v is not None and v != {"type": "text"},
    "presence_penalty": lambda v: v not in (None, 0), "frequency_penalty": lambda v: v not in (None, 0),
    "best_of": lambda v: v not in (None, 1),
}
"""Fields this server cannot honour, with the test of a value that asks for them: answered 400
rather than silently ignored (a client relying on tools or JSON mode must learn it at once)."""


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_supported(body: Mapping[str, Any]) -> None:
    for name, asks in UNSUPPORTED.items():
        if name in body and asks(body[name]):
            msg = f"{name}={json.dumps(body[name])[:80]} is not supported by this server; remove {name}"
            raise BadRequestError(msg)
    n = body.get("n", 1)
    if n != 1 or isinstance(n, bool):
        msg = f"n={json.dumps(n)[:40]} is not supported: this server returns one choice (n=1); send separate requests"
        raise BadRequestError(msg)


def _stops(value: object) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value
    if value is None:
        return ()
    if not isinstance(stops, list) or not 0 < len(stops) <= MAX_STOP_SEQUENCES or not all(
            isinstance(s, str) and s for s in stops):
        msg = f"stop must be a non-empty string or a list of 1..{MAX_STOP_SEQUENCES} non-empty strings"
        raise BadRequestError(msg)
    return tuple(stops)


def _content_text(content: object, where: str) -> str:
    """A message's content as text: a string, or text content parts joined (never stringified)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        msg = f"{where}.content must be a string or a list of text content parts"
        raise BadRequestError(msg)
    texts: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get("text") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(text, str):
            msg = (f"{where}.content[{index}] is a {kind or type(part).__name__!s} part; this server takes "
                   'only {"type": "text", "text": ...} parts')
            raise BadRequestError(msg)
        texts.append(text)
    return "".join(texts)


def _messages(value: object) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list) or not value:
        msg = "messages must be a non-empty list of {role, content} objects"
        raise BadRequestError(msg)
    messages: list[Mapping[str, Any]] = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            msg = f"messages[{index}] must be an object with a string role"
            raise BadRequestError(msg)
        messages.append({"role": message["role"],
                         "content": _content_text(message.get("content"), f"messages[{index}]")})
    return tuple(messages)


def _sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    temperature = body.get("temperature", 0.0)
    top_p = body.get("top_p", 1.0)
    seed = body.get("seed")
    if max_tokens is not None and not _positive_int(max_tokens):
        msg = "max_tokens must be a positive integer"
        raise BadRequestError(msg)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        msg = "temperature must be a number between 0 and 2"
        raise BadRequestError(msg)
    if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        msg = "top_p must be a number in (0, 1]"
        raise BadRequestError(msg)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 31):
        msg = "seed must be an integer in 0..2147483647"
        raise BadRequestError(msg)
    return {"max_tokens": max_tokens or DEFAULT_MAX_TOKENS, "temperature": float(temperature),
            "top_p": float(top_p), "seed": seed, "stop": _stops(body.get("stop"))}


def streaming(body: Mapping[str, Any]) -> bool:
    """``stream``: server-sent events when true."""
    value = body.get("stream", False)
    if value is not None and not isinstance(value, bool):
        msg = "stream must be true or false"
        raise BadRequestError(msg)
    return bool(value)


def include_usage(body: Mapping[str, Any]) -> bool:
    """``stream_options.include_usage``: a final chunk with the usage (and ``usage: null`` before)."""
    options = body.get("stream_options")
    if options is None:
        return False
    value = options.get("include_usage", False) if isinstance(options, dict) else None
    if not isinstance(value, bool):
        msg = "stream_options must be an object whose include_usage is true or false"
        raise BadRequestError(msg)
    return value


def parse_request(body: Mapping[str, Any], *, chat: bool) -> GenerationRequest:
    """Validate an OpenAI request body into a ``GenerationRequest``."""
    _check_supported(body)
    sampling = _sampling(body)
    if chat:
        return GenerationRequest(messages=_messages(body.get("messages")), **sampling)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        msg = "prompt must be a string"
        raise BadRequestError(msg)
    return GenerationRequest(prompt=prompt, **sampling)


class InferenceServer(ThreadingHTTPServer):
    """The HTTP server; holds the generator, the metrics, the generation slots and the queue bound."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, generator: Generator, served_model_name: str,
                 api_key: str | None, max_concurrency: int = 1, max_waiting: int = 16,
                 io_timeout_seconds: float = 60.0) -> None:
        super().__init__(address, Handler)
        self.generator = generator
        self.served_model_name = served_model_name
        self.api_key = api_key or None
        self.metrics = Metrics(model_name=served_model_name)
        self.io_timeout_seconds = io_timeout_seconds
        self.created = int(time.time())
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._max_waiting = max_waiting
        self._waiting = 0
        self._queue_lock = threading.Lock()

    def take_slot(self) -> bool:
        """Wait for a generation slot; ``False`` at once when ``max_waiting`` requests already wait."""
        if self._slots.acquire(blocking=False):
            return True
        with self._queue_lock:
            if self._waiting >= self._max_waiting:
                return False
            self._waiting += 1
            self.metrics.add_gauge("waiting", 1)
        try:
            self._slots.acquire()
        finally:
            with self._queue_lock:
                self._waiting -= 1
                self.metrics.add_gauge("waiting", -1)
        return True

    def release_slot(self) -> None:
        """Give back a slot taken by ``take_slot``."""
        self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002 (stdlib signature)
        """One line, no traceback and no client address, for what escaped a handler."""
        error = sys.exc_info()[1]
        LOG.error("request failed: %s: %s", type(error).__name__, error)


class Handler(BaseHTTPRequestHandler):
    """Routes requests; one handler instance per connection (HTTP/1.0: one request each)."""

    server: InferenceServer  # pyright: ignore[reportIncompatibleVariableOverride]
    server_version = "slm-onnx-genai"
    sys_version = ""

    def setup(self) -> None:
        """Every socket read and write times out, so a slow or silent client cannot hold a thread."""
        super().setup()
        self.connection.settimeout(self.server.io_timeout_seconds)

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
            stream, usage = streaming(body), include_usage(body)
            model = body.get("model", self.server.served_model_name)
            if model != self.server.served_model_name:
                msg = f"model {model!r} is not served here; use {self.server.served_model_name!r}"
                raise BadRequestError(msg)
        except BadRequestError as error:
            self._send_error(HTTPStatus.BAD_REQUEST, str(error), route=path)
            return
        except TimeoutError:
            self._send_error(HTTPStatus.REQUEST_TIMEOUT,
                             f"request body not received within {self.server.io_timeout_seconds:g}s", route=path)
            return
        self._generate(path, request, stream=stream, usage=usage)

    # -- generation ------------------------------------------------------------------------

    def _generate(self, path: str, request: GenerationRequest, *, stream: bool, usage: bool) -> None:
        if not self.server.take_slot():
            self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, "too many requests are waiting for this model; "
                             f"retry after {RETRY_AFTER_SECONDS}s", route=path,
                             headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            return
        metrics = self.server.metrics
        metrics.add_gauge("running", 1)
        started = time.monotonic()
        try:
            generation = self.server.generator.start(request)
            generation.pieces = stop_at(generation.pieces, request.stop, generation)

            def done() -> None:
                # Recorded before the last byte goes out, so a client that reads the response
                # and then scrapes /metrics always sees its own request counted.
                metrics.observe(seconds=time.monotonic() - started, prompt_tokens=generation.prompt_tokens,
                                generation_tokens=generation.completion_tokens)

            chat = path == "/v1/chat/completions"
            if stream:
                self._stream(path, generation, chat=chat, usage=usage, before_done=done)
            else:
                text = "".join(generation.pieces)
                done()
                self._send_json(HTTPStatus.OK, self._completion(generation, text, chat=chat), route=path)
        except BadRequestError as error:
            self._send_error(HTTPStatus.BAD_REQUEST, str(error), route=path)
        except GenerationError as error:
            LOG.error("%s", error)
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, str(error), route=path)
        except Exception:  # a bug of this server: logged for the operator, a JSON 500 for the client
            LOG.exception("generation failed")
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error in the ONNX server", route=path)
        finally:
            metrics.add_gauge("running", -1)
            self.server.release_slot()

    def _completion(self, generation: Generation, text: str, *, chat: bool) -> dict[str, Any]:
        base = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": self.server.served_model_name, "usage": _usage(generation)}
        if chat:
            return {**base, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": generation.finish_reason}]}
        return {**base, "object": "text_completion", "choices": [{
            "index": 0, "text": text, "finish_reason": generation.finish_reason}]}

    def _stream(self, path: str, generation: Generation, *, chat: bool, usage: bool,
                before_done: Callable[[], None]) -> None:
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(payload: Mapping[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        def chunk(choice: Mapping[str, Any] | None) -> None:
            payload: dict[str, Any] = {"id": ident, "object": obj, "created": created,
                                       "model": self.server.served_model_name,
                                       "choices": [choice] if choice is not None else []}
            if usage:
                payload["usage"] = _usage(generation) if choice is None else None
            event(payload)

        def delta(text: str, finish: str | None = None, *, first: bool = False) -> dict[str, Any]:
            if not chat:
                return {"index": 0, "text": text, "finish_reason": finish}
            body = {"role": "assistant", "content": text} if first else {"content": text} if text else {}
            return {"index": 0, "delta": body, "finish_reason": finish}

        try:
            if chat:
                chunk(delta("", first=True))
            for piece in generation.pieces:
                chunk(delta(piece))
            chunk(delta("", generation.finish_reason))
            before_done()
            if usage:
                chunk(None)
            self.server.metrics.count_request(path, HTTPStatus.OK)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:  # the client went away or stopped reading (socket timeout): stop generating
            self.server.metrics.count_request(path, CLIENT_CLOSED)
        except Exception as error:
            # Headers are gone: the error travels as an event (OpenAI clients raise on it).
            message = str(error) if isinstance(error, GenerationError) else "internal error in the ONNX server"
            LOG.error("%s", error, exc_info=not isinstance(error, GenerationError))
            self.server.metrics.count_request(path, HTTPStatus.INTERNAL_SERVER_ERROR)
            self._write_quietly(f"data: {json.dumps(_error_body(HTTPStatus.INTERNAL_SERVER_ERROR, message))}"
                                "\n\ndata: [DONE]\n\n")
        finally:
            close = getattr(generation.pieces, "close", None)
            if close is not None:
                close()

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
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length <= 0 or length > MAX_BODY_BYTES:
            msg = f"request body must be 1..{MAX_BODY_BYTES} bytes of JSON with a Content-Length"
            raise BadRequestError(msg)
        data = self.rfile.read(length)
        if len(data) < length:
            msg = f"request body ended after {len(data)} of {length} bytes"
            raise BadRequestError(msg)
        try:
            body = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            msg = f"request body is not JSON: {error}"
            raise BadRequestError(msg) from None
        if not isinstance(body, dict):
            msg = "request body must be a JSON object"
            raise BadRequestError(msg)
        return body

    def _send_json(self, status: HTTPStatus, payload: Mapping[str, Any], *, route: str,
                   headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.server.metrics.count_request(route, status)  # before the body: see _generate
        self.end_headers()
        self._write_quietly(data)

    def _send_error(self, status: HTTPStatus, message: str, *, route: str,
                    headers: Mapping[str, str] | None = None) -> None:
        self._send_json(status, _error_body(status, message), route=route, headers=headers)

    def _send_text(self, status: HTTPStatus, text: str, *, content_type: str = "text/plain") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._write_quietly(data)

    def _write_quietly(self, data: bytes | str) -> None:
        """Write and flush; a client that already left is not an error of the server."""
        try:
            self.wfile.write(data.encode() if isinstance(data, str) else data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def _usage(generation: Generation) -> dict[str, int]:
    return {"prompt_tokens": generation.prompt_tokens, "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens}


def _error_body(status: HTTPStatus, message: str) -> dict[str, Any]:
    kinds = {HTTPStatus.UNAUTHORIZED: "authentication_error", HTTPStatus.NOT_FOUND: "not_found_error",
             HTTPStatus.SERVICE_UNAVAILABLE: "overloaded_error"}
    kind = kinds.get(status, "server_error" if status >= HTTPStatus.INTERNAL_SERVER_ERROR
                     else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": int(status)}}


def build_parser() -> argparse.ArgumentParser:
    """The server's command line (the policy pack checks container args against this very parser)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 (listens on the pod IP)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--context-tokens", type=int, default=4096)
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--max-waiting", type=int, default=16,
                        help="requests that may wait for a generation slot; more are answered 503 + Retry-After")
    parser.add_argument("--io-timeout", type=float, default=60.0,
                        help="seconds any socket read or write may block before the connection is dropped")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Serve ``--model-dir`` until killed."""
    options = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="onnx-server %(levelname)s %(message)s")
    generator = OgGenerator(options.model_dir, context_tokens=options.context_tokens)
    server = InferenceServer((options.host, options.port), generator=generator,
                             served_model_name=options.served_model_name,
                             api_key=os.environ.get("ENGINE_API_KEY"), max_concurrency=options.max_concurrency,
                             max_waiting=options.max_waiting, io_timeout_seconds=options.io_timeout)
    server.serve_forever()


if __name__ == "__main__":
    main()
