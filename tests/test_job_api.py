"""The job API beyond mapper/reducer: per-task hooks, near-miss hook names refused, errors that
repeat in every attempt failing the task at once, and mapreduce.testing.run_job."""

from __future__ import annotations

import collections
import re
import textwrap

import pytest

from helpers import JOBS, wordcount_reference, write_corpus
from mapreduce.errors import JobLoadError, TaskFailedError
from mapreduce.local import run_job as run_local
from mapreduce.steps import load_steps
from mapreduce.testing import run_job

HOOKS = str(JOBS / "task_hooks.py")
WORD = re.compile(r"[A-Za-z]+")
LINES = ["the cat and the hat", "a cat", "", "The end: the END"]


def plain_counts(lines) -> dict:
    return dict(collections.Counter(w for line in lines for w in WORD.findall(line.lower())))


def write_job(tmp_path, source: str, name: str = "job.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


# ---- per-task hooks -------------------------------------------------------------------------


def test_hooks_do_in_mapper_combining_and_reducer_totals():
    out = run_job(HOOKS, LINES, reducers=2, maps=3)
    words = {k: v for k, v in out if not k.startswith("~")}
    assert words == plain_counts(LINES)
    # reducer_final ran once per reduce task, each giving the total of its own partition.
    totals = [v for k, v in out if k == "~total"]
    assert len(totals) == 2 and sum(totals) == sum(plain_counts(LINES).values())


def test_hooks_run_once_per_task_attempt_inline(tmp_path, corpus):
    result = run_local(
        HOOKS,
        [str(tmp_path / "corpus")],
        str(tmp_path / "out"),
        workers=3,
        reducers=2,
        split_size=8192,
        min_split_size=1024,
        inline=True,
    )
    hooks = result.counters["user"]["hooks"]
    maps = result.progress["maps"]
    assert maps >= 3
    assert hooks == {
        "mapper_init": maps,
        "mapper_final": maps,
        "combiner_init": maps,
        "combiner_final": maps,
        "reducer_init": 2,
        "reducer_final": 2,
    }


@pytest.mark.slow
def test_hooks_in_worker_processes_match_a_plain_count(tmp_path):
    paths = write_corpus(tmp_path / "corpus", files=4, lines=200)
    out = tmp_path / "out"
    result = run_local(
        HOOKS,
        [str(tmp_path / "corpus")],
        str(out),
        workers=2,
        reducers=3,
        split_size=8192,
        min_split_size=1024,
    )
    pairs = [
        line.split("\t") for p in sorted(out.glob("part-*")) for line in p.read_text().splitlines()
    ]
    words = {k: int(v) for k, v in pairs if not k.startswith("~")}
    assert words == wordcount_reference(paths)
    assert sum(int(v) for k, v in pairs if k == "~total") == sum(words.values())
    hooks = result.counters["user"]["hooks"]
    assert hooks["mapper_init"] == hooks["mapper_final"] == result.progress["maps"] >= 2
    assert hooks["reducer_init"] == hooks["reducer_final"] == 3


def test_hooks_in_every_step_of_a_multi_step_job(tmp_path):
    job = write_job(
        tmp_path,
        """
        seen = None

        def first_init():
            global seen
            seen = set()

        def words(path, line):
            for word in line.split():
                seen.add(word)
            return ()

        def distinct():
            yield from ((word, 1) for word in seen)

        def once(word, ones):
            yield word, 1

        def to_one(word, one):
            yield "distinct", 1

        def count_init():
            global seen
            seen = 0

        def add(key, ones):
            global seen
            seen += sum(ones)
            return ()

        def count_final():
            yield "distinct words", seen

        STEPS = [
            {"mapper_init": first_init, "mapper": words, "mapper_final": distinct,
             "reducer": once},
            {"mapper": to_one, "reducer_init": count_init, "reducer": add,
             "reducer_final": count_final},
        ]
        """,
    )
    out = run_job(job, ["a b c", "b c d", "e"], reducers=1)
    assert out == [("distinct words", 5)]


def test_a_final_hook_may_return_a_list_and_a_bad_one_is_named(tmp_path):
    job = write_job(
        tmp_path,
        """
        def mapper(path, line):
            yield line, 1

        def mapper_final():
            return 7
        """,
    )
    with pytest.raises(TaskFailedError) as caught:
        run_job(job, ["x"], reducers=0)
    assert "mapper_final returned 7 of type int" in str(caught.value)
    assert "use yield, not return" in str(caught.value)


@pytest.mark.parametrize(
    "defined, close",
    [
        ("reduce", "reducer"),
        ("map", "mapper"),
        ("mapper_int", "mapper_init"),
        ("reducers", "reducer"),
        ("combine", "combiner"),
        ("reducer_finale", "reducer_final"),
        ("Reducer", "reducer"),
    ],
)
def test_a_near_miss_of_a_hook_name_is_refused_naming_the_match(tmp_path, defined, close):
    mapper = "" if defined == "map" else "def mapper(key, line):\n    yield line, 1\n"
    job = write_job(tmp_path, f"{mapper}\ndef {defined}(*args):\n    return ()\n")
    with pytest.raises(JobLoadError) as caught:
        load_steps(job)
    assert f"defines `{defined}` but no `{close}`: did you mean `{close}`?" in str(caught.value)


def test_names_far_from_hooks_and_imported_functions_are_fine(tmp_path):
    job = write_job(
        tmp_path,
        """
        from functools import reduce

        def mapper(key, line):
            yield line, reduce(lambda a, b: a + b, [1, 2])

        def mapping_helper():
            pass

        def _reduce():
            pass
        """,
    )
    assert run_job(job, ["x"], reducers=0) == [("x", 3)]


def test_a_near_miss_in_a_step_is_refused(tmp_path):
    job = write_job(
        tmp_path,
        """
        def m(key, line):
            yield line, 1

        STEPS = [{"mapper": m, "reduce": m}]
        """,
    )
    with pytest.raises(JobLoadError, match="has `reduce` but no `reducer`: did you mean"):
        load_steps(job)


@pytest.mark.parametrize(
    "hook, owner", [("reducer_final", "reducer"), ("combiner_init", "combiner")]
)
def test_a_hook_without_the_function_it_surrounds_is_refused(tmp_path, hook, owner):
    job = write_job(tmp_path, f"def mapper(k, v):\n    yield v, 1\n\ndef {hook}():\n    pass\n")
    with pytest.raises(JobLoadError, match=f"defines {hook} but no {owner}"):
        load_steps(job)


# ---- errors that repeat in every attempt ---------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        ("def mapper(key, line):\n    return 1\n", "the mapper returned 1 of type int"),
        ("def mapper(key, line):\n    return line, 1\n", "write `yield key, value`"),
        ("def mapper(key, line):\n    yield line\n", "it must yield (key, value) pairs"),
        (
            "def mapper(key, line):\n    yield line, 1\n\ndef partitioner(key, n):\n    return n\n",
            "it must return an int in range(0, 2)",
        ),
        ("def mapper(key, line):\n    yield lambda: 0, 1\n", "cannot be pickled"),
    ],
)
def test_a_mistake_that_repeats_fails_the_task_after_one_attempt(tmp_path, body, expected):
    job = write_job(tmp_path, body + "\ndef reducer(key, values):\n    yield key, sum(values)\n")
    write_corpus(tmp_path / "in", files=2, lines=5)
    with pytest.raises(TaskFailedError) as caught:
        run_local(job, [str(tmp_path / "in")], str(tmp_path / "out"), workers=2, reducers=2)
    message = str(caught.value)
    assert expected in message, message
    assert "failed 1 time(s)" in message and "not retried" in message
    assert not (tmp_path / "out").exists()


