"""The main thread waits for workers in short steps, so a signal another thread received is handled at once."""

import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from storylang import waiting


class Stop(Exception):
    pass


def _stop(signum, frame):
    raise Stop


@pytest.mark.parametrize("wait_for", ["result", "results", "get"])
def test_a_signal_delivered_to_a_worker_thread_reaches_the_waiting_main_thread(wait_for):
    old = signal.signal(signal.SIGUSR1, _stop)
    release = threading.Event()
    box: queue.Queue = queue.Queue()

    def work():
        time.sleep(0.3)  # the main thread is waiting by now
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # the OS gives it to this thread
        release.wait(10)  # like an encode that takes its time
        box.put("done")

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(work)
            t0 = time.monotonic()
            with pytest.raises(Stop):
                {"result": lambda: waiting.result(fut), "results": lambda: waiting.results([fut]),
                 "get": lambda: waiting.get(box)}[wait_for]()
            took = time.monotonic() - t0
            release.set()
        assert took < 2, took  # a plain fut.result() would have waited the full 10 s
    finally:
        release.set()
        signal.signal(signal.SIGUSR1, old)


def test_results_come_in_order_and_the_first_failure_is_raised():
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert waiting.results([pool.submit(lambda i=i: (time.sleep(0.05 * (3 - i)), i)[1]) for i in range(3)]) \
            == [0, 1, 2]

        def fail():
            raise ValueError("no")

        slow = pool.submit(time.sleep, 1.0)
        t0 = time.monotonic()
        with pytest.raises(ValueError):
            waiting.results([slow, pool.submit(fail)])
        assert time.monotonic() - t0 < 0.9  # not after the slow one


def test_a_workers_own_timeout_error_is_raised_not_waited_out():
    def times_out():
        raise TimeoutError("the server did not answer")

    with ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(times_out)
        with pytest.raises(TimeoutError, match="did not answer"):
            waiting.result(fut)
        with pytest.raises(TimeoutError, match="did not answer"):
            waiting.results([pool.submit(times_out)])
