"""``meetmood join janus|whep``: one command that sends the bot and opens the sidebar.

It starts the server (so the host can open the sidebar), creates a meeting (or uses
``--meeting``), sends the bot, prints the host link, and runs until Ctrl-C or until
the bot leaves for good (the room was destroyed). A bot that cannot join says why in
one line (``room: no such room on this Janus server``) and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys

from bot.bots import BotRequest
from bot.cli import fail, start_server, stop_on_signals
from bot.meeting import MeetingEnded, MeetingManager, MeetingNotFound
from bot.settings import Settings
from bot.sources.janus import BotError


def join_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``meetmood join``; returns the exit status."""
    try:
        request = BotRequest(
            kind=args.join_command,
            url=args.url,
            room=getattr(args, "room", None),
            pin=getattr(args, "pin", None),
            token=getattr(args, "token", None),
            display=args.display,
        )
    except ValueError as e:
        return fail(_first_error(e))
    try:
        return asyncio.run(_join(settings, args, request))
    except OSError as e:
        print(f"meetmood: cannot start the server: {e}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        print(f"meetmood: storage.database: {e}", file=sys.stderr)
        return 1


async def _join(settings: Settings, args: argparse.Namespace, request: BotRequest) -> int:
    manager = MeetingManager(settings)
    runner, url = await start_server(settings, manager)
    stop = stop_on_signals()
    try:
        if args.meeting:
            try:
                record = await manager.get_meeting(args.meeting)
            except MeetingNotFound:
                print(f"meetmood: --meeting: no meeting has the id {args.meeting}", file=sys.stderr)
                return 2
            host_line = "host link: the meeting's host link (it was shown when it was created)"
        else:
            name = f"Janus room {request.room}" if request.kind == "janus" else "WHEP stream"
            record, host_token = await manager.create_meeting(name[:80])
            host_line = f"host link: {MeetingManager.host_url(url, record, host_token)}"
        print(f"meetmood is running at {url}/  (Ctrl-C to stop)", flush=True)
        print(f"meeting:   {record.name} ({record.id})", flush=True)
        print(host_line, flush=True)
        print("joining…", flush=True)
        try:
            info = await manager.bots.invite(record.id, request)
        except BotError as e:
            print(f"meetmood: {e.key}: {e.reason}", file=sys.stderr)
            return 1
        except MeetingEnded:
            print("meetmood: --meeting: that meeting has ended", file=sys.stderr)
            return 1
        print(f"in the room as “{info.display_name}” ({info.where})", flush=True)
        print(
            "People in the room never saw meetmood's notice: you are responsible for "
            "telling them that the meeting is analysed.",
            flush=True,
        )
        while not stop.is_set():
            bots = [b for b in manager.bots.list(record.id) if b.bot_id == info.bot_id]
            if not bots or bots[0].state in ("left", "failed"):
                detail = bots[0].detail if bots else ""
                print(f"the bot left the room{': ' + detail if detail else ''}", flush=True)
                break
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                continue
        print("leaving…", flush=True)
        return 0
    finally:
        await runner.cleanup()  # the bot leaves, participants end, everything is flushed


def _first_error(e: ValueError) -> str:
    """A pydantic validation error as one ``key: reason`` line."""
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        message = str(first.get("msg", e)).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return message if ":" in message else f"--{loc or 'url'}: {message}"
    return str(e)
