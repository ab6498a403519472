"""The ``meetmood`` command: serve, meeting create/list/delete/purge, eval and bench.

Settings come from config/default.toml, ``--config FILE``, ``MEETMOOD_*``
environment variables and the flags here, in that order.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from analyzers.eval_labels import EvalInputError
from bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from analyzers.face.emotion import FaceEmotionAnalyzer, FaceEmotionParams
    from bot.meeting import MeetingManager
    from bot.recordings import AnalysisProgress
    from bot.sources.recording import RecordingInfo

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


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error format: one ``key: reason`` line, exit status 2.

    Subcommand parsers are made of the same class, so every command speaks alike.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``prog: key: reason (see --help)`` and exit with status 2."""
        self.exit(2, f"{self.prog}: {_argparse_reason(message)} (see {self.prog} --help)\n")


def _argparse_reason(message: str) -> str:
    # argparse says "argument --x: reason", "the following arguments are required: A, B"
    # and "unrecognized arguments: ..."; put the key first in each.
    if message.startswith("argument "):
        return message.removeprefix("argument ")
    for lead, reason in (
        ("the following arguments are required: ", "required"),
        ("unrecognized arguments: ", "unrecognized argument"),
    ):
        if message.startswith(lead):
            return f"{message.removeprefix(lead)}: {reason}"
    return message


