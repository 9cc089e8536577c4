"""The per-record map loop in C (mapreduce/_speedups_src/map_loop.c: map_lines) against the Python loop it
replaces: the same shuffle output, counters and failure reports, for mappers that take its fast
path and for every kind of output it hands back to Python."""

from __future__ import annotations

import collections
import random
import re
import zlib

import pytest

from helpers import groups_of, speedups_missing, typed
from mapreduce import defaults
from mapreduce.inputs import expand_inputs, plan_splits
from mapreduce.jobspec import Job
from mapreduce.shuffle import writer
from mapreduce.worker.failures import TaskError
from mapreduce.worker.map_task import run_map

pytestmark = pytest.mark.skipif(bool(speedups_missing()), reason=speedups_missing())

WORD = re.compile(r"[A-Za-z]+")
VOCABULARY = ["the", "a", "cat", "dog", "sat", "on", "mat", "x", "Zebra", "émigré"]


def _write_inputs(directory, files=3, lines=400, seed=0) -> list:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(files):
        path = directory / f"part-{number}.txt"
        text = [" ".join(rng.choices(VOCABULARY, k=rng.randrange(0, 9))) for _ in range(lines)]
        path.write_text("\n".join(text) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _split(directory):
    (split,) = plan_splits(expand_inputs([str(directory)]), "lines", None, min_splits=1)
    assert len(split.segments) > 1  # several files: blocks of several paths in one task
    return split


def _run(job, split, out_dir, partitions=3, spill_records=defaults.SPILL_RECORDS):
    task = {
        "split": split.to_wire(),
        "out_dir": str(out_dir),
        "partitions": partitions,
        "spill_records": spill_records,
        "sort_buffer": defaults.SORT_BUFFER_BYTES,
    }
    result = run_map(job, task)
    groups = {
        partition: [
            (typed(key), sorted(map(typed, values), key=repr)) for key, values in groups_of(paths)
        ]
        for partition, paths in result["files"].items()
    }
    counters = {k: v for k, v in result["counters"].items() if k not in ("shuffle_bytes",)}
    return groups, counters


def _both(tmp_path, monkeypatch, job, split, **options):
    """(C loop's result, Python loop's result) for the same job and split."""
    results = []
    for name in ("c", "python"):
        if name == "python":
            monkeypatch.setattr(writer, "c_map_lines", None)
        results.append(_run(job, split, tmp_path / name, **options))
    monkeypatch.undo()
    return results


def _sum(key, values):
    yield key, sum(values)


def _passing(key, values):  # gives the same multiset however often it runs
    for value in values:
        yield key, value


def words(path, line):
    for word in WORD.findall(line.lower()):
        yield word, 1


def words_as_list(path, line):
    return [(word, 1) for word in line.split()]


def words_or_none(path, line):
    return None if not line else ((word, len(word)) for word in line.split())


def typed_values(path, line):
    # Values that must never be counted together: 1, True, 1.0, and a list pair (checked path).
    for number, word in enumerate(line.split()):
        yield word, (1, True, 1.0, "1", b"1", None, 2**70)[number % 7]
        if number == 3:
            yield [word, number]


def tuple_keys(path, line):
    found = line.split()
    for first, second in zip(found, found[1:]):
        yield (first, second), 1
    if found:
        yield (found[0], str(len(found)), ""), 2


def odd_lines_unusual(path, line):
    # Every other line yields a float first: the C loop hands each such record back.
    if len(line) % 2:
        yield "odd", 0.5
    yield from ((word, 1) for word in line.split())


MAPPERS = [words, words_as_list, words_or_none, typed_values, tuple_keys, odd_lines_unusual]


@pytest.mark.parametrize("mapper", MAPPERS, ids=lambda mapper: mapper.__name__)
@pytest.mark.parametrize("combiner", [None, _sum, _passing], ids=["none", "sum", "passing"])
def test_c_and_python_map_loops_give_the_same_output(tmp_path, monkeypatch, mapper, combiner):
    if combiner is _sum and mapper is typed_values:
        pytest.skip("sum() of str and bytes values")
    _write_inputs(tmp_path / "in", seed=zlib.crc32(mapper.__name__.encode()) % 1000)
    split = _split(tmp_path / "in")
    job = Job("t", mapper=mapper, combiner=combiner)
    c_result, python_result = _both(tmp_path, monkeypatch, job, split)
    assert c_result == python_result
    assert c_result[1]["map_input_records"] == 1200


@pytest.mark.parametrize("spill_records", [1, 7, 300])
@pytest.mark.parametrize("combiner", [None, _sum])
def test_spills_in_the_c_loop_keep_every_pair(tmp_path, monkeypatch, spill_records, combiner):
    paths = _write_inputs(tmp_path / "in", seed=spill_records)
    split = _split(tmp_path / "in")
    job = Job("t", mapper=words, combiner=combiner)
    c_result, python_result = _both(tmp_path, monkeypatch, job, split, spill_records=spill_records)
    totals: collections.Counter = collections.Counter()
    for groups in c_result[0].values():
        for (_, key), values in groups:
            totals[key] += sum(value for _, value in values)
    expected = collections.Counter(
        word
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        for word in WORD.findall(line.lower())
    )
    assert totals == expected
    for counter in ("map_input_records", "map_output_records"):  # (spills may differ)
        assert c_result[1][counter] == python_result[1][counter]


def _failure(job, split, out_dir) -> dict:
    with pytest.raises(TaskError) as caught:
        _run(job, split, out_dir)
    return caught.value.report


def _both_failures(tmp_path, monkeypatch, job, split) -> tuple:
    reports = []
    for name in ("c", "python"):
        if name == "python":
            monkeypatch.setattr(writer, "c_map_lines", None)
        reports.append(_failure(job, split, tmp_path / name))
    monkeypatch.undo()
    return reports


def _fails_on(target: str, how):
    """A mapper that yields its words, and on the line `target` does `how` (after a first pair)."""

    def mapper(path, line):
        if line == target and how == "call":
            raise ValueError("bad line at call")
        for number, word in enumerate(line.split()):
            if line == target and number == 1:
                if how == "raise":
                    raise ValueError(f"bad line {line!r}")
                if how == "not a pair":
                    yield "just a str"
                if how == "triple":
                    yield word, 1, 2
            yield word, 1

    return mapper


@pytest.mark.parametrize("how", ["raise", "call", "not a pair", "triple"])
@pytest.mark.parametrize("combiner", [None, _sum])
def test_failures_are_reported_as_by_the_python_loop(tmp_path, monkeypatch, how, combiner):
    paths = _write_inputs(tmp_path / "in", lines=300)
    target = "the failing line of this test"  # made of words no other line has
    lines = paths[1].read_text(encoding="utf-8").splitlines()
    lines[200] = target
    paths[1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    split = _split(tmp_path / "in")
    job = Job("t", mapper=_fails_on(target, how), combiner=combiner)
    c_report, python_report = _both_failures(tmp_path, monkeypatch, job, split)
    assert c_report == python_report
    assert f"{paths[1]}, line 201)" in c_report["message"]
    if how in ("raise", "call"):
        assert c_report["record"]["cause"].startswith("ValueError: bad line")
        assert "raise ValueError" in c_report["traceback"]  # the user's own frame
    else:
        assert c_report["permanent"] and "record" not in c_report


@pytest.mark.parametrize("output", [1, "ab", 2.5])
def test_an_output_that_is_not_pairs_gets_the_python_loops_message(tmp_path, monkeypatch, output):
    _write_inputs(tmp_path / "in", lines=50)
    split = _split(tmp_path / "in")

    def mapper(path, line):
        return output if line.startswith("cat") else ((word, 1) for word in line.split())

    job = Job("t", mapper=mapper, combiner=_sum)
    c_report, python_report = _both_failures(tmp_path, monkeypatch, job, split)
    assert c_report == python_report


def test_mapper_final_and_hooks_still_run_after_the_c_loop(tmp_path, monkeypatch):
    _write_inputs(tmp_path / "in")
    split = _split(tmp_path / "in")
    seen = []

    def mapper_final():
        yield "final", 1

    job = Job(
        "t",
        mapper=words,
        combiner=_sum,
        mapper_init=lambda: seen.append("init"),
        mapper_final=mapper_final,
    )
    c_result, python_result = _both(tmp_path, monkeypatch, job, split)
    assert c_result == python_result
    assert seen == ["init", "init"]  # once per attempt
    assert any(
        key == (str, "final") and values == [(int, 1)]
        for groups in c_result[0].values()
        for key, values in groups
    )


# --- map_lines itself: what it returns at each stop --------------------------------------------------


def _counting(mapper, lines, start, counts, room, tally=None):
    """map_lines counting into `counts`, with the tally drained into it after the call."""
    tally = writer.c_str_tally() if tally is None else tally
    result = writer.c_map_lines(mapper, "p", lines, start, counts, None, room, tally)
    writer.c_str_tally_drain(tally, counts)
    return result


def test_map_lines_stops_when_full_and_hands_back_what_it_does_not_take():
    map_lines = writer.c_map_lines
    lines = ["a b", "c", "", "d e f", "g"]

    def mapper(path, line):
        assert path == "p"
        if line == "g":
            yield "g", 1.5  # not countable
        for word in line.split():
            yield word, 1

    counts: dict = {}
    assert _counting(mapper, lines, 0, counts, 3) == (1, 2, None, 3)
    assert counts == {(int, 1): {"a": 1, "b": 1, "c": 1}}
    status, index, extra, taken = _counting(mapper, lines, 2, counts, 100)
    assert (status, index, taken) == (2, 4, 3)
    taken_items, rest = extra
    assert taken_items == (("g", 1.5),) and list(rest) == [("g", 1)]
    assert counts == {(int, 1): dict.fromkeys("abcdef", 1)}
    # Without a combiner every exact 2-tuple is buffered as it is (as the Python loop does).
    pairs: list = []
    assert map_lines(mapper, "p", lines, 0, None, pairs, 100, None) == (0, 5, None, 8)
    assert pairs == [*((word, 1) for word in "abcdef"), ("g", 1.5), ("g", 1)]
    listed = ["a", 1]
    status, index, extra, taken = map_lines(
        lambda path, line: [("x", 1), listed], "p", lines, 0, None, pairs, 100, None
    )
    assert (status, index, taken) == (2, 0, 1) and extra[0] == (listed,)
    assert list(extra[1]) == [] and pairs[-1] == ("x", 1)


def test_map_lines_returns_the_exception_with_the_record_index():
    def mapper(path, line):
        yield line, 1
        if line == "bad":
            raise KeyError(line)

    counts: dict = {}
    status, index, error, taken = _counting(mapper, ["x", "bad", "y"], 0, counts, 100)
    assert (status, index, taken) == (3, 1, 2)
    assert isinstance(error, KeyError) and error.__traceback__ is not None
    assert counts == {(int, 1): {"x": 1, "bad": 1}}


def test_map_lines_hands_back_outputs_that_are_not_generators_lists_or_tuples():
    output = iter([("a", 1)])
    status, index, extra, taken = _counting(lambda path, line: output, ["x"], 0, {}, 100)
    assert (status, index, taken) == (2, 0, 0) and extra == ((), output)


# --- the combiner over counted keys in C (combine_counts) against the Python loop ---------------------


def _combiners():
    def total(key, values):
        yield key, sum(1 for _ in values)

    def renamed(key, values):  # another key for strs: spilled like map output
        count = sum(1 for _ in values)
        yield (key.upper() if type(key) is str else key), count

    def dropped_or_doubled(key, values):
        values = list(values)
        if len(values) % 3 == 0:
            return
        yield key, len(values)
        if len(values) % 3 == 2:
            yield key, -1

    def as_list(key, values):
        return [(key, len(list(values)))]

    def as_map(key, values):
        return map(lambda pair: pair, [(key, len(list(values)))])

    def other_type_of_key(key, values):  # "a" and b"a" are different keys
        yield (key.encode() if type(key) is str else key), len(list(values))

    return [total, renamed, dropped_or_doubled, as_list, as_map, other_type_of_key]


def _counted_pairs(seed):
    rng = random.Random(seed)
    keys = ["a", "b", "c", "d", b"a", 1, 2, None, ("x", "y"), ("x", 1)]
    return [(rng.choice(keys), rng.choice([1, 1, 1, "v"])) for _ in range(rng.randrange(1, 1500))]


@pytest.mark.parametrize("combiner", _combiners(), ids=lambda combiner: combiner.__name__)
@pytest.mark.parametrize("seed", range(2))
def test_c_and_python_combining_of_counted_keys_agree(tmp_path, monkeypatch, combiner, seed):
    from helpers import all_groups, write

    pairs = _counted_pairs(seed)
    results = []
    for name in ("c", "python"):
        if name == "python":
            monkeypatch.setattr(writer, "c_combine_counts", None)
        (tmp_path / name).mkdir()
        # A small buffer: combined more than once, so groups already holding values occur too.
        output = write(
            tmp_path / name, pairs, num_partitions=2, combiner=combiner, spill_records=20
        )
        results.append(
            {
                partition: [
                    (typed(key), sorted(map(typed, values), key=repr)) for key, values in groups
                ]
                for partition, groups in all_groups(output).items()
            }
        )
    assert results[0] == results[1]


@pytest.mark.parametrize("output", [None, 7])
def test_a_combiner_giving_no_pairs_gets_the_python_loops_message(tmp_path, monkeypatch, output):
    from helpers import write

    messages = []
    for name in ("c", "python"):
        if name == "python":
            monkeypatch.setattr(writer, "c_combine_counts", None)
        (tmp_path / name).mkdir()
        with pytest.raises(Exception) as caught:
            write(tmp_path / name, [("a", 1), ("a", 1)], combiner=lambda key, values: output)
        messages.append((type(caught.value), str(caught.value)))
    assert messages[0] == messages[1]
    assert "combiner" in messages[0][1]


def test_a_combiners_exception_reaches_the_caller_from_the_c_loop(tmp_path):
    from helpers import write

    def failing(key, values):
        raise ZeroDivisionError(f"no {key}")
        yield

    with pytest.raises(ZeroDivisionError, match="no a") as caught:
        write(tmp_path, [("a", 1), ("a", 1)], combiner=failing)
    assert caught.traceback[-1].name == "failing"


def test_map_lines_counts_str_keys_in_the_tally_under_its_first_value():
    # Str keys are counted in the C tally, under the first value it sees; pairs with another
    # value go to the dicts. Every count must reach counts once drained, whatever stops the loop.
    lines = ["the the a", "the b", "x"] * 1000 + ["boom"]

    def mapper(path, line):
        if line == "boom":
            yield "the", 1
            raise RuntimeError("boom")
        for word in line.split():
            yield word, (2 if word == "x" else 1)

    tally = writer.c_str_tally()
    counts: dict = {}
    status, index, error, taken = writer.c_map_lines(
        mapper, "p", lines, 0, counts, None, 10**6, tally
    )
    assert (status, index, type(error), taken) == (3, 3000, RuntimeError, 6001)
    assert counts == {(int, 2): {"x": 1000}}  # not the tally's value
    assert writer.c_str_tally_size(tally) == 3
    assert writer.c_str_tally_drain(tally, counts) == 3
    assert counts == {(int, 1): {"the": 3001, "a": 1000, "b": 1000}, (int, 2): {"x": 1000}}
    assert writer.c_str_tally_size(tally) == 0 and writer.c_str_tally_drain(tally, counts) == 0
    # Drained, it adds to what counts holds. A key new to the tally takes room even when counts
    # holds it already (the writer's room is an upper bound on the keys buffered).
    counts = {(int, 1): {"the": 5}}
    status, index, extra, taken = _counting(mapper, lines, 0, counts, 2, tally)
    assert (status, index, taken) == (1, 1, 3)  # full: two new keys ("the", "a")
    assert counts == {(int, 1): {"the": 7, "a": 1}}


def test_the_tally_takes_a_new_value_after_a_drain_and_equal_values_of_the_same_type():
    tally = writer.c_str_tally()
    counts: dict = {}
    big = 2**70

    def mapper(path, line):
        word, value = line.split()
        yield word, {"one": 1, "big": int(str(big)), "s": "s" + "", "none": None}[value]

    lines = ["a big", "a big", "b one", "c s", "a none"]
    assert _counting(mapper, lines, 0, counts, 100, tally)[:2] == (0, 5)
    # int(str(big)) makes a new object each time: equal values of one type share the tally.
    assert counts == {
        (int, big): {"a": 2},
        (int, 1): {"b": 1},
        (str, "s"): {"c": 1},
        (type(None), None): {"a": 1},
    }
    assert _counting(mapper, ["b one", "b one", "a big"], 0, counts, 100, tally)[:2] == (0, 3)
    assert counts[(int, 1)] == {"b": 3} and counts[(int, big)] == {"a": 3}


def test_the_tally_grows_and_keeps_every_kind_of_str_apart():
    # Thousands of distinct keys (the table doubles many times), short and long, ASCII and not,
    # the empty str, and equal strs that are different objects; checked against a Counter.
    rng = random.Random(7)
    alphabet = ["a", "b", "z", "é", "ß", "\u4e2d", "\U0001f600", "\x00", " "]
    words = ["", "a" * 15, "a" * 16, "a" * 14, "\x00" * 3]
    words += ["".join(rng.choices(alphabet, k=rng.randrange(1, 40))) for _ in range(20_000)]
    lines = [[rng.choice(words) for _ in range(rng.randrange(0, 6))] for _ in range(30_000)]

    def mapper(path, line):
        for word in line:
            yield "".join(list(word)), 1  # a new object, equal to the word

    tally = writer.c_str_tally()
    counts: dict = {}
    expected = collections.Counter(word for line in lines for word in line)
    start, room = 0, 997
    while start < len(lines):
        status, start, extra, taken = writer.c_map_lines(
            mapper, "p", lines, start, counts, None, room, tally
        )
        assert status in (0, 1) and extra is None
        if rng.random() < 0.3:
            writer.c_str_tally_drain(tally, counts)
    writer.c_str_tally_drain(tally, counts)
    assert counts == {(int, 1): dict(expected)}


def test_a_tally_of_many_keys_is_exact_in_a_mapped_table():
    # 150,000 keys: the table passes 4 MB, where it is mapped on its own (huge pages on request),
    # grows twice more there and is released by the drain.
    keys = [f"key{number}" for number in range(150_000)]

    def mapper(path, line):
        for key in line:
            yield key, 1

    tally = writer.c_str_tally()
    counts: dict = {}
    lines = [keys[start : start + 100] for start in range(0, len(keys), 100)] * 2
    assert writer.c_map_lines(mapper, "p", lines, 0, counts, None, 10**6, tally)[:2] == (0, 3000)
    assert writer.c_str_tally_size(tally) == len(keys)
    assert writer.c_str_tally_drain(tally, counts) == len(keys)
    assert counts == {(int, 1): dict.fromkeys(keys, 2)}
    assert writer.c_map_lines(mapper, "p", [["again"]], 0, counts, None, 10, tally)[:2] == (0, 1)
    writer.c_str_tally_drain(tally, counts)
    assert counts[(int, 1)]["again"] == 1 and len(counts[(int, 1)]) == len(keys) + 1


def test_map_lines_refuses_counts_without_a_tally_and_a_tally_of_another_kind():
    with pytest.raises(TypeError):
        writer.c_map_lines(lambda p, line: [], "p", ["x"], 0, {}, None, 10, None)
    with pytest.raises(TypeError):
        writer.c_map_lines(lambda p, line: [], "p", ["x"], 0, None, [], 10, writer.c_str_tally())
    with pytest.raises(ValueError):
        writer.c_map_lines(lambda p, line: [], "p", ["x"], 0, {}, None, 10, object())
    with pytest.raises(ValueError):
        writer.c_str_tally_drain(object(), {})
