"""agent-il: an intent classifier that keeps learning new intents without forgetting old ones.

Heavy imports (torch, sentence-transformers, chromadb) happen on first use, so importing the
package, and the CLI's ``--help``, stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_il.errors import AgentILError, InvalidInputError, ModelMismatchError, WorkspaceError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from agent_il.encoding.encoder import Encoder
    from agent_il.learner import IntentLearner
    from agent_il.results import LearnReport, Prediction, Task

_LAZY = {
    "IntentLearner": "agent_il.learner",
    "Encoder": "agent_il.encoding.encoder",
    "LearnReport": "agent_il.results",
    "Prediction": "agent_il.results",
    "Task": "agent_il.results",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agent_il' has no attribute {name!r}")


__all__ = [
    "AgentILError",
    "Encoder",
    "IntentLearner",
    "InvalidInputError",
    "LearnReport",
    "ModelMismatchError",
    "Prediction",
    "Task",
    "WorkspaceError",
    "__version__",
]
