"""The OpenAPI document is true: every route is in it, it is valid, real answers fit it.

The fuzzing of the running server from this document is tests/test_fuzz_api.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from openapi_spec_validator import validate as validate_openapi

from tests.conftest import ADMIN, make_settings
from web.app import create_app
from web.openapi import OPENAPI_PATH, OPERATIONS, document, document_bytes

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).resolve().parents[1] / "web" / "openapi.json"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def app_routes(app: web.Application) -> dict[tuple[str, str], Any]:
    """``(path, method) -> handler`` of every route, as the document spells paths.

    aiohttp adds ``HEAD`` to every ``GET`` (the document says so once, not per route);
    the static files are one route whose path the document names ``{filename}``.
    """
    routes: dict[tuple[str, str], Any] = {}
    heads: set[str] = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        if isinstance(resource, web.StaticResource):
            path, handler = resource.canonical + "/{filename}", None
        else:
            path, handler = resource.canonical, route.handler
        if route.method == "HEAD":
            heads.add(path)
            continue
        routes[(path, route.method.lower())] = handler
    assert heads <= {path for path, method in routes if method == "get"}, "HEAD without GET"
    return routes


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, m) for path, item in doc["paths"].items() for m in item if m in METHODS}


def test_every_route_is_documented_with_its_methods_and_nothing_else(settings: Any) -> None:
    routes = app_routes(create_app(settings))
    doc = document()
    assert set(routes) - documented(doc) == set(), "routes missing from web/openapi.py"
    assert documented(doc) - set(routes) == set(), "documented routes the app does not have"
    for (path, method), handler in routes.items():
        # The document's words are this handler's docstring.
        assert OPERATIONS[path][method].handler is handler, (path, method)
        if handler is not None:
            assert doc["paths"][path][method]["summary"], f"{handler.__name__} has no docstring"


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    validate_openapi(doc)  # the OpenAPI 3.1 schema, and every $ref resolves
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            # Every operation says what it answers on bad input, except the few that take none.
            statuses = {int(s) for s in op["responses"]}
            assert any(100 <= s < 400 for s in statuses), (path, method)
            if op.get("parameters") or op.get("requestBody") or op["security"]:
                assert any(400 <= s < 500 for s in statuses), (path, method)


def test_the_committed_file_is_the_generated_document() -> None:
    assert COMMITTED.read_bytes() == document_bytes(), (
        "web/openapi.json is out of date: .venv/bin/python -m web.openapi > web/openapi.json"
    )


def declared_schema(path: str, method: str, status: int, media: str) -> dict[str, Any]:
    """The schema the document declares for this answer, ready for jsonschema."""
    doc = document()
    response = doc["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"][media]["schema"]
    # The components travel with the schema so that its "#/components/..." refs resolve.
    return {**schema, "components": doc["components"]}


async def check(resp: Any, path: str, method: str) -> Any:
    """Validate a real answer against the document; returns its JSON."""
    media = resp.content_type
    data = await resp.json()
    jsonschema.Draft202012Validator(declared_schema(path, method, resp.status, media)).validate(
        data
    )
    return data


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Any:
    settings = make_settings(tmp_path, **{"analyzers.enabled": []})
    return await aiohttp_client(create_app(settings))


async def test_real_answers_validate_against_their_declared_schemas(client: Any) -> None:
    served = await client.get(OPENAPI_PATH)
    assert served.status == 200 and served.content_type == "application/json"
    assert await served.read() == document_bytes()

    await check(await client.get("/healthz"), "/healthz", "get")
    await check(await client.get("/api/state-definitions"), "/api/state-definitions", "get")

    resp = await client.post("/api/meetings", json={"name": "Retro"}, headers=ADMIN)
    meeting = await check(resp, "/api/meetings", "post")
    mid = meeting["id"]
    host = {"Authorization": f"Bearer {meeting['host_token']}"}
    base = "/api/meetings/{meeting_id}"
    url = f"/api/meetings/{mid}"

    await check(await client.get(url, headers=host), base, "get")
    await check(await client.get(f"{url}/states?limit=10", headers=host), f"{base}/states", "get")
    await check(
        await client.get(f"{url}/participants/p1/states", headers=host),
        f"{base}/participants/{{participant_id}}/states",
        "get",
    )
    await check(await client.get(f"{url}/room", headers=host), f"{base}/room", "get")
    await check(await client.get(f"{url}/summaries", headers=host), f"{base}/summaries", "get")
    summary = await check(
        await client.post(f"{url}/summaries", headers=host), f"{base}/summaries", "post"
    )
    assert summary["type"] == "summary"
    answer = await check(
        await client.post(f"{url}/questions", json={"question": "Who spoke most?"}, headers=host),
        f"{base}/questions",
        "post",
    )
    assert answer["question"] == "Who spoke most?"
    await check(await client.get(f"{url}/bots", headers=host), f"{base}/bots", "get")
    report = await check(
        await client.get(f"{url}/report?format=json", headers=host), f"{base}/report", "get"
    )
    assert report["meeting"]["id"] == mid

    # Errors have the declared shape too.
    await check(
        await client.post("/api/meetings", json={"name": 1}, headers=ADMIN), "/api/meetings", "post"
    )
    await check(await client.post("/api/meetings"), "/api/meetings", "post")  # 401
    await check(await client.get(url), base, "get")  # 401
    await check(await client.get(url, headers={"Authorization": "Bearer no"}), base, "get")
    await check(await client.get(f"{url}/states?limit=0", headers=host), f"{base}/states", "get")
    join = f"{base}/participants"
    body = {
        "token": "wrong",
        "display_name": "Ada",
        "consent": True,
        "offer": {"sdp": "v=0", "type": "offer"},
    }
    await check(await client.post(f"{url}/participants", json=body), join, "post")  # 403
    await check(await client.get("/api/recordings/nope"), "/api/recordings/{job_id}", "get")

    ended = await check(await client.post(f"{url}/end", headers=host), f"{base}/end", "post")
    assert ended["ended_at"] is not None
    body["token"] = meeting["join_url"].split("token=")[1]
    await check(await client.post(f"{url}/participants", json=body), join, "post")  # 410
    resp = await client.delete(url, headers=host)
    assert resp.status == 204
    await check(await client.get(url, headers=host), base, "get")  # 404


async def test_every_get_also_answers_head_with_no_body(client: Any) -> None:
    # The document lists GET only and says HEAD comes with it. A body after a HEAD
    # answer would be read as the next answer on the same connection: each HEAD is
    # followed by a GET on that connection.
    resp = await client.post("/api/meetings", json={"name": "Head"}, headers=ADMIN)
    meeting = await resp.json()
    host = {"Authorization": f"Bearer {meeting['host_token']}"}
    values = {"meeting_id": meeting["id"], "participant_id": "p1", "job_id": "j1"}
    values["filename"] = "style.css"
    for path, item in document()["paths"].items():
        if "get" not in item:
            continue
        url = path.format(**values)
        queries = (
            [f"?format={f}" for f in ("html", "csv", "pdf", "json")] if "report" in path else [""]
        )
        for query in queries:
            resp = await client.head(url + query, headers=host)
            assert resp.status < 500, (url, query)
            assert await resp.read() == b""
            after = await client.get("/healthz")
            health = {"status": "ok", "models": "ready", "analyzers": {}}  # none enabled
            assert await after.json() == health, (url, query)
