"""Fixtures shared by the test files (loaded by conftest.py as a pytest plugin).

- Isolation between tests: the root logger and ``os.environ`` are put back after each
  test, and each test starts with no analyzer loaded in the inference worker module, so
  no test passes because of what an earlier one left behind.
- Each test is of one kind, ``unit``, ``model`` or ``e2e`` (its closest marker), and
  ``unit`` is enforced: a unit test that loads a model, in its body or in any fixture it
  sets up, fails (see :func:`_unit_tests_load_no_model`), so ``pytest -m unit`` stays a
  fast, model-free loop.
- Real pieces several files need: the ``meetmood`` command run in-process, headless
  Chromium (Debian's), the host link opened as a host opens it, the astronaut photo and
  a two-face frame made from it, the MediaPipe golden data and room scene, torch on one
  thread, scripts loaded by path, a network that refuses to
  connect, and the face analyzer loaded once per session.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from bot.bench_sidebar import CHROMIUM_ARGS, CHROMIUM_PATHS, wait_for_js
from tests.media import astronaut as load_astronaut

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

    from analyzers.face.emotion import FaceEmotionAnalyzer
    from tests.janus_server import JanusServer

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Debian's Chromium, else ``chromium`` on the PATH (the path tried first is named in
#: the error when neither exists).
CHROMIUM = next(
    (p for p in (*CHROMIUM_PATHS, shutil.which("chromium") or "") if p and os.path.exists(p)),
    CHROMIUM_PATHS[0],
)


# -- what kind of test: unit, model or e2e ------------------------------------------------

KINDS = ("unit", "model", "e2e")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The closest ``unit``/``model``/``e2e`` marker wins: a parameter's, the test's, its module's.

    A module marked ``unit`` can then hold a test marked ``model``, and ``-m unit`` (which
    sees every marker up the chain) still leaves that test out: each test carries its
    kind itself, and nothing else carries one.
    """
    kinds: dict[pytest.Item, pytest.Mark] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        marks = [*(callspec.marks if callspec else ()), *item.iter_markers()]
        closest = next((m for m in marks if m.name in KINDS), None)
        if closest is not None:
            kinds[item] = closest
    for item in items:
        for node in item.listchain():
            node.own_markers[:] = [m for m in node.own_markers if m.name not in KINDS]
    for item, mark in kinds.items():
        item.add_marker(getattr(pytest.mark, mark.name)(*mark.args, **mark.kwargs))


# -- isolation between tests --------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    # The CLI's main() installs its own stderr handler and level on the root logger.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    # Code under test may set variables for its process (DeepFace's home, for one).
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _fresh_inference_workers() -> None:
    # Thread-mode pools share analyzers._worker with this process: a model one test
    # loaded (or found unavailable) would otherwise be reused by the next.
    worker = sys.modules.get("analyzers._worker")
    if worker is not None:
        with worker._lock:
            worker._loaded.clear()
            worker._unavailable.clear()
            worker._params.clear()


class ModelLoadInUnitTest(AssertionError):
    """A test marked ``unit`` tried to load a model.

    An AssertionError, so the loaders' own handling of OSError and ValueError lets it through.
    """


@contextmanager
def refused_model_loads() -> Iterator[list[str]]:
    """Every model loader raises :class:`ModelLoadInUnitTest`; yields the attempts made.

    The loaders are the ones the project's models go through: ``torch.load`` (the
    mini-Xception and MediaPipe weights, DeepFace's), ``torch.jit.load`` and onnxruntime
    (silero VAD, the face graphs), OpenCV's cascade (the Haar detector) and transformers'
    ``from_pretrained`` (speech emotion). transformers is heavy to import, so it is
    patched only when already imported; importing its model code counts as an attempt.
    """
    import cv2
    import onnxruntime
    import torch

    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def load(*args: object, **kwargs: object) -> Any:
            attempts.append(what)
            raise ModelLoadInUnitTest(f"{what} in a test marked unit; mark it model or e2e")

        return load

    transformers_models = "transformers.modeling_utils"
    had_transformers = transformers_models in sys.modules
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "load", refuse("torch.load"))
        patch.setattr(torch.jit, "load", refuse("torch.jit.load"))
        patch.setattr(cv2, "CascadeClassifier", refuse("cv2.CascadeClassifier"))
        patch.setattr(onnxruntime, "InferenceSession", refuse("onnxruntime"))
        if had_transformers:
            pretrained = sys.modules[transformers_models].PreTrainedModel
            patch.setattr(
                pretrained, "from_pretrained", classmethod(refuse("transformers from_pretrained"))
            )
        yield attempts
    if not had_transformers and transformers_models in sys.modules:
        attempts.append("import of transformers' model code")


