"""Fixtures shared by the dialog tests."""

from __future__ import annotations

import pytest

from mnemobot.runtime.clock import ManualClock
from tests.runtime.dialogs.fakehost import FakeHost


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
