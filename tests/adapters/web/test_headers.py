"""Security headers on what ``mnemobot run`` serves: the chat, the inspector, the admin API.

The browser test (test_browser.py) shows a foreign page cannot frame the inspector; this one
reads the headers themselves on every kind of response, including errors and the event stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from mnemobot.adapters.admin.api import admin_routes
from mnemobot.adapters.server import build_app
from mnemobot.adapters.web.channel import WebChannel
from mnemobot.adapters.web.pages import inspector_routes
from tests.adapters.web.conftest import BASE_URL, wait_for

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no storage here

TOKEN = "headers-test-token-0123456789"
SAME_EVERYWHERE = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@pytest.fixture
async def site(web: WebChannel) -> AsyncIterator[httpx.AsyncClient]:
    routes = [
        *web.routes(),
        *inspector_routes(),
        *admin_routes(web.runtime, environ={"MNEMOBOT_ADMIN_TOKEN": TOKEN}),
    ]
    app = build_app(routes, bots=web.runtime.bots.names())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


def policy(response: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as directive -> sources."""
    parts = (
        p.strip().split(" ", 1) for p in response.headers["content-security-policy"].split(";")
    )
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


def assert_hardened(response: httpx.Response) -> None:
    for name, value in SAME_EVERYWHERE.items():
        assert response.headers.get(name) == value, (response.url, name)
    csp = policy(response)
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'none'"
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/chat/", "/admin/"])
async def test_the_pages_may_run_only_their_own_scripts_and_never_be_framed(
    site: httpx.AsyncClient, path: str
) -> None:
    page = await site.get(path)

    assert page.status_code == 200
    assert_hardened(page)
    csp = policy(page)
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'"  # fetch and EventSource to the same origin only
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    ["/chat/static/chat.js", "/admin/static/inspector.js", "/admin/static/inspector.css"],
)
async def test_static_files_are_hardened_and_still_cacheable(
    site: httpx.AsyncClient, path: str
) -> None:
    response = await site.get(path)
    assert response.status_code == 200
    assert_hardened(response)
    assert "cache-control" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/admin/api/users?q=ana", 200),
        ("GET", "/admin/api/users/nobody", 404),
        ("GET", "/admin/api/openapi.json", 200),
        ("PUT", "/admin/api/users/nobody/memory/k", 400),  # no body
        ("GET", "/chat/api/me", 200),
        ("GET", "/chat/api/bots", 200),
    ],
)
async def test_api_answers_with_personal_data_are_never_stored_by_a_cache(
    site: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await site.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert_hardened(response)
    assert response.headers["cache-control"] == "no-store"


async def test_the_admin_api_refusing_a_missing_token_is_hardened_too(web: WebChannel) -> None:
    app = build_app(
        admin_routes(web.runtime, environ={"MNEMOBOT_ADMIN_TOKEN": TOKEN}), bots=["sales-bot"]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        response = await c.get("/admin/api/users?q=ana")
    assert response.status_code == 401
    assert_hardened(response)
    assert response.headers["cache-control"] == "no-store"


async def test_the_event_stream_passes_through_with_its_headers(
    web: WebChannel, site: httpx.AsyncClient
) -> None:
    await site.get("/chat/api/me")
    opened: asyncio.Task[httpx.Response] = asyncio.create_task(
        site.get("/chat/api/sales-bot/events")
    )
    await wait_for(lambda: bool(web._streams))
    await web.stop()
    stream = await opened
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-store"
    assert_hardened(stream)
    assert "event: ready" in stream.text


async def test_healthz_is_hardened(site: httpx.AsyncClient) -> None:
    response = await site.get("/healthz")
    assert response.status_code == 200
    assert_hardened(response)
