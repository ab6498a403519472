"""Gemini on Vertex AI as the summarizer (``summaries.summarizer = "vertex"``).

:class:`GeminiClient` is the part shared with the answerer of the host's questions
(:mod:`bot.summaries.vertex_answers`): google-genai's client, the retries, the time
limits and the token log below. :class:`VertexSummarizer` adds the summary's payload,
schema, checks and per-meeting rate limit.

**What is sent** (and nothing else leaves the machine): one ``generateContent`` request
per summary, through ``google-genai``'s async client, to
``{endpoint}/v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``
with

- ``systemInstruction``: :data:`SYSTEM_INSTRUCTION`, fixed text;
- ``contents``: one user message whose text is :func:`payload_json`: the window's
  :class:`~bot.summaries.models.SummaryInput` as compact JSON. It holds aggregated
  figures only (means, shares, counts, bands, moods, trends, moments, caveats), with
  participants as pseudonyms ``P1``, ``P2``...; display names are added (a ``names``
  object) only when the host opts in with ``summaries.vertex.share_names``. No image,
  audio or word said in the meeting is in it: none is ever kept or transcribed;
- ``generationConfig``: ``temperature``, ``responseMimeType: application/json`` and
  ``responseSchema`` (:meth:`~bot.summaries.models.SummaryOutput.response_schema`).

The answer is parsed as a :class:`~bot.summaries.models.SummaryOutput` and checked
against the input (:func:`~bot.summaries.models.validate_output`); the pseudonyms in it
are replaced by names on this machine (:func:`bot.summaries.to_event`).

**Failure never stops the meeting.** Anything that goes wrong raises (an
:class:`~bot.summaries.models.InvalidSummary`, a
:class:`~bot.summaries.models.SummarizerUnavailable` saying why, or ``TimeoutError``);
the scheduler then shows the local summary with a note. Nothing is sticky: the next
summary asks Gemini again.

- Requests that fail with 408, 429 or 5xx, time out (``request_timeout_secs``) or lose
  their connection are retried up to ``max_attempts`` requests in all, after a backoff
  with full jitter: uniform in ``[0, min(backoff_max_secs, backoff_initial_secs *
  2 ** (n - 1)))`` before retry ``n``. All attempts together stay within
  ``summaries.timeout_secs``. google-genai's own retry is turned off (one attempt per
  call: it would otherwise sleep 1-10 s on a dropped connection, and its jitter is
  additive, not full); this loop's sleep and randomness can be injected.
- At most ``max_calls_per_hour`` summaries per meeting go to Gemini in any hour of
  meeting time (the input's own clock, so a virtual clock drives it in tests).
- Token usage is logged as counts only; logs carry no names, figures or text.

``google-genai`` is imported on the first summary (in a worker thread: the import
takes a second or so), never when the summarizer is local. Credentials are Application
Default Credentials unless ``credentials`` is passed; missing credentials surface on the
first request as a note ("could not start: no Google Cloud credentials").
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

import aiohttp
from pydantic import BaseModel, ValidationError

from bot.backoff import backoff_secs
from bot.settings import VertexSettings, validation_lines
from bot.summaries.models import (
    InvalidOutput,
    InvalidSummary,
    Pseudonyms,
    SummarizerUnavailable,
    SummaryInput,
    SummaryOutput,
    validate_output,
)

if TYPE_CHECKING:
    from google import genai
    from google.auth.credentials import Credentials
    from google.genai import types as genai_types

log = logging.getLogger(__name__)

LABEL = "Gemini summary"
#: HTTP statuses worth another attempt (google-genai's own retry list).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The rate limit's window, seconds of meeting time.
HOUR_SECS = 3600.0

SYSTEM_INSTRUCTION = """\
You write a short mood summary of one window of a video meeting for its host.

The user message is a JSON object of aggregated figures that software measured from the \
participants' faces and voices during the window. It holds no images, audio or words \
said. Participants appear as pseudonyms P1, P2, ... in joining order; refer to them only \
by these pseudonyms, which are replaced by names on the host's machine. A "names" object, \
when present, maps pseudonyms to display names for context; still write the pseudonyms.