def test_a_reducer_that_returns_a_number_is_told_to_yield(tmp_path):
    job = write_job(
        tmp_path,
        "def mapper(k, line):\n    yield line, 1\n\ndef reducer(key, values):\n    return sum(values)\n",
    )
    with pytest.raises(TaskFailedError, match="the reducer returned 1 of type int.*use yield"):
        run_job(job, ["x"])


# ---- the testing helper ---------------------------------------------------------------------


def test_run_job_takes_an_imported_module_and_keeps_types(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "typed_job",
        write_job(
            tmp_path,
            """
        def mapper(key, record):
            yield (record["user"], record["day"]), record["n"]

        def reducer(key, values):
            yield key, sum(values)
        """,
        ),
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.INPUT_FORMAT = "jsonl"
    records = [
        {"user": "ann", "day": 1, "n": 2},
        {"user": "ann", "day": 1, "n": 3},
        {"user": "bob", "day": 2, "n": 1.5},
    ]
    assert sorted(run_job(module, records, reducers=3)) == [(("ann", 1), 5), (("bob", 2), 1.5)]


def test_run_job_reports_the_job_failure(tmp_path):
    with pytest.raises(TaskFailedError, match="map task"):
        run_job(str(JOBS / "always_raises.py"), ["a", "b"])


def test_the_readme_example_test_passes(monkeypatch):
    from helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("# tests/test_wordcount.py\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README example", "exec"), namespace)
    monkeypatch.chdir(ROOT)
    namespace["test_wordcount_counts_words_case_insensitively"]()


def test_run_job_takes_side_files(tmp_path):
    (tmp_path / "stopwords.txt").write_text("the\n")
    from helpers import ROOT

    job = str(ROOT / "jobs/wordcount_stopwords.py")
    out = run_job(job, ["The cat", "the hat"], files=[str(tmp_path / "stopwords.txt")])
    assert sorted(out) == [("cat", 1), ("hat", 1)]


def test_combiner_final_runs_once_after_the_last_combine_even_with_spills(tmp_path):
    from helpers import all_groups, write

    calls = []

    def combiner(key, values):
        calls.append("combine")
        yield key, sum(values)

    def combiner_final():
        calls.append("final")
        yield "~final", 1

    pairs = [(f"k{i // 2 % 500}", 1) for i in range(2000)]  # twice in a row: combined
    output = write(
        tmp_path, pairs, 1, combiner=combiner, combiner_final=combiner_final, spill_records=100
    )
    groups = dict((key, sum(values)) for key, values in all_groups(output)[0])
    assert calls.count("final") == 1 and calls[-1] == "final"  # after every combine
    assert groups.pop("~final") == 1
    assert groups == {f"k{i}": 4 for i in range(500)}
    assert len(output.files[0]) > 1  # it did spill before the end


@pytest.mark.parametrize("codec", [None, "lz4", "zstd"])
def test_every_shuffle_compression_counts_as_a_plain_count(tmp_path, codec):
    lines = [f"w{i % 13} w{i % 7} x" for i in range(3000)]
    job = write_job(
        tmp_path,
        f"""
        SHUFFLE_COMPRESSION = {codec!r}

        def mapper(key, line):
            for word in line.split():
                yield word, 1

        def reducer(key, values):
            yield key, sum(values)
        """,
    )
    expected = collections.Counter(word for line in lines for word in line.split())
    assert dict(run_job(job, lines, reducers=3)) == expected


def test_an_unknown_shuffle_compression_is_refused(tmp_path):
    job = write_job(tmp_path, 'SHUFFLE_COMPRESSION = "gzip"\n\ndef mapper(k, v):\n    yield v, 1\n')
    with pytest.raises(JobLoadError, match='SHUFFLE_COMPRESSION is .gzip.; set it to "lz4"'):
        load_steps(job)
