"""The per-video watchdog: no decoder, detector or classifier call can stall the run.

A call that never returns (an FFmpeg demuxer looping on a malformed file, a driver that hangs) is
not interrupted: Python cannot stop a thread that sits in C code. Instead the run stops *waiting*
for it. After ``config.video_timeout`` seconds of work on one video its thread is abandoned, the
video gets the fallback label with status ``timeout`` (extraction leaves it for a rerun), and
fresh threads take the videos that were queued behind it (``prefetch``, which both prediction and
extraction read their videos through). The abandoned thread is a daemon, so it never keeps the process
alive at exit (``concurrent.futures`` threads are joined at exit: one stuck call would hang the
notebook after the CSV is written, hence ``DaemonPool``).

Why threads and not a killable process per video: decoded frames would have to be copied between
processes (a 1080p sample of 32 frames is 200 MB), GPU frames and the CUDA context cannot cross
at all, and starting a process costs more than decoding a DFDC video. Waiting with a deadline
costs a few microseconds per video. The price: an abandoned call keeps its thread and memory until
it returns, if ever; a hang that holds the GIL would still stall everything (the decoders and
torch release it while they work).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class VideoTimeout(Exception):
    """Work on one video ran past ``config.video_timeout``; the message says in which stage."""


class DaemonPool:
    """A minimal ``ThreadPoolExecutor`` of daemon threads that can be walked away from.

    ``abandon`` cancels what has not started and lets idle threads end; it never waits, so a
    thread stuck in a call stays behind on its own while a new pool carries on.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple] | None] = queue.SimpleQueue()
        self._workers = workers
        self._queued: list[Future] = []
        for number in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{number}", daemon=True).start()

    def submit(self, function: Callable[..., T], *args: Any) -> Future:
        future: Future = Future()
        self._queued = [item for item in self._queued if not item.done()]
        self._queued.append(future)
        self._tasks.put((future, function, args))
        return future

    def abandon(self) -> None:
        for future in self._queued:
            future.cancel()  # only those no thread has started
        for _ in range(self._workers):
            self._tasks.put(None)

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, function, args = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as error:  # handed to whoever waits, as concurrent.futures does
                future.set_exception(error)


@dataclass
class WorkClock:
    """Seconds spent working on one video: its decoding, then its detection and cropping.

    Time a video spends queued (waiting for a free decoder, or decoded and waiting for the detect
    thread) is not counted, so prefetching many videos never times one out.
    """

    decode_started: float | None = None
    decode_ended: float | None = None
    detect_started: float | None = None

    def spent(self, now: float) -> float:
        if self.decode_started is None:
            return 0.0
        decoding = (self.decode_ended if self.decode_ended is not None else now) - self.decode_started
        return decoding + (now - self.detect_started if self.detect_started is not None else 0.0)

    def stage(self) -> str:
        """Where the work is now: ``decoding`` or ``detection``."""
        return "detection" if self.detect_started is not None else "decoding"


def wait_for(future: Future, clock: WorkClock, timeout: float) -> Any:
    """``future``'s result, or ``VideoTimeout`` once ``clock`` has counted ``timeout`` seconds.

    Each wait lasts the time left on the clock: the clock runs at most as fast as the wall, so it
    wakes at most once per stretch the video spent queued, never polls.
    """
    while True:
        left = timeout - clock.spent(time.perf_counter())
        if left <= 0:
            raise VideoTimeout(f"{clock.stage()} ran past {timeout:g} s")
        try:
            return future.result(timeout=left)
        except FutureTimeout:
            continue


def call_with_timeout(function: Callable[..., T], timeout: float, *args: Any, stage: str = "classification") -> T:
    """``function(*args)`` on its own daemon thread; ``VideoTimeout`` naming ``stage`` if it takes over ``timeout`` s."""
    future: Future = Future()

    def call() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=call, name="watched", daemon=True).start()
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise VideoTimeout(f"{stage} ran past {timeout:g} s") from None

