"""The film fills in while it renders: cut first from animatic cards, then cut again as renders land.

A ComfyUI build can take hours; a writer should not wait that long to see the edit. While the
renderer works, a thread re-cuts the film from the cards with every render landed so far laid
over them, at most once every `every` seconds, each cut replacing the film atomically (the cut
reuses every encoded segment it can, so it costs the changed scenes). The last cut is the
build's own, after the renders: this module only makes the ones before it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from storylang.render import ShotPicture


class FillIn:
    """`start()` it before rendering, hand it each render as it lands, `stop()` it after."""

    def __init__(self, cut: Callable[[dict[str, ShotPicture]], None], every: float,
                 on_stop: Callable[[], None] = lambda: None, on_error: Callable[[str], None] = lambda why: None):
        self.cut = cut  # makes the film from these rendered pictures (cards for the rest)
        self.every = every
        self.on_stop = on_stop  # asks a cut under way to stop early
        self.on_error = on_error
        self.landed: dict[str, ShotPicture] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.done = threading.Event()
        self.cuts = 0  # how many cuts were made
        self.started = False
        self.thread = threading.Thread(target=self._loop, daemon=True, name="fill-in")

    def start(self) -> "FillIn":
        """The first cut at once (cards, and what was found rendered), then the others as renders land."""
        if not self.started and not self.done.is_set():
            self.started = True
            self.wake.set()
            self.thread.start()
        return self

    def land(self, shot_id: str, picture: ShotPicture) -> None:
        with self.lock:
            self.landed[shot_id] = picture
        self.wake.set()

    def stop(self) -> None:
        """No more cuts; stops one under way and waits for it (the build's own cut must not race it)."""
        self.done.set()
        self.on_stop()
        self.wake.set()
        if self.started:
            self.thread.join()

    def _loop(self) -> None:
        last = None
        while True:
            self.wake.wait()
            if self.done.is_set():
                return
            if last is not None:  # not more often than `every` seconds
                if self.done.wait(max(0.0, self.every - (time.monotonic() - last))):
                    return
            self.wake.clear()
            with self.lock:
                pictures = dict(self.landed)
            last = time.monotonic()
            try:
                self.cut(pictures)
                self.cuts += 1
            except Exception as e:  # a cut in between is a convenience: the build goes on without it
                self.on_error(str(e) or type(e).__name__)
