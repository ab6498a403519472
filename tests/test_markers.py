"""The test kinds mean what they say: a ``unit`` test that loads a model fails.

Runs small suites in a pytest subprocess with this project's fixtures plugin, so the
guard is checked as ``pytest -m unit`` meets it: a load in the test body, in a
module-scoped fixture (set up before any per-test fixture could patch the loaders), and
one that the loader's caller swallows.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.fixtures import REPO_ROOT

pytestmark = pytest.mark.e2e  # a whole pytest process (it imports torch)

SUITE = """
import pytest
import torch

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def weights():
    return torch.load("weights.pt")


def test_in_a_module_fixture(weights):
    pass


def test_in_the_body():
    torch.load("weights.pt")


def test_swallowed():
    try:
        torch.load("weights.pt")
    except Exception:
        pass


@pytest.mark.model
def test_marked_model_may_load():
    assert torch.load("weights.pt")["w"].tolist() == [1.0]


def test_without_a_model():
    assert 1 + 1 == 2
"""


def test_unit_tests_cannot_load_models_anywhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    torch.save({"w": torch.ones(1)}, pytester.path / "weights.pt")
    pytester.makepyfile(test_kinds=textwrap.dedent(SUITE))
    pytester.makeini(
        "[pytest]\nmarkers =\n    unit: u\n    model: m\n    e2e: e\n"
        "filterwarnings =\n    error\nasyncio_default_fixture_loop_scope = function\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("COLUMNS", "400")  # whole summary lines
    result = pytester.runpytest_subprocess("-p", "tests.fixtures", "-p", "no:cacheprovider", "-rA")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed"), outcomes.get("errors")) == (2, 2, 1)
    result.stdout.fnmatch_lines_random(
        [
            "ERROR test_kinds.py::test_in_a_module_fixture - *torch.load in a test marked unit*",
            "FAILED test_kinds.py::test_in_the_body - *torch.load in a test marked unit*",
            "FAILED test_kinds.py::test_swallowed - *a unit test loaded a model: ?'torch.load'?*",
            "PASSED test_kinds.py::test_marked_model_may_load",
            "PASSED test_kinds.py::test_without_a_model",
        ]
    )
