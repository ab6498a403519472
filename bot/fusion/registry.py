"""The registry of derived states: one entry per fused quantity.

Every quantity fusion produces (engagement and its components, valence, arousal,
the 7 basic expressions, the seed's 11 "vocal" and 10 "composite" states) is one
:class:`StateDef`: name, group, label, one-line definition, unit and range, inputs,
the strength of the evidence behind it, its formula in words and the function
that computes it. The store, the API, the sidebar, and later summaries and
reports read this registry; adding a state is adding one entry here (and its
function in :mod:`bot.fusion.states`).

Entries are evaluated in order, so an entry may read the (smoothed) readings of
the entries before it. ``smoothing`` says which time constant smooths the value:
``"window"`` (``fusion.window_secs``: attention and expressiveness are shares of
recent time), ``"state"`` (``fusion.smoothing_secs``) or ``"none"`` (computed from
already smoothed readings, or from integrated figures such as talk time).

``support`` is the strength of the published evidence that the observable
correlates bear on the state (``../shared/reference/STATES.md``, summarised in the
README): *strong*, *some*, *weak* or *none*. It is shown beside each state; it is
not folded into the confidence, which only measures how much input was observed.
States with *none* always read ``None`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.fusion import states as f
from bot.fusion.inputs import FusionInputs
from bot.fusion.params import FusionParams
from bot.types import EMOTIONS, Emotion, Reading, StateDefinition

Group = Literal["engagement", "affect", "basic", "vocal", "composite"]
Support = Literal["strong", "some", "weak", "none"]
Smoothing = Literal["window", "state", "none"]
Compute = Callable[[FusionInputs, FusionParams, f.Done], Reading]


@dataclass(frozen=True, slots=True)
class StateDef:
    """One derived quantity; see the module docstring."""

    name: str
    group: Group
    label: str
    definition: str
    unit: str
    low: float
    high: float
    inputs: tuple[str, ...]
    support: Support
    formula: str
    compute: Compute
    smoothing: Smoothing = "state"
    alias_of: str | None = None
    null_reason: str | None = None

    def describe(self) -> StateDefinition:
        """The entry as clients see it (every field but the function)."""
        return StateDefinition(
            **{name: getattr(self, name) for name in StateDefinition.model_fields}
        )


def _null_state(
    name: str, group: Group, label: str, definition: str, reason: str, inputs: tuple[str, ...] = ()
) -> StateDef:
    reading = f.null(reason)  # readings are immutable: one for every call

    def compute(i: FusionInputs, p: FusionParams, done: f.Done) -> Reading:
        return reading

    return StateDef(
        name=name,
        group=group,
        label=label,
        definition=definition,
        unit="score",
        low=0.0,
        high=1.0,
        inputs=inputs,
        support="none",
        formula="not estimated",
        compute=compute,
        smoothing="none",
        null_reason=reason,
    )


def _alias(
    name: str, group: Group, label: str, target: str, why: str, support: Support
) -> StateDef:
    return StateDef(
        name=name,
        group=group,
        label=label,
        definition=f"Same quantity as '{target}': {why}",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=(target,),
        support=support,
        formula=f"= {target}",
        compute=f.alias(target),
        smoothing="none",
        alias_of=target,
    )


_BASIC_LABELS = {
    Emotion.ANGRY: ("Angry-like display", "A scowl-like expression; not a reading of anger."),
    Emotion.DISGUST: ("Disgust-like display", "A nose-wrinkle or upper-lip display."),
    Emotion.FEAR: ("Fear-like display", "Raised and drawn brows, widened eyes."),
    Emotion.HAPPY: ("Smiling / positive", "A smile, or a voice the model reads as happy."),
    Emotion.SAD: ("Sad-like display", "Inner brows raised, lip corners down, or a sad voice."),
    Emotion.SURPRISE: ("Surprise-like display", "Raised brows and open mouth, while silent."),
    Emotion.NEUTRAL: ("Neutral", "No expression away from rest; the normal listening face."),
}
_BASIC_SUPPORT: dict[Emotion, Support] = {
    Emotion.ANGRY: "weak",
    Emotion.DISGUST: "weak",
    Emotion.FEAR: "weak",
    Emotion.HAPPY: "strong",
    Emotion.SAD: "some",
    Emotion.SURPRISE: "some",
    Emotion.NEUTRAL: "strong",
}


def _basic(e: Emotion) -> StateDef:
    label, definition = _BASIC_LABELS[e]
    return StateDef(
        name=e.value,
        group="basic",
        label=label,
        definition=definition,
        unit="probability",
        low=0.0,
        high=1.0,
        inputs=("face_fer", "voice_ser"),
        support=_BASIC_SUPPORT[e],
        formula="(W_face p_face + W_voice q) / (W_face + W_voice), W = base weight x model "
        "confidence x quality; voice re-divides the face's mass on its own classes",
        compute=f.basic(e),
    )


REGISTRY: tuple[StateDef, ...] = (
    # -- engagement ------------------------------------------------------------------
    StateDef(
        name="attention",
        group="engagement",
        label="Attention",
        definition="Share of recent time the face was in view and looking at the screen, judged "
        "against the person's own usual gaze.",
        unit="share",
        low=0.0,
        high=1.0,
        inputs=("face_presence", "gaze"),
        support="some",
        formula="exponential share (time constant fusion.window_secs) of frames with the face in "
        "view and not looking away; null after fusion.absent_null_secs without a face",
        compute=f.attention,
        smoothing="window",
    ),
    StateDef(
        name="expressiveness",
        group="engagement",
        label="Expressiveness",
        definition="How much the face moves away from the person's own neutral face (movement, not "
        "involvement or mood).",
        unit="share",
        low=0.0,
        high=1.0,
        inputs=("face_aus", "face_fer_relative"),
        support="strong",
        formula="mean of min(1, sum of AU intensities / 5) (mouth AUs left out while speaking) "
        "and half the total distance of the expression probabilities from the "
        "person's neutral ones; exponential average over fusion.window_secs",
        compute=f.expressiveness,
        smoothing="window",
    ),
    StateDef(
        name="participation",
        group="engagement",
        label="Participation",
        definition="Contribution to the conversation against the meeting's fair share.",
        unit="share",
        low=0.0,
        high=1.0,
        inputs=("talk_share", "turns", "recency"),
        support="strong",
        formula="(min(1, share x n) + min(1, turns x n / all turns) + exp(-silent secs / "
        "fusion.recency_secs)) / 3, n = participants with audio; confidence grows "
        "with meeting speech up to fusion.participation_full_secs",
        compute=f.participation,
        smoothing="none",
    ),
    StateDef(
        name="engagement",
        group="engagement",
        label="Engagement",
        definition="Visible involvement in the meeting: attention, expressiveness and "
        "participation, each shown.",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("attention", "expressiveness", "participation"),
        support="some",
        formula="weighted mean of the components present (fusion.engagement weights, default "
        "0.6 / 0.2 / 0.2); null without attention and participation",
        compute=f.engagement,
        smoothing="none",
    ),
    # -- affect ----------------------------------------------------------------------
    StateDef(
        name="valence",
        group="affect",
        label="Expressed valence",
        definition="Pleasant versus unpleasant expression (face, and the tone of voice).",
        unit="score",
        low=-1.0,
        high=1.0,
        inputs=("face_fer", "face_aus", "voice_ser"),
        support="some",
        formula="weighted mean: face 0.4 x (p_happy - p_negative), AUs 0.4 x ((b6 + b12) - "
        "(b4 + b15)) / 2, voice 0.2 x (p_happy - p_negative)",
        compute=f.valence,
    ),
    StateDef(
        name="arousal",
        group="affect",
        label="Arousal",
        definition="Activation: how energised the voice sounds against the person's usual voice.",
        unit="score",
        low=-1.0,
        high=1.0,
        inputs=("voice_prosody", "face_fer"),
        support="strong",
        formula="weighted mean: voice prosody arousal 0.8 (fades over fusion.voice_fresh_secs "
        "after speech), face 0.2 x (p_angry + p_fear + p_surprise - p_sad)",
        compute=f.arousal,
    ),
    # -- basic expressions ------------------------------------------------------------
    *(_basic(e) for e in EMOTIONS),
    # -- the 11 "vocal" states --------------------------------------------------------
    StateDef(
        name="calm",
        group="vocal",
        label="Calmer than usual",
        definition="Lower activation than the person's usual voice, without a negative display.",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("voice_prosody", "face_fer", "voice_ser"),
        support="weak",
        formula="max(0, -voice arousal) x (1 - negative display); needs recent speech",
        compute=f.calm,
    ),
    StateDef(
        name="excited",
        group="vocal",
        label="Excited",
        definition="Higher activation than usual with a positive display.",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("voice_prosody", "face_fer", "voice_ser"),
        support="some",
        formula="max(0, voice arousal) x positive display (face or voice p_happy)",
        compute=f.excited,
    ),
    StateDef(
        name="frustrated",
        group="vocal",
        label="Frustrated-like",
        definition="Brow lowering, an angry-like face and a raised angry-sounding voice.",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("face_aus", "face_fer", "voice_prosody", "voice_ser"),
        support="weak",
        formula="weighted mean: 0.4 b4 + 0.3 p_angry(face) + 0.3 max(0, arousal) x "
        "p_angry(voice); needs a face",
        compute=f.frustrated,
    ),
    _alias(
        "engaged",
        "vocal",
        "Engaged",
        "engagement",
        "the engagement score, not a second value",
        "some",
    ),
    StateDef(
        name="confused",
        group="vocal",
        label="Confused-like",
        definition="Brow lowering with inner-brow raise, and looking away (also means "
        "concentration).",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("face_aus", "gaze"),
        support="some",
        formula="weighted mean: 0.6 b4 + 0.2 b1 + 0.2 (1 - attention)",
        compute=f.confused,
    ),
    StateDef(
        name="anxious",
        group="vocal",
        label="Anxious-like",
        definition="Fear-like brows, smiles without cheek raise, head movement and raised arousal; "
        "never a clinical claim.",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("face_aus", "head_motion", "voice_prosody"),
        support="some",
        formula="weighted mean: 0.35 (b1 + b2 + b4) / 3 + 0.15 b12 (1 - b6) + 0.2 (1 - "
        "stillness) + 0.3 max(0, arousal)",
        compute=f.anxious,
    ),
    StateDef(
        name="confident",
        group="vocal",
        label="Sounds confident",
        definition="The person's own speech is louder, faster, wider in pitch range and lower in "
        "pitch than their usual (no words, so no hedges).",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("voice_prosody",),
        support="some",
        formula="logistic(mean(z_loudness, z_rate, z_range, -z_pitch)); 0.5 = as usual",
        compute=f.confident,
    ),
    StateDef(
        name="interested",
        group="vocal",
        label="Interested-like",
        definition="Attention with inner-brow raise and a still head (overlaps attention).",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("attention", "face_aus", "head_motion"),
        support="weak",
        formula="weighted mean: 0.6 attention + 0.2 b1 + 0.2 stillness",
        compute=f.interested,
    ),
    _null_state(
        "bored",
        "vocal",
        "Bored",
        "Low arousal, unpleasant disengagement.",
        "not estimable: a still, neutral listener is the norm in meetings and faces "
        "cannot tell boredom from neutral; posture, yawns and eye closure are not measured",
        ("posture", "eye_closure"),
    ),
    _null_state(
        "curious",
        "vocal",
        "Curious",
        "Wanting to know more.",
        "not separable from 'interested' with what is observed",
    ),
    StateDef(
        name="stressed",
        group="vocal",
        label="Elevated arousal, negative cues",
        definition="Higher activation than usual with a negative display; never a health claim.",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("voice_prosody", "face_fer", "voice_ser"),
        support="weak",
        formula="max(0, voice arousal) x negative display (p_angry + p_disgust + p_fear + p_sad)",
        compute=f.stressed,
    ),
    # -- the 10 "composite" states ----------------------------------------------------
    _null_state(
        "receptiveness",
        "composite",
        "Receptiveness",
        "Openness to others' views.",
        "not estimable: receptiveness shows in wording, and no words are kept",
        ("words",),
    ),
    _null_state(
        "awareness",
        "composite",
        "Awareness",
        "(No agreed construct.)",
        "no construct with observable correlates; see attention",
    ),
    _null_state(
        "trust",
        "composite",
        "Trust",
        "Willingness to rely on another.",
        "no validated facial or vocal display; the cues studied need a body view",
        ("posture", "hands"),
    ),
    _null_state(
        "anticipation",
        "composite",
        "Anticipation",
        "Expecting something to come.",
        "no validated facial or vocal display",
    ),
    _alias("relaxed", "composite", "Relaxed", "calm", "the same low, pleasant activation", "weak"),
    _null_state(
        "skeptical",
        "composite",
        "Skeptical",
        "Doubt about what is said.",
        "no action-unit signature within what is measured (AU14 is not); asymmetric "
        "expressions are mostly read as confusion",
    ),
    StateDef(
        name="distracted",
        group="composite",
        label="Looking away / off-screen",
        definition="Looking away from the screen while silent, more so with a moving head.",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("attention", "head_motion", "speaking"),
        support="some",
        formula="(1 - attention) x (0.5 + 0.5 (1 - stillness)); 0 while speaking",
        compute=f.distracted,
        smoothing="none",
    ),
    _alias(
        "enthusiastic", "composite", "Enthusiastic", "excited", "not separable from excited", "some"
    ),
    StateDef(
        name="contemplative",
        group="composite",
        label="Still, looking away",
        definition="Looking away with a still head while silent (thinking looks like this; so does "
        "a second screen).",
        unit="score",
        low=0.0,
        high=1.0,
        inputs=("attention", "head_motion", "speaking"),
        support="weak",
        formula="(1 - attention) x stillness; 0 while speaking",
        compute=f.contemplative,
        smoothing="none",
    ),
    _null_state(
        "alert",
        "composite",
        "Alert",
        "Wakeful rather than drowsy.",
        "not estimable: alertness is read from slow eyelid closure (PERCLOS), which is "
        "not measured, and blink rate moves both ways with fatigue",
        ("eye_closure",),
    ),
)

#: Registry entries by name.
BY_NAME: dict[str, StateDef] = {d.name: d for d in REGISTRY}
#: The groups in display order.
GROUPS: tuple[Group, ...] = ("engagement", "affect", "basic", "vocal", "composite")


def definitions() -> list[StateDefinition]:
    """Every entry as clients see it, in registry order."""
    return [d.describe() for d in REGISTRY]


def band(value: float | None, params: FusionParams) -> Literal["low", "medium", "high"] | None:
    """The engagement band of a value (``fusion.bands``)."""
    if value is None:
        return None
    low, high = params.bands
    return "low" if value < low else "medium" if value < high else "high"
