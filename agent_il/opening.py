"""Opening a workspace: the settings asked for checked against the ones it was made with (or a
new workspace made with them), and the encoder matched to its model and backend."""

from __future__ import annotations

import os
from typing import Any

from agent_il import strategies
from agent_il.config import WorkspaceConfig
from agent_il.encoding import adapted, layout
from agent_il.encoding.base import check_backend
from agent_il.encoding.encoder import Encoder, normalise_model_id, resolve
from agent_il.errors import WorkspaceError
from agent_il.state import WorkspaceState
from agent_il.storage.base import Workspace


def state_and_encoder(
    ws: Workspace,
    asked: dict[str, Any],
    create: bool,
    model: str | os.PathLike[str] | None,
    backend: str | None,
    encoder: Encoder | None,
    device: str | None,
) -> tuple[WorkspaceState, Encoder]:
    """The state of ``ws`` (made with the ``asked`` settings if new, else checked against them)
    and the encoder to use on it: ``encoder`` if given, else one of the workspace's model and
    backend. An encoder or ``backend`` left at ``auto`` takes the workspace's backend."""
    wanted = encoder.model_id if encoder is not None else (normalise_model_id(model) if model else None)
    if encoder is None and backend not in (None, "auto"):
        encoder = Encoder(wanted, backend=check_backend(backend), device=device)
    asked = {**asked, "model": wanted, "backend": encoder.chosen if encoder is not None else None}
    if not ws.exists():
        if not create:
            raise WorkspaceError(f"no agent-il workspace at {ws.location}")
        made = asked["model"] or normalise_model_id(None)
        chosen = encoder.backend if encoder is not None else resolve("auto", made, device)
        config = WorkspaceConfig.create(**{**asked, "model": made, "backend": chosen})
        strategies.make(config.strategy, config.strategy_config)  # validates name and options
        ws.create(WorkspaceState.new(config).to_json())
    state = WorkspaceState.from_json(ws.read_state(), ws.location)  # on a server, another may have made it
    state.config.check_same(asked)
    ws.record_stores(state.space)  # opens Chroma: an embedded workspace is this process's from now on
    fetch(ws, state.config.model)
    if encoder is None:
        encoder = Encoder(state.config.model, backend=state.config.backend, device=device)
    encoder.use_backend(state.config.backend)
    return state, encoder


def encoder_of(
    config: WorkspaceConfig, known: dict[tuple[str, str | None], Encoder], device: str | None, ws: Workspace
) -> Encoder:
    """The encoder of a state's model and backend: one this process already has (``known``, which
    a new one joins), so that a migration, a rollback of it and a restore switch encoders without
    loading one twice. An encoder adapted in ``ws`` is fetched from it first."""
    fetch(ws, config.model)
    key = (config.model, config.backend)
    if key not in known:
        known[key] = Encoder(config.model, backend=config.backend, device=device)
    return known[key]


def fetch(ws: Workspace, model: str) -> None:
    """Lay out ``model`` on this machine when it is an encoder adapted in ``ws`` (consolidation)."""
    if adapted.is_adapted(model):
        layout.ensure(model, ws.blobs.get)
