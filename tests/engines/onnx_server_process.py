"""Run the ONNX server as a real process (``python server.py …``) on 127.0.0.1, as the pod does.

Used by the real-runtime tests and by ``benchmarks/onnx_server_bench.py``: the command line is the
one ``components/engines/onnx_genai.py`` renders (``--model-dir``, ``--served-model-name``,
``--port`` …) with the API key in ``ENGINE_API_KEY``, so what is tested is what is deployed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.engines.onnx_server_modules import SERVER_DIR

STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class ServerProcess:
    """A started server: where it listens, its key, and the process (for its exit code and stderr)."""

    base: str
    api_key: str | None
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        """What the server wrote to stderr so far (a traceback there is a bug)."""
        return self.stderr_path.read_text(errors="replace")

    def call(self, path: str, body: Mapping[str, Any] | None = None, *, key: str | None = "default",
             timeout: float = 30.0) -> tuple[int, dict[str, str], str]:
        """One HTTP request; returns (status, headers, body text), HTTP errors included."""
        headers = {"Content-Type": "application/json"}
        token = self.api_key if key == "default" else key
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


def free_port() -> int:
    """A port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(base: str, process: subprocess.Popen[bytes], stderr_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"server exited with {process.returncode}: {stderr_path.read_text(errors='replace')[-2000:]}"
            raise RuntimeError(msg)
        with contextlib.suppress(OSError), urllib.request.urlopen(base + "/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    msg = f"server at {base} not healthy after {STARTUP_SECONDS:.0f}s"
    raise RuntimeError(msg)


@contextlib.contextmanager
def running_server(model_dir: Path, *, served_model_name: str = "tiny", api_key: str | None = "test-key",
                   extra_args: Sequence[str] = (), script: Path | None = None) -> Iterator[ServerProcess]:
    """Start ``server.py`` (or ``script``) against ``model_dir`` on a free 127.0.0.1 port; stop it afterwards."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ENGINE_API_KEY", None)
    if api_key is not None:
        env["ENGINE_API_KEY"] = api_key
    command = [sys.executable, str(script or SERVER_DIR / "server.py"), "--model-dir", str(model_dir),
               "--served-model-name", served_model_name, "--host", "127.0.0.1", "--port", str(port), *extra_args]
    with tempfile.TemporaryDirectory(prefix="onnx-server-") as scratch:
        stderr_path = Path(scratch) / "stderr.txt"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(base, process, stderr_path)
            yield ServerProcess(base=base, api_key=api_key, process=process, stderr_path=stderr_path)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def sse_events(text: str) -> list[str]:
    """The ``data:`` payloads of a server-sent-events body, in order."""
    return [line.removeprefix("data:").strip() for line in text.splitlines() if line.startswith("data:")]