Fields. start_secs, end_secs: the window, in seconds since the meeting started. reason: \
why this summary was made. participants[]: alias; observed_secs; joined and left (during \
the window); engagement, attention, expressiveness, participation (0 to 1; attention, \
expressiveness and participation are the parts of engagement) and valence, arousal (-1 \
to 1), each with mean, start, end, secs (seconds it had a value) and reason (why it had \
none); band: the engagement band of the mean; mood_start, mood_end: the valence-arousal \
quadrant; trend: engagement trend at the end; changed_states: states that moved by 0.2 \
or more; face: face_visible_pct, blink_freq (per second), smile_freq (share of face \
time), avg_head_tilt (degrees, + = looking down), percent_away (looking away from their \
usual gaze, % of face time), emotion_counts (face frames on which each facial-action \
label fired, out of face_frames), nulls (why a figure is null); talk: talk_secs, share \
of the window's talk, turns, meeting_share; voice_emotion: status of the voice model; \
stale_pct: % of time the analysis failed. room: present, engagement, valence, arousal, \
band, mood_start, mood_end, trend, trend_change, speech_secs, silence_secs, \
longest_silence_secs and moments (at_secs, kind, participants, who was speaking, value; \
kind media_gap: the participant's media paused for value seconds while the bot reconnected, \
a gap in the data, never a sign of engagement or mood). data_quality: caveats about what \
could not be observed.

Readings are expressions, not feelings: write what faces and voices showed ("looked \
engaged", "expressed little", "sounded energetic"); never claim what someone feels, \
thinks or intends. null means unknown: say so instead of guessing. Quote figures where \
they help. Plain sentences, no markdown, each under 300 characters.

