"""A meetmood server in a child process: ``python -m bot serve`` started, read and stopped.

The capacity and start-up benches and the end-to-end tests run the server as users run it,
in a process of its own, so that what they measure or check includes its start-up, its
process pool and its shutdown. :func:`start_server` launches it and returns once it prints
the address it answers at; everything it prints is kept (the newest ``keep_lines``), and,
if asked, the kernel sends it SIGTERM, a clean stop, when the process that started it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

#: The line ``meetmood serve`` prints once it answers, with its base URL.
RUNNING_AT = re.compile(r"running at (http://\S+?)/ ")


@dataclass
class ChildServer:
    """A ``meetmood serve`` child process and what it printed (stdout and stderr)."""

    proc: asyncio.subprocess.Process
    url: str = ""
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def output(self) -> str:
        """Everything kept of what it printed."""
        return "".join(self.lines)

    async def line_matching(self, pattern: str, secs: float = 30.0) -> re.Match[str]:
        """The first kept line that matches ``pattern`` (waiting for it if need be)."""
        async with asyncio.timeout(secs):
            while True:
                for line in self.lines:
                    if m := re.search(pattern, line):
                        return m
                if self.reader is not None and self.reader.done():
                    raise RuntimeError(f"the server never printed {pattern!r}:\n{self.output}")
                await asyncio.sleep(0.05)

    async def wait_models_loaded(self, secs: float) -> None:
        """Return once ``/healthz`` says the models are loaded (the server answers before)."""
        async with asyncio.timeout(secs), aiohttp.ClientSession() as http:
            while True:
                async with http.get(f"{self.url}/healthz") as resp:
                    if (await resp.json()).get("models", "ready") == "ready":
                        return
                await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGINT, secs: float = 60.0) -> int:
        """Send ``sig`` (SIGINT: the clean shutdown, as Ctrl-C), SIGKILL after ``secs``.

        Returns the exit status.
        """
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), secs)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            code = await self.proc.wait()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reader, 10)
        return code


def environment_without_settings() -> dict[str, str]:
    """This process's environment less its ``MEETMOOD_*`` settings, which would override."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MEETMOOD_")}


async def start_server(
    *,
    env: Mapping[str, str],
    config: Path | None = None,
    sets: Sequence[str] = (),
    start_secs: float = 120.0,
    keep_lines: int | None = None,
    stop_with_parent: bool = False,
) -> ChildServer:
    """Start ``python -m bot serve [--config config] [--set item]...`` with ``env``.

    Returns once the server answers (its models may still be loading: see
    :meth:`ChildServer.wait_models_loaded`). ``keep_lines``: how many of the newest printed
    lines to keep; all of them if None. A server that exits or is silent for
    ``start_secs`` before it answers is killed and the error carries what it printed.
    ``stop_with_parent`` (Linux): the kernel sends the server SIGTERM if this process
    dies first. It runs code in the forked child before exec, which is only safe while
    this process has no other threads that might hold a lock then (a bench's main
    thread before its work starts, not a test run's).
    """
    args = [sys.executable, "-m", "bot", "serve"]
    if config is not None:
        args += ["--config", str(config)]
    for item in sets:
        args += ["--set", item]
    proc = await asyncio.create_subprocess_exec(
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_stop_with_parent if stop_with_parent and sys.platform == "linux" else None,
    )
    assert proc.stdout is not None
    server = ChildServer(proc)
    try:
        async with asyncio.timeout(start_secs):
            while not server.url:
                line = (await proc.stdout.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("the server did not start:\n" + server.output[-8000:])
                server.lines.append(line)
                if m := RUNNING_AT.search(line):
                    server.url = m.group(1)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise

    async def read_rest() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            server.lines.append(raw.decode(errors="replace"))
            if keep_lines is not None:
                del server.lines[:-keep_lines]

    server.reader = asyncio.create_task(read_rest())
    return server


def _stop_with_parent() -> None:
    """In the child: be sent SIGTERM (a clean stop) when the parent dies first."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
