"""Probe: the join path under abuse, against a real ``meetmood serve``.

Starts the server as a subprocess (its own temporary database) and, each in a meeting of
its own:

1. ``stun``: an offer naming a loopback candidate that this probe listens on: does the
   server send STUN there?
2. ``locked_db``: two offers while another connection holds the database's write lock:
   the answers, and the server's UDP sockets 2 s later and once the lock is gone.
3. ``burst``: ``--offers`` join offers from real aiortc peers that are closed as soon as
   the answer arrives (so the server's peers never connect); the server's resident
   memory, threads and open sockets before, at the peak, and after ``--wait-secs``
   (longer than the connect timeout), the answers' status codes and what the host sees.

Run it inside the loopback-only namespace, e.g.
``scripts/in_netns.sh .venv/bin/python scripts/probe_join_burst.py --offers 30``.
``--set section.key=value`` passes a setting to the server (as MEETMOOD_ variables).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from bot.sources.browser import restrict_host_addresses


def udp_sockets(pid: int) -> int:
    """UDP sockets a process holds open."""
    udp = set()
    for table in ("udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            udp.add(line.split()[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        held += link.startswith("socket:[") and link[8:-1] in udp
    return held


class Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.packets += 1


def process_figures(pid: int) -> dict[str, float]:
    """Resident memory (MB), thread count and open sockets of a process (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
    sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            sockets += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return {
        "rss_mb": round(rss_kb / 1024, 1),
        "threads": threads,
        "sockets": sockets,
        "udp_sockets": udp_sockets(pid),
    }


def start_server(db: Path, overrides: list[str]) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    env.update(
        {
            "MEETMOOD_STORAGE__DATABASE": str(db),
            "MEETMOOD_SERVER__PORT": "0",
            "MEETMOOD_WEBRTC__ICE_ADDRESSES": '["127.0.0.1"]',
        }
    )
    for item in overrides:
        key, _, value = item.partition("=")
        env["MEETMOOD_" + key.upper().replace(".", "__")] = value
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"running at (http://\S+?)/ ", line)
        if match:
            return proc, match.group(1)
    raise RuntimeError("the server did not start")


async def offer_sdp() -> tuple[RTCPeerConnection, str]:
    # aioice leaves loopback out by default; in the namespace there is nothing else.
    restrict_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    return pc, pc.localDescription.sdp


async def post_join(
    http: aiohttp.ClientSession, base: str, meeting: dict[str, Any], sdp: str, name: str
) -> str:
    resp = await http.post(
        f"{base}/api/meetings/{meeting['id']}/participants",
        json={
            "display_name": name,
            "token": meeting["join_url"].split("token=")[1],
            "consent": True,
            "offer": {"sdp": sdp, "type": "offer"},
        },
    )
    body = await resp.json()
    return f"{resp.status} {body.get('error', {}).get('code', '')}".strip()


async def stun_probe(http: aiohttp.ClientSession, base: str, meeting: dict[str, Any]) -> Any:
    loop = asyncio.get_running_loop()
    transport, target = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    pc, sdp = await offer_sdp()
    await pc.close()
    # Into the first (bundled) media section, after the peer's own candidate.
    head, sep, tail = sdp.partition("a=candidate:")
    assert sep, "the offer has no candidate"
    first, nl, rest = tail.partition("\r\n")
    extra = f"a=candidate:99 1 udp 2130706431 127.0.0.1 {port} typ host\r\n"
    status = await post_join(http, base, meeting, head + sep + first + nl + extra + rest, "S")
    # Up to 10 s: a server that builds heavy state on the event loop checks late.
    for _ in range(100):
        if target.packets:
            break
        await asyncio.sleep(0.1)
    transport.close()
    return {"answer": status, "stun_packets_to_named_loopback_port": target.packets}


async def locked_db_probe(
    http: aiohttp.ClientSession, base: str, meeting: dict[str, Any], db: Path, pid: int
) -> Any:
    pc, sdp = await offer_sdp()
    await pc.close()
    before = udp_sockets(pid)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        answers = [await post_join(http, base, meeting, sdp, f"L{i}") for i in range(2)]
        await asyncio.sleep(2.0)
        during = udp_sockets(pid)
    finally:
        other.execute("ROLLBACK")
        other.close()
    return {
        "answers": answers,
        "server_udp_sockets_before": before,
        "server_udp_sockets_2s_later": during,
    }


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "probe.sqlite3"
        proc, base = start_server(db, args.set)
        try:
            async with aiohttp.ClientSession() as http:
                headers = dict(h.split(": ", 1) for h in args.header)

                async def new_meeting() -> dict[str, Any]:
                    resp = await http.post(
                        f"{base}/api/meetings", json={"name": "Probe"}, headers=headers
                    )
                    return dict(await resp.json())

                await asyncio.sleep(2.0)  # let start-up settle
                stun = await stun_probe(http, base, await new_meeting())
                locked = await locked_db_probe(http, base, await new_meeting(), db, proc.pid)
                meeting = await new_meeting()
                token = meeting["join_url"].split("token=")[1]
                await asyncio.sleep(1.0)
                before = process_figures(proc.pid)
                statuses: collections.Counter[str] = collections.Counter()
                peak = dict(before)

                def sample() -> None:
                    for key, value in process_figures(proc.pid).items():
                        peak[key] = max(peak[key], value)

                async def join(i: int) -> None:
                    pc, sdp = await offer_sdp()
                    try:
                        resp = await http.post(
                            f"{base}/api/meetings/{meeting['id']}/participants",
                            json={
                                "display_name": f"Probe {i}",
                                "token": token,
                                "consent": True,
                                "offer": {"sdp": sdp, "type": "offer"},
                            },
                        )
                        body = await resp.json()
                        code = body.get("error", {}).get("code", "")
                        statuses[f"{resp.status} {code}".strip()] += 1
                    finally:
                        await pc.close()  # never connects

                started = time.monotonic()
                await asyncio.gather(*(join(i) for i in range(args.offers)))
                burst_secs = time.monotonic() - started
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline:
                    sample()
                    await asyncio.sleep(0.25)
                at_burst = process_figures(proc.pid)
                deadline = time.monotonic() + args.wait_secs
                while time.monotonic() < deadline:
                    sample()
                    await asyncio.sleep(0.5)
                after = process_figures(proc.pid)
                resp = await http.get(
                    f"{base}/api/meetings/{meeting['id']}",
                    headers={"Authorization": f"Bearer {meeting['host_token']}"},
                )
                host_view = await resp.json()
                return {
                    "stun": stun,
                    "locked_db": locked,
                    "offers": args.offers,
                    "answers": dict(statuses),
                    "burst_secs": round(burst_secs, 1),
                    "before": before,
                    "5s_after_burst": at_burst,
                    "peak": peak,
                    f"after_{args.wait_secs:g}s": after,
                    "participants_seen_by_host": len(host_view.get("participants", [])),
                    "leave_reasons": dict(
                        collections.Counter(
                            p.get("leave_reason") for p in host_view.get("participants", [])
                        )
                    ),
                    "host_view_extra": {
                        k: v
                        for k, v in host_view.items()
                        if k not in {"participants", "join_url", "host_url", "name", "id"}
                        and "token" not in k
                    },
                }
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=30)
    parser.add_argument("--wait-secs", type=float, default=40.0)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--header", action="append", default=[], metavar="NAME: VALUE")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args)), indent=2))


if __name__ == "__main__":
    main()
