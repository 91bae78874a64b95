"""The MCP server over streamable HTTP with agent-il's bearer tokens, as ``agent-il serve mcp
--transport http`` runs it (the SDK's resource-server auth, agent-il's guard, /metrics), served
from a thread on loopback and driven by the official MCP client sending a bearer token."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_il_mcp.server import http_app
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from agent_il import IntentLearner
from agent_il.serving.access import Access
from agent_il.serving.guard import GuardSettings
from agent_il.serving.runner import background
from agent_il.serving.tokens import TokenStore
from tests.helpers import resident_bytes

PIZZA = ["i want to order a pizza", "get me a large pepperoni pizza", "order two margherita pizzas for tonight"]


class Served:
    def __init__(self, url: str, learner: IntentLearner, store: TokenStore, tokens: dict[str, str]) -> None:
        self.url, self.learner, self.store, self.tokens = url, learner, store, tokens

    def client(self, token: str | None) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        http = create_mcp_http_client(headers=headers)
        return Client(streamable_http_client(f"{self.url}/mcp", http_client=http), read_timeout_seconds=120)


@pytest.fixture(scope="module")
def served(learned_seed: Path, tmp_path_factory: pytest.TempPathFactory, tool_encoder) -> Iterator[Served]:
    home = shutil.copytree(learned_seed, tmp_path_factory.mktemp("mcp-auth") / "kb")
    store = TokenStore(home / "tokens.json")
    tokens = {scope: store.create(f"t-{scope}", scope) for scope in ("read", "learn")}
    learner = IntentLearner.open(home, encoder=tool_encoder)
    access = Access(learner, TokenStore(home / "tokens.json"))
    guard = GuardSettings(max_body_bytes=50_000, rate_limit=200)
    with socket.socket() as s:  # the app publishes its own URL: choose the port first
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with background(http_app(access.offered(), access, guard, url), port=port):
        yield Served(url, learner, store, tokens)
    learner.close()


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content


def test_a_read_token_classifies_and_cannot_learn(served: Served) -> None:
    async def main() -> None:
        async with served.client(served.tokens["read"]) as client:
            assert sorted(t.name for t in (await client.list_tools()).tools) == ["classify_intent", "list_intents"]
            out = structured(await client.call_tool("classify_intent", {"text": "i need to pay my water bill"}))
            assert out["label"] == "pay_bill"
            refused = await client.call_tool("learn_intent", {"label": "order_pizza", "examples": PIZZA})
            assert refused.is_error and "token 't-read' has scope read; this needs learn" in refused.content[0].text
            fix = await client.call_tool("correct_intent", {"text": "hi", "label": "pay_bill"})
            assert fix.is_error
        async with served.client(served.tokens["learn"]) as client:
            listed = sorted(t.name for t in (await client.list_tools()).tools)
            assert listed == ["classify_intent", "correct_intent", "learn_intent", "list_intents"]
            out = structured(await client.call_tool("learn_intent", {"label": "order_pizza", "examples": PIZZA}))
            assert out["new_intent"] is True

    asyncio.run(main())
    assert "order_pizza" in served.learner.labels


def test_no_wrong_or_revoked_token_is_401_with_resource_metadata(served: Served) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"accept": "application/json, text/event-stream"}
    for auth in (None, "Bearer ail_wrong", "Basic x"):
        r = httpx.post(f"{served.url}/mcp", json=body, headers={**headers, **({"authorization": auth} if auth else {})})
        assert r.status_code == 401 and "resource_metadata" in r.headers["www-authenticate"], r.text
    meta = httpx.get(f"{served.url}/.well-known/oauth-protected-resource/mcp").json()
    assert meta["resource"] == f"{served.url}/mcp" and meta["scopes_supported"] == ["read"]
    doomed = served.store.create("doomed", "read")
    ok = httpx.post(f"{served.url}/mcp", json=body, headers={**headers, "authorization": f"Bearer {doomed}"})
    assert ok.status_code != 401
    served.store.revoke("doomed")
    gone = httpx.post(f"{served.url}/mcp", json=body, headers={**headers, "authorization": f"Bearer {doomed}"})
    assert gone.status_code == 401

    async def main() -> None:
        with pytest.raises(Exception):  # noqa: B017 - the client gives up on a 401, whichever way it says it
            async with served.client("ail_wrong") as client:
                await client.list_tools()

    asyncio.run(main())


def test_foreign_host_origin_and_large_bodies_are_refused(served: Served) -> None:
    auth = {"authorization": f"Bearer {served.tokens['read']}", "accept": "application/json, text/event-stream"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert httpx.post(f"{served.url}/mcp", json=body, headers={**auth, "host": "evil.example"}).status_code == 421
    assert (
        httpx.post(f"{served.url}/mcp", json=body, headers={**auth, "origin": "https://evil.example"}).status_code
        == 403
    )
    big = httpx.post(f"{served.url}/mcp", content=b"x" * 50_001, headers=auth)
    assert big.status_code == 413


def test_metrics_count_the_mcp_calls(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent_il.serving.access")
    headers = {"authorization": f"Bearer {served.tokens['read']}"}
    assert httpx.get(f"{served.url}/metrics").status_code == 401
    before = httpx.get(f"{served.url}/metrics", headers=headers).text

    async def main() -> None:
        async with served.client(served.tokens["read"]) as client:
            for _ in range(3):
                structured(await client.call_tool("classify_intent", {"text": "i need to pay my water bill"}))
            assert (await client.call_tool("classify_intent", {"text": "hi", "k": 0})).is_error

    asyncio.run(main())
    after = httpx.get(f"{served.url}/metrics", headers=headers).text

    def value(text: str, sample: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(sample))

    sample = 'agent_il_predictions_total{intent="pay_bill",known="true"}'
    assert value(after, sample) - value(before, sample) == 3
    refused = 'agent_il_errors_total{kind="refused"}'
    assert value(after, refused) - value(before, refused) == 1
    assert json.dumps(served.tokens["read"]) not in after
    mcp_lines = [r for r in caplog.records if r.name == "agent_il.serving.access" and r.path == "/mcp"]
    assert mcp_lines and {r.token for r in mcp_lines} == {"t-read"}  # the token's name, never the token
    assert not any(served.tokens["read"] in r.getMessage() for r in caplog.records)


def test_malformed_and_wrong_calls_then_a_flood_are_refused_and_it_keeps_serving(served: Served) -> None:
    auth = {"authorization": f"Bearer {served.tokens['read']}", "accept": "application/json, text/event-stream"}
    generation = served.learner.state.generation
    malformed = httpx.post(
        f"{served.url}/mcp", content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert malformed.status_code == 400  # the SDK's JSON-RPC parse error

    async def main() -> None:
        async with served.client(served.tokens["read"]) as client:
            wrong = await client.call_tool("classify_intent", {"text": ["a", "list"]})
            assert wrong.is_error and "text: Input should be a valid string" in wrong.content[0].text

    asyncio.run(main())
    with httpx.Client(base_url=served.url, headers=auth) as c:  # one client, far over --rate-limit 200/s
        before = resident_bytes()
        codes = [c.post("/mcp", content=b"{}").status_code for _ in range(10_000)]
    assert codes.count(429) > 5_000 and set(codes) == {400, 429}  # 200 a second get through, the rest refused
    assert resident_bytes() - before < 64 * 2**20  # memory stays bounded under the flood
    time.sleep(1.2)  # the bucket refills
    asyncio.run(main())
    assert served.learner.state.generation == generation


def test_an_allowed_host_and_origin_behind_a_proxy_are_served_with_cors(served: Served) -> None:
    """--allowed-host / --allowed-origin reach the MCP transport (the SDK's own loopback-only Host
    check is off: the guard checks), and a page of the allowed origin gets CORS answers."""
    access = Access(served.learner, served.store)
    origin = "https://app.example.com"
    guard = GuardSettings(allowed_hosts=("mcp.example.com",), allowed_origins=(origin,))
    app = http_app(access.offered(), access, guard, "https://mcp.example.com")
    client = {"name": "t", "version": "1"}
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    headers = {"authorization": f"Bearer {served.tokens['read']}", "accept": "application/json, text/event-stream"}
    with background(app) as url, httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        proxied = c.post("/mcp", json=init, headers={"host": "mcp.example.com", "origin": origin})
        assert proxied.status_code == 200, proxied.text
        assert proxied.headers["access-control-allow-origin"] == origin
        assert c.post("/mcp", json=init, headers={"host": "127.0.0.1"}).status_code == 421  # not in the list
        preflight = c.options(
            "/mcp",
            headers={"host": "mcp.example.com", "origin": origin, "access-control-request-method": "POST",
                     "access-control-request-headers": "authorization, content-type, mcp-session-id"},
        )  # fmt: skip
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == origin
        assert "mcp-session-id" in preflight.headers["access-control-allow-headers"].lower()
