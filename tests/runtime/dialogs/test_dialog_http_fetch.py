"""The guarded HTTP fetch behind ``GET "https://..."``, against a server on 127.0.0.1.

Loopback is private, so tests that need a response pass ``allow_private=True``; the tests
of refusals show that without it nothing is even requested. No test leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from mnemobot.runtime.dialogs import DialogRuntimeError, fetch_json_or_text
from mnemobot.runtime.dialogs.http_fetch import host_allowed, is_public_address


@dataclass
class Server:
    port: int
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _response(status: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        line = request.split(b"\r\n", 1)[0].decode()
        path = line.split(" ")[1]
        host = next(
            (
                h.split(b":", 1)[1].strip().decode()
                for h in request.split(b"\r\n")
                if h.lower().startswith(b"host:")
            ),
            "",
        )
        state.hits.append(f"{host}{path}")
        json_type = {"Content-Type": "application/json"}
        if path == "/json":
            body = json.dumps({"rates": {"USD": 1.08}}).encode()
            writer.write(_response("200 OK", body, {**json_type, "Content-Length": str(len(body))}))
        elif path == "/text":
            writer.write(
                _response("200 OK", b"hello", {"Content-Type": "text/plain; charset=utf-8"})
            )
        elif path == "/plain-json":
            writer.write(_response("200 OK", b"[1, 2]", {"Content-Type": "text/plain"}))
        elif path == "/bad-json":
            writer.write(_response("200 OK", b"{nope", json_type))
        elif path == "/big":
            writer.write(_response("200 OK", b"x" * 5000, {"Content-Length": "5000"}))
        elif path == "/big-chunked":
            chunk = b"1000\r\n" + b"y" * 4096 + b"\r\n"
            writer.write(
                _response("200 OK", chunk * 3 + b"0\r\n\r\n", {"Transfer-Encoding": "chunked"})
            )
        elif path == "/missing":
            writer.write(_response("404 Not Found", b"", {"Content-Length": "0"}))
        elif path.startswith("/redirect-to-"):
            target = path.removeprefix("/redirect-to-")
            location = f"http://{target}:{state.port}/json" if target != "self" else "/json"
            writer.write(_response("302 Found", b"", {"Location": location, "Content-Length": "0"}))
        elif path == "/loop":
            writer.write(_response("302 Found", b"", {"Location": "/loop", "Content-Length": "0"}))
        elif path == "/slow":
            await reader.read()  # answer nothing until the client gives up
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state
    listener.close()
    await listener.wait_closed()


async def fetch(url: str, **overrides: object) -> object:
    options: dict[str, object] = {
        "allow_hosts": [],
        "allow_private": True,
        "timeout": 5.0,
        "max_bytes": 10_000,
    }
    options.update(overrides)
    return await fetch_json_or_text(url, **options)  # type: ignore[arg-type]


async def test_json_is_parsed(server: Server) -> None:
    assert await fetch(server.url("/json")) == {"rates": {"USD": 1.08}}
    assert server.hits == [f"127.0.0.1:{server.port}/json"]


async def test_text_stays_text_and_json_looking_text_is_parsed(server: Server) -> None:
    assert await fetch(server.url("/text")) == "hello"
    assert await fetch(server.url("/plain-json")) == [1, 2]


async def test_invalid_declared_json_is_an_error(server: Server) -> None:
    with pytest.raises(DialogRuntimeError, match="says JSON but is not valid JSON"):
        await fetch(server.url("/bad-json"))


async def test_loopback_is_refused_unless_allowed(server: Server) -> None:
    with pytest.raises(DialogRuntimeError, match=r"private or local address \(127\.0\.0\.1\)"):
        await fetch(server.url("/json"), allow_private=False)
    with pytest.raises(DialogRuntimeError, match="private or local address"):
        await fetch(server.url("/json", host="localhost"), allow_private=False)
    assert server.hits == []


async def test_hosts_off_the_allow_list_are_refused(server: Server) -> None:
    with pytest.raises(DialogRuntimeError, match="not on the bot's HTTP allow-list"):
        await fetch(server.url("/json"), allow_hosts=["api.example.com"])
    assert server.hits == []
    assert await fetch(server.url("/json"), allow_hosts=["127.0.0.1"]) == {"rates": {"USD": 1.08}}


async def test_redirects_are_checked_hop_by_hop(server: Server) -> None:
    assert await fetch(server.url("/redirect-to-self"), allow_hosts=["127.0.0.1"]) == {
        "rates": {"USD": 1.08}
    }
    server.hits.clear()
    with pytest.raises(DialogRuntimeError, match="localhost is not on the bot's HTTP allow-list"):
        await fetch(server.url("/redirect-to-localhost"), allow_hosts=["127.0.0.1"])
    assert server.hits == [f"127.0.0.1:{server.port}/redirect-to-localhost"]
    with pytest.raises(DialogRuntimeError, match="more than 3 redirects"):
        await fetch(server.url("/loop"))


async def test_the_host_header_keeps_the_name_while_the_address_is_pinned(server: Server) -> None:
    await fetch(server.url("/json", host="localhost"))
    assert server.hits == [f"localhost:{server.port}/json"]


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_size_cap(server: Server, path: str) -> None:
    with pytest.raises(DialogRuntimeError, match="response larger than 4000 bytes"):
        await fetch(server.url(path), max_bytes=4000)


async def test_timeout(server: Server) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DialogRuntimeError, match=r"no complete answer within 0\.3 seconds"):
        await fetch(server.url("/slow"), timeout=0.3)
    assert loop.time() - started < 2


async def test_http_error_status(server: Server) -> None:
    with pytest.raises(DialogRuntimeError, match="answered HTTP 404"):
        await fetch(server.url("/missing"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/x", "only http and https"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:///nohost", "no host"),
    ],
)
async def test_bad_urls_are_refused_before_any_request(url: str, reason: str) -> None:
    with pytest.raises(DialogRuntimeError, match=reason):
        await fetch(url, allow_private=False)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("224.0.0.1", False),
        ("not an address", False),
    ],
)
def test_public_address_classification(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.com", True),
        ("API.Example.com.", True),
        ("sub.api.example.com", False),
        ("cdn.files.org", True),
        ("files.org", False),
        ("evilfiles.org", False),
        ("other.com", False),
    ],
)
def test_allow_list_matching(host: str, allowed: bool) -> None:
    assert host_allowed(host, ["api.example.com", "*.files.org"]) is allowed
    assert host_allowed(host, []) is True
