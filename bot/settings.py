"""Settings: config/default.toml, then a user file, the environment and CLI flags.

Each layer is a nested dict; later layers win key by key. The merged dict is
validated once by pydantic, and a validation error names the dotted key and the
reason (``server.port: Input should be less than or equal to 65535``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from analyzers import REGISTRY
from analyzers.face.emotion import FaceEmotionParams
from analyzers.voice.emotion import VoiceEmotionParams
from bot.fusion.params import FusionParams

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "default.toml"
ENV_PREFIX = "MEETMOOD_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = ""
    max_request_kb: int = Field(256, ge=16, le=65536)

    @field_validator("public_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @property
    def base_url(self) -> str:
        """The URL printed in links."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


class StorageSettings(_Section):
    """SQLite database."""

    database: str = ""
    flush_interval_secs: float = Field(0.5, gt=0, le=60)
    state_interval_secs: float = Field(0.5, ge=0, le=60)
    max_queued_writes: int = Field(20_000, ge=10, le=10_000_000)
    write_attempts: int = Field(3, ge=1, le=100)

    @property
    def database_path(self) -> Path:
        """The database file, defaulting to the user data directory."""
        if self.database:
            return Path(self.database).expanduser()
        return Path(platformdirs.user_data_dir("meetmood", appauthor=False)) / "meetmood.sqlite3"


class WebRTCSettings(_Section):
    """Peer connections."""

    ice_addresses: list[str] = []
    ice_servers: list[str] = []
    drop_mdns_candidates: bool = False
    #: Ask browsers for Opus DTX: no audio packets while a microphone is silent.
    opus_dtx: bool = True
    #: All participants' video together is asked to stay under this (kbit/s).
    video_budget_kbps: int = Field(8000, ge=100, le=10_000_000)
    #: Receive buffer of each ICE socket (capped by the kernel's net.core.rmem_max).
    udp_receive_buffer_kb: int = Field(2048, ge=64, le=1 << 20)


class PipelineSettings(_Section):
    """Per-participant media pipeline."""

    frame_timeout_secs: float = Field(2.0, gt=0, le=60)
    analysis_max_side: int = Field(1280, ge=64, le=4096)
    inference_timeout_secs: float = Field(10.0, gt=0, le=600)
    slow_inference_ms: float = Field(500, gt=0)
    #: Face readings later than this (p95, frame arrival -> reading) lower every feed's
    #: face rate evenly (see :mod:`bot.load`).
    latency_budget_ms: float = Field(400, gt=0, le=60_000)
    #: The face rate is never lowered below this (frames a second). Below about one a
    #: second the face tracker (2 s patience) cannot follow a face from frame to frame.
    min_face_fps: float = Field(1.0, gt=0, le=60)


class VoiceSettings(_Section):
    """Voice analysis that runs without a neural model: speaking activity and prosody."""

    enabled: bool = True
    state_interval_secs: float = Field(1.0, gt=0, le=60)
    long_silence_secs: float = Field(3.0, gt=0, le=600)
    max_segment_secs: float = Field(8.0, ge=4, le=25)
    ring_capacity_secs: float = Field(30.0, ge=14, le=600)
    max_queued_secs: float = Field(5.0, gt=0, le=60)


class InferenceSettings(_Section):
    """Where neural inference runs."""

    mode: Literal["process", "thread"] = "process"
    workers: int = Field(1, ge=1, le=64)
    restart_after_timeouts: int = Field(2, ge=1, le=1000)


