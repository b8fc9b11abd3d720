"""Reusable Pulumi components: ModelRegistry, InferenceCluster, MonitoringStack, EdgeDevice."""
