"""Shared fixtures: test settings, a loopback-only check for WebRTC tests.

Importing this file first gives the run a clean environment of its own (empty model
caches, no ``MEETMOOD_*`` settings; see tests/isolation.py), then loads the shared
fixtures of tests/fixtures.py.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bot.admin_token import admin_token_path, write_admin_token
from bot.settings import Settings, load_settings
from tests.isolation import isolate_environment

#: This run's own folder: its model caches, XDG folders and DeepFace home are in it.
RUN_DIR = isolate_environment()

pytest_plugins = ["tests.fixtures", "pytester"]

#: The admin token of every test server made with :func:`make_settings`.
ADMIN_TOKEN = "test-admin-token"
#: Headers that let a test create meetings over the API.
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def only_loopback() -> bool:
    """True inside a private network namespace whose only interface is lo.

    ``jlo0`` may be there too: the Janus tests put 127.0.0.1/32 (and nothing else) on it,
    because Janus gathers no ICE candidates on loopback interfaces.
    """
    return [name for _, name in socket.if_nameindex() if name != "jlo0"] == ["lo"]


@pytest.fixture
def loopback_only() -> None:
    """WebRTC tests must never offer or reach a real network address.

    They run inside ``scripts/in_netns.sh`` (``make test`` does this). Outside it
    they fail rather than send traffic anywhere.
    """
    if not only_loopback():
        pytest.fail(
            "WebRTC tests run only in a private network namespace; use `make test` "
            "or `scripts/in_netns.sh .venv/bin/python -m pytest ...`"
        )


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for tests: a temporary database, loopback ICE, inference in threads.

    The database's folder also gets the admin token :data:`ADMIN_TOKEN`.
    """
    base: dict[str, Any] = {
        "storage.database": str(tmp_path / "meetmood.sqlite3"),
        "storage.flush_interval_secs": 0.1,
        "server.port": 0,
        "webrtc.ice_addresses": ["127.0.0.1"],
        "webrtc.drop_mdns_candidates": True,
        # Test peers offer loopback candidates; production refuses those (see [limits]).
        "limits.allow_private_candidates": True,
        "inference.mode": "thread",
        "analyzers.face_emotion.device": "cpu",
        # No speech-emotion model is cached here: this exercises the "unavailable" path
        # without touching the network. Voice tests pass a tiny local model instead.
        "analyzers.voice_emotion.device": "cpu",
        "analyzers.voice_emotion.local_files_only": True,
    }
    base.update(overrides)
    settings = load_settings(environ={}, overrides=base)
    write_admin_token(admin_token_path(settings.storage), ADMIN_TOKEN)
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings (see :func:`make_settings`)."""
    return make_settings(tmp_path)
