"""Work spread over worker processes, results taken back in order."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Executor
from typing import Callable, Iterable, Iterator


def in_order(pool: Executor, function: Callable, calls: Iterable[tuple], ahead: int) -> Iterator:
    """``function(*args)`` for each ``args`` of ``calls``, run on ``pool``, yielded in the order of ``calls``.

    At most ``ahead`` calls are submitted and not yet taken, so the inputs read and the results held stay
    bounded whatever the length of ``calls``; a result is let go as soon as the caller moves on.
    """
    pending: deque = deque()
    for args in calls:
        pending.append(pool.submit(function, *args))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
