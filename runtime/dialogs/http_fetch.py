"""``GET "https://..."`` from a dialog: one guarded HTTP fetch, JSON parsed when it is JSON.

A bot's program is not trusted with the network the runtime sits in, so a fetch:

- only uses http and https, without credentials in the URL;
- only goes to hosts on the bot's allow-list (empty list: any public host);
- resolves the name itself and refuses private, loopback, link-local, multicast and other
  non-public addresses (unless the deployment allows them), then connects to exactly the
  address it checked, so a DNS answer that changes between check and use cannot slip by;
- follows at most a few redirects, checking every hop the same way;
- stops after ``timeout`` seconds in total and after ``max_bytes`` of (decoded) body.

Every refusal or failure is a DialogRuntimeError with a message for the bot author.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import Sequence
from typing import Any

import httpx

from mnemobot.runtime.dialogs.errors import DialogRuntimeError

__all__ = ["fetch_json_or_text", "host_allowed", "is_public_address"]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
_REDIRECTS = {301, 302, 303, 307, 308}


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast


def host_allowed(host: str, allow_hosts: Sequence[str]) -> bool:
    """Whether ``host`` is on the allow-list: exact names, or ``*.example.com`` for
    subdomains of example.com. An empty list allows every host."""
    if not allow_hosts:
        return True
    name = host.lower().rstrip(".")
    for entry in allow_hosts:
        wanted = entry.strip().lower().rstrip(".")
        if wanted.startswith("*."):
            if name.endswith(wanted[1:]) and len(name) > len(wanted) - 1:
                return True
        elif name == wanted:
            return True
    return False


def _refuse(url: str, why: str) -> DialogRuntimeError:
    return DialogRuntimeError(f"GET {url}: {why}")


def _check_url(url: str, allow_hosts: Sequence[str]) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise _refuse(url, f"not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise _refuse(url, "only http and https URLs can be fetched")
    if not parsed.host:
        raise _refuse(url, "the URL has no host")
    if parsed.userinfo:
        raise _refuse(url, "credentials in the URL are not allowed")
    if not host_allowed(parsed.host, allow_hosts):
        raise _refuse(url, f"host {parsed.host} is not on the bot's HTTP allow-list")
    return parsed


async def _addresses(url: str, parsed: httpx.URL) -> list[str]:
    host = parsed.host
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _refuse(url, f"cannot resolve host {host} ({exc})") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise _refuse(url, f"cannot resolve host {host}")
    return addresses


async def _checked_addresses(url: str, parsed: httpx.URL, allow_private: bool) -> list[str]:
    """The addresses to try, after refusing the host if any of them is not public."""
    addresses = await _addresses(url, parsed)
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise _refuse(url, f"host {parsed.host} is a private or local address ({address})")
    unique = dict.fromkeys(address.split("%", 1)[0] for address in addresses)
    return list(unique)


async def _send_pinned(
    client: httpx.AsyncClient, url: str, parsed: httpx.URL, addresses: list[str]
) -> httpx.Response:
    """Connect to exactly the checked addresses (the first that answers), keeping the
    original name in the Host header and for TLS (SNI and certificate check)."""
    headers = {"Host": parsed.netloc.decode("ascii")}
    extensions: dict[str, Any] = {}
    if parsed.scheme == "https":
        extensions["sni_hostname"] = parsed.host
    failure: httpx.ConnectError | None = None
    for address in addresses:
        request = client.build_request(
            "GET", parsed.copy_with(host=address), headers=headers, extensions=extensions
        )
        try:
            return await client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            failure = exc
    assert failure is not None
    raise _refuse(url, f"cannot connect to {parsed.host} ({failure})")


def _parse_body(body: bytes, content_type: str, url: str) -> Any:
    mime = content_type.split(";", 1)[0].strip().lower()
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    declared_json = mime == "application/json" or mime.endswith("+json")
    looks_json = mime in ("", "text/plain") and text.lstrip()[:1] in ("{", "[")
    if declared_json or looks_json:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            if declared_json:
                raise _refuse(url, "the response says JSON but is not valid JSON") from None
    return text


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _refuse(url, f"response larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _refuse(url, f"response larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _fetch(
    url: str,
    client: httpx.AsyncClient,
    allow_hosts: Sequence[str],
    allow_private: bool,
    max_bytes: int,
) -> Any:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parsed = _check_url(current, allow_hosts)
        addresses = await _checked_addresses(current, parsed, allow_private)
        response = await _send_pinned(client, current, parsed, addresses)
        try:
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                current = str(parsed.join(location))
                logger.debug("GET %s redirected to %s", url, current)
                continue
            if response.status_code >= 400:
                raise _refuse(url, f"the server answered HTTP {response.status_code}")
            body = await _read_capped(response, url, max_bytes)
            return _parse_body(body, response.headers.get("content-type", ""), url)
        finally:
            await response.aclose()
    raise _refuse(url, f"more than {MAX_REDIRECTS} redirects")


async def fetch_json_or_text(
    url: str,
    *,
    allow_hosts: Sequence[str],
    allow_private: bool,
    timeout: float,  # noqa: ASYNC109 - the total budget: DNS, connect, redirects, body
    max_bytes: int,
    client: httpx.AsyncClient | None = None,
) -> Any:
    """Fetch ``url`` under the rules in this module's docstring.

    Returns the parsed JSON (dict, list, ...) when the response is JSON, else the text.
    Raises DialogRuntimeError on refusal, timeout, an HTTP error status or a too large body.
    ``client`` lets the runtime share a connection pool; it is not closed here.
    """
    own_client = client is None
    active = client or httpx.AsyncClient(timeout=timeout, trust_env=False)
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(url, active, allow_hosts, allow_private, max_bytes)
    except TimeoutError:
        raise _refuse(url, f"no complete answer within {timeout:g} seconds") from None
    except httpx.TimeoutException:
        raise _refuse(url, f"no complete answer within {timeout:g} seconds") from None
    except httpx.HTTPError as exc:
        raise _refuse(url, f"request failed ({type(exc).__name__}: {exc})") from None
    finally:
        if own_client:
            await active.aclose()
