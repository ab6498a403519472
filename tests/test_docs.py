"""The README documents every derived state the registry has."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.fusion.registry import REGISTRY

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_names_every_state_and_its_formula() -> None:
    for d in REGISTRY:
        assert f"`{d.name}`" in README or f"**{d.name}**" in README.lower(), d.name
        if d.group in ("vocal", "composite"):
            assert (d.null_reason or d.formula) in README, d.name
