"""Dynamic batching: the queue between a server's connections and its inference workers.

A connection admits its request (:meth:`Batcher.admit`; refused when ``capacity`` requests are
held already), prepares it (reads, checks, decodes and resizes the image) and queues it as a
:class:`Job` (:meth:`Batcher.put`). A worker takes the oldest queued jobs, up to ``batch_size``
(:meth:`Batcher.take`), waiting up to ``delay`` seconds for more only while other admitted
requests are still being prepared, so a lone request never waits; it runs them as one forward
pass and sets each job's result. The connection answers and releases its place
(:meth:`Batcher.release`).

A batcher may form only some batch sizes (``sizes``): it then takes the largest of them that
the queue fills and leaves the rest queued for the next batch, which new requests may join. A
server on a CPU takes powers of two (:func:`nested_sizes`): a forward pass's activations are
host memory that malloc keeps and reuses (``algorithm/memory.py``), and each size's tensors
then fit in the space a larger size freed, where batches of every size from 1 to 8 leave the
heap fragmented. A trial on 2 cores with the serving benchmark's SSD300 VGG-16 (8 clients, 5
rounds of 100 requests, the server idle between rounds, two servers side by side): with any
size the server's memory wandered between 1,333 and 1,539 MB; with powers of two it held at
1,232 to 1,250 MB after the first round (1,194 MB), at the same 1.44 requests/s; in the
serving benchmark (2,000 requests) its memory grew 3.7% from request 100 on, against 23.6%
before (docs/serving.md). A GPU's memory has its own caching allocator, so a server on a GPU
takes any size.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Sequence

from algorithm import inference


class Job:
    """One prepared request on its way through the batcher."""

    def __init__(self, pixels: Any, options: inference.DetectionOptions):
        self.pixels = pixels
        self.options = options
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self.cancelled = False


def nested_sizes(batch_size: int) -> List[int]:
    """The powers of two below ``batch_size``, and ``batch_size``: 8 -> [1, 2, 4, 8]."""
    sizes = []
    size = 1
    while size < batch_size:
        sizes.append(size)
        size *= 2
    return [*sizes, batch_size]


class Batcher:
    """The queue between the connections and the workers, and the count of held requests.
    ``sizes``: the batch sizes it forms (ascending, starting at 1; None: any up to
    ``batch_size``)."""

    def __init__(self, batch_size: int, delay: float, capacity: int,
                 sizes: Optional[Sequence[int]] = None):
        self.batch_size, self.delay, self.capacity = batch_size, delay, capacity
        self.sizes = sizes
        self._cond = threading.Condition()
        self._queue: Deque[Job] = collections.deque()
        self.held = 0  # admitted and not yet answered
        self.preparing = 0  # admitted and not yet queued (being received or decoded)
        self.closed = False

    def admit(self) -> bool:
        with self._cond:
            if self.held >= self.capacity:
                return False
            self.held += 1
            self.preparing += 1
            return True

    def unprepared(self) -> None:
        """An admitted request ends before it is queued (refused, or its client left)."""
        with self._cond:
            self.preparing -= 1
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self.held -= 1
            self._cond.notify_all()

    def put(self, job: Job) -> None:
        with self._cond:
            self.preparing -= 1
            self._queue.append(job)
            self._cond.notify_all()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def take(self, timeout: Optional[float] = None) -> List[Job]:
        """The next batch; waits for work (at most ``timeout`` seconds when given). Empty once
        closed and drained, or when the timeout passes with nothing queued."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self.closed:
                    return []
                if end is None:
                    self._cond.wait()
                elif not self._cond.wait(max(0.0, end - time.monotonic())) and \
                        not self._queue:
                    return []
            # Wait for requests still being received or decoded, not for ones not yet sent.
            deadline = time.monotonic() + self.delay
            while len(self._queue) < self.batch_size and self.preparing > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            count = min(self.batch_size, len(self._queue))
            if self.sizes:
                count = max(size for size in self.sizes if size <= count)
            return [self._queue.popleft() for _ in range(count)]

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is held; False if some still are after ``timeout``."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.held > 0:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True


Detect = Callable[[List[Any], List[inference.DetectionOptions]], Sequence[Any]]


def work(batcher: Batcher, detect: Detect, idle: Optional[Callable[[], None]] = None,
         idle_after: float = 0.0) -> None:
    """A worker's loop: take batches and run each as one call of ``detect(pixels, options)``
    (one result per job), until the batcher is closed and drained. A failing batch answers its
    jobs with the error; the worker goes on. ``idle`` (when given, with ``idle_after`` > 0) is
    called once the worker has had nothing to do for ``idle_after`` seconds since its last
    batch, then not again until after its next batch."""
    releases = idle is not None and idle_after > 0
    waiting = releases  # for a quiet spell, since the start or the last batch
    while True:
        taken = batcher.take(idle_after if waiting else None)
        if not taken and not batcher.closed:
            assert idle is not None  # take() times out only while waiting
            idle()
            waiting = False
            continue
        jobs = [j for j in taken if not j.cancelled]
        if batcher.closed and not jobs and not batcher.queued:
            return
        if jobs:
            _run(jobs, detect)
            waiting = releases


def _run(jobs: Sequence[Job], detect: Detect) -> None:
    try:
        results = detect([j.pixels for j in jobs], [j.options for j in jobs])
    except Exception as exc:  # a worker never dies: the batch's requests get a 500
        for job in jobs:
            job.error = exc
            job.done.set()
        return
    for job, result in zip(jobs, results):
        job.result = result
        job.done.set()
