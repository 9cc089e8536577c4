"""The performance suite: our wall time, CPU time and peak memory against baselines run in the same invocation.

    python tests/benchmarks/run.py [--data-dir DIR] [--workers 2]
        [--cases wordcount,vectorised,bigrams,tiny,sort,scaling] [--corpus-size 256MB]
        [--bigram-size 32MB] [--sort-records 2000000] [--skew-sizes 64MB,256MB] [--repeat 1]

Cases 1 and 2 (word count, per-record and vectorised) run on two corpora of --corpus-size: the
generated one and a long-tail one (1 line in 50 gets a word never seen before). Their baselines:
plain sequential Python; a strong hand-written multiprocessing.Pool (each task reads its
line-aligned byte range, decodes and lower-cases it once, one findall, a Counter); Dask bag and
Polars when installed (`pip install -e '.[bench]'`; skipped with a note otherwise); and the
per-record floor, one process calling jobs/wordcount.py's own mapper on every line and summing
its pairs into a dict, no framework at all. Our CPU time (user+sys of the whole process tree)
over the floor's is the framework's overhead; CPU is fairer than wall time on a loaded machine.
Case 7 compares jobs/bigrams.py (tuple keys) with the same job keyed by `w1 + " " + w2`; case 4
compares TeraSort (per-record and vectorised map, --reducers 4) with GNU `sort --parallel=N`,
and checks our output equals GNU sort's.

--corpus-size sets the corpus of the word-count cases (1 and 2; the published figures use the
default), so a quick before/after comparison can run on a small one, e.g. `--cases wordcount
--corpus-size 32MB`.

Data comes from datasets/generate.py (cached in --data-dir). Every measured command runs as its own
process tree, and its peak memory is the largest resident set of any single process in that tree,
sampled every 50 ms. Not collected by pytest (no test_ prefix); speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def tree_rss_kb(root: int) -> int:
    """Largest VmRSS (kB) of `root` and its descendants right now."""
    children: dict = {}
    rss: dict = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1])
    best, stack = 0, [root]
    while stack:
        pid = stack.pop()
        best = max(best, rss.get(pid, 0))
        stack.extend(children.get(pid, []))
    return best


class Measured(tuple):
    """(seconds, peak MB of the largest process) with `.cpu`: user+sys CPU seconds of the whole
    process tree (every descendant the command waited for, from os.wait4's rusage)."""

    cpu: float


REPEAT = 1  # --repeat: how many times measure() runs each command


def measure(command: list, env=None, cwd=ROOT) -> Measured:
    """(seconds, peak MB of the largest process), .cpu, for one command; fails loudly if it fails.
    With --repeat N, the command runs N times and this is its median run by wall time (its CPU
    the median CPU, its peak the largest): on a shared or virtual machine one run of the same
    command can take twice as long as the next."""
    runs = [measure_once(command, env, cwd) for _ in range(REPEAT)]
    if len(runs) == 1:
        return runs[0]
    middle = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    result = Measured((middle[0], max(run[1] for run in runs)))
    result.cpu = sorted(run.cpu for run in runs)[len(runs) // 2]
    return result


def measure_once(command: list, env=None, cwd=ROOT) -> Measured:
    """One run of a command: (seconds, peak MB of the largest process), .cpu."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, status, usage = 0, None, None
    try:
        while status is None:
            peak = max(peak, tree_rss_kb(process.pid))
            pid, code, rusage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                status, usage = os.waitstatus_to_exitcode(code), rusage
            else:
                time.sleep(0.05)
    finally:
        if status is None:
            process.kill()
            process.wait()
    elapsed = time.perf_counter() - started
    process.returncode = status
    if status != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(map(str, command))}\n{process.stderr.read()}")
    result = Measured((elapsed, peak / 1024))
    result.cpu = usage.ru_utime + usage.ru_stime
    return result


def measure_each(command: list, env=None, cwd=ROOT) -> tuple[float, list]:
    """(seconds, [peak MB of each process of the tree, largest first]) for one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks: dict = {}
    try:
        while process.poll() is None:
            for pid, kb in tree_rss_each_kb(process.pid).items():
                peaks[pid] = max(peaks.get(pid, 0), kb)
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(map(str, command))}\n{process.stderr.read()}")
    return elapsed, sorted((kb / 1024 for kb in peaks.values()), reverse=True)


def tree_rss_each_kb(root: int) -> dict:
    """VmRSS (kB) of `root` and each of its descendants right now."""
    children: dict = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]),
                                    []).append(int(entry.name))
            except OSError:
                continue
    rss, stack = {}, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[pid] = int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(pid, []))
    return rss


