"""Schemathesis against a running ``meetmood serve``: no 5xx, answers as documented.

The cases come from the OpenAPI document (:mod:`web.openapi`), in schemathesis's three
phases: the document's examples, boundary values of every parameter and body field
(valid and invalid), and random data (valid and invalid). The server is a real
``python -m bot serve`` child with no analyzer to load; every answer is checked for
no 5xx, a documented status and content type, and a body that fits its schema. At the
end the server must still be running and answer ``/healthz``.

So that the cases get past the credential checks and reach the handlers' real work,
each one is sent with the credential its operation's ``security`` names (the admin
token; the host token of the meeting in the path), and most use a real meeting id and
the meeting's real join token (a stable hash of the generated value picks which: some
keep the generated id, some get an ended meeting). Operations that end or delete a
meeting get a fresh one each time. Nothing is left out:

- the join offers' SDP stays random, so the answerer must refuse it with a 4xx;
- a bot's ``url`` keeps its scheme and path but points at a closed loopback port, so
  that no case waits on a name lookup or sends anything beyond this machine;
- the sidebar WebSocket is fuzzed as the plain ``GET`` a fuzzer sends (no upgrade: 400);
  the messages on an open socket are not (they are server to client only, and covered
  by tests/test_api.py and the sidebar tests).

The cases are the same on every run (``derandomize``). To look further, run with
``FUZZ_RANDOM=1`` (new cases each run) and ``FUZZ_EXAMPLES=200`` (random cases per
operation).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN, ADMIN_TOKEN, make_settings, only_loopback
from tests.served import settings_env
from web.app import STATIC_DIR
from web.openapi import OPERATIONS, document

pytestmark = pytest.mark.e2e

#: Random cases per operation in the fuzzing phase (the other phases add their own).
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 20))

SCHEMA = schemathesis.openapi.from_dict(document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

#: What the server runs with, as ``meetmood serve`` settings.
SERVER_SETTINGS: dict[str, Any] = {
    "server.port": 0,
    "webrtc.ice_addresses": ["127.0.0.1"],
    "webrtc.drop_mdns_candidates": True,
    "inference.mode": "thread",
    # Nothing to load: the cases are about the API, and the server starts in seconds.
    "analyzers.enabled": [],
    "analyzers.voice_emotion.local_files_only": True,
    # Every case comes from 127.0.0.1: the per-address join limit (tests/test_join_limits.py)
    # would otherwise answer 429 before the offer is read.
    "limits.join_attempts_per_minute": 100_000,
    "storage.flush_interval_secs": 0.1,
}


@dataclass
class Meeting:
    id: str
    host_token: str
    join_token: str


@dataclass
class Served:
    """The server under test and what the cases use."""

    proc: subprocess.Popen[str]
    url: str
    live: Meeting
    ended: Meeting
    csrf: tuple[str, str]  # (cookie, form token) of the home page
    bot_port: int  # a loopback port nothing listens on
    output: list[str] = field(default_factory=list)
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    by_operation: dict[str, dict[str, int]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def meeting(self) -> Meeting:
        """A new meeting, created over the API with the admin token."""
        return create_meeting(self.url)

    @property
    def log(self) -> str:
        return "".join(self.output)


def create_meeting(url: str) -> Meeting:
    resp = requests.post(f"{url}/api/meetings", json={"name": "Fuzz"}, headers=ADMIN, timeout=10)
    assert resp.status_code == 201, resp.text
    data = resp.json()
    return Meeting(data["id"], data["host_token"], data["join_url"].split("token=")[1])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not only_loopback():
        pytest.fail("the fuzzing test runs only inside scripts/in_netns.sh")
    tmp = tmp_path_factory.mktemp("fuzz")
    values = {
        **SERVER_SETTINGS,
        "storage.database": str(tmp / "meetmood.sqlite3"),
        # Not there yet: the first upload makes it.
        "recordings.upload_dir": str(tmp / "uploads"),
    }
    make_settings(tmp, **values)  # writes the admin token beside the database
    env = settings_env(values)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:  # drains the pipe all along, so the server never blocks on it
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "running at" in line:
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        started.wait(60)
        m = re.search(r"running at (http://\S+?)/ ", "".join(lines))
        if m is None:
            pytest.fail("the server did not start:\n" + "".join(lines))
        url = m.group(1)
        home = requests.get(url + "/", timeout=10)
        form_token = home.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        ended = create_meeting(url)
        resp = requests.post(
            f"{url}/api/meetings/{ended.id}/end",
            headers={"Authorization": f"Bearer {ended.host_token}"},
            timeout=10,
        )
        assert resp.status_code == 200
        yield Served(
            proc,
            url,
            live=create_meeting(url),
            ended=ended,
            csrf=(home.cookies["meetmood_csrf"], form_token),
            bot_port=_closed_port(),
            output=lines,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(10)
        proc.stdout.close()


def _pick(value: object, choices: int) -> int:
    """A stable choice among ``choices`` for a generated value (the same case, the same pick)."""
    return zlib.crc32(repr(value).encode()) % choices


#: Files the pages use, for some of the static route's cases.
STATIC_FILES = sorted(str(p.relative_to(STATIC_DIR)) for p in STATIC_DIR.rglob("*") if p.is_file())

#: Schemes a bot's URL gets (``None``: the generated one), so that cases reach the connect.
BOT_SCHEMES = (None, "http", "https", "ws", "wss")


def _loopback(url: object, port: int) -> object:
    """The URL with its host replaced by a closed loopback port (unparsable URLs stay)."""
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme = BOT_SCHEMES[_pick(url, len(BOT_SCHEMES))] or parts.scheme
    return urlunsplit(parts._replace(scheme=scheme, netloc=f"127.0.0.1:{port}"))


def prepare(case: schemathesis.Case, served: Served) -> tuple[dict[str, str], dict[str, str]]:
    """Point the case at real meetings and give it its credentials: (headers, cookies)."""
    path, method = case.operation.path, case.method.lower()
    # None: a method the path does not have (the coverage phase tries them: 405 expected).
    operation = OPERATIONS[path].get(method)
    meeting = served.live
    params = case.path_parameters or {}
    if "meeting_id" in params:
        if path == "/api/meetings/{meeting_id}" and method == "delete" or path.endswith("/end"):
            meeting = served.meeting()  # each destructive case gets its own meeting
        elif _pick(params["meeting_id"], 8) == 1:
            meeting = served.ended
        if _pick(params["meeting_id"], 8) != 0:  # one in eight keeps the generated id
            params["meeting_id"] = meeting.id
    body = case.body
    if isinstance(body, dict):
        if "offer" in body and _pick(body.get("token"), 4) != 0:
            # Past the token and consent checks, so that the random SDP reaches the answerer.
            body["token"] = meeting.join_token
            body["consent"] = True
        if "url" in body:
            body["url"] = _loopback(body["url"], served.bot_port)
        if path == "/meetings" and _pick(body.get("csrf_token"), 4) != 0:
            # The home page's form, as the browser that loaded it would send it.
            body["csrf_token"] = served.csrf[1]
            body["admin_token"] = ADMIN_TOKEN
    if path == "/static/{filename}" and _pick(params.get("filename"), 4) == 0:
        params["filename"] = STATIC_FILES[_pick(params.get("filename"), len(STATIC_FILES))]
    if path == "/join/{meeting_id}" and _pick(case.query, 4) != 0:
        case.query = {**(case.query or {}), "token": meeting.join_token}
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {"meetmood_csrf": served.csrf[0]}
    security = operation.security if operation is not None else ()
    schemes = {name for requirement in security for name in requirement}
    if "adminToken" in schemes:
        headers.update(ADMIN)
    if "hostToken" in schemes:
        headers["Authorization"] = f"Bearer {meeting.host_token}"
    elif "hostCookie" in schemes:
        cookies["meetmood_host"] = meeting.host_token
    return headers, cookies


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),  # the same cases each run: CI reproducible
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_answers_as_documented(
    case: schemathesis.Case, served: Served
) -> None:
    headers, cookies = prepare(case, served)
    response = case.call(base_url=served.url, headers=headers, cookies=cookies, timeout=45)
    served.cases += 1
    served.statuses[response.status_code] = served.statuses.get(response.status_code, 0) + 1
    tally = served.by_operation.setdefault(f"{case.method} {case.operation.path}", {})
    code = error_code(response)
    outcome = f"{response.status_code} {code}" if code else str(response.status_code)
    tally[outcome] = tally.get(outcome, 0) + 1
    if response.status_code == 502 and case.operation.path.endswith("/bots"):
        # The bot's remote server is a closed port by design: "unreachable" is the answer.
        assert code == "server_unreachable", response.text
        case.validate_response(response, checks=CHECKS, excluded_checks=[not_a_server_error])
    else:
        case.validate_response(response, checks=CHECKS)


def error_code(response: schemathesis.Response) -> str | None:
    """The ``code`` of a JSON error answer."""
    if response.status_code < 400:
        return None
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def test_server_is_alive_and_healthz_answers_after_the_fuzzing(served: Served) -> None:
    """Runs after the fuzzing in file order; alone, it checks the fresh server the same way."""
    assert served.proc.poll() is None, "the server died:\n" + "".join(served.output)
    start = time.monotonic()
    resp = requests.get(f"{served.url}/healthz", timeout=5)
    took = time.monotonic() - start
    health = {"status": "ok", "models": "ready", "analyzers": {}}  # no analyzer to load
    assert resp.status_code == 200 and resp.json() == health
    print(
        f"\nfuzzing: {served.cases} cases in {time.monotonic() - served.started:.1f} s, "
        f"statuses {dict(sorted(served.statuses.items()))}; /healthz then took "
        f"{took * 1000:.0f} ms",
        file=sys.stderr,
    )
    for label, tally in sorted(served.by_operation.items()):
        if sum(tally.values()) > 1:  # not the one-off probes of methods a path lacks (405)
            print(f"  {label}: {dict(sorted(tally.items()))}", file=sys.stderr)
    # Each 500 is logged with its traceback; a failure that did not reach a client
    # (a background task) is logged too.
    assert "Traceback" not in served.log, served.log