def fail(message: str) -> int:
    """Print a validation error (one ``key: reason`` line per problem) and return status 2."""
    for line in message.splitlines():
        print(f"meetmood: {line}", file=sys.stderr)
    return 2


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
    parser = _Parser(
        prog="meetmood", description="Meeting bot: live face analysis and an engagement sidebar."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="start the server")
    _add_config_flags(serve)
    serve.add_argument("--host", help="bind address (server.host)")
    serve.add_argument("--port", type=int, help="TCP port (server.port)")

    join = sub.add_parser(
        "join",
        help="send the bot into a Janus VideoRoom or pull a WHEP stream, with the sidebar live",
    )
    jsub = join.add_subparsers(dest="join_command", metavar="KIND", required=True)
    janus = jsub.add_parser("janus", help="join a Janus VideoRoom and analyse every publisher")
    janus.add_argument("url", help="the Janus API: http(s)://HOST:8088/janus or ws(s)://HOST:8188")
    janus.add_argument("--room", required=True, help="the VideoRoom id")
    janus.add_argument("--pin", help="the room's pin, if it has one")
    whep = jsub.add_parser("whep", help="pull one stream from a WHEP endpoint as a participant")
    whep.add_argument("url", help="the WHEP endpoint (http or https)")
    whep.add_argument("--token", help="bearer token for the endpoint")
    for p in (janus, whep):
        p.add_argument(
            "--display",
            help="the bot's name in the room (Janus) or the participant's name (WHEP)",
        )
        p.add_argument("--meeting", help="add to this existing meeting (default: create a new one)")
        _add_config_flags(p)
        p.add_argument("--host", help="bind address of the sidebar server (server.host)")
        p.add_argument("--port", type=int, help="TCP port of the sidebar server (server.port)")

    meeting = sub.add_parser("meeting", help="create, list, delete or purge meetings")
    msub = meeting.add_subparsers(dest="meeting_command", metavar="COMMAND", required=True)
    create = msub.add_parser("create", help="create a meeting and print its links")
    create.add_argument("--name", default="", help="meeting name")
    _add_config_flags(create)
    listing = msub.add_parser("list", help="list meetings")
    _add_config_flags(listing)
    delete = msub.add_parser("delete", help="delete a meeting and everything stored with it")
    delete.add_argument("meeting", metavar="MEETING", help="meeting id")
    _add_config_flags(delete)
    purge = msub.add_parser(
        "purge",
        help="delete the meetings whose last activity is older than the retention period",
    )
    purge.add_argument(
        "--older-than",
        type=_non_negative_float,
        metavar="DAYS",
        help="days since the meeting ended, or since its last activity if it was never "
        "ended (default: privacy.retention_days)",
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted; delete nothing"
    )
    _add_config_flags(purge)

    admin = sub.add_parser(
        "admin-token",
        help="make a new admin token (it creates meetings over HTTP; the old one stops working)",
    )
    _add_config_flags(admin)

    openface = sub.add_parser(
        "import-openface",
        help="make a meeting from OpenFace FeatureExtraction CSVs (one participant per file)",
    )
    openface.add_argument("csv", nargs="+", type=Path, metavar="CSV", help="OpenFace CSV file")
    openface.add_argument("--name", default="", help="meeting name (default: OpenFace import)")
    openface.add_argument(
        "--follow",
        action="store_true",
        help="keep reading CSVs that OpenFace is still writing, and serve the sidebar meanwhile",
    )
    openface.add_argument(
        "--idle-secs",
        type=_positive_float,
        default=30.0,
        help="with --follow: stop after this many seconds without a new row (default 30)",
    )
    openface.add_argument(
        "--min-confidence",
        type=_unit_float,
        default=None,
        help="rows below this OpenFace confidence count as no face (default 0.8)",
    )
    openface.add_argument(
        "--fps",
        type=_non_negative_float,
        default=None,
        help="observations per second of video sent to fusion (default 10; 0: every row)",
    )
    _add_config_flags(openface)

    analyze = sub.add_parser(
        "analyze",
        help="analyse a recorded meeting (a video or audio file) into a meeting and its report",
    )
    analyze.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="mp4, webm, mkv, mov, avi, wav, m4a, ... (video, audio or both)",
    )
    analyze.add_argument("--name", default="", help="meeting name (default: the file's name)")
    analyze.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="where to write the HTML report (default: beside the database)",
    )
    analyze.add_argument("--json", action="store_true", help="print JSON")
    _add_config_flags(analyze)

    bench = sub.add_parser("bench", help="measure speed")
    bsub = bench.add_subparsers(dest="bench_command", metavar="COMMAND", required=True)
    pipe = bsub.add_parser(
        "pipeline", help="analysis rate and frame-to-state latency over loopback WebRTC"
    )
    _add_config_flags(pipe)
    pipe.add_argument(
        "--participants", type=_positive_int, default=1, help="simulated participants"
    )
    pipe.add_argument("--seconds", type=_positive_float, default=20.0, help="measured duration")
    pipe.add_argument(
        "--send-fps", type=_positive_float, default=15.0, help="camera frame rate sent"
    )
    pipe.add_argument("--json", action="store_true", help="print JSON")

    cap = bsub.add_parser(
        "capacity",
        help="a whole server under N live participants sent from separate processes: "
        "analysis rate, frame-to-sidebar latency, CPU, memory, database writes",
    )
    _add_config_flags(cap)
    cap.add_argument("--participants", type=_positive_int, default=49, help="participants (N)")
    cap.add_argument("--seconds", type=_positive_float, default=30.0, help="measured duration")
    cap.add_argument(
        "--find-max",
        action="store_true",
        help="bisect for the largest N <= --participants that meets the targets",
    )
    cap.add_argument("--width", type=_positive_int, default=640, help="sent video width")
    cap.add_argument("--height", type=_positive_int, default=480, help="sent video height")
    cap.add_argument("--fps", type=_positive_float, default=15.0, help="sent video frame rate")
    cap.add_argument(
        "--warmup",
        type=_non_negative_float,
        default=15.0,
        help="seconds after every participant's first state before measuring (the rates settle)",
    )
    cap.add_argument(
        "--senders-per-process", type=_positive_int, default=7, help="peers per sender process"
    )
    cap.add_argument("--json", action="store_true", help="print JSON")

    startup = bsub.add_parser(
        "startup",
        help="seconds from launching `meetmood serve` to its first HTTP answer and to its "
        "models loaded, and from a participant's join to their first state",
    )
    _add_config_flags(startup)
    startup.add_argument("--runs", type=_positive_int, default=3, help="launches (median)")
    startup.add_argument("--json", action="store_true", help="print JSON")

    faces = bsub.add_parser(
        "faces",
        help="faces per second of detection + landmarks + emotion at several batch sizes, "
        "against DeepFace.analyze on the same frames",
    )
    _add_config_flags(faces)
    _add_face_flags(faces)
    faces.add_argument(
        "--batch-sizes",
        type=_batch_sizes,
        default=BENCH_BATCH_SIZES,
        metavar="N,N,...",
        help="frames per call to measure (default 1,8,32)",
    )
    faces.add_argument(
        "--seconds",
        type=_non_negative_float,
        default=5.0,
        help="least measured time per configuration (0: just --repeats calls)",
    )
    faces.add_argument(
        "--repeats", type=_positive_int, default=3, help="least calls per configuration (default 3)"
    )
    faces.add_argument(
        "--threads",
        type=_positive_int,
        help="torch and OpenCV threads for both paths (default: the configured torch_threads; "
        "OpenCV's own default)",
    )
    faces.add_argument(
        "--no-deepface", action="store_true", help="skip DeepFace's timing and crop comparison"
    )
    faces.add_argument("--json", action="store_true", help="print JSON")

    crowd = bsub.add_parser(
        "crowd",
        help="faces found, followed and the cost per frame in a synthetic crowd "
        "(a 1280x720 room camera with 20 people by default)",
    )
    _add_config_flags(crowd)
    _add_face_flags(crowd)
    crowd.add_argument("--faces", type=_positive_int, default=20, help="people (default 20)")
    crowd.add_argument(
        "--size",
        type=_frame_size,
        default=(1280, 720),
        metavar="WxH",
        help="frame size (default 1280x720)",
    )
    crowd.add_argument(
        "--face-px",
        type=_face_px,
        default=(30, 60),
        metavar="MIN,MAX",
        help="face side of the back row and of the front row (default 30,60)",
    )
    crowd.add_argument(
        "--far", action="store_true", help="a distant camera's look: blurred, noisy, JPEG"
    )
    crowd.add_argument(
        "--lfw", action="store_true", help="half the faces tight LFW crops (the hardest kind)"
    )
    crowd.add_argument(
        "--max-faces",
        type=_positive_int,
        help="faces read per frame (default: analyzers.face_emotion.max_faces)",
    )
    crowd.add_argument(
        "--seconds", type=_positive_float, default=3.0, help="least measured time per frame kind"
    )
    crowd.add_argument(
        "--repeats", type=_positive_int, default=3, help="least calls per frame kind (default 3)"
    )
    crowd.add_argument("--json", action="store_true", help="print JSON")

    sidebar = bsub.add_parser(
        "sidebar", help="the host page in headless Chromium under a synthetic meeting's events"
    )
    _add_config_flags(sidebar)
    sidebar.add_argument(
        "--participants", type=_positive_int, default=4, help="simulated participants"
    )
    sidebar.add_argument("--seconds", type=_positive_float, default=20.0, help="measured duration")
    sidebar.add_argument("--json", action="store_true", help="print JSON")

    voice = bsub.add_parser("voice", help="CPU cost of the voice path (VAD, prosody, emotion)")
    _add_config_flags(voice)
    voice.add_argument(
        "--seconds", type=_positive_float, default=30.0, help="synthesised audio length"
    )
    voice.add_argument(
        "--model",
        help="speech-emotion model id or folder, loaded offline "
        "(default: a tiny random Wav2Vec2, for speed only)",
    )
    voice.add_argument(
        "--device", choices=DEVICES, default="cpu", help="torch device of the emotion model"
    )
    voice.add_argument("--json", action="store_true", help="print JSON")

    report = sub.add_parser(
        "report", help="write a meeting's report (HTML, PDF, JSON or CSV) from the database"
    )
    report.add_argument("meeting", metavar="MEETING", help="meeting id, or 'latest'")
    report.add_argument(
        "--format", choices=("html", "pdf", "json", "csv"), default="html", help="default html"
    )
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="where to write it (default: meetmood-report-NAME-DATE.EXT here)",
    )
    _add_config_flags(report)

    evaluate = sub.add_parser("eval", help="measure accuracy on labelled images or audio clips")
    esub = evaluate.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)
    ev_faces = esub.add_parser(
        "faces",
        help="accuracy, per-class precision/recall and confusion matrix of the face "
        "emotion model on a folder of labelled images",
    )
    ev_faces.add_argument("folder", type=Path, metavar="DIR", help="folder of images")
    ev_faces.add_argument(
        "--labels",
        type=Path,
        required=True,
        metavar="CSV",
        help="'filename,label' rows; label one of angry, disgust, fear, happy, sad, surprise, "
        "neutral or an alias (anger, happiness, surprised, KDEF/JAFFE codes, ...)",
    )
    ev_faces.add_argument(
        "--crops",
        action="store_true",
        help="the images are tight face crops: no detection, the whole image is the face",
    )
    ev_faces.add_argument(
        "--compare-deepface",
        action="store_true",
        help="also read the same model on the largest face DeepFace.extract_faces (opencv) "
        "cuts out",
    )
    _add_config_flags(ev_faces)
    _add_face_flags(ev_faces, model=True)
    ev_faces.add_argument("--verbose", action="store_true", help="add a per-image table")
    ev_faces.add_argument("--json", action="store_true", help="print JSON")

    ev_detect = esub.add_parser("detect", help="face detection counts against expected counts")
    ev_detect.add_argument("folder", type=Path, metavar="DIR", help="folder of images")
    ev_detect.add_argument(
        "--labels",
        type=Path,
        required=True,
        metavar="CSV",
        help="'filename,faces' rows: the number of faces in each image",
    )
    _add_config_flags(ev_detect)
    _add_face_flags(ev_detect, model=False)
    ev_detect.add_argument(
        "--max-faces",
        type=_positive_int,
        default=CROWD_MAX_FACES,
        help=f"most faces counted per image (default {CROWD_MAX_FACES}, the analyzer's maximum)",
    )
    ev_detect.add_argument("--verbose", action="store_true", help="add a per-image table")
    ev_detect.add_argument("--json", action="store_true", help="print JSON")

    ev_voice = esub.add_parser(
        "voice",
        help="voice arousal AUC (high vs low), coverage and, with --model, per-class accuracy "
        "on a folder of labelled audio clips",
    )
    ev_voice.add_argument("folder", type=Path, metavar="DIR", help="folder of audio clips")
    ev_voice.add_argument(
        "--labels",
        type=Path,
        required=True,
        metavar="CSV",
        help="'filename,label[,speaker]' rows (more columns are ignored); label one of angry, "
        "bored, disgust, fear, happy, sad, surprise, neutral or an alias (anger, boredom, ...)",
    )
    ev_voice.add_argument(
        "--model",
        help="speech-emotion model id or folder, loaded offline (default: none, arousal only)",
    )
    ev_voice.add_argument(
        "--device", choices=DEVICES, default="cpu", help="torch device of the emotion model"
    )
    _add_config_flags(ev_voice)
    ev_voice.add_argument("--verbose", action="store_true", help="add a per-clip table")
    ev_voice.add_argument("--json", action="store_true", help="print JSON")

    sets = esub.add_parser(
        "sample-sets",
        help="write the evaluation sets that can be made offline from scikit-image's data",
    )
    sets.add_argument("folder", type=Path, metavar="DIR", help="folder to write into")
    _add_config_flags(sets)
    return parser


