"""Inputs, work directory and output as URIs: a real S3-speaking server (moto's standalone
`moto_server`, from the test extra) on 127.0.0.1, and the real CLI in its own processes.

One server serves the whole module (it starts in about a second); every test makes its own
buckets, so tests do not see each other's objects.
"""

from __future__ import annotations

import bz2
import gzip
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pyarrow import fs

from helpers import (
    FAST,
    JOBS,
    ROOT,
    kill_group,
    read_counts,
    run_cli,
    small_splits,
    wordcount_reference,
    write_corpus,
)
from mapreduce import commit, storage
from mapreduce.errors import MapReduceError

WORDCOUNT = ROOT / "jobs" / "wordcount.py"


# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3:
    """The moto server: the environment its clients need, buckets, and object access."""

    def __init__(self, port: int):
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }
        self.fs = fs.S3FileSystem(
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            endpoint_override=f"127.0.0.1:{port}",
            scheme="http",
            allow_bucket_creation=True,
        )

    def bucket(self, role: str) -> str:
        name = f"{role}-{secrets.token_hex(4)}"
        self.fs.create_dir(name)
        return name

    def put(self, key: str, data: bytes) -> None:
        with self.fs.open_output_stream(key) as stream:
            stream.write(data)

    def upload_dir(self, local: Path, prefix: str) -> None:
        for path in sorted(local.rglob("*")):
            if path.is_file():
                self.put(f"{prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())

    def keys(self, prefix: str) -> list[str]:
        """Objects with content or names (not the empty "directory" markers pyarrow leaves)."""
        infos = self.fs.get_file_info(fs.FileSelector(prefix, recursive=True, allow_not_found=True))
        return sorted(info.path for info in infos if info.type == fs.FileType.File)

    def download(self, prefix: str, local: Path) -> Path:
        local.mkdir(parents=True, exist_ok=True)
        for key in self.keys(prefix):
            with self.fs.open_input_stream(key) as stream:
                (local / key[len(prefix) + 1 :].replace("/", "__")).write_bytes(stream.read())
        return local


@pytest.fixture(scope="module")
def s3():
    # The one installed beside this Python (the test extra's) first: a moto_server found first
    # on PATH may belong to another environment and another moto version.
    beside = Path(sys.executable).parent / "moto_server"
    server = str(beside) if beside.exists() else shutil.which("moto_server")
    assert server, "moto_server is missing: pip install -e '.[test]'"
    port = _free_port()
    process = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "moto_server exited at start"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not answer within 30 s"
                time.sleep(0.1)
        yield S3(port)
    finally:
        kill_group(process.pid)
        process.wait()


@pytest.fixture
def s3_corpus(s3, tmp_path):
    """A word-count corpus in a fresh bucket: plain text, a .gz and a .bz2 file, and files a
    directory input must skip. Returns (bucket, the local files whose words count)."""
    local = tmp_path / "corpus"
    files = write_corpus(local, files=4, lines=200)
    gz_source, bz2_source = write_corpus(tmp_path / "compressed", files=2, lines=150, seed=11)
    bucket = s3.bucket("in")
    s3.upload_dir(local, f"{bucket}/corpus")
    s3.put(f"{bucket}/corpus/nested/more.txt.gz", gzip.compress(gz_source.read_bytes()))
    s3.put(f"{bucket}/corpus/nested/other.txt.bz2", bz2.compress(bz2_source.read_bytes()))
    s3.put(f"{bucket}/corpus/_SUCCESS", b"")
    s3.put(f"{bucket}/corpus/_logs/map.log", b"skipped words")
    s3.put(f"{bucket}/corpus/.hidden", b"skipped words")
    return bucket, [*files, gz_source, bz2_source]


def _s3_run(s3, *args, env=None, module="mapreduce.cli"):
    return run_cli(
        "run", *args, "-w", 2, *FAST, env={**s3.env, **(env or {})}, timeout=60, module=module
    )


def _assert_wordcount_committed(s3, output_key: str, reference: dict, tmp_path: Path, parts: int):
    names = [key[len(output_key) + 1 :] for key in s3.keys(output_key)]
    assert "_SUCCESS" in names
    assert sorted(n for n in names if n.startswith("part-")) == [
        f"part-{i:05d}" for i in range(parts)
    ]
    local = s3.download(output_key, tmp_path / secrets.token_hex(3))
    (local / "_SUCCESS").unlink()
    assert read_counts(local) == reference


# ----------------------------------------------------------------------------------------------
# End to end
# ----------------------------------------------------------------------------------------------


def test_run_reads_writes_and_shuffles_through_s3(s3, s3_corpus, tmp_path):
    bucket, files = s3_corpus
    out, work = s3.bucket("out"), s3.bucket("work")
    # A small split size cuts the text objects, so readers seek to byte offsets in them.
    result = _s3_run(
        s3,
        WORDCOUNT,
        f"s3://{bucket}/corpus",
        "--output",
        f"s3://{out}/wc",
        "--work-dir",
        f"s3://{work}/tmp",
        "--reducers",
        3,
        *small_splits("4KB"),
    )
    assert result.returncode == 0, result.stderr
    assert "output: s3://" in result.stderr
    _assert_wordcount_committed(s3, f"{out}/wc", wordcount_reference(files), tmp_path, parts=3)
    assert s3.keys(f"{work}/tmp") == []  # the job's shuffle prefix is gone
    assert all(key.startswith(f"{out}/wc/") for key in s3.keys(out))  # and its staging


def test_distributed_coordinator_work_dir_and_submit_on_s3(
    s3, s3_corpus, cluster, tmp_path, monkeypatch
):
    for name, value in s3.env.items():  # inherited by the coordinator and workers
        monkeypatch.setenv(name, value)
    bucket, files = s3_corpus
    out, work = s3.bucket("out"), s3.bucket("work")
    cluster.work_dir = f"s3://{work}/shuffle"
    cluster.start_coordinator()
    cluster.start_worker()
    cluster.start_worker()
    cluster.wait_for_workers(2)
    result = cluster.submit(
        WORDCOUNT,
        [f"s3://{bucket}/corpus"],
        f"s3://{out}/wc",
        "--reducers",
        2,
        *small_splits("4KB"),
        env=s3.env,
    )
    assert result.returncode == 0, result.stderr
    _assert_wordcount_committed(s3, f"{out}/wc", wordcount_reference(files), tmp_path, parts=2)
    status = cluster.status()
    assert [job["status"] for job in status["jobs"]] == ["succeeded"]
    # The tasks ran on the workers (which one ran what depends on timing: under load a worker
    # can be declared dead and come back under a new id with no tasks done).
    assert sum(worker["tasks_done"] for worker in status["workers"]) > 0
    # Only the coordinator's journal stays in its work directory, compacted on each start.
    assert [key for key in s3.keys(f"{work}/shuffle") if "/journal/" not in key] == []
    assert all(key.startswith(f"{out}/wc/") for key in s3.keys(out))


def test_multi_step_job_keeps_its_intermediate_pairs_on_s3(s3, s3_corpus, tmp_path):
    bucket, files = s3_corpus
    out = s3.bucket("out")
    result = _s3_run(
        s3,
        ROOT / "jobs" / "top_words.py",
        f"s3://{bucket}/corpus",
        "--output",
        f"s3://{out}/top",
        "--param",
        "n=3",
        "--reducers",
        2,
    )
    assert result.returncode == 0, result.stderr
    parts = [key for key in s3.keys(f"{out}/top") if "/part-" in key]
    lines = []
    for key in parts:
        with s3.fs.open_input_stream(key) as stream:
            lines += [line.split("\t") for line in stream.read().decode().splitlines()]
    counts = wordcount_reference(files)
    assert [(w, int(c)) for w, c in lines] == sorted(
        counts.items(), key=lambda wc: (-wc[1], wc[0])
    )[:3]
    assert all(key.startswith(f"{out}/top/") for key in s3.keys(out))  # step scratch removed


def test_endpoint_given_in_the_uri_query_instead_of_the_environment(s3, s3_corpus, tmp_path):
    bucket, files = s3_corpus
    out, work = s3.bucket("out"), s3.bucket("work")
    query = "?endpoint_override=" + s3.endpoint.split("//")[1] + "&scheme=http"
    env = {name: value for name, value in s3.env.items() if name != "AWS_ENDPOINT_URL"}
    result = run_cli(
        "run",
        WORDCOUNT,
        f"s3://{bucket}/corpus{query}",
        "--output",
        f"s3://{out}/wc{query}",
        "--work-dir",
        f"s3://{work}/tmp{query}",
        "-w",
        2,
        "--reducers",
        2,
        *FAST,
        env={**env, "AWS_ENDPOINT_URL": ""},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # The .gz and .bz2 objects were recognised behind the query, or the counts would differ.
    _assert_wordcount_committed(s3, f"{out}/wc", wordcount_reference(files), tmp_path, parts=2)
    assert s3.keys(f"{work}/tmp") == []
    assert all(key.startswith(f"{out}/wc/") for key in s3.keys(out))


def test_lost_map_output_on_s3_is_rerun(s3, s3_corpus, tmp_path):
    bucket, files = s3_corpus
    out, work = s3.bucket("out"), s3.bucket("work")
    result = _s3_run(
        s3,
        WORDCOUNT,
        f"s3://{bucket}/corpus",
        "--output",
        f"s3://{out}/wc",
        "--work-dir",
        f"s3://{work}/tmp",
        "--reducers",
        2,
        *small_splits("4KB"),
        module="faulty_cli",
    )
    assert result.returncode == 0, result.stderr
    assert "fault injection: deleted the output" in result.stderr  # a run object went missing
    _assert_wordcount_committed(s3, f"{out}/wc", wordcount_reference(files), tmp_path, parts=2)
    assert s3.keys(f"{work}/tmp") == []


def test_failing_job_leaves_nothing_under_output_and_shows_its_log_from_s3(s3, s3_corpus):
    bucket, _ = s3_corpus
    out, work = s3.bucket("out"), s3.bucket("work")
    result = _s3_run(
        s3,
        JOBS / "printing.py",
        f"s3://{bucket}/corpus",
        "--output",
        f"s3://{out}/failed",
        "--work-dir",
        f"s3://{work}/tmp",
        "--max-attempts",
        1,
        env={"FAIL": "1"},
    )
    assert result.returncode != 0
    assert "reducer gives up" in result.stderr
    assert "reducing" in result.stderr  # the log tail, read back from the bucket
    assert "Traceback (most recent call last)" not in result.stderr.split("reducer gives up")[0]
    assert s3.keys(out) == []  # no parts, no _SUCCESS, no staging
    assert s3.keys(f"{work}/tmp") == []


def test_task_logs_are_uploaded_with_the_output(s3, s3_corpus):
    bucket, _ = s3_corpus
    out = s3.bucket("out")
    result = _s3_run(
        s3, JOBS / "printing.py", f"s3://{bucket}/corpus", "--output", f"s3://{out}/printed"
    )
    assert result.returncode == 0, result.stderr
    logs = [key for key in s3.keys(f"{out}/printed") if "/_logs/" in key]
    assert any(key.endswith("map-00000-a1.log") for key in logs)
    with s3.fs.open_input_stream(next(k for k in logs if "map-" in k)) as stream:
        assert b"mapper saw:" in stream.read()


def test_non_empty_output_is_refused_and_overwrite_replaces_it(s3, s3_corpus, tmp_path):
    bucket, files = s3_corpus
    out = s3.bucket("out")
    s3.put(f"{out}/wc/old-part", b"old\t1\n")
    s3.put(f"{out}/wc/_SUCCESS", b"")
    refused = _s3_run(s3, WORDCOUNT, f"s3://{bucket}/corpus", "--output", f"s3://{out}/wc")
    assert refused.returncode != 0
    assert "already exists and is not empty" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert s3.keys(out) == [f"{out}/wc/_SUCCESS", f"{out}/wc/old-part"]
    replaced = _s3_run(
        s3,
        WORDCOUNT,
        f"s3://{bucket}/corpus",
        "--output",
        f"s3://{out}/wc",
        "--overwrite",
        "--reducers",
        2,
    )
    assert replaced.returncode == 0, replaced.stderr
    assert f"{out}/wc/old-part" not in s3.keys(out)
    _assert_wordcount_committed(s3, f"{out}/wc", wordcount_reference(files), tmp_path, parts=2)


def test_a_failed_s3_publish_reruns_the_task_before_the_commit(
    s3, s3_corpus, tmp_path, monkeypatch
):
    """The S3 copy behind a publish fails once, after the attempt's first object moved: the task
    runs again and the commit waits for it (the coordinator runs here; the test hook wraps
    storage.move, the workers are real processes)."""
    from mapreduce.local import run_job

    bucket, files = s3_corpus
    out = s3.bucket("out")
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    real, failed = storage.move, []

    def move(source, destination):
        if "reduce-00001-a1" in source and not failed:
            failed.append(source)
            raise OSError("AWS Error NETWORK_CONNECTION during CopyObject operation")
        return real(source, destination)

    monkeypatch.setattr(storage, "move", move)
    run_job(
        str(WORDCOUNT),
        [f"s3://{bucket}/corpus"],
        f"s3://{out}/wc",
        workers=2,
        reducers=2,
        heartbeat_interval=0.1,
        liveness=50,
    )
    assert failed
    _assert_wordcount_committed(s3, f"{out}/wc", wordcount_reference(files), tmp_path, parts=2)


def test_an_s3_output_written_by_another_job_meanwhile_is_not_replaced(s3, s3_corpus, monkeypatch):
    """Without --overwrite, objects that appeared under the output while the job ran (another
    writer) stop the commit: they stay, and nothing of this job's is added."""
    bucket, _ = s3_corpus
    out = s3.bucket("out")
    staging = commit.staging_dir_for(f"s3://{out}/wc", "job")
    s3.put(f"{out}/.wc.mapreduce-job/part-00000", b"ours\t1\n")
    s3.put(f"{out}/wc/part-00000", b"theirs\t1\n")
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(commit.OutputTaken, match="another job committed its output"):
        commit.commit_job(staging, f"s3://{out}/wc", overwrite=False)
    with s3.fs.open_input_stream(f"{out}/wc/part-00000") as stream:
        assert stream.read() == b"theirs\t1\n"
    assert f"{out}/wc/_SUCCESS" not in s3.keys(out)


def test_missing_inputs_buckets_and_bad_uris_are_one_paragraph(s3, s3_corpus):
    bucket, _ = s3_corpus
    out = s3.bucket("out")
    cases = [
        (
            [f"s3://no-such-bucket-{secrets.token_hex(3)}/x", "--output", f"s3://{out}/a"],
            "there is no bucket",
        ),
        ([f"s3://{bucket}/no/such/key", "--output", f"s3://{out}/a"], "does not exist"),
        (["nosuchscheme://somewhere/x", "--output", f"s3://{out}/a"], "nosuchscheme://"),
        (
            [f"s3://{bucket}/corpus", "--output", f"s3://no-such-bucket-{secrets.token_hex(3)}/a"],
            "there is no bucket",
        ),
        ([f"s3://{bucket}/corpus", "--output", f"s3://{out}"], "bucket or filesystem root"),
        (
            [
                f"s3://{bucket}/corpus",
                "--output",
                f"s3://{out}/a",
                "--work-dir",
                f"s3://no-such-bucket-{secrets.token_hex(3)}/tmp",
            ],
            "there is no bucket",
        ),
    ]
    for args, expected in cases:
        result = _s3_run(s3, WORDCOUNT, *args)
        assert result.returncode != 0, args
        assert result.stderr.startswith("mapreduce: error: "), result.stderr
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert s3.keys(out) == []


def test_unreachable_endpoint_is_one_paragraph(s3, tmp_path):
    closed = _free_port()
    result = run_cli(
        "run",
        WORDCOUNT,
        "s3://in/corpus",
        "--output",
        tmp_path / "out",
        "-w",
        1,
        env={**s3.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}"},
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("mapreduce: error: cannot read input 's3://in/corpus'")
    assert "AWS_ENDPOINT_URL" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_jsonl_from_s3_to_a_file_uri_and_file_uri_input(s3, tmp_path):
    bucket = s3.bucket("in")
    records = [{"word": w, "n": n} for n, w in enumerate(["a", "b", "a", "c", "b", "a"] * 50)]
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    s3.put(f"{bucket}/data/records.jsonl", body)
    expected = {}
    for record in records:
        expected[record["word"]] = expected.get(record["word"], 0) + record["n"]
    out = tmp_path / "from s3"  # a space: the file:// URI spells it %20
    result = _s3_run(
        s3,
        JOBS / "structured_sum.py",
        f"s3://{bucket}/data/records.jsonl",
        "--output",
        "file://" + str(out).replace(" ", "%20"),
        *small_splits("2KB"),
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == expected and (out / "_SUCCESS").exists()
    local_input = tmp_path / "records.jsonl"
    local_input.write_bytes(body)
    again = run_cli(
        "run",
        JOBS / "structured_sum.py",
        f"file://{local_input}",
        "--output",
        f"file://{tmp_path / 'again'}",
        "-w",
        2,
        *FAST,
    )
    assert again.returncode == 0, again.stderr
    assert read_counts(tmp_path / "again") == expected


def test_parquet_parts_on_s3_read_back_as_one_dataset(s3, tmp_path):
    # Part 0 holds ints, part 1 floats, part 2 nothing: at commit all get the float column.
    import pyarrow.parquet as pq

    bucket = s3.bucket("io")
    records = [{"part": 0, "value": 1}, {"part": 0, "value": 2}, {"part": 1, "value": 0.5}]
    s3.put(f"{bucket}/data/records.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode())
    result = _s3_run(
        s3,
        JOBS / "typed_by_partition.py",
        f"s3://{bucket}/data",
        "--output",
        f"s3://{bucket}/out",
        "-r",
        3,
        "--output-format",
        "parquet",
    )
    assert result.returncode == 0, result.stderr
    assert s3.keys(f"{bucket}/out") == [f"{bucket}/out/_SUCCESS"] + [
        f"{bucket}/out/part-{i:05d}.parquet" for i in range(3)
    ]
    assert [key for key in s3.keys(bucket) if "/out" not in key] == [f"{bucket}/data/records.jsonl"]
    table = pq.read_table(f"{bucket}/out", filesystem=s3.fs)
    assert table.schema.field("value").type == "double"
    assert sorted(zip(table.column("key").to_pylist(), table.column("value").to_pylist())) == [
        (0, 1.0),
        (0, 2.0),
        (1, 0.5),
    ]


# ----------------------------------------------------------------------------------------------
# Names, without a server
# ----------------------------------------------------------------------------------------------


def test_is_uri_and_normalize():
    assert storage.is_uri("s3://bucket/key") and storage.is_uri("hdfs://namenode:8020/x")
    assert not storage.is_uri("/data/in") and not storage.is_uri("relative/dir")
    assert not storage.is_uri("C:/data") and not storage.is_uri("weird:name")
    assert storage.normalize("file:///tmp/a%20b") == "/tmp/a b"
    assert storage.normalize("file://localhost/tmp/x") == "/tmp/x"
    assert storage.normalize("s3://b/k") == "s3://b/k"
    assert storage.normalize("plain/path") == "plain/path"
    with pytest.raises(MapReduceError, match="names host"):
        storage.normalize("file://otherhost/tmp/x")
    assert storage.absolute("s3://b/k") == "s3://b/k"
    assert storage.absolute("file:///x/y") == "/x/y"


def test_join_keeps_the_query_at_the_end_and_quotes_names():
    assert (
        storage.join("s3://b/out", "_attempts", "map-00000-a1")
        == "s3://b/out/_attempts/map-00000-a1"
    )
    assert storage.join("s3://b/out/", "x") == "s3://b/out/x"
    assert storage.join("s3://b", "x") == "s3://b/x"
    assert (
        storage.join("s3://b/k?endpoint_override=h:9000&scheme=http", "part-00000")
        == "s3://b/k/part-00000?endpoint_override=h:9000&scheme=http"
    )
    assert storage.join("s3://b/k", "a b#c") == "s3://b/k/a%20b%23c"
    assert storage.join("/local/dir", "a", "b") == "/local/dir/a/b"


def test_split_sibling_bucket_and_staging_names():
    assert storage.split("s3://b/out/wc?x=1") == ("s3://b/out?x=1", "wc")
    assert storage.split("s3://b/out/wc/") == ("s3://b/out", "wc")
    assert storage.split("s3://b")[1] == ""
    assert storage.sibling("s3://b/out/wc", ".wc.steps-1") == "s3://b/out/.wc.steps-1"
    assert storage.bucket_of("s3://my-bucket/k") == "my-bucket"
    assert storage.path_part("s3://b/dir/x.gz?scheme=http") == "/dir/x.gz"
    assert storage.bucket_of("/local") is None and storage.bucket_of("hdfs://nn:1/x") is None
    assert commit.staging_dir_for("s3://b/out/wc?x=1", "J") == "s3://b/out/.wc.mapreduce-J?x=1"
    assert (
        commit.attempt_dir("s3://b/.wc.mapreduce-J", "map-00001", 2)
        == "s3://b/.wc.mapreduce-J/_attempts/map-00001-a2"
    )


def test_resolve_maps_uris_to_filesystem_paths_and_caches_the_filesystem():
    # An explicit endpoint and region: building the filesystem contacts no server.
    options = "?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1"
    first, path = storage.resolve(f"s3://bucket/a%20b/c.txt{options}")
    assert isinstance(first, fs.S3FileSystem) and path == "bucket/a b/c.txt"
    again, root = storage.resolve(f"s3://bucket{options}")
    assert again is first and root == "bucket"
    other, _ = storage.resolve(f"s3://other-bucket/x{options}")
    assert other is not first  # cached per bucket and options
    with pytest.raises(MapReduceError, match="cannot open 'nosuch://x/y'"):
        storage.resolve("nosuch://x/y")


def test_worker_names_an_input_object_it_cannot_read(s3, monkeypatch):
    from mapreduce.worker.access import check_readable
    from mapreduce.worker.failures import TaskError

    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    bucket = s3.bucket("in")
    s3.put(f"{bucket}/there.txt", b"x\n")
    check_readable(f"s3://{bucket}/there.txt")
    with pytest.raises(TaskError) as failure:
        check_readable(f"s3://{bucket}/gone.txt")
    message = failure.value.report["message"]
    assert f"cannot read the input 's3://{bucket}/gone.txt' (it does not exist)" in message
    assert "AWS_ENDPOINT_URL" in message


def test_object_sizes_listed_with_a_prefix_travel_to_planning(s3, monkeypatch):
    from mapreduce.inputs import Split, expand_inputs, plan_splits

    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    bucket = s3.bucket("in")
    s3.put(f"{bucket}/in/a.txt", b"x\n" * 10)
    s3.put(f"{bucket}/in/b.txt", b"y\n")
    s3.put(f"{bucket}/in/_SUCCESS", b"")
    s3.put(f"{bucket}/one.txt", b"z\n" * 3)
    found = expand_inputs([f"s3://{bucket}/in", f"s3://{bucket}/one.txt"])
    assert [(file.path, file.size) for file in found] == [
        (f"s3://{bucket}/in/a.txt", 20),
        (f"s3://{bucket}/in/b.txt", 2),
        (f"s3://{bucket}/one.txt", 6),
    ]

    def no_request(location):
        raise AssertionError(f"planning asked for the size of {location}")

    monkeypatch.setattr(storage, "size", no_request)
    planned = plan_splits(found, "lines", 20)
    assert [split.describe() for split in planned] == [
        f"s3://{bucket}/in/a.txt",
        f"2 files: s3://{bucket}/in/b.txt, s3://{bucket}/one.txt",
    ]
    # A split rebuilt from the wire (on a worker) knows no sizes, and asks for none for a message.
    assert Split.from_wire(planned[0].to_wire()).describe() == f"s3://{bucket}/in/a.txt bytes 0-20"
