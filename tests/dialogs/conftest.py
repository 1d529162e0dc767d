"""Fixtures shared by the dialog tests."""

from __future__ import annotations

import pytest

from runtime.clock import ManualClock
from tests.dialogs.fakehost import FakeHost


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