DEVICES = ("auto", "cpu", "cuda", "mps")
BENCH_BATCH_SIZES = (1, 8, 32)
#: analyzers.face.emotion.MAX_FACES_LIMIT, spelled out so the parser does not import the
#: analyzer (a test keeps the two equal).
CROWD_MAX_FACES = 64


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers like 1,8,32") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers >= 1 like 1,8,32")
    return sizes


def _frame_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 64:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size like 1280x720 (64 and up)")
    return size


def _face_px(text: str) -> tuple[int, int]:
    low, _, high = text.partition(",")
    try:
        sides = (int(low), int(high or low))
    except ValueError:
        sides = (0, 0)
    if sides[0] < 8 or sides[1] < sides[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MIN,MAX like 30,60 (8 <= MIN <= MAX)")
    return sides


def _add_face_flags(p: argparse.ArgumentParser, *, model: bool = True) -> None:
    # Defaults come from [analyzers.face_emotion]; these flags override them.
    p.add_argument(
        "--detector",
        choices=("mediapipe", "haar"),
        help="face detector (default: analyzers.face_emotion.detector)",
    )
    if model:
        p.add_argument(
            "--model",
            choices=("mini_xception", "deepface"),
            help="emotion model (default: analyzers.face_emotion.model)",
        )
    p.add_argument(
        "--device", choices=DEVICES, help="torch device (default: analyzers.face_emotion.device)"
    )


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


async def start_server(
    settings: Settings, manager: MeetingManager | None = None
) -> tuple[Any, str]:
    """Start the web server (database opened, models loading); returns its runner and URL.

    It answers at once: the models load in the background (``GET /healthz`` says when
    they are loaded), and participants who join meanwhile wait for them.
    """
    from aiohttp import web

    from web.access import PathOnlyAccessLogger, access_logger
    from web.app import create_app

    loop = asyncio.get_running_loop()
    if settings.logging.asyncio_debug:
        loop.set_debug(True)
        loop.slow_callback_duration = 0.05
    runner = web.AppRunner(
        create_app(settings, manager),
        handle_signals=False,
        access_log_class=PathOnlyAccessLogger,
        access_log=access_logger,
    )
    await runner.setup()  # opens the database; the models start loading in the background
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    port = settings.server.port
    if port == 0 and runner.addresses:
        port = runner.addresses[0][1]
    url = settings.server.public_url or f"http://{_display_host(settings.server.host)}:{port}"
    # What exists now (modules, the app, its settings) lives as long as the server. Left
    # to the collector, each full pass would walk all of it again (over 100,000 objects,
    # about 60 ms here) while holding the GIL, and media and sidebars would wait.
    gc.collect()
    gc.freeze()
    return runner, url


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(settings: Settings) -> None:
    """Run the server until SIGINT or SIGTERM, then shut down in order."""
    runner, url = await start_server(settings)
    print(f"meetmood is running at {url}/  (Ctrl-C to stop)", flush=True)
    print(f"database: {settings.storage.database_path}", flush=True)
    _print_admin_token(settings)
    stop = stop_on_signals()
    await stop.wait()
    print("shutting down…", flush=True)
    await runner.cleanup()  # closes sockets, ends participants, stops workers, flushes
    print("stopped", flush=True)


def _print_admin_token(settings: Settings) -> None:
    """Make the admin token at first start and print it, this once only (never to the log)."""
    from bot.admin_token import admin_token_path, ensure_admin_token

    if settings.security.open_creation:
        print("security.open_creation is on: anyone who reaches this server can create meetings")
        return
    path = admin_token_path(settings.storage)
    token = ensure_admin_token(path)
    if token is None:
        print("creating meetings needs the admin token (`meetmood admin-token` makes a new one)")
        return
    print(f"admin token: {token}", flush=True)
    print(
        "  It creates meetings (home page form, POST /api/meetings with Authorization: Bearer).\n"
        f"  Shown only this once; stored hashed in {path}.",
        flush=True,
    )


def _admin_token_command(settings: Settings) -> int:
    from bot.admin_token import admin_token_path, write_admin_token

    path = admin_token_path(settings.storage)
    try:
        token = write_admin_token(path)
    except OSError as e:
        return fail(f"storage.database: cannot write {path}: {e.strerror or e}")
    print(f"admin token: {token}")
    print(f"Shown only this once; stored hashed in {path}. The previous token no longer works.")
    return 0


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


async def _meeting_delete_command(settings: Settings, args: argparse.Namespace) -> int:
    """``meetmood meeting delete MEETING`` and ``meetmood meeting purge``, on the database.

    A meeting with participants still connected (to a running server) is left alone: the
    host ends or deletes it on its page, where the server disconnects them first.
    """
    from bot.retention import cutoff
    from bot.store import Store

    store = Store(settings.storage.database_path)
    await store.open()
    try:
        if args.meeting_command == "delete":
            record = await store.get_meeting(args.meeting)
            if record is None:
                return fail(f"{args.meeting}: no such meeting")
            present = [p for p in await store.list_participants(record.id) if p.left_at is None]
            if present:
                return fail(
                    f"{args.meeting}: {len(present)} participant(s) still connected; end the "
                    "meeting on its host page (or stop the server) first"
                )
            await store.delete_meeting(record.id)
            print(f"deleted: {record.id}  {record.name}")
            return 0
        days = settings.privacy.retention_days if args.older_than is None else args.older_than
        if args.older_than is None and days <= 0:
            print("nothing to purge: privacy.retention_days is 0 (meetings are kept until deleted)")
            return 0
        expired = await store.expired_meetings(cutoff(time.time(), days))
        verb = "would delete" if args.dry_run else "deleted"
        for m in expired:
            if not args.dry_run:
                await store.delete_meeting(m.record.id)
            last = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.last_activity))
            print(f"{verb}: {m.record.id}  {m.record.name}  (last activity {last})")
        summary = "would be deleted" if args.dry_run else "deleted"
        print(f"{len(expired)} meeting(s) {summary}, last activity more than {days:g} days ago")
        return 0
    finally:
        await store.close()


