"""The ONNX server's HTTP layer, in-process, with a fake generator (no weights, no onnxruntime)."""

from __future__ import annotations

import json
import threading
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
