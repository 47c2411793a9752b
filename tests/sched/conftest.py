"""``driver``: every scheduler test runs under both drivers, which must agree."""

from __future__ import annotations

import pytest

from emulator.sched.drivers import DRIVERS


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
