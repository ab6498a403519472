"""Fusion: observations become participant states, participant states become the room.

- :mod:`bot.fusion.participant` — ``fuse(prev, observations, now)`` per participant.
- :mod:`bot.fusion.registry` — every derived quantity as one entry (the seam that the
  store, the API, the sidebar, summaries and reports read).
- :mod:`bot.fusion.states` — the formulas; :mod:`bot.fusion.inputs` — what they read.
- :mod:`bot.fusion.room` — room engagement and mood, trends and notable moments.

Everything here is pure and synchronous, with ``now`` passed in.
"""

from bot.fusion.params import FusionParams
from bot.fusion.participant import Fused, fuse

__all__ = ["FusionParams", "Fused", "fuse"]
