"""The engine's side of a provider's ``Construct``, on loopback gRPC: a resource monitor and an engine.

``MonitorServer`` serves ``pulumirpc.ResourceMonitor`` and ``pulumirpc.Engine`` on a free 127.0.0.1 port.
The monitor is slmctl's ``RecordingMonitor`` (the SDK's ``MockMonitor`` answering with ``PlatformMocks``,
the same stand-ins ``slmctl plan`` uses), so a registration that arrives over gRPC from the provider
process is recorded exactly as one from a Python program under the mocks. ``start_provider`` starts the
package as the engine starts a plugin: ``<entry> <engine address>``, port read from stdout.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2_grpc,
    resource_pb2,
    resource_pb2_grpc,
)

from slmctl.recorder import PlatformMocks, RecordingMonitor, Registration

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Monitor(RecordingMonitor):
    """``RecordingMonitor`` with URNs of a fixed project and stack (no SDK settings in this process)."""

    def __init__(self, project: str, stack: str) -> None:
        super().__init__(PlatformMocks())
        self._project, self._stack = project, stack

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        if parent:
            type_ = parent.split("::")[2].rsplit("$", maxsplit=1)[-1] + "$" + type_
        return "urn:pulumi:" + "::".join([self._stack, self._project, type_, name])


class _MonitorService(resource_pb2_grpc.ResourceMonitorServicer):
    def __init__(self, monitor: _Monitor) -> None:
        self.monitor = monitor
        self.errors: list[str] = []

    def SupportsFeature(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC method names)
        return resource_pb2.SupportsFeatureResponse(hasSupport=self.monitor.SupportsFeature(request).hasSupport)

    def RegisterResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        try:
            return self.monitor.RegisterResource(request)
        except Exception as exc:
            self.errors.append(f"{request.type} {request.name}: {exc}")
            raise

    def GetDeploymentInfo(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self.monitor.GetDeploymentInfo(request)

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:  # noqa: N802
        return empty_pb2.Empty()

    def Invoke(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self.monitor.Invoke(request)

    def ReadResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self.monitor.ReadResource(request)

    def RegisterPackage(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self.monitor.RegisterPackage(request)

    def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:  # noqa: N802
        return empty_pb2.Empty()


class _EngineService(engine_pb2_grpc.EngineServicer):
    def __init__(self, root: str) -> None:
        self.root = root
        self.logs: list[str] = []

    def Log(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC method names)
        self.logs.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.GetRootResourceResponse(urn=self.root)

    def SetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.SetRootResourceResponse()


class MonitorServer:
    """A loopback resource monitor + engine; ``registrations`` is what the provider registered."""

    def __init__(self, *, project: str, stack: str) -> None:
        self.stack_urn = f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
        self.monitor = _Monitor(project, stack)
        self.monitor_service = _MonitorService(self.monitor)
        self.engine_service = _EngineService(self.stack_urn)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(self.monitor_service, self._server)
        engine_pb2_grpc.add_EngineServicer_to_server(self.engine_service, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self) -> MonitorServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)

    @property
    def registrations(self) -> list[Registration]:
        return sorted(self.monitor.registrations, key=lambda r: r.urn)


class Provider:
    """The package's provider process and a ``ResourceProvider`` stub connected to it."""

    def __init__(self, engine_address: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", "slm_package.py", engine_address], cwd=REPO_ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            _, err = self.process.communicate()
            msg = f"the provider did not print its port (got {line!r}): {err}"
            raise AssertionError(msg)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self._stderr: list[str] = []
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=lambda: self._stderr.extend(self.process.stderr or []), daemon=True)
        self._reader.start()

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
