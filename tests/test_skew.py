"""Skewed keys (issue 21) and secondary sort (issue 17): a giant key reduces as a lazy stream
in bounded memory, many runs merge through intermediate runs, values can arrive sorted, and the
summary reports skew. Memory figures are printed by tests/benchmarks/run.py --cases skew, never
asserted here."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict

import pytest

import helpers
from helpers import FAST, JOBS, read_pairs, run_cli, small_splits
from mapreduce.errors import RecordError
from mapreduce.shuffle import RunReader, iter_partition_groups, iter_partition_slices, merge
from mapreduce.skew import skew_lines, skew_report

WORD = re.compile(r"[A-Za-z]+")


def write_text(directory, files=3, lines=1500, seed=5):
    """Lines of random words from a 300-word vocabulary: about 25,000 words in all."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices("abcdefghij", k=rng.randint(1, 9))) for _ in range(300)]
    directory.mkdir()
    for number in range(files):
        text = "\n".join(" ".join(rng.choices(vocabulary, k=6)) for _ in range(lines))
        (directory / f"text{number}.txt").write_text(text + "\n")
    return sorted(directory.iterdir())


def write(directory, pairs, num_partitions=1, **options):
    """helpers.write into a new directory (a map attempt's own)."""
    directory.mkdir()
    return helpers.write(directory, pairs, num_partitions, **options)


def words_of(paths) -> list:
    return [word for path in paths for word in WORD.findall(path.read_text())]


# --- the real job, end to end ---------------------------------------------------------------------


