"""A small client for the Janus Gateway API, over HTTP (long poll) or WebSocket.

Janus answers a request in one of two ways: at once (``success``, with the result), or
with an ``ack`` followed later by an ``event`` carrying the same ``transaction``. Events
can arrive *before* the ``ack`` (on the long poll, or on the socket), so every event is
matched by transaction when it has one and otherwise queued on its handle (``sender``):
a VideoRoom handle receives unsolicited events (publishers joining and leaving,
``webrtcup``, ``hangup``...).

The session is kept alive by the long poll (HTTP) or by a ``keepalive`` every
:data:`KEEPALIVE_SECS` (WebSocket). When the transport fails or Janus forgets the
session, :attr:`JanusSession.lost` is set and every pending request fails with
:class:`JanusGone`; reconnecting is the caller's business (:mod:`bot.sources.janus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)

#: Janus drops a session after ``session_timeout`` (60 s by default) without traffic.
KEEPALIVE_SECS = 25.0
#: How long a request may wait for Janus's answer.
REQUEST_TIMEOUT_SECS = 15.0
#: Janus error codes that mean the session (not the request) is gone.
SESSION_GONE_CODES = frozenset({458})  # JANUS_ERROR_SESSION_NOT_FOUND

JsonDict = dict[str, Any]


class JanusError(Exception):
    """Janus refused a request; ``code`` is Janus's (or the plugin's) error code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} (Janus error {code})")
        self.code = code
        self.reason = reason


class JanusGone(ConnectionError):
    """The Janus server cannot be reached or no longer knows our session."""