# Issue 21's giant key: no combiner, a reducer that iterates; the variants sort the values or
# go through the vectorised identity reduce (Arrow slices, no Python reducer).
SKEWED = r'''
import re
WORD = re.compile(r"[A-Za-z]+")
SORT_VALUES = {sort_values}

def mapper(key, value):
    for w in WORD.findall(value):
        yield "all", len(w)

def reducer(key, values):
    total = 0
    for v in values:
        total += v
    yield key, total
'''

SKEWED_ARROW = r'''
import pyarrow as pa, pyarrow.compute as pc
REDUCE = "identity"

def map_batches(batch):
    words = pc.list_flatten(pc.split_pattern_regex(batch.column("value"), r"[^A-Za-z]+"))
    lengths = pc.utf8_length(words).cast(pa.int64())
    lengths = lengths.filter(pc.greater(lengths, 0))
    return pa.table({"key": pa.repeat("all", len(lengths)).cast(pa.large_string()), "value": lengths})
'''


def skew_case(data_dir: Path, tmp: Path, sizes: list, n: int) -> None:
    jobs = {
        "reducer": script(tmp, "skewed.py", SKEWED.format(sort_values=False)),
        "SORT_VALUES": script(tmp, "skewed_sorted.py", SKEWED.format(sort_values=True)),
        "vectorised identity": script(tmp, "skewed_arrow.py", SKEWED_ARROW),
    }
    largest: dict = {}
    for size in sizes:
        corpus = generate(data_dir, f"corpus-{size}", size)
        for label, job in jobs.items():
            if label != "reducer" and len(sizes) > 1 and size == sizes[-1] \
                    and not os.environ.get("SKEW_ALL_VARIANTS"):
                continue  # the largest size only for the job (SKEW_ALL_VARIANTS=1: all)
            out = tmp / f"skew-{label.replace(' ', '-')}-{size}"
            seconds, peaks = measure_each(ours(job, [corpus], out, n))
            largest[(label, size)] = peaks[0]
            shown = ", ".join(f"{peak:.0f}" for peak in peaks)
            print(f"6. giant key, {label:<19} {size:>6}: {seconds:7.2f}s  peak MB per process: {shown}",
                  flush=True)
    for label in jobs:
        measured = [size for size in sizes if (label, size) in largest]
        if len(measured) > 1:
            first, last = largest[(label, measured[0])], largest[(label, measured[-1])]
            print(f"   {label}: largest process {first:.0f} MB at {measured[0]}, {last:.0f} MB at "
                  f"{measured[-1]} ({100 * (last - first) / first:+.1f}%)")


def generate(data_dir: Path, name: str, size: str, long_tail: int = 0) -> Path:
    target = data_dir / name
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([PY, ROOT / "datasets/generate.py", "--size", size, "--seed", "1",
                        "--long-tail", str(long_tail), "--output", target],
                       check=True, stdout=subprocess.DEVNULL)
        (target / ".complete").touch()       # a dot file: skipped as input
    return target


def sort_records(data_dir: Path, count: int = 2_000_000) -> Path:
    """TeraSort-style input: 100-byte lines, a 10-character printable key, then payload."""
    path = data_dir / f"records-{count}.txt"
    if not path.exists():
        rng = random.Random(7)
        alphabet = [chr(c) for c in range(33, 127)]
        payload = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=89))
        with open(path, "w") as out:
            for start in range(0, count, 100_000):
                keys = ["".join(rng.choices(alphabet, k=10)) for _ in range(min(100_000, count - start))]
                out.write("".join(key + payload + "\n" for key in keys))
    return path


