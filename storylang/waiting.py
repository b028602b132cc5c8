"""Waiting for worker threads from the main thread, in short steps.

A signal sent to the process (Ctrl-C's SIGINT, SIGTERM) may be delivered to any of its threads;
Python then runs its handler in the main thread, but only when that thread next runs Python code.
A main thread blocked on a lock with no timeout (Future.result(), Queue.get()) runs it only when
the work it waits for ends: an encode of a long shot, seconds later. Waiting in steps of STEP
seconds keeps Ctrl-C prompt.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, wait

STEP = 0.2


def result(future: Future):
    """The future's result (or its exception), waited for in steps. (Not result(timeout=...) in a
    loop: a worker's own TimeoutError, a socket's, would look like a step and be waited out forever.)"""
    while not wait([future], timeout=STEP).done:
        pass
    return future.result()


def results(futures: Iterable[Future]) -> list:
    """Every future's result, in order; the first failure is raised as soon as it happens."""
    futures = list(futures)
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=STEP, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            raise failed.exception()
    return [f.result() for f in futures]


def get(q: queue.Queue):
    """The next item of a queue, waited for in steps."""
    while True:
        try:
            return q.get(timeout=STEP)
        except queue.Empty:
            continue
