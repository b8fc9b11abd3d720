"""The ONNX server as a process on 127.0.0.1, generating with the real onnxruntime-genai runtime.

The model is built by the test (``tiny_onnx_model``): greedy decoding answers any chat with
``ANSWER`` (10 tokens) and then reaches EOS, so every expected text, count and finish reason is
known without a fake.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines.onnx_server_process import ServerProcess, running_server, sse_events
from tests.engines.tiny_onnx_model import ANSWER, CHAIN, build_model

KEY = "test-key"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def untemplated_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny-model-no-template"), chat_template=False)


@pytest.fixture(scope="session")
def live(tiny_model: Path) -> Iterator[ServerProcess]:
    with running_server(tiny_model, api_key=KEY) as process:
        yield process


def chat(live: ServerProcess, **body: Any) -> tuple[int, dict[str, Any]]:
    status, _, text = live.call("/v1/chat/completions", {"model": "tiny", "messages": USER, **body})
    return status, json.loads(text)


def stream_chunks(live: ServerProcess, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    status, headers, text = live.call(path, {**body, "stream": True})
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(text)
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


def test_the_model_folder_is_small_and_complete(tiny_model: Path) -> None:
    names = {path.name for path in tiny_model.iterdir()}
    assert names == {"genai_config.json", "model.onnx", "tokenizer.json", "tokenizer_config.json"}
    assert sum(path.stat().st_size for path in tiny_model.iterdir()) < 1 << 20


def test_chat_generates_the_chain_and_stops_at_eos(live: ServerProcess) -> None:
    status, body = chat(live)
    assert status == 200
    assert body["choices"][0]["message"] == {"role": "assistant", "content": ANSWER}
    assert body["choices"][0]["finish_reason"] == "stop"
    # 10 words + EOS generated; the prompt is the chat template around "hi".
    assert body["usage"]["completion_tokens"] == len(CHAIN) + 1
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + len(CHAIN) + 1


def test_completion_continues_the_prompt(live: ServerProcess) -> None:
    status, _, text = live.call("/v1/completions", {"prompt": "The quick brown", "max_tokens": 50})
    body = json.loads(text)
    assert status == 200
    assert body["choices"][0]["text"] == " fox jumps over the lazy dog."
    assert body["usage"]["prompt_tokens"] == 3


def test_streaming_sends_the_same_text_token_by_token(live: ServerProcess) -> None:
    chunks = stream_chunks(live, "/v1/chat/completions", {"messages": USER})
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(c for c in contents if c) == ANSWER
    assert [c for c in contents if c][:2] == ["The", " quick"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_the_real_server_requires_its_api_key(live: ServerProcess) -> None:
    assert live.call("/v1/chat/completions", {"messages": USER}, key=None)[0] == 401
    assert live.call("/v1/models", key="wrong")[0] == 401
    assert live.call("/health", key=None)[0] == 200


def test_metrics_count_real_tokens(tiny_model: Path) -> None:
    with running_server(tiny_model, api_key=None) as server:
        server.call("/v1/completions", {"prompt": "The quick brown"})
        _, headers, text = server.call("/metrics", key=None)
    lines = set(text.splitlines())
    assert headers["Content-Type"].startswith("text/plain")
    assert any(line.startswith('onnxgenai_prompt_tokens_total{model_name="tiny"} 3') for line in lines)
    assert any(line.startswith('onnxgenai_generation_tokens_total{model_name="tiny"} 8') for line in lines)


def test_default_max_tokens_is_capped_by_the_models_context_length(live: ServerProcess) -> None:
    # The model's genai_config.json says context_length 256, the server's --context-tokens 4096:
    # prompt + default max_tokens (256) used to exceed the model and drop the connection.
    status, body = chat(live, max_tokens=100_000)
    assert status == 200
    assert body["choices"][0]["message"]["content"] == ANSWER


def test_finish_reason_is_length_when_max_tokens_cut_the_answer(live: ServerProcess) -> None:
    status, body = chat(live, max_tokens=3)
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "The quick brown"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    chunks = stream_chunks(live, "/v1/completions", {"prompt": "The", "max_tokens": 2})
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == " quick brown"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_eos_exactly_at_the_budget_is_stop(live: ServerProcess) -> None:
    status, body = chat(live, max_tokens=len(CHAIN) + 1)
    assert status == 200
    assert body["choices"][0]["finish_reason"] == "stop"


def test_a_runtime_error_is_a_json_5xx_not_a_dropped_connection(untemplated_model: Path) -> None:
    with running_server(untemplated_model, api_key=None) as server:
        status, headers, text = server.call("/v1/chat/completions", {"messages": USER})
        assert status == 500
        assert headers["Content-Type"] == "application/json"
        error = json.loads(text)["error"]
        assert "chat template" in error["message"]
        assert error["type"] == "server_error"
        # The server is still up and completions (no template needed) still work.
        status, _, text = server.call("/v1/completions", {"prompt": "The"})
        assert status == 200
        assert json.loads(text)["choices"][0]["text"].startswith(" quick")
        assert "Traceback" not in server.stderr()


def test_content_part_arrays_are_joined_as_text(live: ServerProcess) -> None:
    _, plain = chat(live, messages=[{"role": "user", "content": "hi there"}])
    status, parts = chat(live, messages=[{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "text", "text": " there"}]}])
    assert status == 200
    # Same prompt tokens as the plain string: the parts were not stringified into the prompt.
    assert parts["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]
    status, body = chat(live, messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
    assert status == 400
    assert "image_url" in body["error"]["message"]


@pytest.mark.parametrize("stop", [" fox", [" fox", "zzz"], "n fox", "bro"])
def test_stop_sequences_end_the_answer_before_the_stop_text(live: ServerProcess, stop: str | list[str]) -> None:
    status, body = chat(live, stop=stop)
    assert status == 200
    expected = ANSWER[: ANSWER.index(stop if isinstance(stop, str) else stop[0])]
    assert body["choices"][0]["message"]["content"] == expected
    assert body["choices"][0]["finish_reason"] == "stop"
    chunks = stream_chunks(live, "/v1/chat/completions", {"messages": USER, "stop": stop})
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert streamed == expected
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stop_must_be_at_most_four_non_empty_strings(live: ServerProcess) -> None:
    for stop in (["a", "b", "c", "d", "e"], [""], 5, ["ok", 3]):
        status, body = chat(live, stop=stop)
        assert status == 400, stop
        assert "stop" in body["error"]["message"]


def test_stream_include_usage_sends_a_final_usage_chunk(live: ServerProcess) -> None:
    chunks = stream_chunks(live, "/v1/chat/completions", {
        "messages": USER, "max_tokens": 4, "stream_options": {"include_usage": True}})
    final = chunks[-1]
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] == 4
    assert final["usage"]["total_tokens"] == final["usage"]["prompt_tokens"] + 4
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    plain = stream_chunks(live, "/v1/completions", {"prompt": "The"})
    assert all("usage" not in c for c in plain)


def test_the_first_streamed_delta_carries_the_assistant_role(live: ServerProcess) -> None:
    chunks = stream_chunks(live, "/v1/chat/completions", {"messages": USER})
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])


@pytest.mark.parametrize(("field", "value"), [
    ("n", 2),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
    ("tool_choice", "auto"),
    ("functions", [{"name": "f"}]),
    ("logprobs", True),
    ("response_format", {"type": "json_object"}),
    ("logit_bias", {"1": 5}),
    ("presence_penalty", 0.5),
    ("stream_options", {"include_usage": "yes"}),
])
def test_unsupported_fields_are_a_clear_400(live: ServerProcess, field: str, value: object) -> None:
    status, body = chat(live, **{field: value})
    assert status == 400
    assert field in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"


def test_supported_defaults_of_those_fields_are_accepted(live: ServerProcess) -> None:
    status, body = chat(live, n=1, logprobs=False, response_format={"type": "text"}, presence_penalty=0,
                        tools=[], seed=7, user="someone")
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == ANSWER


def test_sampling_with_a_seed_runs_on_the_real_runtime(live: ServerProcess) -> None:
    # Sampling path (do_sample, temperature, top_p, random_seed); the chain's logit margin (30) makes
    # any other token a ~1e-11 event, so the answer is still known.
    status, body = chat(live, temperature=0.8, top_p=0.9, seed=1234)
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == ANSWER


def test_stream_must_be_a_boolean(live: ServerProcess) -> None:
    status, body = chat(live, stream="yes")
    assert status == 400
    assert "stream" in body["error"]["message"]
