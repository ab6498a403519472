"""AU -> label rules, matched by AU name."""

from __future__ import annotations

import pytest

from analyzers.face.geometry.au_rules import (
    DEFAULT_RULES,
    NEUTRAL,
    PROXY_RULE_THRESHOLD,
    PROXY_RULES,
    AuRule,
    apply_au_rules,
    normalize_au_name,
    normalize_aus,
)

pytestmark = pytest.mark.unit

ALL_AUS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU12", "AU15", "AU23", "AU26")

RULE_AUS = {
    "joy": ("AU06", "AU12"),
    "surprise": ("AU01", "AU02", "AU05", "AU26"),
    "anger": ("AU04", "AU05", "AU23"),
    "sadness": ("AU01", "AU04", "AU15"),
    "confusion": ("AU04", "AU07"),
}


def frame(active: tuple[str, ...], value: float = 2.0) -> dict[str, float]:
    """All AUs measured, ``active`` ones at ``value``, the rest at 0."""
    return {au: (value if au in active else 0.0) for au in ALL_AUS}


@pytest.mark.parametrize("label", sorted(RULE_AUS))
def test_rule_fires_with_its_aus(label: str) -> None:
    result = apply_au_rules(frame(RULE_AUS[label]))
    assert label in result.labels
    assert NEUTRAL not in result.labels
    assert result.not_measurable == ()


@pytest.mark.parametrize("label", sorted(RULE_AUS))
def test_rule_needs_every_au(label: str) -> None:
    for missing in RULE_AUS[label]:
        active = tuple(au for au in RULE_AUS[label] if au != missing)
        result = apply_au_rules(frame(active))
        assert label not in result.labels, missing


def test_anger_accepts_au07_instead_of_au05() -> None:
    assert "anger" in apply_au_rules(frame(("AU04", "AU07", "AU23"))).labels


def test_threshold_is_strict_and_per_rule() -> None:
    assert "joy" not in apply_au_rules(frame(("AU06", "AU12"), value=0.6)).labels
    assert "joy" in apply_au_rules(frame(("AU06", "AU12"), value=0.61)).labels
    # 0.5 clears surprise's 0.4 but not joy's 0.6.
    labels = apply_au_rules(frame(("AU01", "AU02", "AU05", "AU26", "AU06", "AU12"), 0.5)).labels
    assert labels == ("surprise",)


def test_neutral_when_nothing_fires() -> None:
    result = apply_au_rules(frame(()))
    assert result.labels == (NEUTRAL,)


def test_several_labels_can_fire() -> None:
    labels = apply_au_rules(frame(("AU06", "AU12", "AU04", "AU07"))).labels
    assert labels == ("joy", "confusion")


def test_unmeasured_au_makes_rule_not_measurable() -> None:
    values = frame(RULE_AUS["surprise"])
    del values["AU05"]
    result = apply_au_rules(values)
    assert "surprise" not in result.labels
    assert "surprise" in result.not_measurable
    # anger still measurable through AU07.
    assert "anger" not in result.not_measurable


def test_geometric_proxies_measure_only_joy_and_sadness() -> None:
    proxies = {
        "au01_inner_brow_raise_proxy": 0.0,
        "au02_outer_brow_raise_proxy": 0.0,
        "au04_brow_lower_proxy": 0.0,
        "au06_cheek_raise_proxy": 1.0,
        "au12_lip_corner_pull_proxy": 1.0,
        "au15_lip_corner_depress_proxy": 0.0,
        "au25_lips_part_proxy": 0.0,
        "au26_jaw_drop_proxy": 0.0,
        "au45_blink_proxy": 0.0,
    }
    result = apply_au_rules(proxies)
    assert result.labels == ("joy",)
    assert set(result.not_measurable) == {"surprise", "anger", "confusion"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AU12_r", "AU12"),
        ("AU12_c", "AU12"),
        (" AU01_r", "AU01"),
        ("AU1", "AU01"),
        ("au12_lip_corner_pull_proxy", "AU12"),
        ("au45_blink_proxy", "AU45"),
        ("AU45", "AU45"),
    ],
)
def test_normalize_au_name(name: str, expected: str) -> None:
    assert normalize_au_name(name) == expected


def test_normalize_au_name_rejects_others() -> None:
    with pytest.raises(ValueError, match="AU name"):
        normalize_au_name("pose_Rx")


def test_openface_row_with_presence_gate() -> None:
    row = {
        "confidence": 0.98,
        "success": 1.0,
        "AU06_r": 1.2,
        "AU12_r": 2.0,
        "AU06_c": 1.0,
        "AU12_c": 0.0,  # intensity without presence is not trusted
        "AU28_c": 1.0,  # presence-only column: not an intensity
    }
    assert normalize_aus(row) == {"AU06": 1.2, "AU12": 0.0}
    assert "joy" not in apply_au_rules(row).labels
    row["AU12_c"] = 1.0
    assert apply_au_rules(row).labels[0] == "joy"


def test_custom_rules() -> None:
    rules = (AuRule("smile", (("AU12",),), 0.02),)
    assert apply_au_rules({"au12_lip_corner_pull_proxy": 0.05}, rules).labels == ("smile",)
    assert [r.label for r in DEFAULT_RULES] == ["joy", "surprise", "anger", "sadness", "confusion"]


def test_proxy_rules_same_groups_trace_threshold() -> None:
    assert [r.label for r in PROXY_RULES] == [r.label for r in DEFAULT_RULES]
    assert [r.groups for r in PROXY_RULES] == [r.groups for r in DEFAULT_RULES]
    assert {r.threshold for r in PROXY_RULES} == {PROXY_RULE_THRESHOLD} == {1.0}
    # 0.8 clears OpenFace joy (0.6) but not the proxy rules' trace level.
    intensities = {"AU06": 0.8, "AU12": 0.8}
    assert apply_au_rules(intensities).labels == ("joy",)
    assert apply_au_rules(intensities, PROXY_RULES).labels == (NEUTRAL,)
    assert apply_au_rules({"AU06": 1.5, "AU12": 2.0}, PROXY_RULES).labels == ("joy",)
