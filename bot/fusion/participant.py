"""``fuse(prev, observations, now)``: one participant's observations become their state.

Pure: no I/O, no clock, no randomness; the same inputs give the same state. The
meeting keeps one :class:`Fused` per participant (and per extra face of a room
camera) and calls :func:`fuse` with every batch of observations.

Rules, so that readings stay honest:

- No face in the frame -> ``face_visible=False`` and ``emotion=None``: no neutral
  default and no carry-over of the previous expression. Face *behaviour* inputs
  (action units, head movement) hold for ``absent_null_secs`` with falling
  confidence, then read ``None`` (see :mod:`bot.fusion.inputs`).
- A failed or timed-out analysis keeps the previous readings and sets
  ``stale=True`` until the next successful one; readings made while the face
  analysis was still starting are not kept (they describe no analysis).
- Face and voice arrive on separate clocks, a few hundred ms apart at most. A state
  never goes back in time: its ``ts`` is the later of ``now`` and the previous one.
- Every registry reading is smoothed by an exponential average whose weight
  depends on the elapsed time, ``s <- s + (1 - exp(-dt / tau)) (x - s)``, so the
  result does not depend on the frame rate. A reading that becomes ``None`` drops
  its history: a value is never carried across a gap in the input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from bot.fusion.inputs import FusionInputs, FusionMemory, ema_alpha, inputs_at, remember
from bot.fusion.params import FusionParams
from bot.fusion.registry import REGISTRY, StateDef
from bot.types import Observation, ParticipantState, Reading


@dataclass(frozen=True, slots=True)
class Fused:
    """A participant's state and what fusion remembers to make the next one."""

    state: ParticipantState
    memory: FusionMemory


def _tau(definition: StateDef, params: FusionParams) -> float:
    if definition.smoothing == "window":
        return params.window_secs
    if definition.smoothing == "state":
        return params.smoothing_secs
    return 0.0


def _clip(value: float, definition: StateDef) -> float:
    return min(definition.high, max(definition.low, value))


def _in_input_order(sources: tuple[str, ...], inputs: tuple[str, ...]) -> tuple[str, ...]:
    """Sources in the order the definition lists its inputs (any others last)."""
    known = [s for s in inputs if s in sources]
    return (*known, *(s for s in sources if s not in inputs))


def evaluate(
    inputs: FusionInputs, memory: FusionMemory, params: FusionParams
) -> tuple[dict[str, Reading], dict[str, tuple[float, float]]]:
    """Every registry reading at ``inputs.now``, smoothed; and the new smoothing memory."""
    now = inputs.now
    readings: dict[str, Reading] = {}
    smoothed: dict[str, tuple[float, float]] = {}
    for d in REGISTRY:
        raw = d.compute(inputs, params, readings)
        if raw.value is None:
            readings[d.name] = raw if raw.confidence == 0.0 else Reading(None, 0.0, raw.reason)
            continue
        value = _clip(raw.value, d)
        prev = memory.smoothed.get(d.name)
        tau = _tau(d, params)
        if prev is not None and tau > 0:
            value = prev[0] + ema_alpha(now - prev[1], tau) * (value - prev[0])
        smoothed[d.name] = (value, now)
        confidence = min(1.0, max(0.0, raw.confidence))
        sources = raw.sources
        if d.alias_of is None:
            sources = _in_input_order(raw.sources, d.inputs)
        readings[d.name] = Reading(value, confidence, raw.reason, sources)
    return readings, smoothed


def fuse(
    prev: Fused | None,
    participant_id: str,
    observations: Iterable[Observation],
    now: float,
    params: FusionParams,
    *,
    voice_attributable: bool = True,
) -> Fused:
    """The participant's state at ``now`` after ``observations``.

    Args:
        prev: The previous result for this participant, or ``None`` at the start.
        participant_id: The participant (or the room-camera face) being fused.
        observations: What was observed since ``prev``, oldest first.
        now: Meeting-clock seconds.
        params: Fusion settings.
        voice_attributable: False for a further face of a shared camera, whose
            voice cannot be told from the room's.
    """
    observations = list(observations)
    memory = prev.memory if prev is not None else FusionMemory()
    now = now if prev is None else max(now, prev.state.ts)
    memory = remember(memory, observations, params)
    if prev is not None and memory.stale and not prev.memory.face_starting:
        # The last analysis failed: repeat the last readings, flagged stale.
        return Fused(dataclasses.replace(prev.state, ts=now, stale=True), memory)
    inputs = inputs_at(memory, now, params, voice_attributable=voice_attributable)
    readings, smoothed = evaluate(inputs, memory, params)
    memory = dataclasses.replace(memory, smoothed=smoothed)
    face = memory.face
    face_visible = inputs.face_now
    voice = inputs.voice
    state = ParticipantState(
        participant_id=participant_id,
        ts=now,
        face_visible=face_visible,
        emotion=face.emotion if face_visible and face is not None else None,
        is_speaking=None if voice is None else voice.is_speaking,
        stale=memory.stale,
        face=face.metrics if face_visible and face is not None else None,
        voice=voice,
        talk=inputs.talk,
        readings=readings,
    )
    return Fused(state, memory)
