"""The performance suite: our wall time and peak memory against baselines run in the same invocation.

    python tests/benchmarks/run.py [--data-dir DIR] [--workers 2] [--cases wordcount,vectorised,tiny,sort,scaling]
                                   [--corpus-size 256MB] [--skew-sizes 64MB,256MB]

--corpus-size sets the corpus of the word-count cases (1 and 2; the published figures use the
default), so a quick before/after comparison can run on a small one, e.g. `--cases wordcount
--corpus-size 32MB`.

`--cases skew` (not in the default set) runs issue 21's giant key: every word's length under the
one key "all", no combiner, summed by a reducer that iterates its values; also with SORT_VALUES and
through the vectorised identity reduce. For each of --skew-sizes it prints the peak resident
memory of every process (a reduce's should not grow with the input) and the ratio of the peaks.

Data comes from datasets/generate.py (cached in --data-dir). Every measured command runs as its own
process tree, and its peak memory is the largest resident set of any single process in that tree,
sampled every 50 ms. Not collected by pytest (no test_ prefix); speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
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


def measure(command: list, env=None, cwd=ROOT) -> tuple[float, float]:
    """(seconds, peak MB of the largest process) for one command; fails loudly if it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    try:
        while process.poll() is None:
            peak = max(peak, tree_rss_kb(process.pid))
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(map(str, command))}\n{process.stderr.read()}")
    return elapsed, peak / 1024


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


def generate(data_dir: Path, name: str, size: str) -> Path:
    target = data_dir / name
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([PY, ROOT / "datasets/generate.py", "--size", size, "--seed", "1",
                        "--output", target], check=True, stdout=subprocess.DEVNULL)
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

POOL = r'''
import collections, multiprocessing, os, re, sys
WORD = re.compile(r"[A-Za-z]+")

def count_range(job):
    path, start, end = job
    counts = collections.Counter()
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()
        while f.tell() < end:
            line = f.readline()
            if not line:
                break
            counts.update(WORD.findall(line.decode("utf-8", "replace").lower()))
    return counts

if __name__ == "__main__":
    top, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    jobs = []
    for name in sorted(os.listdir(top)):
        if name.startswith("."): continue
        path = os.path.join(top, name)
        size = os.path.getsize(path)
        step = max(1, size // (4 * n))
        jobs += [(path, s, min(size, s + step)) for s in range(0, size, step)]
    total = collections.Counter()
    with multiprocessing.Pool(n) as pool:
        for part in pool.imap_unordered(count_range, jobs):
            total.update(part)
    with open(out, "w") as f:
        for word, c in sorted(total.items()):
            f.write(f"{word}\t{c}\n")
'''

POLARS = r'''
import sys, os, polars as pl
files = [os.path.join(sys.argv[1], n) for n in sorted(os.listdir(sys.argv[1])) if not n.startswith(".")]
frame = pl.concat([pl.scan_csv(f, has_header=False, separator="\x01", quote_char=None,
                               new_columns=["line"], schema_overrides={"line": pl.Utf8}) for f in files])
counts = (frame.select(pl.col("line").str.to_lowercase().str.extract_all("[a-z]+").alias("w"))
          .explode("w").drop_nulls().group_by("w").len().collect())
counts.sort("w").write_csv(sys.argv[2], separator="\t", include_header=False)
'''


def ours(job: str, inputs, out: Path, workers: int, *extra) -> list:
    return [PY, "-m", "mapreduce.cli", "run", ROOT / "jobs" / job, *inputs, "-o", out, "-w",
            str(workers), "-q", "--overwrite", *extra]


def script(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def row(rows, case, seconds, peak, baselines):
    rows.append((case, seconds, peak, baselines))
    ratios = "  ".join(f"{name} {base:.2f}s (ours/{name} = {seconds / base:.2f})" for name, base in baselines)
    print(f"{case:<34} ours {seconds:7.2f}s  peak {peak:6.0f} MB  {ratios}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "mapreduce-bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", default="wordcount,vectorised,tiny,sort,scaling")
    parser.add_argument("--corpus-size", default="256MB",
                        help="corpus of the word-count cases, as datasets/generate.py --size takes it")
    parser.add_argument("--skew-sizes", default="64MB,256MB",
                        help="corpora of the giant-key case (--cases skew), comma-separated")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    n = args.workers
    rows = []
    with tempfile.TemporaryDirectory(prefix="mapreduce-bench-") as work:
        tmp = Path(work)
        seq, pool, polars_wc = (script(tmp, "seq.py", SEQUENTIAL), script(tmp, "pool.py", POOL),
                             script(tmp, "polars_wc.py", POLARS))
        if cases & {"wordcount", "vectorised", "scaling"}:
            size = args.corpus_size
            corpus = generate(args.data_dir, f"corpus-{size}", size)
            base_seq, _ = measure([PY, seq, corpus, tmp / "seq.out"])
            base_pool, _ = measure([PY, pool, corpus, tmp / "pool.out", str(n)])
        if "wordcount" in cases:
            seconds, peak = measure(ours("wordcount.py", [corpus], tmp / "wc", n))
            row(rows, f"1. word count {size}, {n} workers", seconds, peak,
                [("sequential", base_seq), (f"Pool({n})", base_pool)])
        if "vectorised" in cases:
            seconds, peak = measure(ours("wordcount_arrow.py", [corpus], tmp / "wca", n))
            baselines = [("sequential", base_seq), (f"Pool({n})", base_pool)]
            try:
                import polars  # noqa: F401
                baselines.append(("polars", measure([PY, polars_wc, corpus, tmp / "polars.out"])[0]))
            except ImportError:
                print("   (polars not installed here: `pip install polars` to compare)")
            row(rows, f"2. vectorised word count {size}", seconds, peak, baselines)
        if "tiny" in cases:
            tiny = generate(args.data_dir, "tiny-140KB", "140KB")
            seconds, peak = measure(ours("wordcount.py", [tiny], tmp / "tiny", n))
            row(rows, "3. tiny job 140 KB, end to end", seconds, peak,
                [("sequential", measure([PY, seq, tiny, tmp / "tiny-seq.out"])[0])])
        if "sort" in cases:
            records = sort_records(args.data_dir)
            gnu, _ = measure(["sort", "-o", tmp / "gnu-sorted", records], env={"LC_ALL": "C"})
            for job, label in (("terasort.py", "per-record"), ("terasort_arrow.py", "vectorised map")):
                out = tmp / f"sorted-{job}"
                seconds, peak = measure(ours(job, [records], out, n, "--reducers", "4"))
                check_sorted(out, tmp / "gnu-sorted")
                row(rows, f"4. sort 2M x 100 B, {label}", seconds, peak, [("GNU sort", gnu)])
        if "skew" in cases:
            skew_case(args.data_dir, tmp, args.skew_sizes.split(","), n)
        if "scaling" in cases:
            times = {}
            for size in ("64MB", "128MB", "256MB"):
                data = generate(args.data_dir, f"corpus-{size}", size)
                times[size], peak = measure(ours("wordcount.py", [data], tmp / f"scale-{size}", n))
                print(f"5. scaling: word count {size:>6}: {times[size]:6.2f}s  peak {peak:.0f} MB", flush=True)
            print(f"   256 MB / 64 MB time ratio: {times['256MB'] / times['64MB']:.2f} (linear = 4.00)")


if __name__ == "__main__":
    main()
