"""Taking withdrawn participants out of written summaries.

A summary mixes everyone in its window: one sentence per participant, and free text (the
room's mood, what changed, the suggestion, the others' sentences) that may name anyone.
When a participant withdraws, :func:`without` drops their sentences and replaces each of
their names elsewhere by :data:`WITHDRAWN`, as a whole word. The others' names that
contain a withdrawn name are protected first, so withdrawing "Ada" leaves "Ada Lovelace"
alone; two people with the very same name are both replaced (too much is hidden rather
than too little). The plain ``text`` is then rebuilt as :func:`summary_text` builds it.
Pure functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from bot.types import SummaryEvent

#: What a withdrawn participant's name becomes in the text that stays.
WITHDRAWN = "a participant"


def summary_text(
    label: str,
    note: str | None,
    participant_lines: Iterable[str],
    room_mood: str,
    changes: Iterable[str],
    suggestion: str,
) -> str:
    """A summary as plain text: label, note, a line per participant, mood, changes, suggestion."""
    lines = [
        f"{label[:1].upper()}{label[1:]}",
        *participant_lines,
        room_mood,
        *(f"- {c}" for c in changes),
        f"Suggestion: {suggestion}",
    ]
    if note:
        lines.insert(1, f"({note})")
    return "\n".join(lines)


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(name)}(?!\w)")


def redact_names(text: str, names: Collection[str], keep: Iterable[str] = ()) -> str:
    """``text`` with every whole-word occurrence of ``names`` replaced by :data:`WITHDRAWN`.

    Names in ``keep`` that contain one of ``names`` (and are not one of them) stay as they are.
    """
    names = [n for n in names if n.strip()]
    if not names or not text:
        return text
    protected = sorted(
        {k for k in keep if k not in names and any(n in k for n in names)}, key=len, reverse=True
    )
    slots: list[str] = []
    for k in protected:
        # Private-use characters mark the slot: ordinary text does not contain them.
        slot = f"\ue000{len(slots)}\ue001"
        text = _word(k).sub(slot, text)
        slots.append(k)
    for n in sorted(names, key=len, reverse=True):
        text = _word(n).sub(WITHDRAWN, text)
    for i, k in enumerate(slots):
        text = text.replace(f"\ue000{i}\ue001", k)
    return text


def without(summary: SummaryEvent, ids: Collection[str], names: Collection[str]) -> SummaryEvent:
    """``summary`` without the participants ``ids`` (whose display names are ``names``)."""
    if summary.error is not None:
        return summary  # an error summary carries no participant and no text about anyone
    kept = [p for p in summary.participants if p.participant_id not in ids]
    others = [p.display_name for p in kept]

    def clean(text: str) -> str:
        return redact_names(text, names, others)

    participants = [p.model_copy(update={"text": clean(p.text)}) for p in kept]
    room_mood = clean(summary.room_mood)
    changes = [clean(c) for c in summary.changes]
    suggestion = clean(summary.suggestion)
    return summary.model_copy(
        update={
            "participants": participants,
            "room_mood": room_mood,
            "changes": changes,
            "suggestion": suggestion,
            "text": summary_text(
                summary.label,
                summary.note,
                (p.text for p in participants),
                room_mood,
                changes,
                suggestion,
            ),
        }
    )
