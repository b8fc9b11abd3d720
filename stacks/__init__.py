"""Per-environment stack settings and the composition of the platform."""
