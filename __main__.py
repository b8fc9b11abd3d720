"""The Pulumi program: wiring only. Everything it does lives in ``stacks.platform.build``."""

import pulumi

from stacks.platform import PlatformSecrets, build, load_settings

config = pulumi.Config("slm-platform")
settings = load_settings(config.require_object("settings"), stack=pulumi.get_stack())
outputs = build(settings, PlatformSecrets.from_config(config, settings))
for key, value in outputs.items():
    pulumi.export(key, value)
