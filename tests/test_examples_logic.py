"""Fast checks of the example jobs' own logic and of the corpus generator.

The jobs are loaded by path (as the framework loads them) and their mapper, combiner and
reducer are called directly in plain Python; the framework itself is not involved.
"""

import collections
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = os.path.join(ROOT, "jobs")
SAMPLE = os.path.join(ROOT, "datasets", "sample")
GENERATE = os.path.join(ROOT, "datasets", "generate.py")

TEXT = """The cat sat on the mat. THE CAT, the Cat!
don't stop-believing: 42 apples and café au lait
   indented   line\twith\ttabs
"""


def load(name, env=None, monkeypatch=None):
    """Import jobs/NAME.py by path as a fresh module (optionally under extra environment)."""
    if env is not None:
        for k, v in env.items():
            if v is None:
                monkeypatch.delenv(k, raising=False)
            else:
                monkeypatch.setenv(k, v)
    path = os.path.join(JOBS, name + ".py")
    spec = importlib.util.spec_from_file_location("job_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_words(text):
    return re.findall(r"[a-z]+", text.lower())


def run_lines(job, files, use_combiner=True):
    """Run a line-oriented job in memory: map every line, combine per 'map task' (one per file),
    group by key, reduce in key order. Returns the list of reducer outputs."""
    groups = collections.defaultdict(list)
    for path, text in files.items():
        out = [kv for line in text.splitlines() for kv in job.mapper(path, line)]
        if use_combiner and hasattr(job, "combiner"):
            by_key = collections.defaultdict(list)
            for k, v in out:
                by_key[k].append(v)
            out = [kv for k, vs in by_key.items() for kv in job.combiner(k, iter(vs))]
        for k, v in out:
            groups[k].append(v)
    return [kv for k in sorted(groups) for kv in job.reducer(k, iter(groups[k]))]


def sample_files():
    files = {}
    for name in sorted(os.listdir(SAMPLE)):
        with open(os.path.join(SAMPLE, name), encoding="utf-8", newline="") as f:
            files[os.path.join(SAMPLE, name)] = f.read()
    return files


# --- sample corpus ----------------------------------------------------------------------------


def test_sample_corpus_shape():
    files = sample_files()
    assert 4 <= len(files) <= 5
    sizes = [len(t.encode("utf-8")) for t in files.values()]
    assert all(2000 <= s <= 6000 for s in sizes), sizes
    crlf = [p for p, t in files.items() if "\r\n" in t]
    assert len(crlf) == 1
    assert not files[crlf[0]].endswith("\n")
    assert all("\n\n" in t or "\r\n\r\n" in t for t in files.values())


# --- wordcount --------------------------------------------------------------------------------


def test_wordcount_mapper_words():
    wc = load("wordcount")
    pairs = [kv for line in TEXT.splitlines() for kv in wc.mapper("f.txt", line)]
    assert all(v == 1 for _, v in pairs)
    assert [k for k, _ in pairs] == reference_words(TEXT)
    assert ("don", 1) in pairs and ("t", 1) in pairs and ("caf", 1) in pairs
    assert list(wc.mapper("f.txt", "")) == [] and list(wc.mapper("f.txt", "123 ... !")) == []


def test_wordcount_matches_counter_on_sample():
    wc = load("wordcount")
    files = sample_files()
    expected = collections.Counter(w for t in files.values() for w in reference_words(t))
    for use_combiner in (True, False):
        result = run_lines(wc, files, use_combiner)
        assert [k for k, _ in result] == sorted(expected)
        assert dict(result) == expected


def test_wordcount_combiner_is_associative():
    wc = load("wordcount")
    values = [1, 1, 3, 1, 2]
    partial = [v for chunk in (values[:2], values[2:]) for _, v in wc.combiner("w", iter(chunk))]
    again = [v for _, v in wc.combiner("w", iter(partial))]
    assert list(wc.reducer("w", iter(again))) == list(wc.reducer("w", iter(values))) == [("w", 8)]


# --- inverted index ---------------------------------------------------------------------------


def test_inverted_index():
    ii = load("inverted_index")
    assert ii.INPUT_FORMAT == "files"
    files = sample_files()
    groups = collections.defaultdict(list)
    for path, text in files.items():
        out = list(ii.mapper(path, text))
        keys = [k for k, _ in out]
        assert len(keys) == len(set(keys)), "one pair per distinct word and document"
        assert set(keys) == set(reference_words(text))
        assert all(v == os.path.basename(path) for _, v in out)
        for k, v in out:
            groups[k].append(v)
    # a document may also arrive twice (e.g. two inputs with one base name)
    groups["the"].append("lighthouse.txt")
    result = dict(kv for k in sorted(groups) for kv in ii.reducer(k, iter(groups[k])))
    expected = collections.defaultdict(set)
    for path, text in files.items():
        for w in reference_words(text):
            expected[w].add(os.path.basename(path))
    assert result == {w: sorted(d) for w, d in expected.items()}
    assert result["the"] == sorted(os.path.basename(p) for p in files)


def test_inverted_index_basename():
    ii = load("inverted_index")
    assert sorted(ii.mapper("/a/b/doc.txt", "Hello, hello WORLD")) == [
        ("hello", "doc.txt"),
        ("world", "doc.txt"),
    ]


# --- grep -------------------------------------------------------------------------------------


def test_grep_pattern_from_environment(monkeypatch):
    grep = load("grep", {"GREP_PATTERN": r"light(house)?\b"}, monkeypatch)
    assert not hasattr(grep, "reducer")
    # read at import: changing the environment afterwards does not matter
    monkeypatch.setenv("GREP_PATTERN", "zzz")
    files = sample_files()
    out = [kv for p, t in files.items() for line in t.splitlines() for kv in grep.mapper(p, line)]
    expected = [
        (p, line)
        for p, t in files.items()
        for line in t.splitlines()
        if re.search(r"light(house)?\b", line)
    ]
    assert out == expected and len(out) > 5
    assert all(isinstance(p, str) and isinstance(line, str) for p, line in out)


def test_grep_param_overrides_environment(monkeypatch):
    grep = load("grep", {"GREP_PATTERN": "nothing-matches-this"}, monkeypatch)
    monkeypatch.setitem(grep.PARAMS, "pattern", "^The")
    assert list(grep.mapper("x", "The end")) == [("x", "The end")]
    assert list(grep.mapper("x", "not The end")) == []


def test_grep_without_pattern_fails_in_mapper(monkeypatch):
    grep = load("grep", {"GREP_PATTERN": None}, monkeypatch)  # importing is fine
    with pytest.raises(ValueError, match="--param pattern=REGEX"):
        list(grep.mapper("x", "anything"))


# --- bigrams ----------------------------------------------------------------------------------


def test_bigrams_mapper_within_line():
    bg = load("bigrams")
    assert list(bg.mapper("f", "Of the sea, and THE sea")) == [
        (("of", "the"), 1),
        (("the", "sea"), 1),
        (("sea", "and"), 1),
        (("and", "the"), 1),
        (("the", "sea"), 1),
    ]
    assert list(bg.mapper("f", "single")) == [] and list(bg.mapper("f", "")) == []


def test_bigrams_matches_reference_on_sample():
    bg = load("bigrams")
    files = sample_files()
    counts = collections.Counter()
    for text in files.values():
        for line in text.splitlines():
            ws = reference_words(line)
            counts.update(zip(ws, ws[1:]))
    expected = {k: v for k, v in counts.items() if v >= bg.MIN_COUNT}
    for use_combiner in (True, False):
        result = run_lines(bg, files, use_combiner)
        assert dict(result) == expected
        assert [k for k, _ in result] == sorted(expected)
    assert all(isinstance(k, tuple) and len(k) == 2 for k in expected)
    assert counts[("the", "light")] >= 2 and ("the", "light") in expected
    assert any(v == 1 for v in counts.values())  # the threshold does drop something


# --- generator --------------------------------------------------------------------------------


def _generate(out_dir, *extra):
    subprocess.run(
        [
            sys.executable,
            GENERATE,
            "--size",
            "200KB",
            "--seed",
            "3",
            "--output",
            str(out_dir),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {name: (out_dir / name).read_bytes() for name in sorted(os.listdir(out_dir))}


def test_generator_deterministic_size_and_skew(tmp_path):
    a = _generate(tmp_path / "a")
    b = _generate(tmp_path / "b")
    assert a == b and len(a) == 1
    data = b"".join(a.values())
    assert abs(len(data) - 200 * 1024) <= 0.1 * 200 * 1024
    text = data.decode("ascii")
    assert text.endswith("\n") and "\r" not in text
    assert re.search(r"[A-Z]", text) and "," in text and "." in text
    lines = [line for line in text.split("\n") if line]
    assert all(5 <= len(line.split()) <= 20 for line in lines)
    counts = collections.Counter(reference_words(text)).most_common()
    assert len(counts) > 1000
    assert counts[0][1] > 20 * counts[99][1]


def test_generator_files_and_seed(tmp_path):
    parts = _generate(tmp_path / "c", "--files", "3")
    assert sorted(parts) == ["corpus-00000.txt", "corpus-00001.txt", "corpus-00002.txt"]
    assert abs(sum(map(len, parts.values())) - 200 * 1024) <= 0.1 * 200 * 1024
    other = subprocess.run(
        [
            sys.executable,
            GENERATE,
            "--size",
            "20KB",
            "--seed",
            "4",
            "--output",
            str(tmp_path / "d"),
        ],
        check=True,
        capture_output=True,
    )
    assert b"1 file(s)" in other.stdout
    assert (tmp_path / "d" / "corpus-00000.txt").read_bytes()[:2000] != parts["corpus-00000.txt"][
        :2000
    ]


def test_generator_rejects_bad_size(tmp_path):
    r = subprocess.run(
        [sys.executable, GENERATE, "--size", "lots", "--output", str(tmp_path / "e")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "invalid size" in r.stderr


@pytest.mark.parametrize(
    "records",
    [
        ["0123456789rest of it", "short", "", "!~abcdefghij"],  # ASCII: the bytes are cut
        ["é€😀abcdefghij tail", "ascii record 1", "naïve"],  # not ASCII: characters are cut
    ],
)
def test_terasort_arrow_cuts_records_as_the_per_record_mapper_does(records):
    import pyarrow as pa

    per_record, vectorised = load("terasort"), load("terasort_arrow")
    for arrow_type in (pa.large_string(), pa.string()):
        batch = pa.record_batch(
            [pa.array(["f"] * len(records), arrow_type), pa.array(records, arrow_type)],
            names=["key", "value"],
        )
        table = vectorised.map_batches(batch)
        expected = [pair for line in records for pair in per_record.mapper("f", line)]
        got = list(zip(table.column("key").to_pylist(), table.column("value").to_pylist()))
        assert got == expected
        assert table.column("key").type == arrow_type
