"""The ``meetmood`` command: serve, meeting create/list.

Settings come from config/default.toml, ``--config FILE``, ``MEETMOOD_*``
environment variables and the flags here, in that order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("meetmood")

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """Appends a record's ``extra=`` fields as ``key=value`` after the message."""

    def format(self, record: logging.LogRecord) -> str:
        """Format the record with its extra fields."""
        text = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return text


def setup_logging(level: str) -> None:
    """Log to stderr. Messages are static; values travel in ``extra=``."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiortc and aioice log per packet at DEBUG/INFO; keep them quiet unless asked.
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="a TOML file that overrides config/default.toml")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one setting, e.g. --set analyzers.face_emotion.fps=1 (repeatable)",
    )
    p.add_argument("--database", help="SQLite database file (storage.database)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="meetmood", description="Meeting bot: live face analysis and an engagement sidebar."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the server")
    _add_config_flags(serve)
    serve.add_argument("--host", help="bind address (server.host)")
    serve.add_argument("--port", type=int, help="TCP port (server.port)")

    meeting = sub.add_parser("meeting", help="create or list meetings")
    msub = meeting.add_subparsers(dest="meeting_command", required=True)
    create = msub.add_parser("create", help="create a meeting and print its links")
    create.add_argument("--name", default="", help="meeting name")
    _add_config_flags(create)
    listing = msub.add_parser("list", help="list meetings")
    _add_config_flags(listing)

    bench = sub.add_parser("bench", help="measure speed")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    pipe = bsub.add_parser(
        "pipeline", help="analysis rate and frame-to-state latency over loopback WebRTC"
    )
    _add_config_flags(pipe)
    pipe.add_argument("--participants", type=int, default=1, help="simulated participants")
    pipe.add_argument("--seconds", type=float, default=20.0, help="measured duration")
    pipe.add_argument("--send-fps", type=float, default=15.0, help="camera frame rate sent")
    pipe.add_argument("--json", action="store_true", help="print JSON")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load settings with this command's flags applied last."""
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    if args.database:
        overrides["storage.database"] = args.database
    if getattr(args, "host", None):
        overrides["server.host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["server.port"] = args.port
    return load_settings(args.config, overrides=overrides)


async def serve(settings: Settings) -> None:
    """Run the server until SIGINT or SIGTERM, then shut down in order."""
    from aiohttp import web

    from web.app import create_app

    loop = asyncio.get_running_loop()
    if settings.logging.asyncio_debug:
        loop.set_debug(True)
        loop.slow_callback_duration = 0.05
    app = create_app(settings)
    from web.access import PathOnlyAccessLogger, access_logger

    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=PathOnlyAccessLogger,
        access_log=access_logger,
    )
    await runner.setup()  # opens the database and loads the models
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    port = settings.server.port
    if port == 0 and runner.addresses:
        port = runner.addresses[0][1]
    url = settings.server.public_url or f"http://{_display_host(settings.server.host)}:{port}"
    print(f"meetmood is running at {url}/  (Ctrl-C to stop)", flush=True)
    print(f"database: {settings.storage.database_path}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("shutting down…", flush=True)
    await runner.cleanup()  # closes sockets, ends participants, stops workers, flushes
    print("stopped", flush=True)


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


async def _meeting_command(settings: Settings, args: argparse.Namespace) -> None:
    from bot.meeting import MeetingManager
    from bot.store import Store

    store = Store(settings.storage.database_path)
    await store.open()
    try:
        base = settings.server.base_url
        if args.meeting_command == "create":
            name = args.name.strip() or "Meeting"
            record, host_token = await store.create_meeting(name)
            print(f"meeting:   {record.name} ({record.id})")
            print(f"join link: {MeetingManager.join_url(base, record)}")
            print(f"host link: {MeetingManager.host_url(base, record, host_token)}")
            print("Keep the host link secret: it opens the sidebar and is shown only once.")
        else:
            for r in await store.list_meetings():
                print(f"{r.id}  {r.name}  join: {MeetingManager.join_url(base, r)}")
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meetmood`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SettingsError as e:
        print(f"meetmood: {e}", file=sys.stderr)
        return 2
    setup_logging(settings.logging.level)
    if args.command == "serve":
        try:
            asyncio.run(serve(settings))
        except OSError as e:
            print(f"meetmood: cannot start the server: {e}", file=sys.stderr)
            return 1
        return 0
    if args.command == "bench":
        from bot.bench import bench_pipeline, format_figures

        figures = asyncio.run(
            bench_pipeline(settings, args.participants, args.seconds, args.send_fps)
        )
        print(format_figures(figures, args.json))
        return 0
    asyncio.run(_meeting_command(settings, args))
    return 0
