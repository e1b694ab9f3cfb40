"""Batches in flight: prepare batches in one reader thread, run several at once, hand their
results back in submission order.

Why: the model runs some 700 small operators per batch. One onnxruntime session spread over
N intra-op threads meets a thread barrier after each of them; N batches each run on one
thread (or ``threads // N``) share no barrier and keep the cores busier (measured on 2
cores: 1.17-1.31x, docs/performance.md "Batches in flight"). onnxruntime allows concurrent
``InferenceSession.run`` calls on one session; each call with a one-thread intra-op pool runs
in the calling thread.

Results come back in the order the items were given whatever order the runs finish in, so
that the blending of overlapping tiles (floating-point sums) and the row-by-row writing see
exactly the sequence of a run without concurrency: the output is identical to running the
batches one after the other on a session with the same intra-op threads.
"""
from __future__ import annotations

import collections
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

#: Most batches in flight chosen automatically (each holds its activations in memory).
MAX_AUTO_IN_FLIGHT = 4


def split_threads(threads: int | None, in_flight: int | None = None,
                  on_cpu: bool = True) -> tuple[int, int]:
    """(batches in flight, intra-op threads of each) for a run allowed ``threads`` threads.

    Args:
        threads: threads the run may use (None = every core).
        in_flight: asked for (None = auto: ``min(threads, MAX_AUTO_IN_FLIGHT)`` on the CPU,
            1 on an accelerator, which runs one batch at a time anyway). On the CPU at most
            ``threads``: each batch in flight runs on at least one thread of its own.
        on_cpu: whether the CPU execution provider runs the model.

    Raises:
        ValueError: ``in_flight`` or ``threads`` below 1.
    """
    total = int(threads) if threads else (os.cpu_count() or 1)
    if total < 1:
        raise ValueError(f"threads must be at least 1 (got {threads})")
    if in_flight is not None and int(in_flight) < 1:
        raise ValueError(f"batches in flight must be at least 1 (got {in_flight})")
    k = int(in_flight) if in_flight else (MAX_AUTO_IN_FLIGHT if on_cpu else 1)
    if on_cpu:
        k = min(k, total)
    return k, max(1, total // k)


class InFlight:
    """Ordered pipeline ``item -> prepare(item) -> infer(prepared)``.

    ``prepare`` runs in one reader thread, in item order (GDAL datasets are not shared across
    threads); ``infer`` runs on up to ``in_flight`` threads at once; at most ``in_flight + 1``
    items are prepared or running ahead of the consumer, which bounds memory to that many
    batches.

    Use as a context manager; leaving it (normally, on an error, or on a cancel raised by the
    consumer) cancels what has not started and waits for the running calls, so that no thread
    outlives the run.

    Args:
        prepare: item -> prepared batch (reader thread).
        infer: prepared batch -> output (inference threads); may return None.
        in_flight: inference calls running at once (>= 1).

    Raises:
        ValueError: ``in_flight`` below 1.
        Any exception of ``prepare`` or ``infer`` is raised by :meth:`results` at the item
        where it happened.
    """

    def __init__(self, prepare: Callable[[Any], Any], infer: Callable[[Any], Any],
                 in_flight: int = 1):
        if int(in_flight) < 1:
            raise ValueError(f"in_flight must be at least 1 (got {in_flight})")
        self.in_flight = int(in_flight)
        self._prepare, self._infer = prepare, infer
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maestro-read")
        self._runners = ThreadPoolExecutor(max_workers=self.in_flight,
                                           thread_name_prefix="maestro-run")
        self._window: collections.deque[Future] = collections.deque()

    def __enter__(self) -> "InFlight":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what has not started, wait for the calls running now."""
        for future in self._window:
            future.cancel()
        self._window.clear()
        self._runners.shutdown(wait=True, cancel_futures=True)
        self._reader.shutdown(wait=True, cancel_futures=True)

    def _submit(self, item) -> None:
        prepared = self._reader.submit(self._prepare, item)

        def run() -> tuple[Any, Any]:
            batch = prepared.result()
            return batch, self._infer(batch)

        self._window.append(self._runners.submit(run))

    def results(self, items: Iterable) -> Iterator[tuple[Any, Any]]:
        """Yield ``(prepared, output)`` for every item, in the order of ``items``."""
        pending = iter(items)
        for item in pending:
            self._submit(item)
            if len(self._window) > self.in_flight:
                break
        while self._window:
            done = self._window.popleft().result()
            for item in pending:               # refill the window by one
                self._submit(item)
                break
            yield done
