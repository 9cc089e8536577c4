"""The total-order sort (sampled ranges) and reduce-side join examples against plain references."""

from __future__ import annotations

import json
import random

from helpers import (
    FAST,
    ROOT,
    part_files,
    read_pairs,
    reference_lines,
    run_cli,
    small_splits,
    write_corpus,
)


def test_total_sort_parts_hold_contiguous_ranges(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=3, lines=300)
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/total_sort.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        4,
        *small_splits("4KB"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    keys = [key for key, _ in read_pairs(out, raw=True)]
    assert keys == sorted(keys)
    assert len(keys) == sum(len(reference_lines(p)) for p in corpus)
    sizes = [len(p.read_text().splitlines()) for p in part_files(out)]
    assert len(sizes) == 4 and min(sizes) > 0  # the sample spread the keys over every reducer


def test_reduce_side_join_matches_a_plain_join(tmp_path):
    rng = random.Random(1)
    data = tmp_path / "data"
    data.mkdir()
    customers = {str(i): f"name{i}" for i in range(1, 40)}
    (data / "customers.csv").write_text(
        "id,name\n" + "".join(f"{i},{n}\n" for i, n in customers.items())
    )
    orders = [
        (str(rng.randint(1, 45)), f"item{rng.randint(1, 9)}", rng.randint(1, 99))
        for _ in range(300)
    ]
    (data / "orders.csv").write_text(
        "customer_id,item,amount\n" + "".join(f"{c},{i},{a}\n" for c, i, a in orders)
    )
    out = tmp_path / "out"
    result = run_cli("run", ROOT / "jobs/join.py", data, "-o", out, "-w", 2, "-r", 3, *FAST)
    assert result.returncode == 0, result.stderr
    expected = sorted(
        (c, json.dumps({"customer": customers[c], "item": i, "amount": a}, sort_keys=True))
        for c, i, a in orders
        if c in customers
    )
    got = sorted((str(k), json.dumps(v, sort_keys=True)) for k, v in read_pairs(out))
    assert got == expected
    unmatched = sum(1 for c, _, _ in orders if c not in customers)
    assert f"orders without customer={unmatched}" in result.stderr


def test_two_step_top_words_in_run_and_inline(corpus, tmp_path):
    from helpers import wordcount_reference

    counts = wordcount_reference(corpus)
    expected = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[:7]
    for mode in ([], ["--inline"]):
        out = tmp_path / f"out{len(mode)}"
        result = run_cli(
            "run",
            ROOT / "jobs/top_words.py",
            tmp_path / "corpus",
            "-o",
            out,
            "-w",
            2,
            "-r",
            2,
            *small_splits("3KB"),
            "-p",
            "n=7",
            "-q",
            *mode,
            *FAST,
        )
        assert result.returncode == 0, result.stderr
        assert read_pairs(out) == expected
        assert not [p for p in tmp_path.iterdir() if ".steps-" in p.name]  # intermediates removed


def test_a_failing_second_step_commits_nothing(corpus, tmp_path):
    job = tmp_path / "two_steps.py"
    job.write_text(
        "def first(k, line):\n    yield line, 1\n\n"
        "def second(k, v):\n    raise ValueError('step two breaks')\n\n"
        "def total(k, vs):\n    yield k, sum(vs)\n\n"
        "STEPS = [{'mapper': first, 'reducer': total}, {'mapper': second, 'reducer': total}]\n"
    )
    out = tmp_path / "out"
    result = run_cli("run", job, tmp_path / "corpus", "-o", out, "--max-attempts", 1, *FAST)
    assert result.returncode == 1 and "step two breaks" in result.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".steps-" in p.name]
