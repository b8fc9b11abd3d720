"""Recordings shared by the InferenceCluster tests (one mock run per tier per session)."""

from __future__ import annotations

import pytest

from slmctl.recorder import Recording
from tests.inference.builders import build, make_settings


@pytest.fixture(scope="session")
def dev_recording() -> Recording:
    return build(make_settings("dev"))


@pytest.fixture(scope="session")
def prod_recording() -> Recording:
    return build(make_settings("prod"))


@pytest.fixture(scope="session")
def local_recording() -> Recording:
    return build(make_settings("local"))
