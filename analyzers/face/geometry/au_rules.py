"""Rule-based expression labels from facial action unit (AU) intensities, matched by name.

Rules follow the commonly cited EMFACS prototypes (not checked against the EMFACS
manual itself) plus seed B's "confusion". Every AU group of a rule must have an AU
whose intensity is **above** the rule's threshold; a group with alternatives
(``AU05/AU07``) needs any one of them. :data:`DEFAULT_RULES` thresholds are on
OpenFace's ``AUxx_r`` 0-5 scale (seed B's values), for OpenFace-style input.

**Geometric proxies** are not on that scale: raw they are fractions of the inter-ocular
distance with person-specific resting values. Convert them first with
:meth:`analyzers.face.baseline.NeutralBaseline.intensities`, which subtracts the
person's neutral value and maps the change to 0-5 (``clip((raw - neutral) / k, 0, 5)``,
scale constants in :mod:`analyzers.face.baseline`), and apply :data:`PROXY_RULES`: the
same AU groups with every threshold at **1.0**, FACS's "trace" level, because single-frame
geometric intensities below about 1 are mostly landmark jitter (about 0.5 intensity
units on a webcam face). Raw, un-normalised proxies must not be fed to either rule set.

======== ================================ ========= =====================================
label    AUs (all groups required)        threshold notes
======== ================================ ========= =====================================
joy      AU06 + AU12                      > 0.6     EMFACS happiness
surprise AU01 + AU02 + AU05 + AU26        > 0.4     EMFACS surprise
anger    AU04 + (AU05 or AU07) + AU23     > 0.4     EMFACS anger 4+5+7+23, 5/7 either one
sadness  AU01 + AU04 + AU15               > 0.6     EMFACS sadness
confusion AU04 + AU07                     > 0.7     not an EMFACS category (seed B's label)
neutral  none of the measurable rules     --        reported only when nothing fired
======== ================================ ========= =====================================

**Missing AUs**: an AU absent from the input is *not measured*, which is different from
an intensity of 0. A rule with a group none of whose AUs is measured cannot fire and is
reported in :attr:`AuRuleResult.not_measurable`; in a group with alternatives only the
measured ones are checked. The geometric proxies in
:mod:`analyzers.face.geometry.features` have no AU05, AU07 or AU23, so from them only
joy and sadness are measurable. ``neutral`` means "no measurable rule fired".

**Names**: OpenFace columns (``AU12_r``), presence columns (``AU12_c``), bare names
(``AU12``, ``AU1``) and our proxy names (``au12_lip_corner_pull_proxy``) all normalise to
``"AU12"`` with :func:`normalize_au_name`. In :func:`normalize_aus` a presence column
gates its intensity: ``AU12_c == 0`` sets AU12 to 0 (seed B ignored this); a presence
column without an intensity (OpenFace's AU28) is not an intensity and is dropped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

NEUTRAL = "neutral"

_AU_NAME = re.compile(r"^au[_ ]?0*(\d{1,2})(?:_(.*))?$", re.IGNORECASE)


def normalize_au_name(name: str) -> str:
    """Canonical AU name: ``"AU12_r"``, ``"au12_lip_corner_pull_proxy"``, ``"AU12"`` -> "AU12".

    Args:
        name: An OpenFace column, a bare AU name or a proxy field name.

    Returns:
        ``"AU"`` plus the two-digit AU number.

    Raises:
        ValueError: If ``name`` does not name an AU.
    """
    match = _AU_NAME.match(name.strip())
    if match is None:
        raise ValueError(f"not an AU name: {name!r}")
    return f"AU{int(match.group(1)):02d}"


@functools.lru_cache(maxsize=256)
def _parse_au_name(name: str) -> tuple[str, bool] | None:
    """``(canonical name, is a presence column)``, or None; cached, names repeat per frame."""
    match = _AU_NAME.match(name.strip())
    if match is None:
        return None
    return f"AU{int(match.group(1)):02d}", (match.group(2) or "").lower() == "c"


def normalize_aus(values: Mapping[str, float]) -> dict[str, float]:
    """Map intensities keyed by any supported name to canonical ``"AUxx"`` keys.

    ``_c`` (presence) entries gate the matching intensity and are then dropped; keys
    that are not AU names (``"confidence"``) are ignored.

    Args:
        values: Name -> value, e.g. one OpenFace row or ``FaceGeometry.au_proxies()``.

    Returns:
        Canonical name -> intensity.
    """
    intensities: dict[str, float] = {}
    absent: set[str] = set()
    for name, value in values.items():
        parsed = _parse_au_name(name)
        if parsed is None:
            continue
        canonical, is_presence = parsed
        if is_presence:
            if float(value) <= 0.0:
                absent.add(canonical)
            continue
        intensities[canonical] = float(value)
    for canonical in absent & intensities.keys():
        intensities[canonical] = 0.0
    return intensities


@dataclass(frozen=True, slots=True)
class AuRule:
    """One label's rule.

    Attributes:
        label: Label emitted when the rule fires.
        groups: AU groups, all required; each group is satisfied by any one of its AUs.
        threshold: An AU counts when its intensity is strictly above this.
    """

    label: str
    groups: tuple[tuple[str, ...], ...]
    threshold: float


#: The rules of the module docstring's table, for OpenFace ``AUxx_r`` intensities.
DEFAULT_RULES: tuple[AuRule, ...] = (
    AuRule("joy", (("AU06",), ("AU12",)), 0.6),
    AuRule("surprise", (("AU01",), ("AU02",), ("AU05",), ("AU26",)), 0.4),
    AuRule("anger", (("AU04",), ("AU05", "AU07"), ("AU23",)), 0.4),
    AuRule("sadness", (("AU01",), ("AU04",), ("AU15",)), 0.6),
    AuRule("confusion", (("AU04",), ("AU07",)), 0.7),
)

#: Threshold of :data:`PROXY_RULES`: FACS "trace" (A) on the 0-5 scale.
PROXY_RULE_THRESHOLD = 1.0

#: The same rules for baseline-relative geometric intensities
#: (:meth:`analyzers.face.baseline.NeutralBaseline.intensities`), every threshold at
#: :data:`PROXY_RULE_THRESHOLD`.
PROXY_RULES: tuple[AuRule, ...] = tuple(
    AuRule(rule.label, rule.groups, PROXY_RULE_THRESHOLD) for rule in DEFAULT_RULES
)


@dataclass(frozen=True, slots=True)
class AuRuleResult:
    """Outcome of the rules on one frame.

    Attributes:
        labels: Fired labels in rule order, or ``("neutral",)`` when none fired.
        not_measurable: Labels whose rules could not be evaluated (an AU group unmeasured).
    """

    labels: tuple[str, ...]
    not_measurable: tuple[str, ...]


def apply_au_rules(
    values: Mapping[str, float], rules: tuple[AuRule, ...] = DEFAULT_RULES
) -> AuRuleResult:
    """Evaluate the AU rules on one frame's intensities.

    Args:
        values: AU intensities by any name :func:`normalize_aus` accepts.
        rules: Rules to apply (default: :data:`DEFAULT_RULES`).

    Returns:
        The fired labels and the unmeasurable ones.
    """
    aus = normalize_aus(values)
    fired: list[str] = []
    not_measurable: list[str] = []
    for rule in rules:
        measured = [[au for au in group if au in aus] for group in rule.groups]
        if not all(measured):
            not_measurable.append(rule.label)
            continue
        if all(any(aus[au] > rule.threshold for au in group) for group in measured):
            fired.append(rule.label)
    return AuRuleResult(tuple(fired) or (NEUTRAL,), tuple(not_measurable))