def check_sorted(output: Path, reference: Path) -> None:
    """Our part files, concatenated and with the tab removed, must equal GNU sort's output."""
    with open(reference) as expected:
        for part in sorted(output.glob("part-*")):
            with open(part) as got:
                for line in got:
                    if line.replace("\t", "", 1) != next(expected):
                        raise SystemExit(f"sort output differs from GNU sort in {part}")
        if next(expected, None) is not None:
            raise SystemExit("sort output is missing records")


SEQUENTIAL = r'''
import collections, re, sys, os
WORD = re.compile(r"[A-Za-z]+")
counts = collections.Counter()
for name in sorted(os.listdir(sys.argv[1])):
    if name.startswith("."): continue
    with open(os.path.join(sys.argv[1], name), encoding="utf-8", errors="replace") as f:
        for line in f:
            counts.update(WORD.findall(line.lower()))
with open(sys.argv[2], "w") as out:
    for word, n in sorted(counts.items()):
        out.write(f"{word}\t{n}\n")
'''

# The strong hand-written baseline: each task reads its line-aligned byte range, decodes it once,
# lower-cases it once and finds its words with one findall (what an expert would write).
POOL = r'''
import collections, multiprocessing, os, re, sys
WORD = re.compile(r"[a-z]+")

def count_range(job):
    path, start, end = job
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()                  # the line that started before us belongs to the previous task
        begin = f.tell()
        data = f.read(max(0, end - begin))
        if data and not data.endswith(b"\n"):
            data += f.readline()          # finish our last line
    return collections.Counter(WORD.findall(data.decode("utf-8", "replace").lower()))

if __name__ == "__main__":
    top, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    jobs = []
    for name in sorted(os.listdir(top)):
        if name.startswith("."): continue
        path = os.path.join(top, name)
        size = os.path.getsize(path)
        step = max(1, min(size // (4 * n), 16 << 20))
        jobs += [(path, s, min(size, s + step)) for s in range(0, size, step)]
    total = collections.Counter()
    with multiprocessing.Pool(n) as pool:
        for part in pool.imap_unordered(count_range, jobs):
            total.update(part)
    with open(out, "w") as f:
        for word, c in sorted(total.items()):
            f.write(f"{word}\t{c}\n")
'''

# The per-record floor: the job's own mapper on every line, its pairs summed into a dict, in one
# process with no framework at all. Our CPU time over this one's is the framework's overhead.
FLOOR = r'''
import os, runpy, sys
job = runpy.run_path(sys.argv[1])
mapper = job["mapper"]
counts = {}
get = counts.get
top = sys.argv[2]
for name in sorted(os.listdir(top)):
    if name.startswith("."): continue
    path = os.path.join(top, name)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            for key, value in mapper(path, line.rstrip("\n")):
                counts[key] = get(key, 0) + value
with open(sys.argv[3], "w") as out:
    for key, n in sorted(counts.items()):
        out.write(f"{key}\t{n}\n")
'''

DASK = r'''
import os, re, sys
import dask.bag as db
WORD = re.compile(r"[a-z]+")
top, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = [os.path.join(top, f) for f in sorted(os.listdir(top)) if not f.startswith(".")]
if __name__ == "__main__":
    counts = (db.read_text(files, blocksize=16 << 20).map(str.lower).map(WORD.findall).flatten()
              .frequencies().compute(scheduler="processes", num_workers=n))
    with open(out, "w") as f:
        for word, c in sorted(counts):
            f.write(f"{word}\t{c}\n")
'''

# jobs/bigrams.py with the pair joined into one str key: what tuple keys are measured against.
BIGRAMS_STR = r'''
import re
MIN_COUNT = 2
WORD = re.compile(r"[A-Za-z]+")

def mapper(key, value):
    words = WORD.findall(value.lower())
    for w1, w2 in zip(words, words[1:]):
        yield w1 + " " + w2, 1

def combiner(key, values):
    yield key, sum(values)

def reducer(key, values):
    total = sum(values)
    if total >= MIN_COUNT:
        yield key, total
'''

