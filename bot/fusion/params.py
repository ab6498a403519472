"""Fusion settings: time constants, weights and thresholds, each with its meaning.

The defaults and their reasons are documented in ``config/default.toml`` ``[fusion]``
and in the README's fusion section; :mod:`bot.fusion.registry` holds the formulas.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Time constant of the exponential smoothing of derived states, seconds.
SMOOTHING_SECS = 3.0
#: Time constant of the attention and expressiveness shares, seconds.
WINDOW_SECS = 8.0
#: Face readings older than this count as "no video" (camera off or stalled), seconds.
FACE_TIMEOUT_SECS = 3.0
#: No face in view for this long: face-based states read null instead of decaying.
ABSENT_NULL_SECS = 10.0
#: Voice readings describe the last stretch of speech for this long, seconds.
VOICE_FRESH_SECS = 15.0
#: Time constant of "recently spoke" in participation, seconds.
RECENCY_SECS = 120.0
#: Meeting speech needed before talk shares carry full confidence, seconds.
PARTICIPATION_FULL_SECS = 60.0


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngagementWeights(_Params):
    """Weights of the three engagement components (any scale; normalised over those present)."""

    attention: float = Field(0.6, ge=0)
    expressiveness: float = Field(0.2, ge=0)
    participation: float = Field(0.2, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> EngagementWeights:
        if self.attention + self.expressiveness + self.participation <= 0:
            raise ValueError("at least one engagement weight must be positive")
        return self


class ModalityWeights(_Params):
    """Base weights of the face and voice emotion models when their scores are fused."""

    face: float = Field(0.6, ge=0)
    voice: float = Field(0.4, ge=0)


class MomentParams(_Params):
    """When the room fusion calls something a notable moment."""

    engagement_delta: float = Field(
        0.2, gt=0, le=1, description="Room engagement change that counts as a drop or rise."
    )
    engagement_window_secs: float = Field(60.0, gt=0, description="...within this many seconds.")
    silence_secs: float = Field(
        300.0, gt=0, description="A participant who spoke, then was silent this long."
    )
    joint_smile_min: int = Field(2, ge=2, description="Faces smiling at once for 'joint smiles'.")
    joint_smile_secs: float = Field(
        2.0, gt=0, description="Smiles within this many seconds count as at once."
    )
    cooldown_secs: float = Field(
        30.0, ge=0, description="The same kind of moment is not repeated sooner than this."
    )


class FusionParams(_Params):
    """Everything fusion needs to know; see ``[fusion]`` in ``config/default.toml``."""

    smoothing_secs: float = Field(SMOOTHING_SECS, ge=0, le=600)
    window_secs: float = Field(WINDOW_SECS, gt=0, le=600)
    face_timeout_secs: float = Field(FACE_TIMEOUT_SECS, gt=0, le=60)
    absent_null_secs: float = Field(ABSENT_NULL_SECS, gt=0, le=3600)
    voice_fresh_secs: float = Field(VOICE_FRESH_SECS, gt=0, le=3600)
    recency_secs: float = Field(RECENCY_SECS, gt=0, le=3600)
    participation_full_secs: float = Field(PARTICIPATION_FULL_SECS, gt=0, le=3600)
    head_motion_ref_dps: float = Field(
        10.0, gt=0, description="Head speed (deg/s) at which stillness is 1/e."
    )
    bands: tuple[float, float] = Field(
        (0.35, 0.6), description="Engagement band edges: low < first <= medium < second <= high."
    )
    engagement: EngagementWeights = EngagementWeights()
    modalities: ModalityWeights = ModalityWeights()
    room_interval_secs: float = Field(1.0, gt=0, le=60)
    trend_secs: float = Field(180.0, gt=0, le=3600)
    trend_threshold: float = Field(0.1, gt=0, le=1)
    moments: MomentParams = MomentParams()

    @model_validator(mode="after")
    def _bands_ordered(self) -> FusionParams:
        low, high = self.bands
        if not 0 < low < high < 1:
            raise ValueError("bands must satisfy 0 < low < high < 1")
        return self
