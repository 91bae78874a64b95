"""Who may call what: a bearer token's scope against the tool surface. One :class:`IntentTools`
per scope over one learner: ``read`` may classify and list, ``learn`` may also learn and correct
(learning is on for it: a correction is learned at once), ``admin`` may also snapshot and roll
back. Without tokens (``--no-auth``, loopback only) the operator's ``--allow-learning`` decides,
as for stdio."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent_il.errors import AgentILError, WorkspaceError
from agent_il.serving.tokens import SCOPES, TokenInfo, TokenStore, bearer, scope_allows
from agent_il.tools.models import ToolLimits
from agent_il.tools.surface import CLASSIFY_INTENT, CORRECT_INTENT, LEARN_INTENT, LIST_INTENTS, IntentTools

if TYPE_CHECKING:
    from agent_il.learner import IntentLearner

log = logging.getLogger("agent_il.serving")
TOOL_SCOPES = {CLASSIFY_INTENT: "read", LIST_INTENTS: "read", CORRECT_INTENT: "learn", LEARN_INTENT: "learn"}


class Unauthorized(AgentILError):
    """No token, or one that is not (or no longer) stored: HTTP 401."""


class Forbidden(AgentILError):
    """A valid token whose scope does not allow the call, or a tool the operator turned off: HTTP 403."""


@dataclass
class Access:
    """The tools each caller gets. ``tokens`` None: authentication is off."""

    learner: IntentLearner
    tokens: TokenStore | None
    allow_learning: bool = False
    limits: ToolLimits | None = None
    inbox: bool = True

    def __post_init__(self) -> None:
        def tools(learning: bool) -> IntentTools:
            return IntentTools(self.learner, allow_learning=learning, limits=self.limits, inbox=self.inbox)

        if self.tokens is None:
            self._tools = {scope: tools(self.allow_learning) for scope in SCOPES}
        else:
            self._tools = {scope: tools(scope != "read") for scope in SCOPES}

    def offered(self) -> IntentTools:
        """The widest surface this server offers (what an MCP client lists): each call is checked."""
        return self._tools["admin"]

    @property
    def auth(self) -> bool:
        return self.tokens is not None

    def authenticate(self, authorization: str | None) -> TokenInfo | None:
        """The token an ``Authorization: Bearer ...`` header carries (None when authentication is
        off). The token is never part of a message."""
        if self.tokens is None:
            return None
        token = bearer(authorization)
        if token is None:
            raise Unauthorized("missing bearer token: send Authorization: Bearer <token>")
        found = self.verify(token)
        if found is None:
            raise Unauthorized("invalid or revoked token")
        return found

    def verify(self, token: str) -> TokenInfo | None:
        """The stored token ``token`` is (None: unknown, or authentication off). A damaged token file
        is the operator's to see in the log: the caller, not yet authenticated, gets no path."""
        if self.tokens is None:
            return None
        try:
            return self.tokens.verify(token)
        except WorkspaceError as exc:
            log.error("%s", exc)
            raise WorkspaceError("the server cannot read its token file; its log says why") from None

    def allow(self, token: TokenInfo | None, needed: str) -> str:
        """The scope the call runs with; :class:`Forbidden` when ``token``'s is below ``needed``."""
        return self.scope_for(token.name if token else None, token.scope if token else None, needed)

    def scope_for(self, name: str | None, held: str | None, needed: str) -> str:
        """As :meth:`allow`, for a token known by ``name`` and scope ``held`` (None: authentication is off)."""
        if held is None:
            if needed == "admin":
                raise Forbidden("administration needs authentication: serve with tokens (agent-il token create)")
            return "admin"
        if not scope_allows(held, needed):
            raise Forbidden(f"token {name!r} has scope {held}; this needs {needed}")
        return held

    def tools(self, token: TokenInfo | None, tool: str) -> IntentTools:
        """The tool surface for ``token`` calling ``tool``, its scope checked."""
        return self._tools[self.allow(token, TOOL_SCOPES[tool])]

    def tools_for(self, name: str | None, held: str | None, tool: str) -> IntentTools:
        """As :meth:`tools`, for a token known by name and scope (an MCP access token)."""
        return self._tools[self.scope_for(name, held, TOOL_SCOPES[tool])]