async def _report_command(settings: Settings, args: argparse.Namespace) -> int:
    """``meetmood report MEETING``: build the report from the store and write one file."""
    from bot.report import (
        ReportNotice,
        build_report,
        csv_chunks,
        filename,
        generator,
        meeting_span,
        render,
    )
    from bot.store import Store
    from web.views import join_notice

    store = Store(settings.storage.database_path)
    await store.open()
    try:
        meeting_id = args.meeting
        if meeting_id == "latest":
            meetings = await store.list_meetings()
            if not meetings:
                return fail(f"{args.meeting}: no meetings in {settings.storage.database_path}")
            meeting_id = meetings[0].id
        record = await store.get_meeting(meeting_id)
        if record is None:
            return fail(f"{args.meeting}: no such meeting")
        if args.format == "csv":
            people = await store.list_participants(record.id)
            start, _, _ = meeting_span(record, people, await store.last_ts(record.id), time.time())
            out = args.output or Path(filename(record.name, record.id, start, "csv"))
            with out.open("w", encoding="utf-8", newline="") as f:
                async for chunk in csv_chunks(store, record.id, people, start):
                    f.write(chunk)
        else:
            notice = ReportNotice.model_validate(join_notice(settings))
            report = await build_report(store, record.id, settings, notice, generator=generator())
            body = await asyncio.to_thread(render, report, args.format)
            out = args.output or Path(
                filename(record.name, record.id, report.meeting.start_ts, args.format)
            )
            out.write_bytes(body)
    except OSError as e:
        return fail(f"{args.output or 'output'}: cannot write: {e.strerror or e}")
    finally:
        await store.close()
    print(out)
    return 0


