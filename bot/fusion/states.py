"""The formulas of every derived state: pure functions of :class:`FusionInputs`.

Each function returns a :class:`~bot.types.Reading`. Most are a **weighted mean of
terms**, each term a value in the state's range with a weight ``w`` and a quality
``q`` (0-1, see :mod:`bot.fusion.inputs`):

    value      = sum(w * q * v) / sum(w * q)      over the terms available now
    confidence = sum(w * q)     / sum(w)          over all the state's terms

so a missing modality drops out of the value and visibly lowers the confidence.
A state whose *required* terms are missing is ``None`` with the reason. Action
units enter as ``b_k = min(I_k, 3) / 3`` (intensity 3 is FACS "marked"), so one
marked movement saturates its term. Nothing here adds jitter, boosts or caps, and
no state is derived from a neutral face alone. The registry
(:mod:`bot.fusion.registry`) names the inputs, ranges and evidence of each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bot.fusion.inputs import FusionInputs
from bot.fusion.params import FusionParams
from bot.types import Emotion, Reading

#: Face expressions whose prototypes are negative displays (FACS); happy is the positive one.
NEGATIVE = (Emotion.ANGRY, Emotion.DISGUST, Emotion.FEAR, Emotion.SAD)
#: Intensity at which an action unit's term saturates (FACS "C", marked).
AU_FULL = 3.0

#: The readings computed so far in this call, by name (later entries may use earlier ones).
Done = Mapping[str, Reading]


@dataclass(frozen=True, slots=True)
class Term:
    """One input of a weighted mean: its value (``None``: unavailable), weight and quality."""

    source: str
    weight: float
    value: float | None
    quality: float = 1.0
    required: bool = False
    missing: str | None = None  # why it is unavailable


def weighted(terms: list[Term], caveat: str | None = None) -> Reading:
    """Combine terms as the module docstring says."""
    total = sum(t.weight for t in terms)
    for t in terms:
        if t.required and (t.value is None or t.quality <= 0):
            return Reading(None, reason=t.missing or f"{t.source} unavailable")
    present = [t for t in terms if t.value is not None and t.quality > 0]
    mass = sum(t.weight * t.quality for t in present)
    if not present or mass <= 0:
        reasons = [t.missing for t in terms if t.missing]
        return Reading(None, reason=reasons[0] if reasons else "no input available")
    value = sum(t.weight * t.quality * t.value for t in present if t.value is not None) / mass
    # What was left out, and why: the caveat of a partial reading.
    missing = [t.missing for t in terms if t not in present and t.missing]
    reason = caveat or ("; ".join(dict.fromkeys(missing)) if missing else None)
    return Reading(
        value=value,
        confidence=mass / total if total > 0 else 0.0,
        reason=reason,
        sources=tuple(dict.fromkeys(t.source for t in present)),
    )


def null(reason: str) -> Reading:
    """A state that cannot be estimated from what is observed."""
    return Reading(None, reason=reason)


def _b(aus: Mapping[str, float] | None, au: str) -> float | None:
    if aus is None or au not in aus:
        return None
    return min(aus[au], AU_FULL) / AU_FULL


def _aus_missing(i: FusionInputs) -> str:
    if i.face_reason is not None:
        return i.face_reason
    if not i.has_landmarks:
        return "needs face landmarks (detector 'mediapipe')"
    return "calibrating the person's neutral face"


def _expression_missing(i: FusionInputs) -> str:
    if i.face_reason is not None:
        return i.face_reason
    if not i.face_now:
        return "no face in view"
    return i.expression_reason or "no expression scores"


def _voice_missing(i: FusionInputs) -> str:
    if i.voice_reason is not None:
        return i.voice_reason
    if i.voice is not None and i.voice.segment_end_ts is not None and i.prosody_quality > 0:
        return "learning the person's usual voice (first stretches of speech)"
    return "no recent speech"


def _voice_emotion_missing(i: FusionInputs) -> str:
    if i.voice_reason is not None:
        return i.voice_reason
    if i.voice is not None and i.voice.emotion_status in ("unavailable", "disabled"):
        return f"voice emotion model {i.voice.emotion_status}"
    if i.voice is not None and i.voice.emotion_status == "starting":
        return "voice emotion model loading"
    return "no recent speech"


def _face_p(i: FusionInputs, e: Emotion) -> float | None:
    return None if i.expression is None else i.expression.probs.get(e, 0.0)


def _voice_p(i: FusionInputs, e: Emotion) -> float | None:
    if i.voice_emotion is None:
        return None
    return i.voice_emotion.probs.get(e, 0.0)


def _positive_display(i: FusionInputs, p: FusionParams) -> list[Term]:
    return [
        Term("face_fer", p.modalities.face, _face_p(i, Emotion.HAPPY), i.presence),
        Term(
            "voice_ser",
            p.modalities.voice,
            _voice_p(i, Emotion.HAPPY),
            i.voice_emotion_quality,
            missing=_voice_emotion_missing(i),
        ),
    ]


def _negative_display(i: FusionInputs, p: FusionParams) -> list[Term]:
    face = None if i.expression is None else sum(i.expression.probs.get(e, 0.0) for e in NEGATIVE)
    voice = None
    if i.voice_emotion is not None:
        voice = sum(i.voice_emotion.probs.get(e, 0.0) for e in NEGATIVE)
    return [
        Term("face_fer", p.modalities.face, face, i.presence),
        Term(
            "voice_ser",
            p.modalities.voice,
            voice,
            i.voice_emotion_quality,
            missing=_voice_emotion_missing(i),
        ),
    ]


# -- engagement and its components ---------------------------------------------------


def attention(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """1 for a frame with the face in view and looking at the screen, 0 otherwise (smoothed)."""
    if i.face_reason is not None:
        return null(i.face_reason)
    if not i.face_now:
        return Reading(0.0, i.presence, "face out of view", ("face_presence",))
    if not i.has_landmarks:
        # The Haar cascade finds frontal faces only: presence is all it can say.
        return Reading(1.0, 0.5 * i.presence, "face presence only (no gaze)", ("face_presence",))
    if i.looking_away is None:
        return null("calibrating the person's usual gaze")
    value = 0.0 if i.looking_away else 1.0
    return Reading(value, i.presence, None, ("face_presence", "gaze"))


def expressiveness(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Facial movement away from the person's neutral face: AU activity and expression change."""
    if i.aus is None:
        return null(_aus_missing(i))
    # The mouth opens with speech: AU25/AU26 count only while the person is silent.
    used = [au for au in i.aus if not (i.is_speaking and au in ("AU25", "AU26"))]
    activity = min(1.0, sum(i.aus[au] for au in used) / 5.0)
    change = None
    if i.metrics is not None and i.metrics.emotion_relative is not None:
        change = min(1.0, 0.5 * sum(abs(v) for v in i.metrics.emotion_relative.values()))
    return weighted(
        [
            Term("face_aus", 0.5, activity, i.presence),
            Term("face_fer_relative", 0.5, change, i.presence, missing="expression baseline"),
        ]
    )


