"""Side files: --file, --archive and --py-files, in worker processes and inline, from local paths
and from S3; fetched once per content into the workers' cache."""

from __future__ import annotations

import collections
import hashlib
import io
import os
import re
import shutil
import tarfile
import textwrap
import time
import zipfile

import pytest
from test_storage import s3  # noqa: F401  (the moto server fixture)

from helpers import ROOT, read_counts, read_pairs, run_cli, write_corpus
from mapreduce import sidefiles
from mapreduce.errors import InputError
from mapreduce.local import run_job

WORD = re.compile(r"[a-z]+")

JOB = """
import wordtools          # from --py-files wordtools.py, imported where the job is loaded too
from shout import loud    # from --py-files shout.zip (a package in a zip)

stop = None

def mapper_init():
    global stop
    with open("stopwords.txt") as handle:                 # --file
        stop = set(handle.read().split())
    with open("lexicon.tar.gz/extra/more.txt") as handle:  # --archive, unpacked
        stop |= set(handle.read().split())
    with open("names.zip/names.txt") as handle:            # --archive .zip
        stop |= set(handle.read().split())

def mapper(path, line):
    for word in wordtools.words(line):
        if word not in stop:
            yield loud(word), 1

def reducer(word, counts):
    yield word, sum(counts)
"""


@pytest.fixture
def side(tmp_path):
    """The job and its side files; returns (job, options as run_job keywords, reference counts)."""
    corpus = write_corpus(tmp_path / "corpus", files=3, lines=100)
    (tmp_path / "job.py").write_text(textwrap.dedent(JOB))
    (tmp_path / "stopwords.txt").write_text("the\nof\n")
    (tmp_path / "wordtools.py").write_text(
        "import re\n\ndef words(line):\n    return re.findall('[a-z]+', line.lower())\n"
    )
    with zipfile.ZipFile(tmp_path / "shout.zip", "w") as archive:
        archive.writestr("shout/__init__.py", "def loud(word):\n    return word.upper()\n")
    with tarfile.open(tmp_path / "lexicon.tar.gz", "w:gz") as archive:
        data = b"and\nriver\n"
        info = tarfile.TarInfo("extra/more.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(tmp_path / "names.zip", "w") as archive:
        archive.writestr("names.txt", "salt\n")
    stop = {"the", "of", "and", "river", "salt"}
    counts = collections.Counter(
        word.upper()
        for path in corpus
        for word in WORD.findall(path.read_text().lower())
        if word not in stop
    )
    options = {
        "files": [str(tmp_path / "stopwords.txt")],
        "archives": [str(tmp_path / "lexicon.tar.gz"), str(tmp_path / "names.zip")],
        "py_files": [str(tmp_path / "wordtools.py"), str(tmp_path / "shout.zip")],
    }
    return str(tmp_path / "job.py"), options, dict(counts)


@pytest.mark.parametrize("inline", [False, True])
def test_files_archives_and_py_files_reach_every_task(tmp_path, side, inline):
    job, options, expected = side
    out = tmp_path / "out"
    run_job(
        job,
        [str(tmp_path / "corpus")],
        str(out),
        workers=2,
        reducers=2,
        inline=inline,
        split_size=8192,
        min_split_size=1024,
        **options,
    )
    assert read_counts(out) == expected


def test_the_cache_is_keyed_by_content_and_fetched_once(tmp_path):
    first = tmp_path / "a" / "list.txt"
    first.parent.mkdir()
    first.write_text("one\n")
    described = sidefiles.collect(files=[str(first)])
    digest = hashlib.sha256(b"one\n").hexdigest()
    assert described == [
        {"kind": "file", "source": str(first), "name": "list.txt", "sha256": digest}
    ]
    workdir = sidefiles.prepare(described)
    cached = os.path.join(sidefiles.cache_root(), digest, "content")
    assert open(os.path.join(workdir, "list.txt")).read() == "one\n"
    fetched_at = os.stat(cached).st_mtime_ns
    first.unlink()  # once cached, the source is not read again
    assert sidefiles.prepare(described) == workdir
    assert os.stat(cached).st_mtime_ns == fetched_at
    first.write_text("two\n")  # new content: another entry, another working directory
    assert sidefiles.prepare(sidefiles.collect(files=[str(first)])) != workdir


def test_a_file_changed_after_submission_is_refused_on_the_worker(tmp_path):
    path = tmp_path / "changing.txt"
    path.write_text("before\n")
    described = sidefiles.collect(files=[str(path)])
    path.write_text("after!\n")
    with pytest.raises(OSError, match="changed after the job was submitted"):
        sidefiles.prepare(described)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"files": ["missing.txt"]}, "--file missing.txt cannot be read"),
        ({"archives": ["stopwords.txt"]}, "an archive must be a .zip"),
        ({"files": ["stopwords.txt", "sub/stopwords.txt"]}, "have the same base name"),
        ({"py_files": ["stopwords.txt"]}, "give a Python module"),
    ],
)
def test_bad_side_files_are_refused_before_anything_runs(tmp_path, monkeypatch, options, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stopwords.txt").write_text("x\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "stopwords.txt").write_text("y\n")
    with pytest.raises(InputError, match=message):
        sidefiles.collect(**options)


