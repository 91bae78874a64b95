"""One exception family, so callers can catch everything the library raises on purpose."""


class AgentILError(Exception):
    """Base of every error agent-il raises deliberately."""


class InvalidInputError(AgentILError, ValueError):
    """Input (texts, labels, vectors, options) was rejected before anything changed."""


class WorkspaceError(AgentILError):
    """The workspace on disk is missing, locked, damaged or of another version."""


class DamagedError(WorkspaceError):
    """A file of the workspace does not match its checksum or cannot be parsed."""


class ModelMismatchError(WorkspaceError, ValueError):
    """The workspace was built with another encoder or vector dimension."""


class ToolError(AgentILError):
    """An agent's tool call was refused (bad argument, over a limit, learning not enabled); the
    message is written for the agent and its user, and nothing changed."""
