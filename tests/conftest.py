"""Shared fixtures: test settings, a loopback-only check for WebRTC tests."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings, load_settings


def only_loopback() -> bool:
    """True inside a private network namespace whose only interface is lo."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


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
    """Settings for tests: a temporary database, loopback ICE, inference in threads."""
    base: dict[str, Any] = {
        "storage.database": str(tmp_path / "meetmood.sqlite3"),
        "storage.flush_interval_secs": 0.1,
        "server.port": 0,
        "webrtc.ice_addresses": ["127.0.0.1"],
        "webrtc.drop_mdns_candidates": True,
        "inference.mode": "thread",
        "analyzers.face_emotion.device": "cpu",
        # No speech-emotion model is cached here: this exercises the "unavailable" path
        # without touching the network. Voice tests pass a tiny local model instead.
        "analyzers.voice_emotion.device": "cpu",
        "analyzers.voice_emotion.local_files_only": True,
    }
    base.update(overrides)
    return load_settings(environ={}, overrides=base)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings (see :func:`make_settings`)."""
    return make_settings(tmp_path)