def test_the_stop_words_example_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/wordcount_stopwords.py",
        ROOT / "datasets/sample",
        "--file",
        ROOT / "datasets/stopwords.txt",
        "-o",
        out,
        "-w",
        2,
        "-q",
    )
    assert result.returncode == 0, result.stderr
    stop = set((ROOT / "datasets/stopwords.txt").read_text().split())
    expected = collections.Counter(
        word
        for path in (ROOT / "datasets/sample").iterdir()
        for word in re.findall("[a-z]+", path.read_bytes().decode("utf-8", "replace").lower())
        if word not in stop
    )
    assert {key: int(value) for key, value in read_pairs(out, raw=True)} == dict(expected)


def test_without_the_file_the_example_fails_naming_it(tmp_path):
    result = run_cli(
        "run",
        ROOT / "jobs/wordcount_stopwords.py",
        ROOT / "datasets/sample",
        "-o",
        tmp_path / "out",
        "-w",
        1,
        "--max-attempts",
        1,
        "-q",
    )
    assert result.returncode == 1 and "stopwords.txt" in result.stderr


@pytest.mark.slow
def test_side_files_from_s3(tmp_path, side, s3, monkeypatch):  # noqa: F811
    job, options, expected = side
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    bucket = s3.bucket("side")
    uris = {}
    for kind, paths in options.items():
        uris[kind] = []
        for path in paths:
            key = f"{bucket}/{os.path.basename(path)}"
            with open(path, "rb") as handle:
                s3.put(key, handle.read())
            uris[kind].append(f"s3://{key}")
    out = tmp_path / "out"
    run_job(job, [str(tmp_path / "corpus")], str(out), workers=2, reducers=2, **uris)
    assert read_counts(out) == expected


@pytest.mark.slow
def test_submit_ships_side_files_to_a_cluster(tmp_path, side, cluster):
    job, options, expected = side
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    flags = [
        item
        for kind, option in (
            ("files", "--file"),
            ("archives", "--archive"),
            ("py_files", "--py-files"),
        )
        for path in options[kind]
        for item in (option, path)
    ]
    out = tmp_path / "out"
    result = cluster.submit(job, [tmp_path / "corpus"], out, "-q", *flags)
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == expected


def test_a_cache_directory_others_can_write_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sidefiles.tempfile, "gettempdir", lambda: str(tmp_path))
    root = tmp_path / f"mapreduce-side-files-{os.getuid()}"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    with pytest.raises(OSError, match="not a directory private to this user"):
        sidefiles.cache_root()
    root.chmod(0o700)
    assert sidefiles.cache_root() == str(root)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A cache of this test's own, so pruning sees only what the test put there."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(sidefiles.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))


def _side_file(directory, name, text):
    path = directory / name
    path.write_text(text)
    return sidefiles.collect(files=[str(path)])


def _age(paths, seconds):
    for path in paths:
        then = time.time() - seconds
        os.utime(path, (then, then))


def test_the_cache_forgets_what_was_not_used_for_a_week(tmp_path, own_cache):
    root = sidefiles.cache_root()
    old = _side_file(tmp_path, "old.txt", "old\n")
    old_dir = sidefiles.prepare(old)
    old_entry = os.path.join(root, old[0]["sha256"])
    _age([old_dir, old_entry], 8 * 24 * 3600)
    used = _side_file(tmp_path, "used.txt", "used\n")
    used_dir = sidefiles.prepare(used)  # something new is cached: the cache is pruned
    assert not os.path.exists(old_dir) and not os.path.exists(old_entry)
    assert open(os.path.join(used_dir, "used.txt")).read() == "used\n"
    # Needed again, it is fetched again (its source is still there).
    again = sidefiles.prepare(old)
    assert open(os.path.join(again, "old.txt")).read() == "old\n"


def test_over_its_size_the_cache_drops_the_least_recently_used_idle_entries(tmp_path, own_cache):
    root = sidefiles.cache_root()
    made = []
    for n in range(3):
        files = _side_file(tmp_path, f"f{n}.txt", f"{n}\n" * 1000)
        workdir = sidefiles.prepare(files)
        entry = os.path.join(root, files[0]["sha256"])
        _age([workdir, entry], 3600 * (3 - n))  # f0 least recently used, f2 most
        made.append((workdir, entry))
    removed = sidefiles.prune(root, max_bytes=5000, min_idle_s=600)
    # Each entry holds 2,000 bytes: dropping f0 brings the cache under 5,000 bytes.
    assert set(removed) == set(made[0])
    assert all(os.path.exists(path) for pair in made[1:] for path in pair)
    # Used within the minimum idle time: kept, even over the size.
    assert sidefiles.prune(root, max_bytes=0, min_idle_s=5 * 3600) == []


def test_a_job_directory_whose_file_was_pruned_is_made_again(tmp_path, own_cache):
    files = _side_file(tmp_path, "list.txt", "one\n")
    workdir = sidefiles.prepare(files)
    entry = os.path.join(sidefiles.cache_root(), files[0]["sha256"])
    shutil.rmtree(entry)  # another worker process pruned it
    assert sidefiles.prepare(files) == workdir
    assert open(os.path.join(workdir, "list.txt")).read() == "one\n"
