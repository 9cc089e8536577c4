"""Ready-made partitioners a job may assign to `partitioner`, which the framework evaluates in bulk.

`RangePartitioner(split_points)` sends a key to the range of sorted split points it falls in
(Hadoop's TotalOrderPartitioner): partition i holds the keys k with points[i-1] <= k < points[i],
so part-00000 < part-00001 < ... and the concatenated part files of a sort are globally sorted.

    from mapreduce.partitioners import RangePartitioner
    partitioner = RangePartitioner(lambda num_reducers: [...the num_reducers - 1 split points...])

It is an ordinary partitioner (`partitioner(key, num_partitions)` works), but the shuffle knows
it: the per-record writer partitions a whole buffer of keys by C-level bisection (no Python call
per key) and the vectorised one a whole Arrow column by `search_sorted`. A job's own partitioner
function is still called once per key, as before.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import repeat
from typing import Callable, Sequence, Union

from .errors import RecordError

SplitPoints = Union[Sequence, Callable[[int], Sequence]]


class RangePartitioner:
    """Partitions keys by sorted split points: `split_points` is a sorted sequence of keys (at
    most num_partitions - 1 of them), or a function of the number of partitions that returns one.
    Keys compare as Python compares them (strs by code point, bytes by byte, ints by value)."""

    def __init__(self, split_points: SplitPoints):
        self._split_points = split_points
        self._points: dict = {}  # num_partitions -> its checked split points (a list)

    def __repr__(self) -> str:
        return f"RangePartitioner({self._split_points!r})"

    def points(self, num_partitions: int) -> list:
        """The checked split points for `num_partitions` partitions (RecordError if unusable)."""
        points = self._points.get(num_partitions)
        if points is None:
            given = self._split_points
            points = list(given(num_partitions) if callable(given) else given)
            if len(points) > num_partitions - 1:
                raise RecordError(
                    f"the RangePartitioner has {len(points)} split points, which make "
                    f"{len(points) + 1} partitions, but the job has {num_partitions} reducers; "
                    f"give it at most num_reducers - 1 split points"
                )
            try:
                ordered = all(a <= b for a, b in zip(points, points[1:]))
            except TypeError as cause:
                raise RecordError(
                    f"the RangePartitioner's split points cannot be compared: {cause}"
                ) from None
            if not ordered:
                raise RecordError("the RangePartitioner's split points must be sorted")
            self._points[num_partitions] = points
        return points

    def __call__(self, key, num_partitions: int) -> int:
        return self.partitions([key], num_partitions)[0]

    def partitions(self, keys: list, num_partitions: int) -> list:
        """The partition of every key, by bisection in C (map over bisect_right)."""
        points = self.points(num_partitions)
        try:
            return list(map(bisect_right, repeat(points), keys))
        except TypeError as cause:
            raise RecordError(
                f"the RangePartitioner cannot place a key among its split points: {cause}; "
                f"keys and split points must be of types Python can compare (such as all str)"
            ) from None

    def partition_array(self, keys, num_partitions: int):
        """The partition of every key of an Arrow array (int32), by Arrow's search_sorted when
        the split points convert to the keys' type, else by bisection in Python."""
        import pyarrow as pa
        import pyarrow.compute as pc

        points = self.points(num_partitions)
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        if not points:
            return pa.nulls(len(keys), pa.int32()).fill_null(0)
        try:
            sorted_points = pa.array(points, type=keys.type)
            # Only points the keys' type holds exactly (0.5 must not become an int64 0).
            exact = sorted_points.to_pylist() == points and all(
                type(a) is type(b) for a, b in zip(sorted_points.to_pylist(), points)
            )
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            exact = False
        if not exact or pa.types.is_floating(keys.type) or keys.null_count:
            # NaN and None have no place among the split points: Python's order decides (or refuses).
            return pa.array(self.partitions(keys.to_pylist(), num_partitions), pa.int32())
        return pc.search_sorted(sorted_points, keys, side="right").cast(pa.int32())