class AnalyzersSettings(_Section):
    """Which analyzers run, and each one's parameters."""

    enabled: list[str] = ["face_emotion", "voice_emotion"]
    face_emotion: FaceEmotionParams = FaceEmotionParams()
    voice_emotion: VoiceEmotionParams = VoiceEmotionParams()

    @field_validator("enabled")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [n for n in v if n not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown analyzer {unknown[0]!r}; available: {sorted(REGISTRY)}")
        return v

    def params(self, name: str) -> BaseModel:
        """The parameters of one analyzer."""
        value = getattr(self, name)
        assert isinstance(value, BaseModel)
        return value


class SidebarSettings(_Section):
    """Host sidebar."""

    history_secs: int = Field(300, ge=10, le=24 * 3600)
    max_queued_events: int = Field(500, ge=10)
    state_interval_secs: float = Field(0.5, ge=0, le=60)


class VertexSettings(_Section):
    """Gemini on Vertex AI as the summarizer (see :mod:`bot.summaries.vertex`).

    Credentials are Application Default Credentials (``gcloud auth
    application-default login``, or a service account on Google Cloud); no key is
    kept in settings.
    """

    project: str = ""
    location: str = "global"
    model: str = "gemini-3.5-flash"
    base_url: str = ""
    request_timeout_secs: float = Field(20.0, gt=0, le=300)
    max_attempts: int = Field(3, ge=1, le=10)
    backoff_initial_secs: float = Field(1.0, ge=0, le=60)
    backoff_max_secs: float = Field(8.0, ge=0, le=300)
    max_calls_per_hour: int = Field(90, ge=1, le=3600)
    temperature: float = Field(0.2, ge=0, le=2)
    share_names: bool = False

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("location", "model")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()


class SummarySettings(_Section):
    """Periodic mood summaries (see :mod:`bot.summaries`)."""

    enabled: bool = True
    interval_secs: float = Field(60.0, ge=5, le=3600)
    summarizer: Literal["local", "vertex"] = "local"
    timeout_secs: float = Field(30.0, gt=0, le=300)
    sidebar_count: int = Field(20, ge=1, le=500)
    vertex: VertexSettings = Field(VertexSettings(), validate_default=True)

    @field_validator("vertex")
    @classmethod
    def _project_when_vertex(cls, v: VertexSettings, info: ValidationInfo) -> VertexSettings:
        if info.data.get("summarizer") == "vertex" and not v.project.strip():
            raise ValueError(
                'project is required when summaries.summarizer = "vertex" '
                "(set summaries.vertex.project to your Google Cloud project id)"
            )
        return v


class PrivacySettings(_Section):
    """What participants are told, and how long their meetings are kept."""

    viewers: str
    retention: str
    #: Days a meeting is kept after it ended (or after its last activity, if it was never
    #: ended) before it is deleted automatically; 0 keeps meetings until they are deleted.
    retention_days: float = Field(30.0, ge=0)
    #: How often the server looks for meetings past ``retention_days``, in seconds.
    purge_interval_secs: float = Field(3600.0, gt=0)


class RecordingSettings(_Section):
    """Recorded meetings uploaded on the home page."""

    max_upload_mb: float = Field(500.0, gt=0)
    upload_dir: str = ""

    @property
    def upload_path(self) -> Path | None:
        """Where uploads wait for their analysis (None: the system's temporary folder)."""
        return Path(self.upload_dir).expanduser() if self.upload_dir else None


class BotSettings(_Section):
    """The bot that joins other meetings (a Janus VideoRoom, a WHEP stream).

    ``media``, ``substream``, ``temporal`` and ``max_analysis_fps`` are the decode-cost
    controls: receive only what is analysed, ask Janus for a lower simulcast layer
    (substream 0 is the smallest resolution, temporal 0 the lowest frame rate; they
    apply only when a publisher simulcasts), and cap how often a face is analysed.
    """

    display_name: str = Field("meetmood — emotion analysis", min_length=1, max_length=64)
    media: Literal["both", "video", "audio"] = "both"
    substream: int | None = Field(None, ge=0, le=2)
    temporal: int | None = Field(None, ge=0, le=2)
    max_analysis_fps: float | None = Field(None, gt=0, le=30)
    reconnect_max_secs: float = Field(30.0, ge=1, le=600)
    resume_grace_secs: float = Field(60.0, ge=0, le=3600)
    room_notice: bool = True


class SecuritySettings(_Section):
    """Who may create meetings, and limits that keep one client from exhausting the server."""

    #: Anyone who reaches the server may create meetings, without the admin token. Only
    #: for trusted networks.
    open_creation: bool = False
    #: Sidebar WebSockets open at once for one meeting; more are closed with code 4429.
    max_sidebar_sockets_per_meeting: int = Field(8, ge=1, le=1000)


class LimitsSettings(_Section):
    """What one meeting, one client address and unconnected peers may take of the server.

    A peer is *unconnected* from its join answer until its connection is up (or it gives
    up after ``connect_timeout_secs``); until then it holds only its peer connection.
    """

    max_participants_per_meeting: int = Field(64, ge=1, le=10_000)
    max_unconnected_peers: int = Field(32, ge=1, le=10_000)
    max_unconnected_peers_per_address: int = Field(4, ge=1, le=10_000)
    join_attempts_per_minute: int = Field(20, ge=1, le=100_000)
    connect_timeout_secs: float = Field(30.0, gt=0, le=600)
    allow_private_candidates: bool = False
    max_candidates_per_offer: int = Field(20, ge=1, le=1000)
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as e:
                raise ValueError(f"{item!r} is not an IP address or network") from e
        return v


class LoggingSettings(_Section):
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    asyncio_debug: bool = False


class Settings(_Section):
    """All settings; built by :func:`load_settings`."""

    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    webrtc: WebRTCSettings = WebRTCSettings()
    pipeline: PipelineSettings = PipelineSettings()
    inference: InferenceSettings = InferenceSettings()
    voice: VoiceSettings = VoiceSettings()
    analyzers: AnalyzersSettings = AnalyzersSettings()
    fusion: FusionParams = FusionParams()
    sidebar: SidebarSettings = SidebarSettings()
    summaries: SummarySettings = SummarySettings()
    recordings: RecordingSettings = RecordingSettings()
    bots: BotSettings = BotSettings()
    privacy: PrivacySettings
    security: SecuritySettings = SecuritySettings()
    limits: LimitsSettings = LimitsSettings()
    logging: LoggingSettings = LoggingSettings()


class SettingsError(ValueError):
    """A setting is missing, unknown or invalid.

    The message is one ``key: reason`` (or ``file: reason``) line per problem.
    """


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as e:
        raise SettingsError(f"{path}: config file not found") from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: not valid TOML: {e}") from e


def _parse_value(raw: str) -> Any:
    """Environment and --set values: JSON where it parses (lists, numbers, booleans)."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _nest(dotted: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {dotted[-1]: value}
    for key in reversed(dotted[:-1]):
        out = {key: out}
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``MEETMOOD_SERVER__PORT=9000`` -> ``{"server": {"port": 9000}}``."""
    merged: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        merged = _merge(merged, _nest(path, _parse_value(raw)))
    return merged


def dotted_overrides(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"server.port": 9000}`` -> ``{"server": {"port": 9000}}`` (CLI flags, tests)."""
    merged: dict[str, Any] = {}
    for key, value in pairs.items():
        if isinstance(value, str):
            value = _parse_value(value)
        merged = _merge(merged, _nest(key.split("."), value))
    return merged


def validation_lines(e: ValidationError, prefix: str = "") -> list[str]:
    """One ``key: reason`` line per error of a pydantic validation, keys dotted from ``prefix``.

    pydantic's decorations (the ``Value error, `` prefix, the URL, the input echo) are
    dropped: the line names the key and says what is wrong with it.
    """
    lines = []
    for err in e.errors():
        key = ".".join([prefix, *(str(p) for p in err["loc"])] if prefix else map(str, err["loc"]))
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "unknown setting"
        lines.append(f"{key}: {reason}")
    return lines


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from the default file, a user file, the environment and flags.

    Raises:
        SettingsError: naming every bad key and the reason.
    """
    data = _read_toml(DEFAULT_CONFIG)
    if config_file is not None:
        data = _merge(data, _read_toml(config_file))
    data = _merge(data, env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, dotted_overrides(overrides))
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise SettingsError("\n".join(validation_lines(e))) from None
