"""The ONNX server's HTTP layer, in-process, with a fake generator (no weights, no onnxruntime)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.engines.onnx_server_modules import load

server = load("server")
download = load("download")

KEY = "test-key"


@dataclass
class FakeGenerator:
    """Echoes the last user message word by word; records what it was asked."""

    requests: list[server.GenerationRequest] = field(default_factory=list)

    def start(self, request: server.GenerationRequest) -> server.Generation:
        self.requests.append(request)
        text = request.prompt if request.prompt is not None else str(request.messages[-1]["content"])
        words = text.split()[: request.max_tokens]
        generation = server.Generation(prompt_tokens=len(text.split()), pieces=iter(()))

        def pieces() -> Iterator[str]:
            for i, word in enumerate(words, start=1):
                generation.completion_tokens = i
                yield word + " "
            generation.finish_reason = "length" if len(text.split()) > request.max_tokens else "stop"

        generation.pieces = pieces()
        return generation


@pytest.fixture
def served() -> Iterator[tuple[str, FakeGenerator, server.InferenceServer]]:
    fake = FakeGenerator()
    httpd = server.InferenceServer(("127.0.0.1", 0), generator=fake, served_model_name="phi4-onnx", api_key=KEY)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", fake, httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def call(base: str, path: str, body: dict[str, Any] | None = None, *, key: str | None = KEY) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_chat_completion_returns_the_generated_text_and_usage(served: Any) -> None:
    base, fake, _ = served
    status, text = call(base, "/v1/chat/completions", {
        "model": "phi4-onnx", "messages": [{"role": "user", "content": "hello small model"}], "max_tokens": 2})
    body = json.loads(text)
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hello small "}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert fake.requests[0].max_tokens == 2


def test_completion_endpoint_takes_a_prompt(served: Any) -> None:
    base, _, _ = served
    status, text = call(base, "/v1/completions", {"prompt": "one two"})
    assert status == 200
    assert json.loads(text)["choices"][0] == {"index": 0, "text": "one two ", "finish_reason": "stop"}


def test_streaming_sends_server_sent_events_ending_with_done(served: Any) -> None:
    base, _, _ = served
    status, text = call(base, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "a b"}], "stream": True})
    events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert status == 200
    assert events[-1] == "[DONE]"
    deltas = [json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]]
    assert "".join(deltas) == "a b "
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "stop"


def test_models_lists_the_served_model(served: Any) -> None:
    base, _, _ = served
    status, text = call(base, "/v1/models")
    assert status == 200
    assert [m["id"] for m in json.loads(text)["data"]] == ["phi4-onnx"]


def test_v1_routes_require_the_api_key(served: Any) -> None:
    base, fake, _ = served
    assert call(base, "/v1/models", key=None)[0] == 401
    assert call(base, "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, key="wrong")[0] == 401
    assert fake.requests == []


def test_health_and_metrics_need_no_key(served: Any) -> None:
    base, _, _ = served
    assert call(base, "/health", key=None) == (200, "ok\n")
    assert call(base, "/metrics", key=None)[0] == 200


def test_bad_requests_are_rejected_before_generation(served: Any) -> None:
    base, fake, _ = served
    assert call(base, "/v1/chat/completions", {"messages": []})[0] == 400
    assert call(base, "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                               "max_tokens": 0})[0] == 400
    status, text = call(base, "/v1/completions", {"prompt": "x", "model": "other"})
    assert status == 400
    assert "phi4-onnx" in json.loads(text)["error"]["message"]
    assert fake.requests == []


def test_unknown_routes_such_as_tokenize_are_404(served: Any) -> None:
    base, _, _ = served
    assert call(base, "/tokenize", {"prompt": "x"})[0] == 404


def test_metrics_count_requests_tokens_and_latency(served: Any) -> None:
    base, _, _ = served
    call(base, "/v1/completions", {"prompt": "one two three"})
    call(base, "/v1/models", key=None)
    _, text = call(base, "/metrics", key=None)
    lines = set(text.splitlines())
    label = 'model_name="phi4-onnx"'
    assert f'onnxgenai_requests_total{{{label},route="/v1/completions",status="200"}} 1' in lines
    assert f'onnxgenai_requests_total{{{label},route="/v1/models",status="401"}} 1' in lines
    assert f"onnxgenai_prompt_tokens_total{{{label}}} 3" in lines
    assert f"onnxgenai_generation_tokens_total{{{label}}} 3" in lines
    assert f'onnxgenai_e2e_request_latency_seconds_bucket{{{label},le="+Inf"}} 1' in lines
    assert f"onnxgenai_e2e_request_latency_seconds_count{{{label}}} 1" in lines
    assert f"onnxgenai_requests_waiting{{{label}}} 0" in lines
    assert "# TYPE onnxgenai_e2e_request_latency_seconds histogram" in lines


def test_histogram_buckets_are_cumulative() -> None:
    metrics = server.Metrics(model_name="m")
    metrics.observe(seconds=0.2, prompt_tokens=1, generation_tokens=1)
    metrics.observe(seconds=50.0, prompt_tokens=1, generation_tokens=1)
    text = metrics.render()
    assert 'onnxgenai_e2e_request_latency_seconds_bucket{model_name="m",le="0.25"} 1' in text
    assert 'onnxgenai_e2e_request_latency_seconds_bucket{model_name="m",le="60"} 2' in text


def test_download_only_fetches_the_variant_folder() -> None:
    assert download.variant_patterns("gpu/gpu-int4-rtn-block-32/") == ["gpu/gpu-int4-rtn-block-32/*"]
    with pytest.raises(ValueError, match="sub-folder"):
        download.variant_patterns("../etc")


def test_download_refuses_a_branch_revision() -> None:
    with pytest.raises(SystemExit, match="40-character commit"):
        download.main(["--repo", "a/b", "--revision", "main", "--variant", "cpu", "--dest", "/tmp/x"])


@dataclass
class BlockingGenerator:
    """Holds each generation until ``release`` is set; counts how many started."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def start(self, request: server.GenerationRequest) -> server.Generation:
        generation = server.Generation(prompt_tokens=1, pieces=iter(()))

        def pieces() -> Iterator[str]:
            self.started.release()
            self.release.wait(timeout=30)
            generation.completion_tokens = 1
            yield "done"

        generation.pieces = pieces()
        return generation


