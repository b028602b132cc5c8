"""An aiohttp application served on 127.0.0.1 from its own thread and event loop: the base of the
tests' ComfyUI and OpenAI-compatible servers. A subclass gives `_app()` (called on the loop's
thread), and may add `_started()` and its own `_shutdown()`."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class LoopServer:
    port = 0
    _loop = None
    _thread = None
    _runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def _app(self) -> web.Application:
        raise NotImplementedError

    def _started(self) -> None:
        """On the loop's thread, once the port is open."""

    async def _shutdown(self) -> None:
        await self._runner.cleanup()

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self._app())
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._started()
        ready.set()
        self._loop.run_forever()
