"""What held the reconciler's event loop, when something held it too long.

Every watch and write of the reconciler waits while its event loop is held. The loop
sleeps a tenth of a second at a time; a thread of its own wakes when that sleep would be
overdue by `limit`, and if it is, takes the loop thread's stack then: the code that holds
it. A loop found waiting for I/O (in `select`) was held by no code of its own, but by
another thread that kept the interpreter or by a machine that gave it no CPU. Once the
loop runs again, one warning says for how long it was held and where. Python's garbage
collections are timed too: they hold every thread, and a stack taken after one does not
show it.
"""

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger("adroit.reconciler")
FRAMES = 6  # innermost frames said in a warning
ASYNCIO = "/asyncio/"  # the loop's own frames say nothing, nor the timing of its steps
COLLECTION = 0.01  # s: a garbage collection at least this long is said with the stall


class Stalls:
    def __init__(self, limit: float, every: float = 0.1) -> None:
        self.limit, self.every = limit, every
        self.due: float | None = None  # monotonic time the loop's sleep ends
        self.where: list[str] = []  # the loop thread's stack, taken while it was held
        self.collections: list[tuple[int, float]] = []  # (generation, seconds), long ones
        self._collecting = 0.0
        self._collected = 0.0  # s, every collection's since the watch began (any thread's)
        self._thread_id = 0  # the loop's, once it watches
        self._stop = threading.Event()
        self._looker = threading.Thread(target=self._look, name="adroit-loop-stalls", daemon=True)

    async def watch(self) -> None:
        """Say when something held the event loop longer than `limit`, until cancelled."""
        self._thread_id = threading.get_ident()
        gc.callbacks.append(self._timed)
        self._looker.start()
        handles: Any = asyncio.events.Handle  # every step of every loop runs through it
        run = handles._run
        handles._run = self._step(run)
        try:
            while True:
                self.due = time.monotonic() + self.every
                await asyncio.sleep(self.every)
                late = time.monotonic() - self.due
                self.due = None
                if late > self.limit:
                    log.warning(
                        "the event loop was blocked for %.0f ms%s", late * 1000, self.said()
                    )
                self.where, self.collections = [], []
        finally:
            handles._run = run
            self._stop.set()
            gc.callbacks.remove(self._timed)

    def _step(self, run: Callable[[asyncio.Handle], None]) -> Callable[[asyncio.Handle], None]:
        """asyncio's Handle._run (one step of the loop: a callback, or a task's run between
        two awaits), timed on the loop's thread: a single step longer than `limit` is said
        with the code where it ended, how much of it the loop's thread ran (the rest it
        waited, for the interpreter another thread held or for a CPU the machine gave to
        other work), and how much of it Python's garbage collections took, in any thread."""

        def timed(handle: asyncio.Handle) -> None:
            started, ran, collected = time.perf_counter(), time.thread_time(), self._collected
            run(handle)
            took = time.perf_counter() - started
            if took > self.limit and threading.get_ident() == self._thread_id:
                ran = time.thread_time() - ran
                collected = self._collected - collected
                log.warning(
                    "one step of the event loop took %.0f ms "
                    "(its thread ran %.0f ms of them%s): %s",
                    took * 1000,
                    ran * 1000,
                    f"; garbage collection {collected * 1000:.0f} ms" if collected else "",
                    _ran(handle),
                )

        return timed

    def said(self) -> str:
        parts = [
            f"garbage collection of generation {g}: {s * 1000:.0f} ms" for g, s in self.collections
        ]
        if self.where:
            parts.append("held in: " + " < ".join(reversed(self.where)))
        return ("; " + "; ".join(parts)) if parts else ""

    def _look(self) -> None:
        """Wake when the loop's sleep would be overdue by `limit`: once a tick while it is
        not, a few times a `limit` while it is."""
        while True:
            due, wait = self.due, self.limit / 4
            if due is not None and not self.where:
                wait = due + self.limit - time.monotonic()
                if wait <= 0 and self.due == due:
                    self._take_stack()
                    continue
            if self._stop.wait(max(wait, 0.001)):
                return

    def _take_stack(self) -> None:
        frame = sys._current_frames().get(self._thread_id)
        if frame is None:  # the loop's thread has ended: nothing holds it
            self.where = ["(no event loop)"]
            return
        stack = [
            f
            for f in traceback.extract_stack(frame)
            if ASYNCIO not in f.filename and f.filename != __file__
        ]
        self.where = [_said(f) for f in stack[-FRAMES:]]

    def _timed(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._collecting = time.perf_counter()
            return
        took = time.perf_counter() - self._collecting
        self._collected += took
        if took >= COLLECTION:
            self.collections.append((info["generation"], took))


def _ran(handle: asyncio.Handle) -> str:
    """The innermost coroutine a step ran, where it now waits; else the callback."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    coro: Any = task.get_coro() if isinstance(task, asyncio.Task) else None
    while (inner := getattr(coro, "cr_await", None)) is not None:  # the coroutine it awaits
        frame = getattr(inner, "cr_frame", None)
        if frame is None or ASYNCIO in frame.f_code.co_filename:
            break  # down to the last one that is not asyncio's own (sleep, wait_for)
        coro = inner
    frame = getattr(coro, "cr_frame", None)
    if frame is not None:
        return _at(frame.f_code.co_qualname, frame.f_code.co_filename, frame.f_lineno)
    code = getattr(coro, "cr_code", None)
    if code is not None:  # the task ended in that step: where its coroutine begins
        return f"{_at(code.co_qualname, code.co_filename, code.co_firstlineno)}, which ended"
    return repr(handle)


def _said(frame: traceback.FrameSummary) -> str:
    return _at(frame.name, frame.filename, frame.lineno)


def _at(name: str, path: str, line: int | None) -> str:
    """`name (package/file.py:line)`: enough of the path to find it."""
    return f"{name} ({'/'.join(path.split('/')[-2:])}:{line})"
