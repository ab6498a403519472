"""Mapping speech-emotion model labels onto our seven :class:`~analyzers.types.Emotion` classes.

Speech-emotion models name their classes differently: IEMOCAP models say
``neu/hap/ang/sad``, RAVDESS models ``neutral/calm/happy/sad/angry/fearful/disgust/
surprised``, others ``anger/happiness/sadness``. :func:`map_label` reads the model's
own ``config.id2label`` through :data:`LABEL_TABLE` (case-insensitive, surrounding
whitespace ignored).

Choices made here, on purpose:

- ``calm`` (RAVDESS) maps to ``neutral``: it is a low-arousal, non-emotional
  delivery, and our vocabulary has no calm class. When a model has both ``neutral``
  and ``calm`` their probabilities add up.
- ``exc``/``excited`` maps to ``happy``, the common IEMOCAP practice of merging
  excitement into happiness.
- ``fru``/``frustrated``, ``oth``/``other``, ``xxx`` and anything else not listed are
  *unmapped*: kept in the raw output, left out of the seven-class distribution
  (which is renormalised over mapped classes).

Classes a model cannot express are absent from its distribution, never zero-filled:
an IEMOCAP model that says nothing about fear has not measured "no fear".
"""

from __future__ import annotations

from collections.abc import Mapping

from analyzers.types import Emotion

#: Every known spelling (lower case) of every class we map.
LABEL_TABLE: dict[str, Emotion] = {
    # neutral
    "neu": Emotion.NEUTRAL,
    "neutral": Emotion.NEUTRAL,
    "calm": Emotion.NEUTRAL,
    # happy
    "hap": Emotion.HAPPY,
    "happy": Emotion.HAPPY,
    "happiness": Emotion.HAPPY,
    "joy": Emotion.HAPPY,
    "exc": Emotion.HAPPY,
    "excited": Emotion.HAPPY,
    # angry
    "ang": Emotion.ANGRY,
    "angry": Emotion.ANGRY,
    "anger": Emotion.ANGRY,
    # sad
    "sad": Emotion.SAD,
    "sadness": Emotion.SAD,
    # fear
    "fea": Emotion.FEAR,
    "fear": Emotion.FEAR,
    "fearful": Emotion.FEAR,
    # disgust
    "dis": Emotion.DISGUST,
    "disgust": Emotion.DISGUST,
    "disgusted": Emotion.DISGUST,
    # surprise
    "sur": Emotion.SURPRISE,
    "surprise": Emotion.SURPRISE,
    "surprised": Emotion.SURPRISE,
}


def map_label(label: str) -> Emotion | None:
    """Our class for a model label, or None when the label is unmapped."""
    return LABEL_TABLE.get(label.strip().lower())


def map_probs(raw: Mapping[str, float]) -> dict[Emotion, float]:
    """Fold raw per-label probabilities into our classes.

    Mapped labels that land on the same class add up; unmapped labels are dropped
    and the rest renormalised to sum to 1. Classes no label maps to are absent.

    Returns:
        The distribution over the classes the model can express; empty if no label
        maps or all mapped mass is zero.
    """
    folded: dict[Emotion, float] = {}
    for label, p in raw.items():
        emotion = map_label(label)
        if emotion is not None:
            folded[emotion] = folded.get(emotion, 0.0) + float(p)
    total = sum(folded.values())
    if total <= 0.0:
        return {}
    return {e: p / total for e, p in folded.items()}


def expressible(id2label: Mapping[int, str]) -> frozenset[Emotion]:
    """The classes a model with this ``id2label`` can express."""
    return frozenset(e for e in (map_label(v) for v in id2label.values()) if e is not None)
