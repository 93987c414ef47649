"""Browser tests: Playwright driving Debian's Chromium against the real ASGI app served by Uvicorn."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from devnet.ports import free_port, wait_for_port
from tests.plugins.require import require

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[str]:
    """The project's ASGI application (HTTP + WebSocket) on a loopback port, sharing the test database."""
    import uvicorn
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from mrmarket.asgi import router

    application = ASGIStaticFilesHandler(router)  # the test profile has DEBUG off

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(port, timeout=20), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        _end_other_sessions()


def _end_other_sessions() -> None:
    """Django ran the server's sync code in asgiref's process-wide executor thread; its connection is
    thread-local and would keep the test database from being dropped, so close it in that same thread."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture
def browser_page():
    if CHROMIUM is None:
        require("Chromium", CHROMIUM, "apt-get install chromium; .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def off_loop(fn, *args):
    """Run `fn` in another thread: async_to_sync (used by broadcasts) refuses the thread Playwright's loop runs in."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result(timeout=30)
