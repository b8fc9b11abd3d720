"""Time-to-first-token and tokens/s of the ONNX server on the real runtime, whole process, over HTTP.

Run: ``.venv/bin/python -m benchmarks.onnx_server_bench [--requests 30] [--tokens 200]``
(``--server OLD/server.py`` measures another version of the script, e.g. ``git show main:…`` saved to a file).

It builds the tiny test model (``tests/engines/tiny_onnx_model.py``, endless chain: every answer
runs to ``max_tokens``), starts ``server.py`` as a separate process on 127.0.0.1 exactly as the pod
runs it, and sends sequential streaming chat requests from this process. Figures are whole-process
client-side wall clock, HTTP included: TTFT is request sent -> first content delta received;
tokens/s is completion tokens / (last byte - first content delta); plus non-streaming requests/s
with ``max_tokens=1`` (the per-request overhead). The model's compute is a few microseconds per
token, so these figures measure the server (HTTP, SSE framing, the generation loop's Python), not a
model. It asserts nothing about time (machines differ); it prints figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from tests.engines.onnx_server_process import ServerProcess, running_server
from tests.engines.tiny_onnx_model import build_model

KEY = "bench-key"


def _stream_once(server: ServerProcess, tokens: int) -> tuple[float, float, int]:
    """(ttft seconds, decode seconds, completion tokens) of one streaming chat request."""
    url = urlparse(server.base)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens, "stream": True,
                       "stream_options": {"include_usage": True}})
    started = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", body=body,
                       headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    response = connection.getresponse()
    first: float | None = None
    completion = deltas = 0
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        chunk = json.loads(line.removeprefix("data:"))
        choices = chunk.get("choices") or []
        if choices and (choices[0].get("delta") or {}).get("content"):
            deltas += 1
            first = first or time.perf_counter()
        if chunk.get("usage"):
            completion = int(chunk["usage"]["completion_tokens"])
    ended = time.perf_counter()
    connection.close()
    if first is None:
        msg = "no content delta received"
        raise RuntimeError(msg)
    return first - started, ended - first, completion or deltas  # deltas: a server without include_usage


def _plain_once(server: ServerProcess) -> float:
    started = time.perf_counter()
    status, _, text = server.call("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                                           "max_tokens": 1})
    if status != 200:
        raise RuntimeError(text)
    return time.perf_counter() - started


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--server", type=Path, default=None, help="server.py to run (default: this checkout's)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        model = build_model(Path(scratch) / "model", endless=True)
        with running_server(model, api_key=KEY, script=options.server) as server:
            _stream_once(server, options.tokens)  # warm-up (first session run)
            runs = [_stream_once(server, options.tokens) for _ in range(options.requests)]
            plain = [_plain_once(server) for _ in range(options.requests)]
    ttfts = sorted(run[0] for run in runs)
    rates = [run[2] / run[1] for run in runs if run[1] > 0]
    p95 = ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))]
    print(f"onnx server ({options.server or 'this checkout'}), tiny real model, whole process over HTTP, "
          f"{options.requests} sequential requests")
    print(f"  streaming, max_tokens={options.tokens}: completion tokens {runs[0][2]}")
    print(f"  TTFT         median {statistics.median(ttfts) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms")
    print(f"  tokens/s     median {statistics.median(rates):9.0f}          min {min(rates):9.0f}")
    print(f"  non-streaming max_tokens=1: {len(plain) / sum(plain):7.1f} requests/s "
          f"(median {statistics.median(plain) * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
