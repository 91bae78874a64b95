"""The REST API (``agent-il serve http``): the agent tools as plain HTTP for systems that are not
MCP clients. Same tool surface, limits and messages: the body is handed to
:meth:`IntentTools.acall` as sent, so the core validates it (one validator, messages that do not
echo the caller's values), and a refusal is a 4xx with the tool's message, ``{"error": ...}``.
Tool calls run on worker threads, so a classify is answered while a learn runs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

import agent_il
from agent_il.errors import AgentILError, InvalidInputError, ToolError, WorkspaceError
from agent_il.serving.access import Access, Forbidden, Unauthorized
from agent_il.serving.guard import Guard, GuardSettings
from agent_il.serving.metrics import CONTENT_TYPE, Metrics
from agent_il.tools.models import ToolResult
from agent_il.tools.surface import CLASSIFY_INTENT, CORRECT_INTENT, LEARN_INTENT, LIST_INTENTS, SPECS

log = logging.getLogger("agent_il.serving.rest")
STATUS = {Unauthorized: 401, Forbidden: 403, ToolError: 422, InvalidInputError: 422, WorkspaceError: 503}


class Problem(BaseModel):
    error: str


class _AdminInput(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt argument is an error, as for the tools


class SnapshotInput(_AdminInput):
    name: str | None = Field(None, description="Letters, digits, '.', '_', '-' (default: a timestamp).")


class RenameInput(_AdminInput):
    old: str = Field(description="The intent to rename.")
    new: str = Field(description="Its new name, not in use (onto a known intent is a merge).")


class MergeInput(_AdminInput):
    labels: list[str] = Field(min_length=2, description="The intents to merge.")
    into: str = Field(description="The merged intent: one of them, or a new name.")


class DeleteInput(_AdminInput):
    label: str = Field(description="The intent to retire, with its examples.")


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in codes}


def build_app(access: Access, settings: GuardSettings) -> Guard:
    """The API behind its :class:`Guard` (Host, Origin, rate and body limits), with its own metrics."""
    metrics = Metrics(access.learner)
    app = FastAPI(
        title="agent-il",
        version=agent_il.__version__,
        description="Intent classification that keeps learning. Send `Authorization: Bearer <token>` "
        "(agent-il token create NAME --scope read|learn|admin).",
    )
    learner = access.learner

    async def authenticated(request: Request, needed: str) -> Any:
        token = access.authenticate(request.headers.get("authorization"))
        access.allow(token, needed)
        return token

    async def tool(request: Request, name: str, with_body: bool = True) -> ToolResult:
        token = await authenticated(request, "read")
        tools = access.tools(token, name)
        if name not in {s.name for s in tools.specs()}:
            raise Forbidden(f"this server does not offer {name} (the operator enables it with --allow-learning)")
        arguments = await _json_object(request) if with_body else {}
        start = time.perf_counter()
        result = await tools.acall(name, arguments)
        metrics.tool_call(name, result, time.perf_counter() - start)
        return result

    errors = _responses(401, 403, 413, 422, 429)

    @app.post("/v1/classify", response_model=SPECS[CLASSIFY_INTENT].output_model, responses=errors,
              openapi_extra=_body_doc(SPECS[CLASSIFY_INTENT].input_model), summary=SPECS[CLASSIFY_INTENT].title,
              description=SPECS[CLASSIFY_INTENT].description)  # fmt: skip
    async def classify(request: Request) -> ToolResult:
        return await tool(request, CLASSIFY_INTENT)

    @app.get("/v1/intents", response_model=SPECS[LIST_INTENTS].output_model, responses=errors,
             summary=SPECS[LIST_INTENTS].title, description=SPECS[LIST_INTENTS].description)  # fmt: skip
    async def intents(request: Request) -> ToolResult:
        return await tool(request, LIST_INTENTS, with_body=False)

    @app.post("/v1/learn", response_model=SPECS[LEARN_INTENT].output_model, responses=errors,
              openapi_extra=_body_doc(SPECS[LEARN_INTENT].input_model), summary=SPECS[LEARN_INTENT].title,
              description=SPECS[LEARN_INTENT].description + " Needs a learn token.")  # fmt: skip
    async def learn(request: Request) -> ToolResult:
        return await tool(request, LEARN_INTENT)

    @app.post("/v1/feedback", response_model=SPECS[CORRECT_INTENT].output_model, responses=errors,
              openapi_extra=_body_doc(SPECS[CORRECT_INTENT].input_model), summary=SPECS[CORRECT_INTENT].title,
              description=SPECS[CORRECT_INTENT].description + " Needs a learn token.")  # fmt: skip
    async def feedback(request: Request) -> ToolResult:
        return await tool(request, CORRECT_INTENT)

    async def administer(request: Request, model: type[BaseModel] | None, run: Callable[..., Any]) -> Any:
        """An admin's write: its body checked against ``model``, run after any other write."""
        await authenticated(request, "admin")
        args = [_validated(model, await _json_object(request))] if model is not None else []
        return await learner.awrite(run, *args)

    @app.post("/v1/snapshots", responses=errors, openapi_extra=_body_doc(SnapshotInput),
              summary="Snapshot the workspace (admin)")  # fmt: skip
    async def snapshot(request: Request) -> dict[str, Any]:
        return await administer(request, SnapshotInput, lambda a: learner.snapshot(a.name).to_dict())

    @app.post("/v1/rollback", responses=errors, summary="Undo the last learn or edit (admin)")
    async def rollback(request: Request) -> dict[str, Any]:
        return await administer(request, None, lambda: {"restored": learner.rollback().name})

    @app.post("/v1/intents/rename", responses=errors, openapi_extra=_body_doc(RenameInput),
              summary="Rename an intent (admin)")  # fmt: skip
    async def rename(request: Request) -> dict[str, Any]:
        return await administer(request, RenameInput, lambda a: learner.rename_intent(a.old, a.new).to_dict())

    @app.post("/v1/intents/merge", responses=errors, openapi_extra=_body_doc(MergeInput),
              summary="Merge intents into one (admin)")  # fmt: skip
    async def merge(request: Request) -> dict[str, Any]:
        return await administer(request, MergeInput, lambda a: learner.merge_intents(a.labels, a.into).to_dict())

    @app.post("/v1/intents/delete", responses=errors, openapi_extra=_body_doc(DeleteInput),
              summary="Delete an intent and its examples (admin)")  # fmt: skip
    async def delete(request: Request) -> dict[str, Any]:
        return await administer(request, DeleteInput, lambda a: learner.delete_intent(a.label).to_dict())

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the workspace answers a state read and has intents to classify against",
             responses={503: {"description": "not ready"}})  # fmt: skip
    async def readyz() -> JSONResponse:
        state = learner.state
        body: dict[str, Any] = {"generation": state.generation, "intents": len(state.labels)}
        try:  # one read of the committed state (a file, or one request to the Chroma server), off the loop
            await asyncio.to_thread(learner.workspace.latest_generation)
        except Exception as exc:  # whatever the storage raises, the answer is "not ready"
            log.error("readiness: the workspace cannot be read: %s", exc)
            return JSONResponse({"ready": False, **body, "reason": "the workspace cannot be read"}, 503)
        if not state.labels:
            return JSONResponse({"ready": False, **body, "reason": "no intents learned yet"}, 503)
        return JSONResponse({"ready": True, **body}, 200)

    @app.get("/metrics", summary="Prometheus metrics (a read token when authentication is on)")
    async def prometheus(request: Request) -> Response:
        await authenticated(request, "read")
        return Response(await metrics.arender(), media_type=CONTENT_TYPE)

    @app.exception_handler(AgentILError)
    async def refused(request: Request, exc: AgentILError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
        headers = {"www-authenticate": 'Bearer realm="agent-il"'} if status == 401 else None
        return JSONResponse({"error": " ".join(str(exc).split())}, status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request"}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, 500)

    return Guard(app, settings, metrics, access.tokens)


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ToolError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ToolError(f"the body must be a JSON object of named arguments, got {type(body).__name__}")
    return body


def _validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from agent_il.tools.surface import validation_message

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ToolError(validation_message(exc)) from None