def _unit_tests_load_no_model(item: pytest.Item) -> Generator[None, object, object]:
    """Under the ``unit`` marker a model load fails the test, wherever it happens.

    Guards the whole set-up and the call, so a model loaded by a module- or
    session-scoped fixture that a unit test is the first to need fails that test too
    (with ``-m unit`` a unit test is always the first). Loaders that catch the error
    and carry on (an analyzer marked unavailable) still fail it: the attempts are checked
    after the phase.
    """
    if item.get_closest_marker("unit") is None:
        return (yield)
    with refused_model_loads() as attempts:
        result = yield
    if attempts:
        raise ModelLoadInUnitTest(f"a unit test loaded a model: {attempts}; mark it model or e2e")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _unit_tests_load_no_model(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _unit_tests_load_no_model(item))


# -- real pieces --------------------------------------------------------------------------


#: Chromium flags for a fake camera and microphone used without a prompt, WebRTC on
#: loopback with plain host candidates (no mDNS names), and no QUIC traffic of its own.
FAKE_MEDIA_ARGS = (
    "--disable-quic",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``meetmood *argv`` in this process: its exit status, standard output and error."""
    from bot.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse exits on its own usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    """Headless Chromium with the bench's flags (no GPU, no own traffic) and ``extra_args``."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (see :func:`chromium`), closed after the test."""
    async with chromium() as b:
        yield b


async def open_host_link(page: Page, base: str, meeting_id: str, token: str) -> None:
    """Follow the host link in ``page`` and wait until its sidebar is live.

    The link sets the host cookie and refreshes to the address without the token. A test
    that clicks before the sidebar's script has run clicks a button with nothing wired to
    it yet; once the socket is live the whole script has run.
    """
    await page.goto(f"{base}/host/{meeting_id}?token={token}")
    await page.wait_for_url(f"{base}/host/{meeting_id}")
    await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=10_000)


@cache
def _astronaut() -> np.ndarray:
    image = load_astronaut()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    return image


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusServer]:
    """A real Janus VideoRoom server (Debian's janus) on loopback, for one test module."""
    from tests.janus_server import JanusServer, remove_ifb

    server = JanusServer(tmp_path_factory.mktemp("janus"))
    server.start()
    yield server
    server.stop()
    remove_ifb()


@pytest.fixture
def astronaut() -> np.ndarray:
    """scikit-image's astronaut, 512x512 RGB; each test gets its own copy to change."""
    return _astronaut().copy()


@pytest.fixture
def two_faces(astronaut: np.ndarray) -> np.ndarray:
    """1024x512 RGB: the astronaut (face about 97 px) beside a 3/4-size copy on black."""
    import cv2

    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    right = np.zeros_like(astronaut)
    right[:384, :384] = small
    return np.ascontiguousarray(np.concatenate([astronaut, right], axis=1))


#: The torch port's golden data (tests/test_mediapipe_port.py): TFLite's inputs and
#: outputs for each network, and MediaPipe's own results on real frames.
MEDIAPIPE_GOLDEN = REPO_ROOT / "tests" / "data" / "mediapipe_golden.npz"


@pytest.fixture(scope="session")
def mediapipe_golden() -> dict[str, np.ndarray]:
    """The golden file, with each network's input crops decoded (PNG) into one array."""
    import re

    import cv2

    with np.load(MEDIAPIPE_GOLDEN) as loaded:
        raw = {k: loaded[k] for k in loaded.files}
    out: dict[str, np.ndarray] = {}
    for net in ("blazeface", "facemesh", "iris", "blazeface_full_range"):
        keys = sorted(
            (k for k in raw if re.fullmatch(rf"input_{net}_\d+", k)),
            key=lambda k: int(k.rsplit("_")[-1]),
        )
        out[f"input_{net}"] = np.stack(
            [cv2.imdecode(raw.pop(k), cv2.IMREAD_UNCHANGED) for k in keys]
        )
    out.update(raw)
    return out


#: The room scene: the image and each face's box.
RoomScene = tuple[np.ndarray, list[tuple[float, float, float, float]]]


@pytest.fixture(scope="session")
def room_scene() -> RoomScene:
    """The synthetic meeting room of scripts/convert_mediapipe_weights.py, and its face boxes."""
    image, boxes = load_script("convert_mediapipe_weights").room_scene()
    return image, boxes


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for a module's tests, as in the inference workers (torch_threads = 1).

    These tests check numbers, not speed; on a 2-core box shared with other work a second
    OpenMP thread mostly waits.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    path = REPO_ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the script look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every socket connect fails, as offline, and is recorded; any attempt fails the test.

    Yields the list of addresses tried, for the test to look at.
    """
    connects: list[object] = []

    def no_connect(sock: socket.socket, address: object) -> None:
        connects.append(address)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    yield connects
    assert connects == []


@pytest.fixture(scope="session")
def face_analyzer() -> FaceEmotionAnalyzer:
    """The default face analyzer (MediaPipe landmarks, mini-Xception) on the CPU, loaded once.

    Safe to share: ``analyze`` keeps no state between calls (tracking lives in the
    sessions), and tests that hook its network remove the hook.
    """
    from analyzers.face.emotion import FaceEmotionAnalyzer, FaceEmotionParams

    return FaceEmotionAnalyzer.load(FaceEmotionParams(device="cpu"))
