"""Edge delivery internals: engine launch specs, Kubernetes objects, IoT Edge manifests, Foundry Local
bootstrap scripts, the IoT Hub configurations client, and the renderer.

Every module here except ``iot_configuration`` (the dynamic provider) is pure: plain data in, plain
data out, no ``pulumi`` import, so the component, the renderer and the tests share one source.
"""
