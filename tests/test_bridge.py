"""The sync API's loop thread (relay_core.bridge.LoopThread): a result or an error
comes back to the calling thread as the coroutine gave it, a sync call made on the
loop itself is refused instead of hanging, and a caller that stops waiting cancels."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from relay_core.bridge import LoopThread, SyncBridge


@pytest.fixture
def bridge() -> Iterator[LoopThread]:
    loop_thread = LoopThread()
    yield loop_thread
    loop_thread.stop()


def test_a_result_comes_back_from_the_loop_thread(bridge: LoopThread) -> None:
    async def where() -> tuple[str, bool]:
        await asyncio.sleep(0)
        return threading.current_thread().name, asyncio.current_task() is not None

    assert bridge.run(where()) == ("relay-hub-loop", True)


def test_an_error_is_raised_in_the_caller_as_it_was(bridge: LoopThread) -> None:
    class Failed(Exception):
        pass

    async def fail() -> None:
        await asyncio.sleep(0)
        raise Failed("the provider said no")

    with pytest.raises(Failed, match="the provider said no"):
        bridge.run(fail())
    assert bridge.run(asyncio.sleep(0, "still serving")) == "still serving"


def test_a_sync_call_on_the_loop_itself_raises_instead_of_hanging(bridge: LoopThread) -> None:
    async def nested() -> str:
        inner = asyncio.sleep(0, "never")
        try:
            bridge.run(inner)
        except RuntimeError as error:
            return str(error)
        return "ran"

    assert "use the async form" in bridge.run(nested())


def test_calls_from_many_threads_each_get_their_own_answer(bridge: LoopThread) -> None:
    answers: dict[int, int] = {}

    async def echo(n: int) -> int:
        await asyncio.sleep(0.001)
        return n

    def caller(n: int) -> None:
        answers[n] = sum(bridge.run(echo(n)) for _ in range(20)) // 20

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {n: n for n in range(8)}


def test_a_caller_that_stops_waiting_cancels_the_call(
    bridge: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    # Ctrl-C arrives while the caller waits for the loop's answer.
    real_lock = threading.Lock

    class Interrupted:
        def __init__(self) -> None:
            self._lock = real_lock()
            self._calls = 0

        def acquire(self) -> bool:
            self._calls += 1
            if self._calls == 2:
                time.sleep(0.05)  # the call has started on the loop
                raise KeyboardInterrupt
            return self._lock.acquire()

        def release(self) -> None:
            self._lock.release()

    monkeypatch.setattr("relay_core.bridge.threading.Lock", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        bridge.run(slow())
    assert cancelled.wait(5)


def test_a_closed_loop_refuses_new_calls() -> None:
    loop_thread = LoopThread()
    loop_thread.stop()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        loop_thread.run(coro)
    assert coro.cr_frame is None  # closed, so never "was never awaited"


def test_a_hubs_bridge_starts_its_thread_on_first_use_and_again_after_detach() -> None:
    bridge = SyncBridge()
    assert bridge.detach() is None  # a hub used only async never starts a thread

    async def numbers() -> AsyncIterator[int]:
        for n in range(3):
            yield n

    assert bridge.run(asyncio.sleep(0, "ran")) == "ran"
    assert list(bridge.iterate(numbers())) == [0, 1, 2]
    first = bridge.detach()
    assert first is not None
    first.stop()
    assert bridge.run(asyncio.sleep(0, "again")) == "again"  # a closed hub reopens
    second = bridge.detach()
    assert second is not None
    assert second is not first
    second.stop()


def test_a_sync_hub_dropped_without_close_says_nothing_at_exit(tmp_path: Path) -> None:
    # Its pooled aiohttp sessions are collected unclosed; that is no error of the user's.
    script = tmp_path / "dropped.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, gc, http.server, threading
            from relay_core.bridge import LoopThread, SyncBridge
            from relay_core.http import HttpClient, HttpPool
            from relay_core.providers import ProviderSettings

            class Answer(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")

                def log_message(self, *args):
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            base = f"http://127.0.0.1:{server.server_address[1]}"
            loop_thread = LoopThread()

            def call():
                client = HttpClient(HttpPool(), ProviderSettings(name="local"), base_url=base)
                print(loop_thread.run(client.json("GET", "/")))

            call()  # the pool is dropped here, its session unclosed
            gc.collect()
            loop_thread.run(asyncio.sleep(0.1))  # the loop reports what it was told
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "{}"
    assert result.stderr == ""