def _analyze_command(settings: Settings, args: argparse.Namespace) -> int:
    """``meetmood analyze FILE``: check the file, analyse it into a meeting, write its report."""
    from bot.sources.recording import RecordingError, probe

    try:
        info = probe(args.file)
    except RecordingError as e:
        return fail(f"{args.file}: {e}")
    try:
        return asyncio.run(_analyze(settings, args, info))
    except RecordingError as e:
        return fail(f"{args.file}: {e}")
    except KeyboardInterrupt:
        print(f"meetmood: {args.file}: interrupted; nothing was stored", file=sys.stderr)
        return 130
    except sqlite3.Error as e:
        path = settings.storage.database_path
        print(f"meetmood: storage.database: cannot open {path}: {e}", file=sys.stderr)
        return 1


class _ProgressBar:
    """A tqdm bar on stderr: seconds of media analysed, speed against real time, ETA."""

    def __init__(self, total_secs: float, label: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=round(total_secs, 1),
            desc=label,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
            smoothing=0.1,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of media "
            "[{elapsed}<{remaining}{postfix}]",
        )

    def update(self, progress: AnalysisProgress) -> None:
        done = round(min(progress.done_secs, progress.duration_secs), 1)
        if progress.speed is not None:
            self.bar.set_postfix_str(f"{progress.speed:.2f}x real time", refresh=False)
        self.bar.update(max(0.0, done - self.bar.n))

    def close(self) -> None:
        self.bar.close()


async def _analyze(settings: Settings, args: argparse.Namespace, info: RecordingInfo) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from bot.meeting import MeetingManager
    from bot.recordings import analyze_recording

    manager = MeetingManager(settings)
    # Not manager.start(): a server may be using the same database, and the participants
    # it has open are not this command's to close.
    await manager.store.open()
    try:
        print("loading the models…", file=sys.stderr, flush=True)
        await manager.pool.start()
        bar = _ProgressBar(info.duration_secs, args.file.name)
        try:
            with logging_redirect_tqdm():
                result = await analyze_recording(
                    manager, args.file, args.name, info=info, on_progress=bar.update
                )
        finally:
            bar.close()
        record = await manager.get_meeting(result.meeting_id)
        try:
            report = await _write_report(manager, result.meeting_id, args.report)
        except OSError as e:
            return fail(f"{args.report or 'report'}: cannot write: {e.strerror or e}")
    finally:
        await manager.pool.close()
        await manager.store.close()
    host_url = MeetingManager.host_url(settings.server.base_url, record, result.host_token)
    media = ", ".join(d for d in (info.video, info.audio) if d)
    if args.json:
        out = {
            "meeting_id": record.id,
            "name": record.name,
            "host_url": host_url,
            "media": media,
            "media_secs": round(info.duration_secs, 3),
            "wall_secs": round(result.wall_secs, 3),
            "speed": round(result.speed, 3),
            "participants": result.participants,
            "frames": {
                "received": result.stats.frames_received,
                "analysed": result.stats.frames_analyzed,
                "dropped": result.stats.frames_dropped,
            },
            "audio_frames": result.stats.audio_frames,
            "damaged_packets": result.bad_packets,
            "report": str(report),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"meeting:   {record.name} ({record.id})")
    print(
        f"analysed:  {info.duration_secs:.1f} s of media ({media}) in {result.wall_secs:.1f} s: "
        f"{result.speed:.2f} s of media per second ({result.speed:.2f}x real time)"
    )
    print(f"participants: {result.participants} (further faces in the picture count as one each)")
    if result.bad_packets:
        print(f"damaged packets skipped: {result.bad_packets}")
    print(f"host link: {host_url}")
    print(f"report:    {report}")
    print("Keep the host link secret: it opens the sidebar and is shown only once.")
    return 0


async def _write_report(manager: MeetingManager, meeting_id: str, output: Path | None) -> Path:
    """Write the meeting's HTML report to ``output`` (default: beside the database)."""
    from bot.report import ReportNotice, build_report, filename, generator, render
    from web.views import join_notice

    settings = manager.settings
    notice = ReportNotice.model_validate(join_notice(settings))
    report = await build_report(
        manager.store,
        meeting_id,
        settings,
        notice,
        notices=manager.notices(),
        generator=generator(),
    )
    body = await asyncio.to_thread(render, report, "html")
    if output is None:
        name = filename(report.meeting.name, meeting_id, report.meeting.start_ts, "html")
        stem = name.removesuffix(".html")
        output = settings.storage.database_path.parent / f"{stem}-{meeting_id}.html"
    await asyncio.to_thread(output.write_bytes, body)
    return output


