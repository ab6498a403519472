"""A video jitter buffer that hands a frame on when its last packet is in, not one frame later.

aiortc's :class:`~aiortc.jitterbuffer.JitterBuffer` knows a video frame is complete only
when the first packet of the *next* frame arrives (a new RTP timestamp). Every frame then
waits one frame interval before it is decoded: 67 ms at 15 frames a second, 333 ms at
the 3 a second a busy server asks for. Video senders mark the last packet of each frame
(the RTP marker bit: RFC 7741 for VP8, RFC 6184 for H.264), so the frame is complete as
soon as that packet is in and every packet before it, back to the frame's first, is there.

:class:`MarkerJitterBuffer` adds that rule and otherwise behaves as aiortc's (capacity,
reordering, loss, keyframe requests). :func:`use_marker_jitter_buffer` makes aiortc's
receivers use it for video, process-wide (aiortc has no option for it); audio keeps
aiortc's buffer, whose prefetch smooths jitter. It reads aiortc's buffer internals,
so the aiortc version is pinned (``constraints.txt``) and a test checks the behaviour.
"""

from __future__ import annotations

import aiortc.rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, plus: a video frame is complete at its marker packet."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if not self._is_video or self._prefetch or self._origin is None:
            return super()._remove_frame(sequence_number)
        data: list[bytes] = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None  # a gap: wait for it (or for aiortc's loss handling)
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The next frame has begun without a marker: complete, as aiortc decides.
                self.remove(count)
                return JitterFrame(data=b"".join(data), timestamp=timestamp)
            data.append(packet._data)  # type: ignore[attr-defined]  # aiortc's payload
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(data), timestamp=timestamp)
        return None


def use_marker_jitter_buffer() -> None:
    """Make aiortc's receivers created from now on use :class:`MarkerJitterBuffer`."""
    aiortc.rtcrtpreceiver.JitterBuffer = MarkerJitterBuffer  # type: ignore[attr-defined]
