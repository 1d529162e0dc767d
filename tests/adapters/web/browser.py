"""A real server and a real browser for the web pages: uvicorn on 127.0.0.1, headless Chromium.

The server runs in a thread with its own event loop (Selenium's calls block), serving what
``mnemobot run`` serves for a web channel: the web chat, the inspector page and the admin
API, over a real runtime with the example bots. Chromium is Debian's (``chromium`` and
``chromium-driver``); a test that needs it skips when it is missing and says how to install
it, and fails instead on CI (``CI=true``), so CI cannot pass without having run it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from mnemobot.adapters.admin.api import admin_routes
from mnemobot.adapters.server import build_app
from mnemobot.adapters.web.channel import WebChannel
from mnemobot.adapters.web.pages import inspector_routes
from mnemobot.runtime.pipeline.runtime import Runtime
from tests.conftest import skip_unless_ci

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
INSTALL_HINT = (
    "the browser tests need Debian's Chromium and its driver: "
    "apt-get install -y chromium chromium-driver (as .ci/run does), "
    "and selenium in the venv (.venv/bin/pip install selenium)"
)


def require_chromium() -> None:
    """Skip (on CI: fail) with the install command when Chromium, ChromeDriver or Selenium
    is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (Python package)")
    if missing:
        skip_unless_ci(f"missing {', '.join(missing)}: {INSTALL_HINT}")


class LiveServer:
    """uvicorn serving the web chat, the inspector and the admin API in a background thread."""

    def __init__(self, runtime: Runtime, admin_token: str) -> None:
        self.runtime = runtime
        self.admin_token = admin_token
        self.channel: WebChannel | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="live-server", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runtime = self.runtime
        channel = WebChannel(
            runtime, name="web", bots=runtime.bots.names(), cookie_secret=b"x" * 32, poll=0.5
        )
        self.channel = channel
        runtime.bind_channel(channel.name, bot=channel.bots[0])
        await channel.delivery.recover()
        await channel.start()
        routes = [
            *channel.routes(),
            *inspector_routes(),
            *admin_routes(runtime, environ={"MNEMOBOT_ADMIN_TOKEN": self.admin_token}),
        ]
        app = build_app(routes, bots=runtime.bots.names())
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve(sockets=[self._sock]))
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        self._ready.set()
        await self._stop.wait()
        await channel.stop()
        server.should_exit = True
        await task
        await channel.delivery.drain()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            raise RuntimeError(f"the test server did not start: {self._error!r}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        self._sock.close()


@contextmanager
def live_server(runtime: Runtime, admin_token: str) -> Iterator[LiveServer]:
    server = LiveServer(runtime, admin_token)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Selenium through Debian's chromedriver."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="mnemobot-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,900",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def screenshot(driver: Any, name: str) -> Path:
    """Save a PNG of the whole page under tests/artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1100, max(700, min(int(height) + 160, 2600)))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    return path


def wait_until(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 10) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:  # a page that redraws while the condition reads it: read it again
        return WebDriverWait(
            driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition)
    except TimeoutException:
        status = driver.execute_script(
            "const s = document.getElementById('status') || document.getElementById('notice');"
            "return s ? s.textContent : '';"
        )
        raise AssertionError(f"timed out waiting for {what} (page says: {status!r})") from None
