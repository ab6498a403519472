"""Join admission: who may start joining now, under the ``[limits]`` settings.

Three limits bound what joining can take of the server before anyone is connected:
join requests per client address per minute (a sliding window), unconnected peers per
client address, and unconnected peers on the whole server. A meeting's own size limit
is checked here too, with the count the meeting gives. A refusal is a
:class:`JoinRefused` that says which limit, in words for the join page, and when to try
again.

A client address is the request's peer address, or, from a trusted reverse proxy, the
client that ``X-Forwarded-For`` names (:func:`client_address`). IPv6 clients are
counted per /64, the block one subscriber normally gets, so that an address per request
does not escape the limits. Event loop only; the clock is injected for tests.

The sliding window is a few lines over a deque per address, so no rate-limit library is
needed; the addresses it remembers are dropped a minute after their last request.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.settings import LimitsSettings

#: The join-rate window.
WINDOW_SECS = 60.0

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class JoinRefused(Exception):
    """A join is refused by a limit.

    Attributes:
        status: HTTP status (403: waiting will not help soon; 429: try again later).
        code: Machine-readable reason (``meeting_full``, ``too_many_joins``,
            ``too_many_unconnected``).
        message: What the join page shows.
        retry_after_secs: When trying again may succeed (whole seconds), if it may.
    """

    def __init__(
        self, status: int, code: str, message: str, retry_after_secs: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_secs = retry_after_secs


def address_key(address: str | None) -> str:
    """What the per-address limits count: an IPv4 address, an IPv6 /64, or the text as is."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def trusted_networks(items: Iterable[str]) -> list[IPNetwork]:
    """The ``limits.trusted_proxies`` setting as networks."""
    return [ipaddress.ip_network(item, strict=False) for item in items]


def _in(address: str, networks: list[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, proxies: list[IPNetwork]) -> str:
    """The client a request comes from.

    ``peer`` is the connection's address. Only when it is a trusted proxy is
    ``X-Forwarded-For`` believed, read from the right (each proxy appends the address it
    was reached from), and the first hop that is not itself a trusted proxy is the client.
    """
    if not peer or not proxies or not _in(peer, proxies) or not forwarded_for:
        return peer or ""
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, proxies):
            return hop
    return hops[0] if hops else peer


@dataclass(eq=False)
class PendingSlot:
    """One unconnected peer's place under the limits; released once, when it connects or ends."""

    admission: JoinAdmission
    key: str
    released: bool = False

    def release(self) -> None:
        """Give the place back (idempotent)."""
        if not self.released:
            self.released = True
            self.admission._release(self.key)


@dataclass(eq=False)
class JoinAdmission:
    """Counts join attempts and unconnected peers; refuses what goes over the limits.

    Args:
        limits: The ``[limits]`` settings.
        clock: Monotonic seconds.
    """

    limits: LimitsSettings
    clock: Callable[[], float] = time.monotonic
    _attempts: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)
    _pending: dict[str, int] = field(default_factory=dict)
    _pending_total: int = 0

    @property
    def unconnected(self) -> int:
        """Unconnected peers on the server now."""
        return self._pending_total

    @property
    def tracked_addresses(self) -> list[str]:
        """The addresses whose join requests are remembered (those of the last minute)."""
        return list(self._attempts)

    def attempt(self, address: str | None) -> None:
        """Count one join request from ``address``.

        Raises:
            JoinRefused: ``too_many_joins`` (429) when the address made
                ``join_attempts_per_minute`` requests in the last minute. A refused
                request is not counted, so trying again after ``retry_after_secs`` works.
        """
        now = self.clock()
        self._forget_before(now - WINDOW_SECS)
        key = address_key(address)
        times = self._attempts.get(key)
        if times is None:
            times = self._attempts[key] = deque()
        self._attempts.move_to_end(key)
        while times and times[0] <= now - WINDOW_SECS:
            times.popleft()
        if len(times) >= self.limits.join_attempts_per_minute:
            wait = times[0] + WINDOW_SECS - now
            raise JoinRefused(
                429,
                "too_many_joins",
                "too many join attempts from your network; try again in a minute",
                max(1, math.ceil(wait)),
            )
        times.append(now)

    def _forget_before(self, cutoff: float) -> None:
        # Addresses are kept in order of their last request: the stale ones are in front.
        while self._attempts:
            key, times = next(iter(self._attempts.items()))
            if times and times[-1] > cutoff:
                break
            del self._attempts[key]

    def reserve(self, address: str | None, meeting_peers: int) -> PendingSlot:
        """A place for one more unconnected peer of a meeting that has ``meeting_peers``.

        ``meeting_peers`` counts the meeting's connected and unconnected peers.

        Raises:
            JoinRefused: ``meeting_full`` (403), or ``too_many_unconnected`` (429) for the
                address or the server.
        """
        limits = self.limits
        if meeting_peers >= limits.max_participants_per_meeting:
            raise JoinRefused(
                403,
                "meeting_full",
                f"this meeting is full ({limits.max_participants_per_meeting} participants)",
            )
        key = address_key(address)
        retry = max(1, math.ceil(limits.connect_timeout_secs))
        if self._pending.get(key, 0) >= limits.max_unconnected_peers_per_address:
            raise JoinRefused(
                429,
                "too_many_unconnected",
                "too many connections from your network are still being set up; try again shortly",
                retry,
            )
        if self._pending_total >= limits.max_unconnected_peers:
            raise JoinRefused(
                429,
                "too_many_unconnected",
                "the server is setting up too many connections; try again shortly",
                retry,
            )
        self._pending[key] = self._pending.get(key, 0) + 1
        self._pending_total += 1
        return PendingSlot(self, key)

    def _release(self, key: str) -> None:
        left = self._pending.get(key, 0) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)
        self._pending_total -= 1
