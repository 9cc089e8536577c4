"""A task process touches Arrow's memory pool while it waits for its first task (executor.py's
prefault_memory_pool), and stops the moment a task arrives."""

from __future__ import annotations

import pyarrow as pa

from mapreduce import defaults
from mapreduce.worker.executor import prefault_memory_pool

BLOCK = defaults.EXECUTOR_PREFAULT_BLOCK_BYTES


def test_touches_the_asked_size_and_hands_it_back_to_the_pool():
    pool = pa.default_memory_pool()
    before = pool.bytes_allocated()
    touched = prefault_memory_pool(lambda: False, 8 * BLOCK)
    assert touched == 8 * BLOCK
    assert pool.max_memory() >= before + 8 * BLOCK  # all of it was held at once
    assert pool.bytes_allocated() == before  # and all of it went back to the pool


def test_stops_as_soon_as_a_task_is_waiting():
    asked = []

    def task_waiting() -> bool:
        asked.append(True)
        return len(asked) > 3  # a task arrives while the fourth block would be touched

    assert prefault_memory_pool(task_waiting, 100 * BLOCK) == 3 * BLOCK
    assert len(asked) == 4


def test_a_task_already_waiting_is_not_delayed():
    assert prefault_memory_pool(lambda: True, 100 * BLOCK) == 0