POLARS = r'''
import sys, os, polars as pl
files = [os.path.join(sys.argv[1], n) for n in sorted(os.listdir(sys.argv[1])) if not n.startswith(".")]
# One lazy scan of every file, each line one string column; the streaming engine runs the whole
# query in batches on every core (it took less CPU than the in-memory engine here, and less memory).
lines = pl.scan_csv(files, has_header=False, separator="\x01", quote_char=None,
                    new_columns=["line"], schema_overrides={"line": pl.Utf8})
counts = (lines.select(pl.col("line").str.to_lowercase().str.extract_all("[a-z]+").alias("w"))
          .explode("w").drop_nulls().group_by("w").len().collect(engine="streaming"))
counts.sort("w").write_csv(sys.argv[2], separator="\t", include_header=False)
'''


# Bytes a map task shuffles with each codec: the job's mapper and combiner over one corpus file,
# through the real MapOutputWriter (4 partitions), in one process.
SHUFFLE_BYTES = r'''
import runpy, sys, tempfile, time
from mapreduce.shuffle import MapOutputWriter
job = runpy.run_path(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    lines = f.read().splitlines()
for codec in (None, "lz4", "zstd"):
    with tempfile.TemporaryDirectory() as out:
        started = time.process_time()
        writer = MapOutputWriter(out, 4, combiner=job.get("combiner"), compression=codec)
        for line in lines:
            writer.add_pairs(job["mapper"](sys.argv[2], line))
        written = writer.close().bytes_written
        print(f"{codec}\t{written}\t{time.process_time() - started:.2f}")
'''


def with_compression(tmp: Path, job: str, codec) -> Path:
    """A copy of jobs/<job> that sets SHUFFLE_COMPRESSION = codec."""
    text = (ROOT / "jobs" / job).read_text() + f"\nSHUFFLE_COMPRESSION = {codec!r}\n"
    return script(tmp, f"{Path(job).stem}_{codec}.py", text)


class MotoServer:
    """moto's S3 server on 127.0.0.1 (the test extra's), for a work dir at s3://; killed on exit."""

    def __enter__(self):
        import socket
        server = Path(PY).parent / "moto_server"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        from pyarrow import fs
        deadline = time.monotonic() + 30
        while True:
            try:
                s3 = fs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                                     endpoint_override=f"127.0.0.1:{port}", scheme="http",
                                     allow_bucket_creation=True)
                s3.create_dir("bench-work")
                return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.2)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def compression_case(data_dir: Path, tmp: Path, size: str, n: int) -> None:
    """Case 8: bytes shuffled and time with each codec of the shuffle run files (issue 16 (f))."""
    corpus = generate(data_dir, f"corpus-{size}-tail50", size, long_tail=50)
    records = sort_records(data_dir, 500_000)
    first_file = sorted(corpus.glob("corpus-*.txt"))[0]
    probe = script(tmp, "bench_shuffle_bytes.py", SHUFFLE_BYTES)
    for job, data in (("wordcount.py", first_file), ("terasort.py", records)):
        out = subprocess.run([PY, probe, ROOT / "jobs" / job, data], check=True, capture_output=True,
                             text=True, cwd=ROOT).stdout.split("\n")
        sizes = dict(line.split("\t", 1) for line in out if line)
        plain = int(sizes["None"].split("\t")[0])
        for codec, figures in sizes.items():
            written, cpu = figures.split("\t")
            print(f"8. shuffle bytes, {job:<13} one map task of {data.name}, {codec:>4}: {int(written):>11,} B "
                  f"({int(written) / plain:.2f} of uncompressed), writer CPU {cpu}s", flush=True)
    try:
        moto = MotoServer().__enter__()
    except (OSError, FileNotFoundError) as error:
        print(f"   (no moto_server: {error}; the S3 work dir is skipped)")
        moto = None
    try:
        for job, data, extra in (("wordcount.py", corpus, ()), ("terasort.py", records, ("--reducers", "4"))):
            for where in ("local", "s3") if moto else ("local",):
                env = moto.env if where == "s3" else None
                work = ["--work-dir", f"s3://bench-work/{job}-{time.monotonic_ns()}"] if where == "s3" else []
                timings = []
                for codec in (None, "lz4", "zstd"):
                    measured = measure(ours(with_compression(tmp, job, codec), [data], tmp / f"c-{job}", n,
                                            *extra, *work), env=env)
                    timings.append(f"{codec}: {measured[0]:.2f}s wall {measured.cpu:.2f}s CPU")
                print(f"8. {job:<13} {where:<5} work dir: " + ";  ".join(timings), flush=True)
    finally:
        if moto:
            moto.__exit__()