def participation(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Talk share against the fair share, turns against the average, and recency of speaking."""
    if i.voice is None or i.talk is None:
        return null(i.voice_reason or "no talk figures yet")
    talk = i.talk
    if not talk.meeting_speech_secs or talk.talk_share is None or not talk.present:
        return null("no one has spoken yet")
    n = talk.present
    share = min(1.0, talk.talk_share * n)
    turns = 0.0
    if talk.meeting_turns:
        turns = min(1.0, talk.turns * n / talk.meeting_turns)
    recency = 0.0
    if i.since_spoke_secs is not None:
        recency = math.exp(-i.since_spoke_secs / p.recency_secs)
    value = (share + turns + recency) / 3.0
    confidence = min(1.0, talk.meeting_speech_secs / p.participation_full_secs)
    return Reading(value, confidence, None, ("talk_share", "turns", "recency"))


def engagement(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Weighted mean of the components present; needs attention or participation."""
    w = p.engagement
    parts = [
        ("attention", w.attention, done["attention"]),
        ("expressiveness", w.expressiveness, done["expressiveness"]),
        ("participation", w.participation, done["participation"]),
    ]
    if done["attention"].value is None and done["participation"].value is None:
        return null(
            "needs attention or participation: "
            f"{done['attention'].reason}; {done['participation'].reason}"
        )
    present = [(n, wt, r) for n, wt, r in parts if r.value is not None and wt > 0]
    mass = sum(wt for _, wt, _ in present)
    if mass <= 0:
        return null("every available component has weight 0")
    value = sum(wt * (r.value or 0.0) for _, wt, r in present) / mass
    total = sum(wt for _, wt, _ in parts)
    confidence = sum(wt * r.confidence for _, wt, r in present) / total
    missing = [n for n, wt, r in parts if r.value is None and wt > 0]
    return Reading(
        value,
        confidence,
        f"without {', '.join(missing)}" if missing else None,
        tuple(n for n, _, _ in present),
    )


# -- valence and arousal -------------------------------------------------------------


def valence(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Expressed valence, -1..1, from face expressions, face AUs and voice tone."""
    fer = None
    if i.expression is not None:
        probs = i.expression.probs
        fer = probs.get(Emotion.HAPPY, 0.0) - sum(probs.get(e, 0.0) for e in NEGATIVE)
    au = None
    if i.aus is not None:
        b6, b12 = _b(i.aus, "AU06") or 0.0, _b(i.aus, "AU12") or 0.0
        b4, b15 = _b(i.aus, "AU04") or 0.0, _b(i.aus, "AU15") or 0.0
        au = (b6 + b12) / 2 - (b4 + b15) / 2
    ser = None
    if i.voice_emotion is not None:
        probs = i.voice_emotion.probs
        ser = probs.get(Emotion.HAPPY, 0.0) - sum(probs.get(e, 0.0) for e in NEGATIVE)
    return weighted(
        [
            Term("face_fer", 0.4, fer, i.presence, missing=_expression_missing(i)),
            Term("face_aus", 0.4, au, i.presence, missing=_aus_missing(i)),
            Term("voice_ser", 0.2, ser, i.voice_emotion_quality, missing=_voice_emotion_missing(i)),
        ]
    )


def arousal(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Activation, -1..1: voice prosody against the speaker's usual, and face expressions."""
    fer = None
    if i.expression is not None:
        probs = i.expression.probs
        high = sum(probs.get(e, 0.0) for e in (Emotion.ANGRY, Emotion.FEAR, Emotion.SURPRISE))
        fer = high - probs.get(Emotion.SAD, 0.0)
    return weighted(
        [
            Term("voice_prosody", 0.8, i.arousal, i.prosody_quality, missing=_voice_missing(i)),
            Term("face_fer", 0.2, fer, i.presence, missing=_expression_missing(i)),
        ]
    )


# -- basic emotions ------------------------------------------------------------------


def basic(emotion: Emotion) -> BasicEmotion:
    """The formula of one fused basic emotion."""
    return BasicEmotion(emotion)


@dataclass(frozen=True, slots=True)
class BasicEmotion:
    """Face and voice probabilities of one class, fused by weight x confidence x quality.

    ``W_face = w_face * c_face * P`` and ``W_voice = w_voice * c_voice * q_voice``
    (``c`` the model's top-class probability). The voice model knows only some
    classes ``V``; it re-divides the face's mass on ``V`` and leaves the others:
    ``q_e = m_V * p_voice(e)`` for ``e`` in ``V`` (``m_V`` the face's total on ``V``),
    ``q_e = p_face(e)`` otherwise; ``value = (W_face p_face(e) + W_voice q_e) /
    (W_face + W_voice)``, so the seven still sum to 1. Without a face, classes in ``V``
    read the voice's probabilities and the others are ``None``. Surprise is ``None``
    while the person speaks (speech opens the mouth as surprise does).

    ``confidence = (w_face P [face seen] + w_voice q_voice [voice scored e]) /
    (w_face + w_voice)``: a class only one modality can speak to never reaches 1.
    """

    emotion: Emotion

    def __call__(self, i: FusionInputs, p: FusionParams, done: Done) -> Reading:
        """The fused probability of the class (see the class docstring)."""
        e = self.emotion
        if e is Emotion.SURPRISE and i.is_speaking:
            return null("not read while speaking: speech opens the mouth as surprise does")
        face = i.expression
        voice = (
            i.voice_emotion if i.voice_emotion is not None and e in i.voice_emotion.probs else None
        )
        w_total = p.modalities.face + p.modalities.voice
        face_mass = 0.0 if face is None else p.modalities.face * i.presence
        voice_mass = 0.0 if voice is None else p.modalities.voice * i.voice_emotion_quality
        confidence = (face_mass + voice_mass) / w_total if w_total > 0 else 0.0
        voice_note = (
            "the voice model cannot express it"
            if i.voice_classes and e not in i.voice_classes
            else _voice_emotion_missing(i)
        )
        if face is None:
            if voice is None:
                return null(f"{_expression_missing(i)}; {voice_note}")
            return Reading(
                voice.probs[e], confidence, "voice only: " + _expression_missing(i), ("voice_ser",)
            )
        p_face = face.probs.get(e, 0.0)
        if voice is None:
            return Reading(p_face, confidence, "face only: " + voice_note, ("face_fer",))
        w_face = p.modalities.face * face.confidence * i.presence
        w_voice = p.modalities.voice * voice.confidence * i.voice_emotion_quality
        m_v = sum(face.probs.get(k, 0.0) for k in voice.probs)
        q_e = m_v * voice.probs[e]
        total = w_face + w_voice
        value = p_face if total <= 0 else (w_face * p_face + w_voice * q_e) / total
        return Reading(value, confidence, None, ("face_fer", "voice_ser"))


# -- the "vocal" states --------------------------------------------------------------


def _arousal_term(i: FusionInputs, sign: float, weight: float) -> Term:
    value = None if i.arousal is None else max(0.0, sign * i.arousal)
    return Term(
        "voice_prosody", weight, value, i.prosody_quality, required=True, missing=_voice_missing(i)
    )


def _display(terms: list[Term]) -> tuple[float | None, float, tuple[str, ...]]:
    """Mean display value, its coverage (sum w q / sum w) and sources."""
    r = weighted(terms)
    return r.value, r.confidence, r.sources


def _activation_times(
    i: FusionInputs, sign: float, display: list[Term], display_name: str, optional: bool
) -> Reading:
    """``max(0, sign * arousal) * display``; confidence ``0.6 q_voice + 0.4 coverage``."""
    a = _arousal_term(i, sign, 1.0)
    if a.value is None or a.quality <= 0:
        return null(a.missing or "no recent speech")
    d, coverage, sources = _display(display)
    if d is None:
        if not optional:
            return null(f"needs a face or a voice tone to read {display_name}")
        return Reading(
            a.value, 0.6 * a.quality, f"from the voice only (no {display_name})", ("voice_prosody",)
        )
    return Reading(a.value * d, 0.6 * a.quality + 0.4 * coverage, None, ("voice_prosody", *sources))


def calm(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Calmer than usual: ``max(0, -arousal) * (1 - negative display)``."""
    neg = _negative_display(i, p)
    inverted = [
        Term(
            t.source,
            t.weight,
            None if t.value is None else 1 - t.value,
            t.quality,
            missing=t.missing,
        )
        for t in neg
    ]
    return _activation_times(i, -1.0, inverted, "negative display", optional=True)


def excited(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """More activated than usual with a positive display: ``max(0, arousal) * positive``."""
    return _activation_times(i, 1.0, _positive_display(i, p), "positive display", optional=False)


def stressed(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Elevated arousal with negative cues: ``max(0, arousal) * negative display``."""
    return _activation_times(i, 1.0, _negative_display(i, p), "negative display", optional=False)


def frustrated(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Brow lowering (AU04), an angry-like face, and an angry-sounding raised voice."""
    voice = None
    if i.arousal is not None and i.voice_emotion is not None:
        voice = max(0.0, i.arousal) * i.voice_emotion.probs.get(Emotion.ANGRY, 0.0)
    face_terms = [
        Term("face_aus", 0.4, _b(i.aus, "AU04"), i.presence, missing=_aus_missing(i)),
        Term(
            "face_fer", 0.3, _face_p(i, Emotion.ANGRY), i.presence, missing=_expression_missing(i)
        ),
    ]
    if all(t.value is None for t in face_terms):
        return null(f"needs a face: {face_terms[0].missing}")
    return weighted(
        [
            *face_terms,
            Term(
                "voice_ser",
                0.3,
                voice,
                min(i.prosody_quality, i.voice_emotion_quality),
                missing=_voice_emotion_missing(i) if i.voice_emotion is None else _voice_missing(i),
            ),
        ]
    )


def confused(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Brow lowering (AU04) with inner-brow raise (AU01), and looking away."""
    att = done["attention"]
    return weighted(
        [
            Term("face_aus", 0.6, _b(i.aus, "AU04"), i.presence, True, _aus_missing(i)),
            Term("face_aus", 0.2, _b(i.aus, "AU01"), i.presence, True, _aus_missing(i)),
            Term(
                "gaze",
                0.2,
                None if att.value is None else 1 - att.value,
                att.confidence,
                missing=att.reason,
            ),
        ]
    )


def anxious(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Fear-like brows, smiles without cheek raise, head movement and raised arousal."""
    b1, b2, b4 = _b(i.aus, "AU01"), _b(i.aus, "AU02"), _b(i.aus, "AU04")
    brows = None if b1 is None or b2 is None or b4 is None else (b1 + b2 + b4) / 3
    b6, b12 = _b(i.aus, "AU06"), _b(i.aus, "AU12")
    masked = None if b6 is None or b12 is None else b12 * (1 - b6)
    movement = None if i.stillness is None else 1 - i.stillness
    return weighted(
        [
            Term("face_aus", 0.35, brows, i.presence, True, _aus_missing(i)),
            Term("face_aus", 0.15, masked, i.presence, True, _aus_missing(i)),
            Term("head_motion", 0.2, movement, i.presence, missing="head angles"),
            Term(
                "voice_prosody",
                0.3,
                None if i.arousal is None else max(0.0, i.arousal),
                i.prosody_quality,
                missing=_voice_missing(i),
            ),
        ]
    )


#: Signs of the prosody z-scores in "sounds confident" [Scherer73; Jiang17].
CONFIDENT_Z = {"loudness": 1.0, "rate": 1.0, "range": 1.0, "pitch": -1.0}


def confident(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Sounds confident: louder, faster, wider range and lower pitch than usual (logistic)."""
    if i.arousal is None:
        return null(_voice_missing(i))
    zs = [sign * i.prosody_z[k] for k, sign in CONFIDENT_Z.items() if k in i.prosody_z]
    if not zs:
        return null("no prosody figures for the last stretch of speech")
    c = sum(zs) / len(zs)
    return Reading(
        1.0 / (1.0 + math.exp(-c)),
        i.prosody_quality * len(zs) / len(CONFIDENT_Z),
        None,
        ("voice_prosody",),
    )


def interested(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Attention, inner-brow raise (AU01) and a still head."""
    att = done["attention"]
    return weighted(
        [
            Term("attention", 0.6, att.value, att.confidence, True, att.reason),
            Term("face_aus", 0.2, _b(i.aus, "AU01"), i.presence, missing=_aus_missing(i)),
            Term("head_motion", 0.2, i.stillness, i.presence, missing="head angles"),
        ]
    )


def distracted(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Looking away while silent, more so with a moving head: ``(1 - attention) * m``."""
    att = done["attention"]
    if att.value is None:
        return null(att.reason or "attention unavailable")
    if i.is_speaking:
        return Reading(0.0, att.confidence, "speaking", ("attention", "speaking"))
    away = 1.0 - att.value
    if i.stillness is None:
        return Reading(away, 0.7 * att.confidence, "without head movement", ("attention",))
    m = 0.5 + 0.5 * (1.0 - i.stillness)
    return Reading(away * m, att.confidence, None, ("attention", "head_motion"))


def contemplative(i: FusionInputs, p: FusionParams, done: Done) -> Reading:
    """Looking away with a still head while silent: ``(1 - attention) * stillness``."""
    att = done["attention"]
    if att.value is None:
        return null(att.reason or "attention unavailable")
    if i.stillness is None:
        return null("needs head angles (face landmarks)")
    if i.is_speaking:
        return Reading(0.0, att.confidence, "speaking", ("attention", "speaking"))
    return Reading(
        (1.0 - att.value) * i.stillness, att.confidence, None, ("attention", "head_motion")
    )


def alias(target: str) -> Alias:
    """A state that is the same quantity as ``target`` (the literature cannot separate them)."""
    return Alias(target)


@dataclass(frozen=True, slots=True)
class Alias:
    """Reads the value of another registry entry."""

    target: str

    def __call__(self, i: FusionInputs, p: FusionParams, done: Done) -> Reading:
        """The target's reading, noted as the same quantity."""
        r = done[self.target]
        note = f"same as {self.target}"
        return Reading(r.value, r.confidence, note if r.value is not None else r.reason, r.sources)
