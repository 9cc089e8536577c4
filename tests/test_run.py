"""`mapreduce run` end to end: real worker processes over ZeroMQ, real files, plain references."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from helpers import (
    FAST,
    JOBS,
    ROOT,
    part_files,
    read_counts,
    read_pairs,
    reference_lines,
    run_cli,
    small_splits,
    wordcount_reference,
    write_corpus,
)
from mapreduce.output import format_field


def test_wordcount_matches_the_sequential_reference(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/wordcount.py",
        tmp_path / "corpus",
        "--output",
        out,
        "--workers",
        2,
        "--reducers",
        3,
        *small_splits("2KB"),
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    assert not result.leftover
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "part-00000",
        "part-00001",
        "part-00002",
    ]
    assert (out / "_SUCCESS").stat().st_size == 0
    assert read_counts(out) == wordcount_reference(corpus)
    for part in part_files(out):  # reducers see keys in increasing order
        keys = [line.split("\t")[0] for line in part.read_text().splitlines()]
        assert keys == sorted(keys)
    assert "output: " in result.stderr  # the summary, printed without a terminal too
    assert "map" in result.stderr and "records" in result.stderr


def mapped_words(corpus) -> list:
    """What the word count's mapper yields over the corpus, in input order."""
    return [
        (word, 1)
        for path in corpus
        for line in reference_lines(path)
        for word in re.findall(r"[A-Za-z]+", line.lower())
    ]


@pytest.mark.parametrize("job", ["jobs/wordcount.py", "jobs/wordcount_arrow.py"])
@pytest.mark.parametrize("mode", [[], ["--inline"]], ids=["workers", "inline"])
def test_reducers_0_runs_a_job_that_has_a_reducer_map_only(corpus, tmp_path, job, mode):
    # Hadoop's zero reducers: no combiner, no reducer (nor REDUCE); the map output, as it was
    # yielded, is the output: one part file per map task.
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / job,
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "--reducers",
        0,
        *small_splits("4KB"),
        *mode,
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    assert read_pairs(out) == mapped_words(corpus)
    maps = int(re.search(r"(\d+) map tasks, ", result.stderr).group(1))
    assert maps > 1 and "reduce task" not in result.stderr
    assert len(part_files(out)) == maps


@pytest.mark.parametrize("skip", [False, True], ids=["read", "skipped"])
def test_a_binary_looking_input_gets_one_warning_and_is_read_or_skipped(corpus, tmp_path, skip):
    binary = tmp_path / "corpus" / "image.bin"
    binary.write_bytes(b"GIF89a\x00\x01 some words\n" * 2000)  # 42 KB: cut into several splits
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/wordcount.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        *small_splits("4KB"),
        "-q",
        *(["--skip-binary"] if skip else []),
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    looks = "looks binary (a NUL byte in its first 8 KiB)"
    # On the command's own stderr, once (not once per split or attempt), even with -q.
    assert result.stderr.splitlines() == [
        f"mapreduce: warning: skipped input file {binary} (--skip-binary): it {looks}"
        if skip
        else f"mapreduce: warning: input file {binary} {looks} but is read as text, line by line; "
        f"pass --skip-binary to skip such files"
    ]
    assert read_counts(out) == wordcount_reference(corpus if skip else [*corpus, binary])


def test_module_name_job_and_quiet(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", "jobs.wordcount", *corpus[:2], "-o", out, "-w", 2, "-q", *FAST)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""
    assert read_counts(out) == wordcount_reference(corpus[:2])


def test_output_is_identical_whatever_the_hash_seed(corpus, tmp_path):
    digests = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}"
        result = run_cli(
            "run",
            ROOT / "jobs/bigrams.py",
            tmp_path / "corpus",
            "-o",
            out,
            "-w",
            2,
            "-r",
            3,
            *small_splits("3KB"),
            "-q",
            *FAST,
            env={"PYTHONHASHSEED": seed},
        )
        assert result.returncode == 0, result.stderr
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()})
    assert digests[0] == digests[1]


