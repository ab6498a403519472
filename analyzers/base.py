"""The Analyzer interface every model plugs in through.

An analyzer is synchronous and pure: numpy in, dataclass out. Loading is
separate from use so that a slow load never happens in the middle of a meeting;
``load`` runs once per inference worker process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel

In = TypeVar("In")
Out = TypeVar("Out")


class AnalyzerUnavailable(RuntimeError):
    """An analyzer's model cannot be loaded here (offline and not cached, bad path).

    Raised by :meth:`Analyzer.load` for conditions a user fixes by providing the
    model, as opposed to bugs. The inference pool then runs without that analyzer
    and says so once, so the rest of the pipeline keeps working.
    """


class Analyzer(ABC, Generic[In, Out]):
    """Base class for models run by the inference pool.

    Instances live in an inference worker process (or, in tests, in the calling
    thread) and are never shared between threads.
    """

    #: Registry key and config section name, e.g. ``"face_emotion"``.
    name: ClassVar[str]
    #: The pydantic model that holds this analyzer's settings.
    params_type: ClassVar[type[BaseModel]]

    @classmethod
    @abstractmethod
    def load(cls, params: BaseModel) -> Self:
        """Build the analyzer and load its weights. Blocking; call once per process."""

    @abstractmethod
    def analyze(self, sample: In) -> Out:
        """Analyse one sample. Synchronous; never touches the event loop."""

    def analyze_batch(self, samples: Sequence[In]) -> list[Out]:
        """Analyse several samples; analyzers that can batch their models override this."""
        return [self.analyze(sample) for sample in samples]
