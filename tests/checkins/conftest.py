"""Fixtures of the check-in planning tests: the demo registry loaded, then scheduled once."""

from __future__ import annotations

import pytest

from auxeng.checkins import planning
from tests.checkins.store_helpers import DEMO_TEXT, FIRST_RUN, load, run


@pytest.fixture
def demo(store):
    load(store, DEMO_TEXT, FIRST_RUN)
    return store


@pytest.fixture
def scheduled(demo):
    """The demo registry after the first check-in scheduling run (2026-11-26)."""
    run(demo, planning.schedule_checkins, FIRST_RUN)
    return demo