def ours(job, inputs, out: Path, workers: int, *extra) -> list:
    return [PY, "-m", "mapreduce.cli", "run", ROOT / "jobs" / job, *inputs, "-o", out, "-w",
            str(workers), "-q", "--overwrite", *extra]


def script(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def row(rows, case, measured, baselines, cpu_baselines=()):
    seconds, peak = measured
    rows.append((case, seconds, peak, baselines))
    ratios = "  ".join(f"{name} {base:.2f}s (ours/{name} = {seconds / base:.2f})" for name, base in baselines)
    print(f"{case:<34} ours {seconds:7.2f}s  peak {peak:6.0f} MB  {ratios}", flush=True)
    if cpu_baselines:
        cpu = "  ".join(f"{name} {base:.2f}s (ours/{name} = {measured.cpu / base:.2f})"
                        for name, base in cpu_baselines)
        print(f"{'':<34} CPU  {measured.cpu:7.2f}s  (user+sys, whole tree)  {cpu}", flush=True)


def installed(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        print(f"   ({module} not installed here: `pip install -e '.[bench]'` to compare; skipped)")
        return False


def wordcount_case(rows, label: str, corpus: Path, tmp: Path, n: int, cases: set, scripts: dict) -> None:
    """Cases 1 and 2 on one corpus: per-record and vectorised word count against their baselines."""
    wall = []
    seq = measure([PY, scripts["seq"], corpus, tmp / "seq.out"])
    pool = measure([PY, scripts["pool"], corpus, tmp / "pool.out", str(n)])
    wall += [("sequential", seq[0]), (f"Pool({n})", pool[0])]
    if "wordcount" in cases:
        floor = measure([PY, scripts["floor"], ROOT / "jobs/wordcount.py", corpus, tmp / "floor.out"])
        print(f"   per-record floor ({label}): {floor[0]:.2f}s wall, {floor.cpu:.2f}s CPU", flush=True)
        baselines, cpu_baselines = list(wall), [("floor", floor.cpu), (f"Pool({n})", pool.cpu)]
        if installed("dask"):
            dask = measure([PY, scripts["dask"], corpus, tmp / "dask.out", str(n)])
            baselines.append(("Dask bag", dask[0]))
            cpu_baselines.append(("Dask bag", dask.cpu))
        row(rows, f"1. word count {label}, {n} workers", measure(ours("wordcount.py", [corpus], tmp / "wc", n)),
            baselines, cpu_baselines)
    if "vectorised" in cases:
        baselines, cpu_baselines = list(wall), [(f"Pool({n})", pool.cpu)]
        if installed("polars"):
            polars = measure([PY, scripts["polars"], corpus, tmp / "polars.out"])
            baselines.append(("polars", polars[0]))
            cpu_baselines.append(("polars", polars.cpu))
        row(rows, f"2. vectorised word count {label}", measure(ours("wordcount_arrow.py", [corpus], tmp / "wca", n)),
            baselines, cpu_baselines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "mapreduce-bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", default="wordcount,vectorised,bigrams,tiny,sort,scaling")
    parser.add_argument("--corpus-size", default="256MB",
                        help="corpus of the word-count cases, as datasets/generate.py --size takes it")
    parser.add_argument("--bigram-size", default="32MB", help="corpus of the bigram case")
    parser.add_argument("--compression-size", default="64MB",
                        help="long-tail corpus of the compression case (--cases compression)")
    parser.add_argument("--sort-records", type=int, default=2_000_000, help="records of the sort case")
    parser.add_argument("--skew-sizes", default="64MB,256MB",
                        help="corpora of the giant-key case (--cases skew), comma-separated")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each measured command this many times and report its median run")
    args = parser.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)
    cases = set(args.cases.split(","))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    # Every process of ours imports the package: from cached bytecode, as an installed package
    # does (an editable install under PYTHONDONTWRITEBYTECODE=1 would compile it in every one).
    compileall.compile_dir(ROOT / "mapreduce", quiet=1)
    n = args.workers
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="mapreduce-bench-") as work:
        tmp = Path(work)
        scripts = {name: script(tmp, f"bench_{name}.py", text) for name, text in (
            ("seq", SEQUENTIAL), ("pool", POOL), ("polars", POLARS), ("floor", FLOOR), ("dask", DASK),
            ("bigrams_str", BIGRAMS_STR))}
        if cases & {"wordcount", "vectorised"}:
            size = args.corpus_size
            for label, corpus in (
                (size, generate(args.data_dir, f"corpus-{size}", size)),
                (f"{size} long tail", generate(args.data_dir, f"corpus-{size}-tail50", size, long_tail=50)),
            ):
                wordcount_case(rows, label, corpus, tmp, n, cases, scripts)
        if "bigrams" in cases:
            size = args.bigram_size
            corpus = generate(args.data_dir, f"corpus-{size}", size)
            joined = measure(ours(scripts["bigrams_str"], [corpus], tmp / "bigrams-str", n))
            row(rows, f"7. bigrams {size}, tuple keys", measure(ours("bigrams.py", [corpus], tmp / "bigrams", n)),
                [("str keys", joined[0])], [("str keys", joined.cpu)])
        if "tiny" in cases:
            tiny = generate(args.data_dir, "tiny-140KB", "140KB")
            row(rows, "3. tiny job 140 KB, end to end", measure(ours("wordcount.py", [tiny], tmp / "tiny", n)),
                [("sequential", measure([PY, scripts["seq"], tiny, tmp / "tiny-seq.out"])[0])])
        if "sort" in cases:
            records = sort_records(args.data_dir, args.sort_records)
            gnu = measure(["sort", f"--parallel={n}", "-o", tmp / "gnu-sorted", records], env={"LC_ALL": "C"})
            for job, label in (("terasort.py", "per-record"), ("terasort_arrow.py", "vectorised map")):
                out = tmp / f"sorted-{job}"
                measured = measure(ours(job, [records], out, n, "--reducers", "4"))
                check_sorted(out, tmp / "gnu-sorted")
                row(rows, f"4. sort {args.sort_records / 1e6:g}M x 100 B, {label}", measured,
                    [("GNU sort", gnu[0])], [("GNU sort", gnu.cpu)])
        if "compression" in cases:
            compression_case(args.data_dir, tmp, args.compression_size, n)
        if "skew" in cases:
            skew_case(args.data_dir, tmp, args.skew_sizes.split(","), n)
        if "scaling" in cases:
            times, cpus = {}, {}
            for size in ("64MB", "128MB", "256MB"):
                data = generate(args.data_dir, f"corpus-{size}", size)
                measured = measure(ours("wordcount.py", [data], tmp / f"scale-{size}", n))
                (times[size], peak), cpus[size] = measured, measured.cpu
                print(f"5. scaling: word count {size:>6}: {times[size]:6.2f}s  CPU {cpus[size]:6.2f}s  "
                      f"peak {peak:.0f} MB", flush=True)
            print(f"   256 MB / 64 MB time ratio: {times['256MB'] / times['64MB']:.2f}, CPU ratio: "
                  f"{cpus['256MB'] / cpus['64MB']:.2f} (linear = 4.00)")


if __name__ == "__main__":
    main()