def check_url(url: str) -> str:
    """The URL of a Janus server's API, checked: only http(s) and ws(s).

    Raises:
        ValueError: another scheme, or no host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss"):
        raise ValueError("must be an http(s):// or ws(s):// URL of the Janus API")
    if not parts.hostname:
        raise ValueError("has no host")
    return url.strip().rstrip("/")


@dataclass(slots=True)
class _Handle:
    events: asyncio.Queue[JsonDict] = field(default_factory=asyncio.Queue)


class JanusSession:
    """One Janus session: attach handles, send messages, receive their events.

    Create it with :meth:`connect`; use on the event loop thread only.
    """

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self._http = http
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.session_id: int | None = None
        self._pending: dict[str, asyncio.Queue[JsonDict]] = {}
        self._handles: dict[int, _Handle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.lost = asyncio.Event()
        self.lost_reason = ""

    # -- connecting ------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, http: aiohttp.ClientSession) -> JanusSession:
        """Create a Janus session on the server at ``url``.

        Raises:
            JanusGone: the server cannot be reached or does not speak the Janus API.
        """
        session = cls(check_url(url), http)
        try:
            await session._open()
        except BaseException:
            await session.close()
            raise
        return session

    @property
    def _websocket(self) -> bool:
        return self.url.startswith(("ws://", "wss://"))

    async def _open(self) -> None:
        if self._websocket:
            try:
                self._ws = await self._http.ws_connect(
                    self.url, protocols=("janus-protocol",), heartbeat=None
                )
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                raise JanusGone(f"cannot reach the Janus server: {_why(e)}") from e
            self._tasks.append(asyncio.create_task(self._read_socket(), name="janus.ws.read"))
            created = await self._request({"janus": "create"})
            self.session_id = int(created["data"]["id"])
            self._tasks.append(asyncio.create_task(self._keepalive(), name="janus.keepalive"))
        else:
            created = await self._request({"janus": "create"})
            self.session_id = int(created["data"]["id"])
            self._tasks.append(asyncio.create_task(self._long_poll(), name="janus.poll"))

    async def close(self) -> None:
        """Destroy the session (best effort) and stop listening. Idempotent."""
        if self.session_id is not None and not self.lost.is_set():
            with contextlib.suppress(JanusError, JanusGone, TimeoutError):
                await asyncio.wait_for(self._request({"janus": "destroy"}, session=True), 2.0)
        self._set_lost("closed")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._ws is not None:
            await self._ws.close()

    # -- handles -----------------------------------------------------------------------

    async def attach(self, plugin: str) -> int:
        """Attach a handle to ``plugin``; returns its id."""
        reply = await self._request({"janus": "attach", "plugin": plugin}, session=True)
        handle_id = int(reply["data"]["id"])
        self._handles[handle_id] = _Handle()
        return handle_id

    async def detach(self, handle_id: int) -> None:
        """Detach a handle (best effort: the session may already be gone)."""
        self._handles.pop(handle_id, None)
        if not self.lost.is_set():
            with contextlib.suppress(JanusError, JanusGone):
                await self._request({"janus": "detach"}, session=True, handle=handle_id)

    async def message(
        self, handle_id: int, body: Mapping[str, Any], jsep: Mapping[str, Any] | None = None
    ) -> JsonDict:
        """Send a plugin request and return the plugin's answer with its ``jsep``, if any.

        Synchronous requests are answered at once; asynchronous ones when their event
        arrives. A plugin error becomes :class:`JanusError`.
        """
        msg: JsonDict = {"janus": "message", "body": dict(body)}
        if jsep is not None:
            msg["jsep"] = dict(jsep)
        reply = await self._request(msg, session=True, handle=handle_id, wait_event=True)
        data: JsonDict = dict(reply.get("plugindata", {}).get("data", {}))
        if "error_code" in data or "error" in data:
            raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "error")))
        if "jsep" in reply:
            data["jsep"] = reply["jsep"]
        return data

    async def next_event(self, handle_id: int) -> JsonDict:
        """The next unsolicited event of a handle (raises :class:`JanusGone` when lost)."""
        handle = self._handles.get(handle_id)
        if handle is None:
            raise JanusGone("the handle was detached")
        return await self._get(handle.events, within=None)

    # -- requests ----------------------------------------------------------------------

    def _path(self, session: bool, handle: int | None) -> str:
        path = self.url
        if session:
            path += f"/{self.session_id}"
        if handle is not None:
            path += f"/{handle}"
        return path

    async def _request(
        self,
        msg: JsonDict,
        session: bool = False,
        handle: int | None = None,
        wait_event: bool = False,
    ) -> JsonDict:
        if self.lost.is_set():
            raise JanusGone(self.lost_reason or "the Janus session ended")
        transaction = secrets.token_hex(8)
        msg = {**msg, "transaction": transaction}
        # Everything Janus sends under this transaction (ack, answer, event) lands here,
        # whether it comes before or after the POST returns.
        replies: asyncio.Queue[JsonDict] = asyncio.Queue()
        self._pending[transaction] = replies
        try:
            if self._ws is not None:
                if session:
                    msg["session_id"] = self.session_id
                if handle is not None:
                    msg["handle_id"] = handle
                try:
                    await self._ws.send_str(json.dumps(msg))
                except (aiohttp.ClientError, OSError) as e:
                    self._set_lost(f"the Janus connection broke: {_why(e)}")
                    raise JanusGone(self.lost_reason) from e
                reply = await self._next_reply(replies)
            else:
                reply = await self._post(self._path(session, handle), msg)
            while reply.get("janus") == "ack" and wait_event:
                reply = await self._next_reply(replies)
            return _checked(reply)
        finally:
            self._pending.pop(transaction, None)

    async def _next_reply(self, replies: asyncio.Queue[JsonDict]) -> JsonDict:
        return await self._get(replies, within=REQUEST_TIMEOUT_SECS)

    async def _get(self, queue: asyncio.Queue[JsonDict], within: float | None) -> JsonDict:
        """The next item of ``queue``; :class:`JanusGone` if the session is lost first."""
        get = asyncio.ensure_future(queue.get())
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({get, lost}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        if self.lost.is_set():
            raise JanusGone(self.lost_reason or "the Janus session ended")
        raise TimeoutError("Janus did not answer in time")

    async def _post(self, url: str, msg: JsonDict) -> JsonDict:
        try:
            async with self._http.post(
                url, json=msg, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECS)
            ) as resp:
                if resp.status != 200:
                    raise JanusGone(f"the Janus API answered HTTP {resp.status}")
                reply: JsonDict = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, json.JSONDecodeError) as e:
            raise JanusGone(f"cannot reach the Janus server: {_why(e)}") from e
        if not isinstance(reply, dict):
            raise JanusGone("the server does not speak the Janus API")
        if reply.get("janus") == "error" and _error_code(reply) in SESSION_GONE_CODES:
            self._set_lost("Janus no longer knows this session")
            raise JanusGone(self.lost_reason)
        return reply

    # -- incoming ----------------------------------------------------------------------

    def _receive(self, event: object) -> bool:
        """Take one message from Janus; False once it says the session is gone."""
        if not isinstance(event, dict):
            return True
        if event.get("janus") == "error" and _error_code(event) in SESSION_GONE_CODES:
            self._set_lost("Janus no longer knows this session")
            return False
        self._dispatch(event)
        return True

    def _dispatch(self, event: JsonDict) -> None:
        kind = event.get("janus")
        if kind == "keepalive" and "transaction" not in event:
            return
        transaction = event.get("transaction")
        replies = self._pending.get(transaction) if isinstance(transaction, str) else None
        if replies is not None:
            replies.put_nowait(event)
            return
        if isinstance(transaction, str):
            return  # the answer to a request that gave up waiting
        sender = event.get("sender")
        if kind in ("ack", "success") or sender is None:
            return
        handle = self._handles.get(int(sender))
        if handle is not None:
            handle.events.put_nowait(event)

    async def _long_poll(self) -> None:
        url = f"{self.url}/{self.session_id}"
        while True:
            try:
                async with self._http.get(
                    url,
                    params={"maxev": "10", "rid": secrets.token_hex(4)},
                    timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECS + 40),
                ) as resp:
                    if resp.status != 200:
                        raise JanusGone(f"HTTP {resp.status}")
                    events = await resp.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, JanusGone, ValueError) as e:
                self._set_lost(f"the Janus server stopped answering: {_why(e)}")
                return
            for event in events if isinstance(events, list) else [events]:
                if not self._receive(event):
                    return

    async def _read_socket(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                try:
                    event = json.loads(msg.data)
                except json.JSONDecodeError:
                    continue
                if not self._receive(event):
                    return
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, OSError) as e:
            self._set_lost(f"the Janus connection broke: {_why(e)}")
            return
        self._set_lost("the Janus server closed the connection")

    async def _keepalive(self) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(KEEPALIVE_SECS)
            with contextlib.suppress(JanusError, JanusGone, TimeoutError):
                await self._request({"janus": "keepalive"}, session=True)

    def _set_lost(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()  # pending requests and next_event() wake up and raise


def _error_code(reply: Mapping[str, Any]) -> int:
    error = reply.get("error")
    return int(error.get("code", 0)) if isinstance(error, dict) else 0


def _checked(reply: JsonDict) -> JsonDict:
    if reply.get("janus") == "error":
        error = reply.get("error") or {}
        raise JanusError(int(error.get("code", 0)), str(error.get("reason", "error")))
    return reply


def _why(e: BaseException) -> str:
    return str(e) or type(e).__name__
