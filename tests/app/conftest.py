"""Fixtures shared by the daemon's end-to-end tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.mosquitto import MosquittoBroker


@pytest.fixture
def broker(mosquitto_factory: Any) -> MosquittoBroker:
    """A broker that keeps its sessions on disk: a restart must not lose queued messages."""
    return mosquitto_factory(persistence=True, autosave_interval=1)