Answer with JSON that follows the response schema:
- participants: one entry per input participant, in input order, with their pseudonym, \
engagement_band equal to the input's band ("unknown" when it is null), and one sentence \
on their engagement and expressed mood;
- room_mood: the room's mood in one sentence;
- changes: up to 6 statements of what changed in the window (who was most and least \
engaged and why, rises and falls, moments, silences, important caveats);
- suggestion: one concrete, kind suggestion the host can act on now.
"""


def payload(inp: SummaryInput, names: Pseudonyms, *, share_names: bool = False) -> dict[str, Any]:
    """The JSON object sent to Gemini for ``inp`` (see the module docstring).

    ``names`` is read only when ``share_names`` is on: then ``names`` maps each
    pseudonym of the input to its display name.
    """
    data = inp.model_dump(mode="json")
    if share_names:
        data["names"] = {p.alias: names.name(p.alias) for p in inp.participants}
    return data


def payload_json(inp: SummaryInput, names: Pseudonyms, *, share_names: bool = False) -> str:
    """The exact text of the user message sent to Gemini: :func:`payload` as compact JSON."""
    return json.dumps(
        payload(inp, names, share_names=share_names), ensure_ascii=False, separators=(",", ":")
    )


M = TypeVar("M", bound=BaseModel)


def parse_json(text: str | None, schema: type[M], invalid: type[InvalidOutput]) -> M:
    """Gemini's text as an instance of ``schema``.

    Raises:
        InvalidOutput: (of type ``invalid``) no text, not JSON, or not the schema.
    """
    if not text or not text.strip():
        raise invalid("no text")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise invalid(f"not JSON (line {e.lineno}, column {e.colno})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        # The pydantic message names the field and the rule, never the value.
        raise invalid(f"not the response schema: {validation_lines(e)[0]}") from None


def parse_output(text: str | None, inp: SummaryInput) -> SummaryOutput:
    """Gemini's answer as a summary of ``inp``.

    Raises:
        InvalidSummary: no text, not JSON, not the schema, or not a summary of ``inp``.
    """
    return validate_output(parse_json(text, SummaryOutput, InvalidSummary), inp)


@dataclass(slots=True)
class CallLimit:
    """At most ``max_calls`` calls in any ``per_secs`` (a sliding window). Event loop only.

    Times are the caller's clock (a summary input's meeting time), so a virtual clock
    drives it.
    """

    max_calls: int
    per_secs: float = HOUR_SECS
    _calls: deque[float] = field(default_factory=deque)

    def take(self, ts: float) -> bool:
        """Count a call at ``ts`` and return True, or return False when none is left."""
        while self._calls and self._calls[0] <= ts - self.per_secs:
            self._calls.popleft()
        if len(self._calls) >= self.max_calls:
            return False
        self._calls.append(ts)
        return True

    def check(self, ts: float, per: str) -> None:
        """:meth:`take`, or raise saying the limit is reached ("... 90 ``per`` ...").

        Raises:
            SummarizerUnavailable: no call is left.
        """
        if not self.take(ts):
            log.info("gemini rate limit reached", extra={"max_calls": self.max_calls})
            raise SummarizerUnavailable(
                f"was not asked: the limit of {self.max_calls} {per} is reached"
            )


def _describe(e: Exception) -> tuple[bool, str]:
    """(worth another attempt, what went wrong in a few words: no names, no text)."""
    from google.auth import exceptions as auth_exceptions
    from google.genai import errors

    if isinstance(e, errors.APIError):
        status = f"HTTP {e.code}" + (f" {e.status}" if e.status else "")
        return e.code in RETRY_STATUSES, status
    if isinstance(e, auth_exceptions.DefaultCredentialsError):
        return False, (
            "no Google Cloud credentials (Application Default Credentials: "
            "run `gcloud auth application-default login`)"
        )
    if isinstance(e, auth_exceptions.RefreshError):
        return False, "the Google Cloud credentials were refused"
    if isinstance(e, auth_exceptions.TransportError):
        return True, "no connection to Google's sign-in service"
    if isinstance(e, TimeoutError):  # before aiohttp.ClientError: ServerTimeoutError is both
        return True, "no answer in time"
    if isinstance(e, aiohttp.ClientError | OSError):
        return True, "connection failed"
    return False, type(e).__name__


class GeminiClient:
    """google-genai's async client with this module's retries, time limits and usage log.

    Event loop. Shared by :class:`VertexSummarizer` and
    :class:`~bot.summaries.vertex_answers.VertexAnswerer`: each owns one, and its own
    rate limit. Never blocks the loop: the client is built in a worker thread, requests
    are awaited on google-genai's aiohttp client.

    Args:
        settings: ``[summaries.vertex]``.
        timeout_secs: All attempts of one call together (``summaries.timeout_secs``).
        credentials: Google credentials (default: Application Default Credentials).
        sleep: Awaited between attempts (tests pass a recorder).
        uniform: Random numbers in [0, 1) for the jitter (tests pass fixed ones).
    """

    def __init__(
        self,
        settings: VertexSettings,
        timeout_secs: float,
        *,
        credentials: Credentials | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.timeout_secs = timeout_secs
        self._credentials = credentials
        self._sleep = sleep
        self._uniform = uniform
        self._client: genai.Client | None = None
        self._client_lock = asyncio.Lock()

    async def generate(
        self, text: str, *, system_instruction: str, response_schema: dict[str, Any], purpose: str
    ) -> str | None:
        """The model's text for one user message ``text``, asked for JSON in ``response_schema``.

        ``purpose`` (``summary``, ``answer``) goes to the log only.

        Raises:
            SummarizerUnavailable: no client, or the requests failed.
            TimeoutError: no answer within ``timeout_secs``.
        """
        client = await self._get_client()
        config = self._config(system_instruction, response_schema)
        response = await self._generate(client, text, config, purpose)
        return response.text

    async def aclose(self) -> None:
        """Close the client's connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aio.aclose()

    async def _get_client(self) -> genai.Client:
        async with self._client_lock:
            if self._client is None:
                try:
                    self._client = await asyncio.to_thread(self._make_client)
                except Exception as e:
                    log.warning("gemini client could not start", extra={"error": type(e).__name__})
                    raise SummarizerUnavailable(f"could not start ({type(e).__name__})") from e
            return self._client

    def _make_client(self) -> genai.Client:
        """Import google-genai and build the client. Worker thread (the import is slow)."""
        from google import genai
        from google.genai import types

        s = self.settings
        return genai.Client(
            vertexai=True,
            project=s.project,
            location=s.location,
            credentials=self._credentials,
            http_options=types.HttpOptions(
                base_url=s.base_url or None,
                timeout=int(s.request_timeout_secs * 1000),
                # One request per call: this module retries (see the module docstring).
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def _config(
        self, system_instruction: str, response_schema: dict[str, Any]
    ) -> genai_types.GenerateContentConfig:
        from google.genai import types

        return types.GenerateContentConfig(
            system_instruction=system_instruction,
            temperature=self.settings.temperature,
            response_mime_type="application/json",
            response_schema=response_schema,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

    async def _generate(
        self,
        client: genai.Client,
        text: str,
        config: genai_types.GenerateContentConfig,
        purpose: str,
    ) -> genai_types.GenerateContentResponse:
        """One answer, retrying transient failures within ``timeout_secs``."""
        s = self.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_secs
        for attempt in range(1, s.max_attempts + 1):
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            started = time.perf_counter()
            try:
                async with asyncio.timeout(min(s.request_timeout_secs, left)):
                    response = await client.aio.models.generate_content(
                        model=s.model, contents=text, config=config
                    )
            except Exception as e:
                retry, why = _describe(e)
                last = attempt == s.max_attempts
                log.warning(
                    "gemini request failed",
                    extra={
                        "purpose": purpose,
                        "attempt": attempt,
                        "reason": why,
                        "retry": retry and not last,
                    },
                )
                if not retry:
                    raise SummarizerUnavailable(f"failed: {why}") from e
                if last:
                    raise SummarizerUnavailable(f"failed: {why} after {attempt} attempts") from e
                delay = backoff_secs(
                    attempt, s.backoff_initial_secs, s.backoff_max_secs, self._uniform()
                )
                if loop.time() + delay >= deadline:
                    if isinstance(e, TimeoutError):
                        raise TimeoutError from e
                    raise SummarizerUnavailable(
                        f"failed: {why}; no time was left to try again"
                    ) from e
                await self._sleep(delay)
                continue
            self._log_usage(response, purpose, attempt, started)
            return response
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _log_usage(
        self,
        response: genai_types.GenerateContentResponse,
        purpose: str,
        attempts: int,
        started: float,
    ) -> None:
        """Token counts and timing only: never names, figures or text."""
        usage = response.usage_metadata
        log.info(
            "gemini answered",
            extra={
                "purpose": purpose,
                "model": self.settings.model,
                "model_version": response.model_version,
                "attempts": attempts,
                "latency_ms": round((time.perf_counter() - started) * 1000),
                "prompt_tokens": usage.prompt_token_count if usage else None,
                "output_tokens": usage.candidates_token_count if usage else None,
                "thoughts_tokens": usage.thoughts_token_count if usage else None,
                "total_tokens": usage.total_token_count if usage else None,
            },
        )


class ClientOptions(TypedDict, total=False):
    """:class:`GeminiClient`'s keyword arguments."""

    credentials: Credentials | None
    sleep: Callable[[float], Awaitable[None]]
    uniform: Callable[[], float]


class VertexSummarizer:
    """The :class:`~bot.summaries.Summarizer` that asks Gemini on Vertex AI. Event loop.

    One per meeting (the rate limit is the meeting's). Requests go through a
    :class:`GeminiClient` built from the arguments.

    Args:
        settings: ``[summaries.vertex]``.
        timeout_secs: All attempts of one summary together (``summaries.timeout_secs``).
        options: The client's (credentials, sleep, uniform).
    """

    name = "vertex"

    def __init__(
        self, settings: VertexSettings, timeout_secs: float, **options: Unpack[ClientOptions]
    ) -> None:
        self.settings = settings
        self.model: str | None = settings.model
        self.label = f"{LABEL} ({settings.model})"
        self.limit = CallLimit(settings.max_calls_per_hour)
        self.client = GeminiClient(settings, timeout_secs, **options)

    @property
    def where(self) -> str:
        """Where it runs and what is sent, for the sidebar."""
        s = self.settings
        via = f" via {s.base_url}" if s.base_url else ""
        sent = (
            "aggregated figures and display names are sent"
            if s.share_names
            else "aggregated, pseudonymised figures are sent"
        )
        return (
            f"Gemini ({s.model}) on Vertex AI, project {s.project} ({s.location}){via}: "
            f"{sent}, never images, audio or words"
        )

    async def summarize(self, inp: SummaryInput, names: Pseudonyms) -> SummaryOutput:
        """Gemini's summary of ``inp``, validated against it.

        Raises:
            SummarizerUnavailable: rate limit reached, no client, or the requests failed.
            InvalidSummary: the answer is not a valid summary of ``inp``.
            TimeoutError: no answer within ``timeout_secs``.
        """
        self.limit.check(inp.end_secs, "per hour of meeting")
        text = await self.client.generate(
            payload_json(inp, names, share_names=self.settings.share_names),
            system_instruction=SYSTEM_INSTRUCTION,
            response_schema=SummaryOutput.response_schema(),
            purpose="summary",
        )
        return parse_output(text, inp)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