def test_inverted_index_matches_reference(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/inverted_index.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        2,
        *small_splits("4KB"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    expected = {}
    import re

    for path in corpus:
        for word in set(re.findall(r"[A-Za-z]+", path.read_text().lower())):
            expected.setdefault(word, set()).add(path.name)
    assert read_counts(out) == {w: sorted(docs) for w, docs in expected.items()}


def test_map_only_grep_writes_one_part_per_map_task_in_input_order(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/grep.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        *small_splits("3KB"),
        "-q",
        *FAST,
        env={"GREP_PATTERN": "river|keeper"},
    )
    assert result.returncode == 0, result.stderr
    expected = [
        (str(tmp_path / "corpus" / p.name), line)
        for p in corpus
        for line in reference_lines(p)
        if "river" in line or "keeper" in line
    ]
    assert read_pairs(out, raw=True) == expected
    assert len(part_files(out)) > len(corpus)  # the files were cut into several map tasks


def test_hostile_text_reads_like_the_reference(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "crlf.txt").write_bytes(b"one\r\ntwo\r\n\r\nthree")
    (data / "lf.txt").write_bytes(b"one\ntwo\n\nthree\n")
    (data / "bad-utf8.txt").write_bytes(b"caf\xc3\xa9 \xff\xfe broken \xc3\n\x80tail\n")
    (data / "empty.txt").write_bytes(b"")
    (data / "lone-cr.txt").write_bytes(b"a\rb\n")
    # A line of 3 MB: the splits inside it (all but the first) find no line of their own.
    (data / "long.txt").write_bytes(b"w" * 3_000_000 + b"\nshort\n")
    (data / ".hidden").write_bytes(b"never read\n")
    (data / "_logs").mkdir()
    (data / "_logs" / "x.txt").write_bytes(b"never read\n")
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "lines_identity.py",
        data,
        "-o",
        out,
        "-w",
        2,
        # 16 KB: about 190 map tasks, each starting inside the long line (1 KB made 3,000 of
        # them, 18 s of per-task overhead for the same cases); the other files are smaller.
        *small_splits("16KB"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    files = sorted(p for p in data.iterdir() if p.is_file() and not p.name.startswith("."))
    expected = [
        (str(data / p.name), format_field(line)) for p in files for line in reference_lines(p)
    ]
    assert read_pairs(out, raw=True) == expected
    assert any("\ufffd" in line for _, line in read_pairs(out, raw=True))


def test_one_file_cut_into_many_map_tasks_loses_and_duplicates_nothing(tmp_path):
    path = write_corpus(tmp_path / "one", files=1, lines=2000)[0]
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "lines_identity.py",
        path,
        "-o",
        out,
        "-w",
        2,
        *small_splits("1000"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    assert len(part_files(out)) > 20
    assert [line for _, line in read_pairs(out, raw=True)] == reference_lines(path)


def test_files_input_format_passes_whole_text(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    texts = {"a.txt": "first\r\nfile\n", "b.txt": "no newline", "c.txt": ""}
    for name, text in texts.items():
        (data / name).write_text(text, newline="")
    out = tmp_path / "out"
    result = run_cli(
        "run", JOBS / "identity_files.py", data, "-o", out, "-w", 2, "-r", 2, "-q", *FAST
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == {str(data / n): t for n, t in texts.items()}


def test_typed_keys_keep_their_types_and_order(corpus, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("typed_keys_ref", JOBS / "typed_keys.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    totals = {}
    for path in corpus:
        for line in reference_lines(path):
            for key, value in module.mapper(str(path), line):
                typed = (type(key).__name__, key)
                totals[typed] = totals.get(typed, 0) + value
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "typed_keys.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        1,
        *small_splits("4KB"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    lines = (out / "part-00000").read_text(encoding="utf-8").splitlines()
    # One reducer: the whole key order is visible. Mixed types sort by type name, then value.
    expected = [
        json.dumps(k, ensure_ascii=False) if not isinstance(k, str) else k
        for _, k in sorted(totals, key=lambda tk: (tk[0], tk[1]))
    ]
    assert [line.split("\t")[0] for line in lines] == expected
    assert sum(int(line.split("\t")[1]) for line in lines) == sum(totals.values())


def test_no_faults_means_every_record_is_mapped_once_and_every_key_reduced_once(corpus, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "counting.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        2,
        *small_splits("3KB"),
        "-q",
        *FAST,
        env={"MARKER_DIR": str(markers)},
    )
    assert result.returncode == 0, result.stderr
    names = [p.name for p in markers.iterdir()]
    assert sum(n.startswith("map-") for n in names) == sum(len(reference_lines(p)) for p in corpus)
    assert sum(n.startswith("reduce-") for n in names) == len(wordcount_reference(corpus))


def test_existing_output_is_refused_untouched_and_replaced_with_overwrite(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = run_cli("run", ROOT / "jobs/wordcount.py", corpus[0], "-o", out, "-w", 2, *FAST)
    assert result.returncode != 0
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (
        out / "keep.txt"
    ).read_text() == "precious"
    result = run_cli(
        "run", ROOT / "jobs/wordcount.py", corpus[0], "-o", out, "-w", 2, "--overwrite", "-q", *FAST
    )
    assert result.returncode == 0, result.stderr
    assert not (out / "keep.txt").exists() and (out / "_SUCCESS").exists()
    assert read_counts(out) == wordcount_reference(corpus[:1])
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".out")
    ] == []  # no staging left


def test_empty_existing_output_directory_is_accepted(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("run", ROOT / "jobs/wordcount.py", corpus[0], "-o", out, "-w", 1, "-q", *FAST)
    assert result.returncode == 0, result.stderr
    assert (out / "_SUCCESS").exists()


def test_output_of_a_previous_job_is_a_valid_input(corpus, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        run_cli(
            "run",
            ROOT / "jobs/wordcount.py",
            tmp_path / "corpus",
            "-o",
            first,
            "-w",
            2,
            "-q",
            *FAST,
        ).returncode
        == 0
    )
    result = run_cli("run", JOBS / "lines_identity.py", first, "-o", second, "-w", 2, "-q", *FAST)
    assert result.returncode == 0, result.stderr
    assert all("_SUCCESS" not in str(key) for key, _ in read_pairs(second))


def test_thousands_of_tiny_files_and_a_50_mb_line(tmp_path):
    data = tmp_path / "data"
    tiny = data / "tiny"
    tiny.mkdir(parents=True)
    for n in range(2000):
        (tiny / f"f{n:04d}.txt").write_text(f"file {n} river\nsecond line {n % 7}\n")
    (data / "huge-line.txt").write_bytes(b"river " * (50 * 1024 * 1024 // 6) + b"\nend\n")
    out = tmp_path / "out"
    result = run_cli(
        "run", ROOT / "jobs/wordcount.py", data, "-o", out, "-w", 2, "-r", 2, *FAST, timeout=120
    )
    assert result.returncode == 0, result.stderr
    files = sorted(p for p in data.rglob("*") if p.is_file())
    assert read_counts(out) == wordcount_reference(files)
    maps = int(re.search(r"done in \S+: (\d+) map task", result.stderr).group(1))
    assert maps < 50  # tiny files are grouped, not one task each


def test_params_reach_the_job_typed(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "with_params.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-q",
        "-p",
        "min_length=5",
        "--param",
        "upper=yes",
        "-p",
        "weight=0.5",
        "-p",
        "suffix=!",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    expected = {
        w.upper() + "!": n * 0.5 for w, n in wordcount_reference(corpus).items() if len(w) >= 5
    }
    assert read_counts(out) == expected


def test_bad_params_are_refused_before_anything_runs(corpus, tmp_path):
    for params, message in (
        (["-p", "nope=1"], "has no parameter 'nope'"),
        (["-p", "min_length=many"], "takes an integer"),
        (["-p", "upper=maybe"], "expected true or false"),
    ):
        result = run_cli(
            "run",
            JOBS / "with_params.py",
            tmp_path / "corpus",
            "-o",
            tmp_path / "out",
            *params,
            *FAST,
        )
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert not (tmp_path / "out").exists()