def _import_openface_command(settings: Settings, args: argparse.Namespace) -> int:
    """Check every file before creating anything, then import (see bot.sources.openface)."""
    from bot.sources.openface import NotOpenFace, check_openface_file

    problems = []
    for path in args.csv:
        try:
            header = check_openface_file(path)
        except NotOpenFace as e:
            problems.append(f"{path}: {e}")
        except OSError as e:
            problems.append(f"{path}: cannot read: {e.strerror or e}")
        else:
            if header is None and not args.follow:
                problems.append(f"{path}: not OpenFace output: the file is empty")
    if problems:
        return fail("\n".join(problems))
    try:
        return asyncio.run(_import_openface(settings, args))
    except NotOpenFace as e:  # a followed file that was empty at the start
        return fail(str(e))
    except OSError as e:
        print(f"meetmood: cannot start the server: {e}", file=sys.stderr)
        return 1


async def _import_openface(settings: Settings, args: argparse.Namespace) -> int:
    from bot.meeting import LiveMeeting, MeetingManager
    from bot.sources.openface import IMPORT_FPS, MIN_CONFIDENCE, MediaTimeline, import_openface

    name = args.name.strip() or "OpenFace import"
    options: dict[str, Any] = {
        "min_confidence": MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence,
        "fps": IMPORT_FPS if args.fps is None else args.fps,
    }
    if not args.follow:
        manager = MeetingManager(settings)  # no analyzers are started: OpenFace measured
        await manager.store.open()
        try:
            record, host_token = await manager.create_meeting(name)
            result = await import_openface(
                lambda timeline: manager.live_on_clock(record.id, timeline), args.csv, **options
            )
        finally:
            await manager.store.close()
        base = settings.server.base_url
    else:
        from aiohttp import web

        from web.app import create_app
        from web.keys import MANAGER

        app = create_app(settings)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()  # opens the database (the enabled analyzers load meanwhile)
        try:
            site = web.TCPSite(runner, settings.server.host, settings.server.port)
            await site.start()
            port = settings.server.port
            if port == 0 and runner.addresses:
                port = runner.addresses[0][1]
            base = settings.server.public_url or (
                f"http://{_display_host(settings.server.host)}:{port}"
            )
            manager = app[MANAGER]
            record, host_token = await manager.create_meeting(name)

            async def running(timeline: MediaTimeline) -> LiveMeeting:
                # The link is shown once the meeting runs on the import's clock, so a
                # sidebar that opens it at once finds that meeting.
                meeting = await manager.live_on_clock(record.id, timeline)
                print(f"meeting:   {record.name} ({record.id})")
                print(f"host link: {MeetingManager.host_url(base, record, host_token)}")
                print(
                    f"following {len(args.csv)} file(s); stops after {args.idle_secs:g} s "
                    "without new rows or on Ctrl-C",
                    flush=True,
                )
                return meeting

            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            result = await import_openface(
                running,
                args.csv,
                follow=True,
                idle_secs=args.idle_secs,
                stop=stop,
                **options,
            )
        finally:
            await runner.cleanup()
    if not args.follow:
        print(f"meeting:   {record.name} ({record.id})")
        print(f"host link: {MeetingManager.host_url(base, record, host_token)}")
    for display_name, pid in result.participants.items():
        print(
            f"{display_name}: participant {pid}, {result.rows[display_name]} rows, "
            f"{result.tracked_rows[display_name]} with a face, "
            f"{result.skipped_rows[display_name]} skipped"
        )
    print(f"media time: {result.end - result.start:.1f} s")
    database = f" --database {args.database}" if args.database else ""
    print(f"report:    meetmood report {record.id} --format html{database}")
    print("Keep the host link secret: it opens the sidebar and is shown only once.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meetmood`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SettingsError as e:
        return fail(str(e))
    setup_logging(settings.logging.level)
    if args.command == "serve":
        try:
            asyncio.run(serve(settings))
        except OSError as e:
            print(f"meetmood: cannot start the server: {e}", file=sys.stderr)
            return 1
        except sqlite3.Error as e:
            # e.g. a database file removed while its -wal/-shm files stayed behind.
            path = settings.storage.database_path
            print(f"meetmood: storage.database: cannot open {path}: {e}", file=sys.stderr)
            return 1
        return 0
    if args.command == "join":
        from bot.join_cli import join_command

        return join_command(settings, args)
    if args.command == "report":
        return asyncio.run(_report_command(settings, args))
    if args.command == "eval":
        return _eval_command(settings, args)
    if args.command == "import-openface":
        return _import_openface_command(settings, args)
    if args.command == "analyze":
        return _analyze_command(settings, args)
    if args.command == "bench":
        if args.bench_command == "faces":
            return _bench_faces_command(settings, args)
        if args.bench_command == "crowd":
            return _bench_crowd_command(settings, args)
        if args.bench_command == "voice":
            return _bench_voice_command(args)
        if args.bench_command == "capacity":
            return _bench_capacity_command(settings, args)
        if args.bench_command == "startup":
            from bot.bench_startup import bench_startup, format_startup

            startup = asyncio.run(bench_startup(args.runs, args.config, tuple(args.set)))
            print(format_startup(startup, args.json))
            return 0
        if args.bench_command == "sidebar":
            from bot.bench import format_figures
            from bot.bench_sidebar import bench_sidebar

            result = asyncio.run(bench_sidebar(settings, args.participants, args.seconds))
            print(format_figures(result, args.json))
            return 0
        from bot.bench import bench_pipeline, format_figures

        figures = asyncio.run(
            bench_pipeline(settings, args.participants, args.seconds, args.send_fps)
        )
        print(format_figures(figures, args.json))
        return 0
    if args.command == "admin-token":
        return _admin_token_command(settings)
    if args.command == "meeting" and args.meeting_command in ("delete", "purge"):
        return asyncio.run(_meeting_delete_command(settings, args))
    asyncio.run(_meeting_command(settings, args))
    return 0


def face_params_from_args(settings: Settings, args: argparse.Namespace) -> FaceEmotionParams:
    """The configured face analyzer params with this command's flags applied.

    Raises:
        SettingsError: One ``key: reason`` line per bad value; the key is the flag
            when a flag set it (``--max-faces: ...``).
    """
    from pydantic import ValidationError

    from analyzers.face.emotion import FaceEmotionParams
    from bot.settings import validation_lines

    update: dict[str, Any] = {}
    for flag in ("detector", "model", "device", "max_faces"):
        value = getattr(args, flag, None)
        if value is not None:
            update[flag] = value
    merged = settings.analyzers.face_emotion.model_dump() | update
    try:
        return FaceEmotionParams.model_validate(merged)
    except ValidationError as e:
        lines = validation_lines(e, "analyzers.face_emotion")
        for field in update:
            key = f"analyzers.face_emotion.{field}:"
            flag = "--" + field.replace("_", "-") + ":"
            lines = [
                flag + line.removeprefix(key) if line.startswith(key) else line for line in lines
            ]
        raise SettingsError("\n".join(lines)) from None


def _load_face_analyzer(params: FaceEmotionParams) -> FaceEmotionAnalyzer | None:
    from analyzers.face.emotion import FaceEmotionAnalyzer

    try:
        return FaceEmotionAnalyzer.load(params)
    # ValueError: device not available; RuntimeError: weights missing or unloadable.
    except (ValueError, RuntimeError) as e:
        print(f"meetmood: cannot load the face analyzer: {e}", file=sys.stderr)
        return None


def _eval_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.eval_command == "voice":
        return _eval_voice(args)
    if args.eval_command == "sample-sets":
        from analyzers.face.bench import write_sample_sets

        try:
            folders = write_sample_sets(args.folder)
        except (OSError, RuntimeError) as e:
            print(f"meetmood: {e}", file=sys.stderr)
            return 1
        for name, path in folders.items():
            csv_name = "counts.csv" if name == "detect" else "labels.csv"
            print(f"{name}: {path}  (labels: {path / csv_name})")
        return 0
    try:
        params = face_params_from_args(settings, args)
    except SettingsError as e:
        return fail(str(e))
    try:
        if args.eval_command == "faces":
            return _eval_faces(params, args)
        return _eval_detect(params, args)
    except EvalInputError as e:
        return fail(str(e))


def _eval_voice(args: argparse.Namespace) -> int:
    from analyzers.voice import eval as voice_eval

    try:
        labels = voice_eval.read_voice_labels(args.labels)
        voice_eval.check_clips(args.folder, labels)
    except EvalInputError as e:
        return fail(str(e))
    classify: voice_eval.Classifier | None = None
    expressible = None
    if args.model is not None:
        from collections.abc import Mapping

        import numpy as np

        from analyzers.base import AnalyzerUnavailable
        from analyzers.types import Emotion
        from analyzers.voice.audio import AudioChunk
        from analyzers.voice.emotion import VoiceEmotionAnalyzer, VoiceEmotionParams
        from analyzers.voice.labels import expressible as model_classes

        try:
            analyzer = VoiceEmotionAnalyzer.load(
                VoiceEmotionParams(model=args.model, local_files_only=True, device=args.device)
            )
        except (ValueError, AnalyzerUnavailable) as e:
            print(f"meetmood: cannot load the voice emotion model: {e}", file=sys.stderr)
            return 1
        expressible = model_classes(analyzer.id2label)

        def classify(samples: np.ndarray) -> Mapping[Emotion, float]:
            return analyzer.analyze(AudioChunk("eval", 0.0, samples)).probs

    try:
        clips = voice_eval.analyse_clips(args.folder, labels, classify=classify)
    except EvalInputError as e:
        return fail(str(e))
    report = voice_eval.voice_report(clips, args.model, expressible)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(voice_eval.format_voice_report(report, verbose=args.verbose))
    return 0


def _eval_faces(params: FaceEmotionParams, args: argparse.Namespace) -> int:
    from analyzers.face import eval as face_eval

    if args.crops and args.compare_deepface:
        raise EvalInputError(
            "--compare-deepface: compares detectors' crops; it does not apply to --crops"
        )
    labels = face_eval.read_emotion_labels(args.labels)
    face_eval.check_images(args.folder, [name for name, _ in labels])
    analyzer = _load_face_analyzer(params)
    if analyzer is None:
        return 1
    report = face_eval.emotion_report(
        face_eval.predict_emotions(analyzer, args.folder, labels, crops=args.crops)
    )
    shown: dict[str, object] = {
        "model": params.model,
        "detector": "none (--crops)" if args.crops else params.detector,
        "device": str(analyzer.device),
    }
    other = None
    if args.compare_deepface:
        other = face_eval.emotion_report(
            face_eval.predict_emotions_on_deepface_crops(analyzer, args.folder, labels)
        )
    if args.json:
        out = {"settings": shown | {"crops": args.crops}} | report.to_dict()
        if other is not None:
            out["deepface_crops"] = other.to_dict()
        print(json.dumps(out, indent=2))
        return 0
    print(face_eval.format_emotion_report(report, "face emotion eval", shown, verbose=args.verbose))
    if other is not None:
        print()
        print(
            face_eval.format_emotion_report(
                other,
                "same model on DeepFace's crops",
                {"faces": "DeepFace.extract_faces(detector_backend='opencv')"},
                verbose=args.verbose,
            )
        )
    return 0


def _eval_detect(params: FaceEmotionParams, args: argparse.Namespace) -> int:
    from analyzers.face import eval as face_eval

    counts = face_eval.read_face_counts(args.labels)
    face_eval.check_images(args.folder, [name for name, _ in counts])
    analyzer = _load_face_analyzer(params)
    if analyzer is None:
        return 1
    report = face_eval.detection_report(face_eval.count_faces(analyzer, args.folder, counts))
    shown: dict[str, object] = {
        "detector": params.detector,
        "device": str(analyzer.device),
        "min_face_px": params.min_face_px,
        "max_faces": params.max_faces,
    }
    if args.json:
        print(json.dumps({"settings": shown} | report.to_dict(), indent=2))
    else:
        print(
            face_eval.format_detection_report(
                report, "face detection eval", shown, verbose=args.verbose
            )
        )
    return 0


def _bench_capacity_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.bench import format_figures
    from bot.bench_capacity import CapacityFigures, CapacityOptions, find_max, run_capacity

    options = CapacityOptions(
        seconds=args.seconds,
        width=args.width // 2 * 2,
        height=args.height // 2 * 2,
        fps=args.fps,
        warmup_secs=args.warmup,
        senders_per_process=args.senders_per_process,
        config=args.config,
        sets=tuple(args.set),
        voice_model=settings.analyzers.voice_emotion.model
        if "voice_emotion" in settings.analyzers.enabled
        else "",
    )

    def report(figures: CapacityFigures) -> None:
        print(format_figures(figures, args.json), flush=True)
        if not args.json:
            print(flush=True)

    try:
        if args.find_max:
            best, _ = asyncio.run(find_max(args.participants, options, report))
            print(json.dumps({"max_participants": best}) if args.json else f"max N: {best}")
        else:
            report(asyncio.run(run_capacity(args.participants, options)))
    except (OSError, RuntimeError) as e:
        return fail(f"bench capacity: {e}")
    return 0


def _bench_faces_command(settings: Settings, args: argparse.Namespace) -> int:
    from analyzers.face.bench import bench_faces, format_face_bench

    try:
        params = face_params_from_args(settings, args)
    except SettingsError as e:
        return fail(str(e))
    try:
        result = bench_faces(
            params,
            batch_sizes=args.batch_sizes,
            seconds=args.seconds,
            repeats=args.repeats,
            threads=args.threads,
            with_deepface=not args.no_deepface,
        )
    except (ValueError, RuntimeError) as e:
        print(f"meetmood: face bench failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else format_face_bench(result))
    return 0


def _bench_crowd_command(settings: Settings, args: argparse.Namespace) -> int:
    from analyzers.face.crowd import bench_crowd, format_crowd_bench

    try:
        params = face_params_from_args(settings, args)
    except SettingsError as e:
        return fail(str(e))
    try:
        result = bench_crowd(
            params,
            faces=args.faces,
            size=args.size,
            face_px=args.face_px,
            far=args.far,
            lfw=args.lfw,
            seconds=args.seconds,
            repeats=args.repeats,
        )
    except (ValueError, RuntimeError) as e:
        print(f"meetmood: crowd bench failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else format_crowd_bench(result))
    return 0


def _bench_voice_command(args: argparse.Namespace) -> int:
    from analyzers.voice.bench import bench_voice

    try:
        result = bench_voice(seconds=args.seconds, model=args.model, device=args.device)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"meetmood: voice bench failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else format_voice_bench(result))
    return 0


def format_voice_bench(result: dict[str, Any]) -> str:
    """``bench_voice``'s figures as a readable table."""
    rows = [
        ("audio", f"{result['audio_secs']:.1f} s ({result['audio_source']})"),
        ("voiced", f"{result['voiced_secs']:.1f} s in {result['segments']} segments"),
        (
            "VAD + prosody, CPU",
            f"{result['vad_prosody_cpu_pct_of_core']:.2f} % of one core "
            f"(wall {result['vad_prosody_wall_pct']:.2f} % of real time)",
        ),
        ("VAD model calls", str(result["vad_model_calls"])),
        (
            "emotion pieces",
            f"{result['emotion_pieces']} ({result['emotion_piece_secs']:.1f} s)",
        ),
        ("emotion model", str(result["emotion_model"])),
        (
            "emotion, CPU",
            f"{result['emotion_cpu_ms_per_voiced_sec']:.1f} ms per voiced second "
            f"(wall {result['emotion_wall_ms_per_voiced_sec']:.1f} ms)",
        ),
        ("ring buffer", f"{result['ring_nbytes'] / 1024:.0f} KiB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
