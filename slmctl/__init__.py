"""slmctl: the offline toolchain (plan, gate, render, schema) for the slm-platform Pulumi project."""
