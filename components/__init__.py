"""Reusable Pulumi components: ModelRegistry, InferenceCluster, MonitoringStack, EdgeDevice."""

from components import _lean_sdk

_lean_sdk.install()
