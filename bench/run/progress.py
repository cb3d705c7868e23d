"""What a running job is doing right now, for the run's progress line.

A measurement calls :func:`say` ("waiting for a quiet CPU: others use 43%, 6 s left"); whoever
shows progress listens with :func:`listening`. Jobs that run in worker processes (fresh processes
for timing, ``--workers N``) send their messages through one queue per parent process, relayed
to the parent's listeners by a daemon thread (:func:`worker_queue`, :func:`init_worker`).
Messages are best effort: a lost one costs a stale progress line, never a result.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Optional

_listeners: list[Callable[[str], None]] = []
_to_parent: Any = None  # in a worker process: the parent's queue
_relay: Optional[tuple[Any, threading.Thread]] = None  # in a parent: (queue, relaying thread)


def say(message: str) -> None:
    """Tell the progress line what the current job is doing (or waiting for)."""
    if _to_parent is not None:
        try:
            _to_parent.put_nowait(message)
        except Exception:  # a full or closed queue: drop the message
            pass
    for fn in list(_listeners):
        fn(message)


@contextlib.contextmanager
def listening(fn: Callable[[str], None]) -> Iterator[None]:
    """Within the block, ``fn`` receives every message of this process's jobs and of its workers'."""
    _listeners.append(fn)
    try:
        yield
    finally:
        _listeners.remove(fn)


def init_worker(queue: Any) -> None:
    """Worker-process initializer: send :func:`say` messages to the parent through ``queue``."""
    global _to_parent
    _to_parent = queue


def worker_queue(ctx: Any) -> Any:
    """This process's queue for its workers' messages (``ctx``: the multiprocessing context the
    workers are made with); created once, with a daemon thread relaying it to :func:`say`."""
    global _relay
    if _relay is None:
        queue = ctx.Queue()

        def relay() -> None:
            while True:
                try:
                    say(queue.get())
                except Exception:  # the queue went away with the process
                    return

        thread = threading.Thread(target=relay, name="bench-status-relay", daemon=True)
        thread.start()
        _relay = (queue, thread)
    return _relay[0]
