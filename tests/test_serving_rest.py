"""``agent-il serve http`` over real HTTP on loopback: uvicorn serving the REST API from a thread of
this process, a really learned workspace, bearer tokens from a real token file, httpx as the client.
Every refusal (401, 403, 413, 421, 422, 429) changes nothing and the server keeps serving."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from agent_il import IntentLearner
from agent_il.cli import app
from agent_il.serving import rest
from agent_il.serving.access import Access
from agent_il.serving.guard import GuardSettings, RateLimiter
from agent_il.serving.runner import HttpSettings, background
from agent_il.serving.tokens import TokenStore
from tests.helpers import resident_bytes

AGENT_IL = Path(sys.executable).with_name("agent-il")  # the console script of this environment
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
PIZZA = ["i want to order a pizza", "get me a large pepperoni pizza", "order two margherita pizzas for tonight"]


class Server:
    def __init__(self, url: str, learner: IntentLearner, store: TokenStore, tokens: dict[str, str]) -> None:
        self.url, self.learner, self.store, self.tokens = url, learner, store, tokens

    def client(self, scope: str | None = "read", **kwargs: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
        return httpx.Client(base_url=self.url, headers=headers, **{"timeout": 60, **kwargs})


@pytest.fixture(scope="module")
def server(learned_seed: Path, tmp_path_factory: pytest.TempPathFactory, tool_encoder) -> Iterator[Server]:
    home = shutil.copytree(learned_seed, tmp_path_factory.mktemp("rest") / "kb")
    store = TokenStore(home / "tokens.json")
    tokens = {scope: store.create(f"t-{scope}", scope) for scope in ("read", "learn", "admin")}
    learner = IntentLearner.open(home, encoder=tool_encoder)
    access = Access(learner, TokenStore(home / "tokens.json"))
    with background(rest.build_app(access, GuardSettings(max_body_bytes=20_000))) as url:
        yield Server(url, learner, store, tokens)
    learner.close()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    return 0.0


def test_scopes_decide_what_each_token_may_do(server: Server) -> None:
    with server.client("read") as c:
        out = c.post("/v1/classify", json={"text": "i need to pay my water bill", "k": 2}).json()
        assert out["label"] == "pay_bill" and out["known"] is True and len(out["top_k"]) == 2
        assert "pay_bill" in {i["label"] for i in c.get("/v1/intents").json()["intents"]}
        for path, body in (
            ("/v1/learn", {"label": "order_pizza", "examples": PIZZA}),
            ("/v1/feedback", {"text": "x", "label": "pay_bill"}),
        ):
            refused = c.post(path, json=body)
            assert refused.status_code == 403 and refused.json() == {
                "error": "token 't-read' has scope read; this needs learn"
            }
        assert c.post("/v1/snapshots", json={}).status_code == 403
    with server.client("learn") as c:
        assert c.post("/v1/snapshots", json={}).status_code == 403
    assert "order_pizza" not in server.learner.labels


def test_missing_wrong_and_revoked_tokens_are_401(server: Server) -> None:
    generation = server.learner.state.generation
    with server.client(None) as c:
        for headers in (
            {},
            {"authorization": "Bearer ail_wrong"},
            {"authorization": "Basic abc"},
            {"authorization": "Bearer"},
        ):
            r = c.post("/v1/classify", json={"text": "hi"}, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            assert "ail_" not in r.text
        assert c.get("/metrics").status_code == 401 and c.get("/v1/intents").status_code == 401
        assert c.get("/healthz").json() == {"status": "ok"} and c.get("/readyz").json()["ready"] is True
        assert c.get("/docs").status_code == 200 and "/v1/classify" in c.get("/openapi.json").json()["paths"]
    doomed = server.store.create("doomed", "admin")
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {doomed}"}) as c:
        assert c.get("/v1/intents").status_code == 200
        server.store.revoke("doomed")  # while the server runs: refused from the next request on
        assert c.get("/v1/intents").status_code == 401
    assert server.learner.state.generation == generation


def test_bad_requests_are_refused_with_the_tool_message(server: Server) -> None:
    generation = server.learner.state.generation
    with server.client("learn") as c:
        cases = [
            (c.post("/v1/classify", content=b"{not json"), 422, "the body is not valid JSON"),
            (c.post("/v1/classify", json=["hi"]), 422, "the body must be a JSON object of named arguments, got list"),
            (c.post("/v1/classify", json={"text": 5}), 422, "invalid arguments: text: Input should be a valid string"),
            (
                c.post("/v1/classify", json={"text": "hi", "k": 0}),
                422,
                "invalid arguments: k: Input should be greater than or equal to 1",
            ),
            (
                c.post("/v1/classify", json={"text": "hi", "secret": "s3cr3t"}),
                422,
                "invalid arguments: secret: Extra inputs are not permitted",
            ),
            (c.post("/v1/classify", json={"text": "x" * 1001}), 422, "text has 1001 characters; the limit is 1000"),
            (c.post("/v1/learn", json={"label": "unknown", "examples": PIZZA}), 422, None),
            (
                c.post("/v1/learn", json={"label": "a", "examples": ["one"]}),
                422,
                "got 1 examples; give between 3 and 100 per call",
            ),
            (c.post("/v1/feedback", json={"text": "hi", "label": "no_such_intent"}), 422, None),
            (c.post("/v1/classify", content=b"x" * 20_001), 413, "request body over 20000 bytes"),
            (c.post("/v1/classify", content=iter([b"{", b" " * 30_000, b"}"])), 413, None),  # chunked: no length
            (c.post("/v1/classify", json={"text": "hi"}, headers={"host": "evil.example"}), 421, None),
            (c.post("/v1/classify", json={"text": "hi"}, headers={"origin": "https://evil.example"}), 403, None),
            (c.get("/v1/nowhere"), 404, None),
        ]
        for response, status, message in cases:
            assert response.status_code == status, (response.request.url, response.text)
            if message is not None:
                assert response.json() == {"error": message}
            assert "s3cr3t" not in response.text
        assert c.post("/v1/classify", json={"text": "i need to pay my water bill"}).json()["label"] == "pay_bill"
    assert server.learner.state.generation == generation


def test_metrics_count_exactly_the_calls_made(server: Server) -> None:
    with server.client("read") as c:
        before = c.get("/metrics").text
        texts = ["i need to pay my water bill"] * 3 + ["what is the weather on mars today"] * 2
        answers = [c.post("/v1/classify", json={"text": t}).json() for t in texts]
        c.post("/v1/classify", json={"text": 5})
        c.post("/v1/learn", json={"label": "x", "examples": PIZZA})
        after = c.get("/metrics").text
    for label, known in {(a["label"], str(a["known"]).lower()) for a in answers}:
        n = sum(a["label"] == label for a in answers)
        grew = metric(after, "agent_il_predictions_total", intent=label, known=known)
        assert grew - metric(before, "agent_il_predictions_total", intent=label, known=known) == n
    assert metric(after, "agent_il_predict_seconds_count") - metric(before, "agent_il_predict_seconds_count") == 5
    assert (
        metric(after, "agent_il_errors_total", kind="invalid") - metric(before, "agent_il_errors_total", kind="invalid")
        == 1
    )
    assert (
        metric(after, "agent_il_errors_total", kind="forbidden")
        - metric(before, "agent_il_errors_total", kind="forbidden")
        == 1
    )
    assert metric(after, "agent_il_intents") == len(server.learner.labels)
    assert metric(after, "agent_il_generation") == server.learner.state.generation
    assert metric(after, "agent_il_exemplars") > 0 and metric(after, "agent_il_inbox_size") >= 1


POOL = min(32, (os.cpu_count() or 1) + 4)  # the threads of asyncio's default executor


def test_classify_answers_while_writes_queue_behind_a_held_write_lock(server: Server) -> None:
    """A write holds the learner's lock; a learn and more admin writes than the server has worker
    threads queue behind it; classify calls and /metrics still start and finish, fast, meanwhile."""
    examples = [f"please order pizza number {i} with ham" for i in range(100)]
    done: dict[str, httpx.Response] = {}

    def write(key: str, scope: str, path: str, body: dict[str, Any]) -> None:
        with server.client(scope) as c:
            done[key] = c.post(path, json=body)

    with server.client("read", timeout=5) as c:
        c.post("/v1/classify", json={"text": "warm"})
        jobs: list[tuple[str, str, str, dict[str, Any]]] = [
            ("learn", "learn", "/v1/learn", {"label": "order_pizza", "examples": examples})
        ]
        jobs += [(f"s{i}", "admin", "/v1/snapshots", {"name": f"queued-{i}"}) for i in range(POOL + 2)]
        writers = [threading.Thread(target=write, args=job) for job in jobs]
        with server.learner.writing:  # as a long learn would
            for w in writers:
                w.start()
            time.sleep(0.5)  # the writes arrive and queue
            for _ in range(5):
                start = time.perf_counter()
                r = c.post("/v1/classify", json={"text": "i need to pay my water bill"})
                assert r.status_code == 200 and r.json()["label"] == "pay_bill"
                assert time.perf_counter() - start < 2
            assert c.get("/metrics").status_code == 200
            assert not done and all(w.is_alive() for w in writers)  # every write still waits
        for w in writers:
            w.join(120)
    assert {k: r.status_code for k, r in done.items()} == {k: 200 for k in done} and len(done) == POOL + 3
    assert done["learn"].json()["new_intent"] is True and "order_pizza" in server.learner.labels
    with server.client("learn") as c:  # a learned correction, then the admin's undo
        fixed = c.post("/v1/feedback", json={"text": "a pizza please", "label": "order_pizza"}).json()
        assert fixed["status"] == "learned" and fixed["undo"] == "agent-il rollback"
    with server.client("learn") as c:
        assert c.post("/v1/intents/delete", json={"label": "order_pizza"}).status_code == 403
    with server.client("admin") as c:  # the admin edits, snapshots and rolls back
        renamed = c.post("/v1/intents/rename", json={"old": "order_pizza", "new": "pizza"})
        assert renamed.status_code == 200 and renamed.json()["action"] == "rename", renamed.text
        assert c.post("/v1/intents/rename", json={"old": "nope", "new": "x"}).json() == {
            "error": "old: no intent named 'nope'"
        }
        assert c.post("/v1/intents/merge", json={"labels": ["pizza"], "into": "x"}).status_code == 422
        assert c.post("/v1/intents/delete", json={"label": "pizza", "extra": 1}).status_code == 422
        assert c.post("/v1/snapshots", json={"name": "before-delete"}).json()["name"] == "before-delete"
        assert c.post("/v1/snapshots", json={"name": 3}).status_code == 422
        assert c.post("/v1/intents/delete", json={"label": "pizza"}).status_code == 200
        assert "pizza" not in server.learner.labels
        rolled = c.post("/v1/rollback")  # undoes the delete: its automatic snapshot
        assert rolled.status_code == 200 and rolled.json()["restored"].startswith("auto-"), rolled.text
        assert "pizza" in server.learner.labels


def test_ten_thousand_requests_from_one_client_are_rate_limited(server: Server) -> None:
    access = Access(server.learner, server.store)
    guard = GuardSettings(rate_limit=50)
    built = rest.build_app(access, guard)
    with (
        background(built) as url,
        httpx.Client(base_url=url, headers={"authorization": f"Bearer {server.tokens['read']}"}) as c,
    ):
        before = resident_bytes()
        codes = [c.get("/v1/intents").status_code for _ in range(10_000)]
        assert codes.count(429) > 9_000 and set(codes) == {200, 429}
        assert resident_bytes() - before < 64 * 2**20  # memory stays bounded under the flood
        assert c.get("/healthz").status_code == 200  # probes are not limited
        time.sleep(0.1)
        assert c.get("/v1/intents").status_code == 200  # the bucket refills: the server keeps serving
    assert len(built.limiter) == 1


def test_an_allowed_origin_gets_cors_answers_and_others_are_refused(server: Server) -> None:
    origin = "https://app.example.com"
    built = rest.build_app(Access(server.learner, server.store), GuardSettings(allowed_origins=(origin,)))
    with background(built) as url, httpx.Client(base_url=url, timeout=60) as c:
        ask = {"origin": origin, "access-control-request-method": "POST"}
        preflight = c.options(
            "/v1/classify", headers={**ask, "access-control-request-headers": "authorization, content-type"}
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == origin
        assert {"GET", "POST"} <= set(preflight.headers["access-control-allow-methods"].replace(" ", "").split(","))
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert (
            c.options("/v1/classify", headers={**ask, "access-control-request-headers": "x-other"}).status_code == 400
        )
        headers = {"origin": origin, "authorization": f"Bearer {server.tokens['read']}"}
        answer = c.post("/v1/classify", json={"text": "i need to pay my water bill"}, headers=headers)
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin
        foreign = c.options("/v1/classify", headers={**ask, "origin": "https://evil.example"})
        assert foreign.status_code == 403 and "access-control-allow-origin" not in foreign.headers


def test_a_spoofed_x_forwarded_for_does_not_dodge_the_rate_limit(server: Server) -> None:
    built = rest.build_app(Access(server.learner, server.store), GuardSettings(rate_limit=0.01, burst=1))
    headers = {"authorization": f"Bearer {server.tokens['read']}"}
    with background(built) as url, httpx.Client(base_url=url, headers=headers) as c:
        codes = [c.get("/v1/intents", headers={"x-forwarded-for": f"10.0.0.{i}"}).status_code for i in range(3)]
        assert codes == [200, 429, 429]  # one client, whatever address it claims
    trusted = HttpSettings(forwarded_allow_ips=("127.0.0.1",))  # behind a proxy on this host: its header counts
    built = rest.build_app(Access(server.learner, server.store), GuardSettings(rate_limit=0.01, burst=1))
    with background(built, trusted) as url, httpx.Client(base_url=url, headers=headers) as c:
        codes = [c.get("/v1/intents", headers={"x-forwarded-for": f"10.0.0.{i}"}).status_code for i in (1, 2, 1)]
        assert codes == [200, 200, 429]


def test_a_damaged_token_file_is_a_503_that_names_no_path(server: Server, tmp_path: Path) -> None:
    damaged = tmp_path / "tokens.json"
    damaged.write_text("{not json")
    with background(rest.build_app(Access(server.learner, TokenStore(damaged)), GuardSettings())) as url:
        for _ in range(2):  # and it keeps serving
            r = httpx.get(f"{url}/v1/intents", headers={"authorization": f"Bearer {server.tokens['read']}"})
            assert r.status_code == 503 and str(tmp_path) not in r.text
            assert r.json() == {"error": "the server cannot read its token file; its log says why"}


def test_readyz_reads_the_workspace(learned_seed: Path, tmp_path: Path, tool_encoder) -> None:
    home = shutil.copytree(learned_seed, tmp_path / "kb")
    with IntentLearner.open(home, encoder=tool_encoder) as learner:
        with background(rest.build_app(Access(learner, None), GuardSettings())) as url:
            assert httpx.get(f"{url}/readyz").json()["ready"] is True
            (home / "state.json").rename(tmp_path / "away.json")  # as a lost volume would
            gone = httpx.get(f"{url}/readyz")
            assert gone.status_code == 503 and gone.json()["reason"] == "the workspace cannot be read"
            (tmp_path / "away.json").rename(home / "state.json")
            assert httpx.get(f"{url}/readyz").status_code == 200


def test_the_rate_limiter_forgets_the_oldest_clients() -> None:
    limiter = RateLimiter(rate=1, burst=2, max_clients=100)
    assert [limiter.allow("a", now=0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("a", now=1.0)  # a second later: one more
    for i in range(20_000):
        limiter.allow(f"client-{i}", now=2.0)
    assert len(limiter) == 100  # memory stays bounded however many clients come


def test_serve_http_options_are_checked_before_anything_starts(tmp_path: Path) -> None:
    runner = CliRunner()
    home = tmp_path / "kb"
    home.mkdir()
    cases = [
        (["--host", "0.0.0.0"], "refusing to bind 0.0.0.0 without authentication"),
        (["--auth"], "--auth: no token file"),
        (["--rate-limit", "nan"], "--rate-limit must be"),
        (["--rate-limit", "0"], "--rate-limit must be"),
        (["--max-body-bytes", "-1"], "--max-body-bytes"),
        (["--ssl-certfile", str(tmp_path / "no.pem")], "give both --ssl-certfile and --ssl-keyfile"),
        (["--port", "70000"], "--port"),
        (["--forwarded-allow-ips", "10.0.0.1,proxy.local"], "--forwarded-allow-ips: 'proxy.local' is not"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["serve", "http", "--home", str(home), *args])
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    remote = runner.invoke(app, ["serve", "http", "--home", str(home), "--host", "0.0.0.0", "--allow-remote"])
    assert "WARNING: serving 0.0.0.0 without authentication" in remote.output  # then: no workspace there
    assert remote.exit_code == 1 and "no workspace at" in remote.output
    TokenStore(home / "tokens.json").create("ops", "read")
    learning = runner.invoke(app, ["serve", "http", "--home", str(home), "--allow-learning"])
    assert learning.exit_code == 1 and "--scope learn" in learning.output
    http_only = [["--rate-limit", "5"], ["--allowed-host", "a.example"], ["--allowed-origin", "https://a.example"]]
    http_only += [["--ssl-keyfile", "k.pem"], ["--forwarded-allow-ips", "10.0.0.1"], ["--allow-remote"], ["--log-json"]]
    for flag in http_only:
        stdio = runner.invoke(app, ["serve", "mcp", "--home", str(home), *flag])
        assert (
            stdio.exit_code == 1
            and stdio.output == f"error: {flag[0]}: only over HTTP; stdio talks over stdin/stdout\n"
        )


def test_tls(server: Server, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    settings = HttpSettings(ssl_certfile=cert, ssl_keyfile=key)
    access = Access(server.learner, server.store)
    with background(rest.build_app(access, settings.guard), settings) as url:
        assert url.startswith("https://")
        headers = {"authorization": f"Bearer {server.tokens['read']}"}
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=cert), headers=headers) as c:
            assert c.post("/v1/classify", json={"text": "i need to pay my water bill"}).json()["label"] == "pay_bill"


def test_agent_il_serve_http_as_deployed(learned_seed: Path, tmp_path: Path) -> None:
    """The command itself, in a fresh process: JSON logs without tokens, a learn beside classify calls."""
    home = shutil.copytree(learned_seed, tmp_path / "kb")
    store = TokenStore(home / "tokens.json")
    learn_token = store.create("teacher", "learn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        str(AGENT_IL),
        "serve",
        "http",
        "--home",
        str(home),
        "--port",
        str(port),
        "--log-json",
        "--rate-limit",
        "500",
    ]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "agent-il serve http did not start"
            time.sleep(0.2)
        headers = {"authorization": f"Bearer {learn_token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            examples = [f"please book table number {i} at the bistro" for i in range(60)]
            worker = threading.Thread(
                target=lambda: c.post("/v1/learn", json={"label": "book_table", "examples": examples})
            )
            worker.start()
            while worker.is_alive():
                assert c.post("/v1/classify", json={"text": "i need to pay my water bill"}).status_code == 200
            worker.join()
            assert "book_table" in {i["label"] for i in c.get("/v1/intents").json()["intents"]}
            assert c.post("/v1/classify", json={"text": 1}).status_code == 422
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    records = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]  # each one JSON object
    banner = records[0]["message"]
    assert banner.startswith("agent-il: serving http at http://127.0.0.1:") and "bearer tokens" in banner
    access = [r for r in records if r["logger"] == "agent_il.serving.access"]
    assert {r["token"] for r in access if r["path"].startswith("/v1/")} == {"teacher"}
    assert {"status", "seconds", "method", "client"} <= set(access[0])
    assert learn_token not in (tmp_path / "serve.log").read_text()


def test_a_workspace_on_a_chroma_server(
    chroma_url: str, server_name: str, tool_encoder, quickstart: dict, tmp_path: Path
) -> None:
    """Tokens from --tokens FILE; classify calls beside a learn commit on a shared server workspace."""
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("svc", "learn")
    with IntentLearner.open(chroma_url=chroma_url, name=server_name, encoder=tool_encoder) as learner:
        texts, labels = quickstart["banking"]
        learner.learn(texts[::3], labels[::3], task="banking")
        with background(rest.build_app(Access(learner, store), GuardSettings())) as url:
            with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=120) as c:
                examples = [f"please book table number {i} at the bistro" for i in range(20)]
                body = {"label": "book_table", "examples": examples}
                worker = threading.Thread(target=lambda: c.post("/v1/learn", json=body))
                worker.start()
                while worker.is_alive():
                    r = c.post("/v1/classify", json={"text": "i need to pay my water bill"})
                    assert r.status_code == 200 and r.json()["label"] == "pay_bill"
                worker.join()
                assert "book_table" in {i["label"] for i in c.get("/v1/intents").json()["intents"]}
