"""Benchmarks: scripts that print figures (run as modules from the repo root)."""
