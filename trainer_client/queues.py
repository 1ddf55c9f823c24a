"""The hand-over from the training thread to the sender thread: a bounded FIFO that counts what
it had to drop.

``put`` is on the training loop's hot path: it never blocks and never raises. When the sender
thread cannot keep up for long (a GPU read-back that hangs, a disk that stalls) the queue stops
growing at its capacity and counts each item it turns away, so memory stays bounded and the
loss is reported rather than silent.
"""

from __future__ import annotations

import threading
from collections import deque


class BoundedQueue:
    """Many producers ``put``, one consumer ``take``s; items beyond ``capacity`` are dropped
    (the newest: what is queued keeps its order) and counted in ``dropped``."""

    __slots__ = ("_items", "_capacity", "_dropped", "_drop_lock")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a queue needs room for at least one item, not {capacity}")
        self._items: deque = deque()
        self._capacity = int(capacity)
        self._dropped = 0
        self._drop_lock = threading.Lock()  # only a drop takes it: put stays lock-free

    def put(self, item) -> int:
        """Queue an item unless the queue is full (then it is dropped and counted); the number
        of items queued now."""
        items = self._items
        n = len(items)
        if n >= self._capacity:
            with self._drop_lock:
                self._dropped += 1
            return n
        items.append(item)  # deque.append is atomic: producers need no lock
        return n + 1

    def take(self, limit: int) -> list:
        """Up to ``limit`` items, oldest first (the consumer's side)."""
        popleft = self._items.popleft
        return [popleft() for _ in range(min(limit, len(self._items)))]

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def dropped(self) -> int:
        """Items turned away because the queue was full, since it was made."""
        return self._dropped

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