def test_a_giant_key_reduces_as_a_lazy_stream_and_the_summary_reports_the_skew(tmp_path):
    paths = write_text(tmp_path / "text")
    out = tmp_path / "out"
    result = run_cli(
        "run", JOBS / "skewed_lengths.py", tmp_path / "text", "--output", out,
        "--workers", 2, "--reducers", 2, *small_splits("64KB"), *FAST,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lengths = [len(word) for word in words_of(paths)]
    (pair,) = read_pairs(out)
    total, count, values_type, lazy = pair[1]
    assert pair[0] == "all" and (total, count) == (sum(lengths), len(lengths))
    assert values_type != "list" and lazy is True  # an iterator, not a gathered list
    # The summary: one partition holds every record, and the key "all" is named, with a hint.
    assert f"holds {len(lengths)} of {len(lengths)} shuffled records (100%)" in result.stderr
    assert "skew: key 'all' holds about 100% of the shuffled records" in result.stderr
    assert "hint: a combiner" in result.stderr and "salt a heavy key" in result.stderr


def test_status_reports_the_skew_of_a_finished_job(cluster, tmp_path):
    paths = write_text(tmp_path / "text")
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    result = cluster.submit(
        JOBS / "skewed_lengths.py", [tmp_path / "text"], tmp_path / "out", "--reducers", 2
    )
    assert result.returncode == 0, result.stderr
    words = len(words_of(paths))
    assert "skew: key 'all' holds about 100%" in result.stderr  # submit's summary
    [job] = cluster.status()["jobs"]
    skew = job["progress"]["skew"]
    assert skew["partition_records"] == skew["total_records"] == words
    assert skew["heavy_keys"][0][0] == "'all'"
    text = run_cli("status", "--coordinator", cluster.address, timeout=30)
    assert text.returncode == 0, text.stderr
    assert f"holds {words} of {words} shuffled records (100%)" in text.stdout
    assert "skew: key 'all' holds about 100%" in text.stdout and "hint: " in text.stdout


def test_a_job_without_skew_gets_no_skew_report(tmp_path):
    paths = write_text(tmp_path / "text")
    out = tmp_path / "out"
    result = run_cli(
        "run", JOBS / "skewed_lengths.py", tmp_path / "text", "--output", out, "--param",
        "key=word", "--workers", 2, "--reducers", 2, *small_splits("64KB"), *FAST,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = Counter()
    for word in words_of(paths):
        expected[word] += len(word)
    assert {key: value[0] for key, value in read_pairs(out)} == dict(expected)
    assert "27000 mapped" in result.stderr  # enough records for a report, were there skew
    assert "skew:" not in result.stderr and "hint:" not in result.stderr


def test_sort_values_gives_each_reducer_call_its_values_in_order(tmp_path):
    paths = write_text(tmp_path / "text")
    out = tmp_path / "out"
    result = run_cli(
        "run", JOBS / "sorted_values.py", tmp_path / "text", "--output", out,
        "--workers", 2, "--reducers", 2, *small_splits("64KB"), *FAST,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    by_letter = defaultdict(list)
    for word in words_of(paths):
        by_letter[word[0].lower()].append(word)
    expected = {key: [len(ws), min(ws), max(ws), True] for key, ws in by_letter.items()}
    assert dict(read_pairs(out)) == expected


def test_sort_values_with_values_that_cannot_be_ordered_fails_with_one_paragraph(tmp_path):
    write_text(tmp_path / "text")
    result = run_cli(
        "run", JOBS / "sorted_values.py", tmp_path / "text", "--output", tmp_path / "out",
        "--param", "mixed=true", "--workers", 2, *FAST,
    )  # fmt: skip
    assert result.returncode != 0
    assert "SORT_VALUES = True" in result.stderr and "cannot be compared" in result.stderr
    assert "Traceback" not in result.stderr.split("SORT_VALUES = True")[0]
    assert not (tmp_path / "out").exists()


# --- the merge, in process -----------------------------------------------------------------------


def test_values_reach_the_reducer_lazily_a_batch_at_a_time(tmp_path, monkeypatch):
    """A giant key's values stream: taking its first value reads one batch of each run, not the
    key's 300,000 values (5 batches per run)."""
    outputs = [
        write(tmp_path / f"m{n}", [("all", value) for value in range(300_000)]) for n in range(2)
    ]
    paths = [path for output in outputs for path in output.files[0]]
    read = []
    batches = RunReader.batches

    def counted(run):
        for batch in batches(run):
            read.append(run.path)
            yield batch

    monkeypatch.setattr(RunReader, "batches", counted)
    groups = iter_partition_groups(paths)
    key, values = next(groups)
    assert key == "all" and not isinstance(values, list) and iter(values) is values
    assert next(values) == 0
    assert len(read) <= 2 * len(paths)  # at most a batch (and the next) of each run so far
    assert sum(1 for _ in values) == 2 * 300_000 - 1
    assert len(read) == 5 * len(paths) and next(groups, None) is None


@pytest.mark.parametrize("keys", ["native", "tuples"])
@pytest.mark.parametrize("sort_values", [False, True])
def test_more_runs_than_the_merge_factor_merge_through_intermediate_runs(
    tmp_path, monkeypatch, keys, sort_values
):
    monkeypatch.setattr(merge, "MERGE_FACTOR", 4)
    written = []
    for name in ("write_merged_run", "write_pickled_run"):
        original = getattr(merge, name)
        monkeypatch.setattr(
            merge,
            name,
            lambda path, *rest, original=original: written.append(path) or original(path, *rest),
        )
    rng = random.Random(3)
    pairs = [
        (f"k{rng.randint(0, 30)}" if keys == "native" else (rng.randint(0, 30), "t"), n)
        for n in range(3000)
    ]
    # 11 map tasks' outputs, several spills each: 30+ runs, merged 4 at a time in passes.
    paths = []
    for n, start in enumerate(range(0, 3000, 273)):
        output = write(
            tmp_path / f"m{n}", pairs[start : start + 273], spill_records=100,
            sort_values=sort_values,
        )  # fmt: skip
        paths += output.files[0]
    assert len(paths) > 16
    expected = defaultdict(list)
    for key, value in pairs:
        expected[key].append(value)
    want = [(key, sorted(vs) if sort_values else vs) for key, vs in sorted(expected.items())]
    got = [(key, list(values)) for key, values in iter_partition_groups(paths, sort_values)]
    assert got == want  # map order of equal keys kept (or values sorted), across the passes
    assert len(written) >= len(paths) // 4  # through intermediate runs, 4 at a time
    # ...kept beside the map outputs (in a job's shuffle directory), and removed when done.
    assert all(path.startswith(str(tmp_path / ".merge-")) for path in written)
    assert not list(tmp_path.glob(".merge-*"))
    if keys == "native" and not sort_values:
        merged = [
            key for key_slice, _ in iter_partition_slices(paths) for key in key_slice.to_pylist()
        ]
        assert merged == [key for key, values in want for _ in values]


@pytest.mark.parametrize(
    "make_value, by_arrow",
    [
        (lambda n: n % 997, True),
        (lambda n: f"v{n % 997}", True),
        (lambda n: b"%d" % (n % 997), True),
        (lambda n: n % 3 == 0, True),
        (lambda n: (n % 997) / 7, False),  # floats: Python's order (NaN has no place in Arrow's)
    ],
    ids=["int", "str", "bytes", "bool", "float"],
)
def test_sorted_values_of_native_types_are_merged_by_arrow(
    tmp_path, monkeypatch, make_value, by_arrow
):
    """SORT_VALUES merges runs sorted by (key, value) with Arrow, a window at a time, when the
    values are native ints, strs, bytes or bools: the same groups, in the same order, as Python's
    sort of every pair, with a giant key whose values are spread over every run."""
    rng = random.Random(11)
    pairs = [
        (
            "all" if rng.random() < 0.7 else f"k{rng.randint(0, 40)}",
            make_value(rng.randint(0, 10**6)),
        )
        for _ in range(40_000)
    ]
    paths = []
    for n, start in enumerate(range(0, len(pairs), 5000)):
        output = write(
            tmp_path / f"m{n}", pairs[start : start + 5000], spill_records=1700, sort_values=True
        )
        paths += output.files[0]
    assert len(paths) > 16  # through an intermediate pass too
    heap_merges = []
    heap = merge._heap_merged_records
    monkeypatch.setattr(
        merge, "_heap_merged_records", lambda *args: heap_merges.append(1) or heap(*args)
    )
    expected = defaultdict(list)
    for key, value in pairs:
        expected[key].append(value)
    want = [(key, sorted(values)) for key, values in sorted(expected.items())]
    got = [(key, list(values)) for key, values in iter_partition_groups(paths, sort_values=True)]
    assert got == want
    assert (not heap_merges) is by_arrow


def test_values_of_one_key_that_cannot_be_ordered_are_refused_with_sort_values(tmp_path):
    ints = write(tmp_path / "ints", [("k", 1), ("k", 2)], sort_values=True)
    strs = write(tmp_path / "strs", [("k", "a")], sort_values=True)
    with pytest.raises(RecordError, match="SORT_VALUES = True.*cannot be compared"):
        list(iter_partition_groups(ints.files[0] + strs.files[0], sort_values=True))
    with pytest.raises(RecordError, match="SORT_VALUES = True.*cannot be compared"):
        write(tmp_path / "mixed", [("k", 1), ("k", "a")], sort_values=True)


# --- the skew report -----------------------------------------------------------------------------


def test_map_outputs_report_records_per_partition_and_their_heaviest_keys(tmp_path):
    rng = random.Random(9)
    pairs = [("hot", 1)] * 40_000 + [(f"cold{rng.randint(0, 9999)}", 1) for _ in range(10_000)]
    rng.shuffle(pairs)
    output = write(tmp_path / "m", pairs, num_partitions=3, spill_records=7000)
    records = output.stats["records"]
    assert sum(records.values()) == 50_000 and set(records) <= {"0", "1", "2"}
    sizes = {str(p): sum(RunReader(path).count_records() for path in paths)
             for p, paths in output.files.items()}  # fmt: skip
    assert records == sizes
    (name, estimate), *others = output.stats["heavy_keys"]
    assert name == "'hot'" and 36_000 <= estimate <= 44_000
    assert all(count < 2_000 for _, count in others)


def stats(records: dict, heavy=()) -> dict:
    return {"shuffle_stats": {"records": records, "heavy_keys": [list(h) for h in heavy]}}


def test_the_skew_report_names_the_largest_partition_and_the_heavy_keys():
    maps = [
        stats({"0": 1000, "1": 30_000, "2": 900, "3": 1100}, [("'the'", 25_000), ("'a'", 500)]),
        stats({"0": 1000, "1": 30_000, "2": 1100, "3": 900}, [("'the'", 25_000)]),
    ]
    report = skew_report(maps, 4)
    assert report == {
        "partition": 1,
        "partition_records": 60_000,
        "others_median": 2000,
        "total_records": 66_000,
        "heavy_keys": [["'the'", 50_000]],
    }
    assert skew_lines(report) == [
        "skew: partition 1 holds 60000 of 66000 shuffled records (91%); the median of the "
        "other partitions is 2000",
        "skew: key 'the' holds about 76% of the shuffled records (~50000, sampled on the map side)",
        "hint: a combiner shrinks a heavy key's records on the map side; a custom partitioner "
        "spreads the keys more evenly; or salt a heavy key (add a random suffix, reduce, then "
        "combine the partial results in a second step) so several reducers share it",
    ]


def test_no_skew_report_for_balanced_partitions_or_small_jobs():
    balanced = [stats({"0": 10_000, "1": 11_000, "2": 9_000}, [("'x'", 900)])] * 2
    assert skew_report(balanced, 3) is None and skew_lines(None) == []
    small = [stats({"0": 9_000, "1": 10}, [("'x'", 9_000)])]
    assert skew_report(small, 2) is None  # under SKEW_MIN_RECORDS: skew costs nothing
    assert skew_report([{"files": {}}, None], 2) is None  # maps that reported nothing
    # One reducer: no partition to compare, but a key holding every record is still named.
    (only,) = skew_report([stats({"0": 20_000}, [("'k'", 20_000)])], 1)["heavy_keys"]
    assert only == ["'k'", 20_000]