@dataclass
class FailingGenerator:
    """Yields one piece, then fails as the runtime would mid-generation."""

    def start(self, request: server.GenerationRequest) -> server.Generation:
        def pieces() -> Iterator[str]:
            yield "partial"
            msg = "generation failed after 1 tokens: the device was lost"
            raise server.GenerationError(msg)

        return server.Generation(prompt_tokens=1, pieces=pieces())


@contextlib.contextmanager
def serving(generator: Any, **options: Any) -> Iterator[tuple[str, server.InferenceServer]]:
    httpd = server.InferenceServer(("127.0.0.1", 0), generator=generator, served_model_name="phi4-onnx",
                                   api_key=None, **options)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_requests_beyond_the_waiting_bound_get_503_with_retry_after() -> None:
    blocking = BlockingGenerator()
    with serving(blocking, max_concurrency=1, max_waiting=1) as (base, _):
        body = {"prompt": "x"}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            running = pool.submit(call, base, "/v1/completions", body, key=None)
            assert blocking.started.acquire(timeout=10)  # the slot is taken
            waiting = pool.submit(call, base, "/v1/completions", body, key=None)
            deadline = time.monotonic() + 10
            while 'onnxgenai_requests_waiting{model_name="phi4-onnx"} 1' not in call(base, "/metrics")[1]:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            request = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 503
            assert refused.value.headers["Retry-After"] == "1"
            assert "waiting" in json.loads(refused.value.read())["error"]["message"]
            blocking.release.set()
            assert running.result(timeout=10)[0] == 200
            assert waiting.result(timeout=10)[0] == 200


def test_a_silent_client_is_dropped_after_the_io_timeout() -> None:
    with serving(FakeGenerator(), io_timeout_seconds=0.5) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\n")
            assert slow.recv(1024) == b""  # closed by the server, not by our 10 s timeout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"prompt\"")
            reply = b"".join(iter(lambda: slow.recv(4096), b"")).decode()  # until the server closes
            assert reply.startswith("HTTP/1.0 408")
            assert "not received within 0.5s" in reply


def test_an_error_mid_stream_is_sent_as_an_error_event() -> None:
    with serving(FailingGenerator()) as (base, httpd):
        status, text = call(base, "/v1/completions", {"prompt": "x", "stream": True}, key=None)
        events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
        assert status == 200
        assert json.loads(events[0])["choices"][0]["text"] == "partial"
        assert json.loads(events[-2])["error"]["type"] == "server_error"
        assert "device was lost" in json.loads(events[-2])["error"]["message"]
        assert events[-1] == "[DONE]"
        assert ("/v1/completions", "500") in httpd.metrics.requests
        status, text = call(base, "/v1/completions", {"prompt": "x"}, key=None)
        assert status == 500
        assert "device was lost" in json.loads(text)["error"]["message"]


def test_stop_sequences_split_across_pieces_are_never_shown() -> None:
    generation = server.Generation(prompt_tokens=1, pieces=iter(()))
    pieces = iter(["Hel", "lo wo", "r", "ld and more"])
    shown = list(server.stop_at(pieces, ("o wor", "zz"), generation))
    assert "".join(shown) == "Hell"
    assert generation.finish_reason == "stop"
    assert list(server.stop_at(iter(["a", "b"]), ("bc",), generation)) == ["a", "b"]


@dataclass
class FloodGenerator:
    """Streams far more than the socket buffers hold for the prompt ``flood``; a short answer otherwise."""

    def start(self, request: server.GenerationRequest) -> server.Generation:
        generation = server.Generation(prompt_tokens=1, pieces=iter(()))

        def pieces() -> Iterator[str]:
            for produced in range(1, 10_001 if request.prompt == "flood" else 2):
                generation.completion_tokens = produced
                yield "x" * 65_536 if request.prompt == "flood" else "ok"

        generation.pieces = pieces()
        return generation


def test_a_client_that_stops_reading_a_stream_frees_the_slot() -> None:
    with serving(FloodGenerator(), max_concurrency=1, max_waiting=0, io_timeout_seconds=0.5) as (base, httpd):
        body = json.dumps({"prompt": "flood", "stream": True}).encode()
        with socket.socket() as stuck:
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
            stuck.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            deadline = time.monotonic() + 15
            while ("/v1/completions", "499") not in httpd.metrics.requests:  # never read: the write times out
                assert time.monotonic() < deadline, "the stalled stream still holds its generation slot"
                time.sleep(0.05)
            # The only slot (and no waiting room) is free again while the stalled client is still connected.
            status, text = call(base, "/v1/completions", {"prompt": "small"}, key=None)
            assert status == 200
            assert json.loads(text)["choices"][0]["text"] == "ok"
