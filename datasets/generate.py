#!/usr/bin/env python3
"""Generate a large, deterministic, English-like text corpus for benchmarks and tests, and the
inputs of the join and TeraSort examples.

    python datasets/generate.py --size 100MB --output corpus/ [--files N] [--seed S] [--vocabulary V]
    python datasets/generate.py --kind join --output out/data/join [--size 200KB] [--seed S]
    python datasets/generate.py --kind terasort --output out/data/terasort [--size 10MB] [--seed S]

`--kind join` writes customers.csv (`id,name`) and orders.csv (`customer_id,item,amount`, about
SIZE bytes; one order in twenty names a customer id that does not exist) for jobs/join.py.
`--kind terasort` writes records-00000.txt, ...: TeraGen-like 100-byte lines, a 10-character key
of printable ASCII (33-126) then the row number and filler, for jobs/terasort.py and
jobs/terasort_arrow.py. Both write only their own files, so running them again is harmless.

Writes N files named corpus-00000.txt, corpus-00001.txt, ... into the output directory, together
about SIZE bytes (each file is cut at a line boundary, so a little under its share). SIZE takes
1024-based units: 500000, 140KB, 100MB, 1GB (also K/M/G, KiB/MiB/GiB, fractions such as 1.5GB).
By default there is one file per 64 MiB, at least one.

The text:

* Words are drawn independently with Zipf-like frequencies: the word of rank r has weight
  1 / r**1.07. The top ranks are ~100 common English words ("the", "of", "and", ...); after them
  come V made-up lowercase words (default 200,000) built from syllables ("brou", "stea", "ki"),
  shorter ones at the higher ranks. The vocabulary is the same for every seed.
* Lines hold 5 to 20 words. Sentences start with a capital letter and end with a full stop;
  some lines have a comma or a full stop inside, some end with a comma (the sentence goes on
  to the next line), and now and then a blank line separates paragraphs. So a word count
  must split on punctuation and lower-case to get the drawn words back.
* Plain ASCII with LF line endings; every file ends with a newline.

The same arguments (seed included) always give byte-identical files, on any machine and with
any Python 3 version that has the same `random` algorithms (Mersenne Twister, `choices`,
`sample`, `getrandbits`; unchanged since Python 3.9). Each file has its own random stream,
derived from the seed and the file's index.

Speed: words are drawn in large batches with `random.Random.choices(..., cum_weights=...)` and
joined as strings; the only per-line Python work is punctuation and capitalisation. Expect
roughly 10-20 MB/s on one core.
"""

import argparse
import itertools
import math
import os
import random
import re
import sys
import time

MiB = 1024 * 1024
DEFAULT_FILE_BYTES = 64 * MiB
DEFAULT_VOCABULARY = 200_000
ZIPF_EXPONENT = 1.07
MIN_WORDS, MAX_WORDS = 5, 20  # words per line
BATCH_LINES = 20_000  # lines drawn per batch (about 1.5 MB of text)
VOCABULARY_SEED = 20240601  # the made-up words do not depend on --seed

# Ranks 1..107: about a hundred of the most common English words (lower-case; no "I").
CORE_WORDS = """
the of and to a in is you that it he was for on are as with his they at be this have from or
one had by word but not what all were we when your can said there use an each which she do how
their if will up other about out many then them these so some her would make like him into time
has look two more write go see number no way could people my than first water been call who oil
its now find long down day did get come made may part over new sound take only little work know
""".split()

ONSETS = [
    "",
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "cr",
    "dr",
    "fl",
    "gr",
    "pl",
    "st",
    "tr",
    "sh",
    "ch",
    "th",
]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea"]
SYLLABLES = [o + v for o in ONSETS for v in VOWELS]  # 240 syllables

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text):
    """'100MB' -> 104857600. 1024-based; a bare number is bytes."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use a number of bytes or a number with K, M or G "
            f"(1024-based), e.g. 500000, 140KB, 100MB, 1GB"
        )
    number, unit, _ = m.groups()
    size = int(float(number) * _UNITS[unit.lower()])
    if size <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be more than 0 bytes")
    return size


def build_vocabulary(made_up_words):
    """The words by rank: CORE_WORDS, then `made_up_words` distinct syllable words, shorter
    words (fewer syllables) first, in a fixed pseudo-random order within each length."""
    rng = random.Random(VOCABULARY_SEED)
    seen = set(CORE_WORDS)
    words = list(CORE_WORDS)
    target = len(CORE_WORDS) + made_up_words
    n_syl = len(SYLLABLES)
    length = 1
    while len(words) < target:
        space = n_syl**length
        need = target - len(words)
        if space <= 2 * need + 1000:
            indexes = list(range(space))
            rng.shuffle(indexes)
        else:
            indexes = rng.sample(range(space), need + need // 4 + 100)
        for index in indexes:
            parts = []
            for _ in range(length):
                index, s = divmod(index, n_syl)
                parts.append(SYLLABLES[s])
            w = "".join(parts)
            if w not in seen:
                seen.add(w)
                words.append(w)
                if len(words) == target:
                    break
        length += 1
    return words


def zipf_cum_weights(n, exponent=ZIPF_EXPONENT):
    return list(itertools.accumulate(1.0 / r**exponent for r in range(1, n + 1)))


def tail_word(file_index, number):
    """The `number`th new word of the long tail of file `file_index`: letters only (so a word
    count finds it whole), and different from every other file's and from the vocabulary's."""
    letters = []
    number = number * 1000 + file_index  # up to 1000 files each get their own words
    while True:
        number, digit = divmod(number, 26)
        letters.append(chr(ord("a") + digit))
        if not number:
            break
    return "zq" + "".join(letters)  # no made-up vocabulary word starts with "zq"


def generate_file(path, target_bytes, rng, vocab, cum_weights, long_tail=0, file_index=0):
    """Write about `target_bytes` (never more, cut at a line end) of text; return bytes written.
    With `long_tail` N, 1 line in N gets one word never seen before (a long tail of distinct
    words, as in real text such as Gutenberg's)."""
    choices = rng.choices
    getrandbits = rng.getrandbits
    lengths_population = range(MIN_WORDS, MAX_WORDS + 1)
    written = 0
    sentence_start = True
    lines_written = 0
    with open(path, "wb") as f:
        while written < target_bytes:
            remaining = target_bytes - written
            n_lines = max(16, min(BATCH_LINES, remaining // 50))
            lengths = choices(lengths_population, k=n_lines)
            words = choices(vocab, cum_weights=cum_weights, k=sum(lengths))
            out = []
            i = 0
            for n in lengths:
                line = words[i : i + n]
                i += n
                lines_written += 1
                if long_tail and lines_written % long_tail == 0:
                    line[-1] = tail_word(file_index, lines_written // long_tail)
                if sentence_start:
                    line[0] = line[0].capitalize()
                x = getrandbits(32)
                comma = -1
                if x & 3 == 0:  # 1 line in 4: a comma inside
                    comma = (x >> 2) % (n - 2) + 1
                    line[comma] += ","
                if (x >> 8) & 7 == 0:  # 1 in 8: a sentence ends inside
                    stop = (x >> 11) % (n - 3) + 1
                    if stop != comma:
                        line[stop] += "."
                        line[stop + 1] = line[stop + 1].capitalize()
                end = (x >> 20) & 15
                if end < 11:  # the sentence ends with the line
                    out.append(" ".join(line) + (".\n\n" if end == 0 else ".\n"))
                    sentence_start = True
                elif end < 14:  # it goes on to the next line
                    out.append(" ".join(line) + ",\n")
                    sentence_start = False
                else:
                    out.append(" ".join(line) + "\n")
                    sentence_start = False
            chunk = "".join(out)
            if len(chunk) > remaining:
                cut = chunk.rfind("\n", 0, remaining) + 1
                if cut == 0:
                    break  # not even one more whole line fits
                chunk = chunk[:cut]
            f.write(chunk.encode("ascii"))
            written += len(chunk)
    return written


KINDS = ("text", "join", "terasort")
DEFAULT_SIZES = {"join": 200 * 1024, "terasort": 10 * MiB}
TERASORT_KEY_CHARS = "".join(map(chr, range(33, 127)))  # the range jobs/terasort.py partitions
TERASORT_LINE_BYTES = 100  # key (10) + 2 spaces + row (32 hex) + 2 spaces + filler (53) + \n
ITEMS = ["apples", "bread", "candles", "dates", "eggs", "flour", "grapes", "honey", "ink"]


def generate_join(directory, target_bytes, seed):
    """customers.csv and orders.csv for the reduce-side join; returns the bytes written."""
    rng = random.Random(seed)
    orders = max(1, target_bytes // 24)  # an order line is about 24 bytes
    customers = max(1, orders // 10)
    names = build_vocabulary(customers)[-customers:]
    written = 0
    with open(os.path.join(directory, "customers.csv"), "w", encoding="ascii") as f:
        text = "id,name\n" + "".join(
            f"{i},{names[i - 1].capitalize()}\n" for i in range(1, customers + 1)
        )
        written += f.write(text)
    with open(os.path.join(directory, "orders.csv"), "w", encoding="ascii") as f:
        lines = ["customer_id,item,amount\n"]
        for _ in range(orders):
            # One in twenty orders names a customer that does not exist (an inner join drops it).
            customer = rng.randint(1, customers + max(1, customers // 19))
            lines.append(f"{customer},{rng.choice(ITEMS)},{rng.randint(1, 99)}\n")
        written += f.write("".join(lines))
    return written


def generate_terasort(path, target_bytes, rng, first_row):
    """TeraGen-like records: 10 random printable characters as the key, then the row number and
    filler; returns the number of records written."""
    rows = max(1, target_bytes // TERASORT_LINE_BYTES)
    filler = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=53))
    with open(path, "w", encoding="ascii") as f:
        for start in range(0, rows, BATCH_LINES):
            count = min(BATCH_LINES, rows - start)
            keys = rng.choices(TERASORT_KEY_CHARS, k=10 * count)
            f.write(
                "".join(
                    f"{''.join(keys[10 * i : 10 * i + 10])}  {first_row + start + i:032X}  "
                    f"{filler}\n"
                    for i in range(count)
                )
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="generate.py",
        description="Write a deterministic English-like text corpus (Zipf-distributed words, "
        "lines of 5-20 words with capitals and punctuation) of about SIZE bytes.",
        epilog="Example: python datasets/generate.py --size 256MB --output /tmp/corpus --seed 1",
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="text",
        help="text: an English-like corpus (the default); join: customers.csv and orders.csv "
        "for jobs/join.py; terasort: 100-byte records for jobs/terasort.py",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=None,
        help="total size, 1024-based: 500000, 140KB, 100MB, 1GB (required for text; join: "
        "200KB, terasort: 10MB by default)",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="directory to write corpus-NNNNN.txt files into (created if missing)",
    )
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help="number of files (default: one per 64 MiB of SIZE, at least 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--vocabulary",
        type=int,
        default=DEFAULT_VOCABULARY,
        help=f"number of made-up words after the ~{len(CORE_WORDS)} common "
        f"English ones (default: {DEFAULT_VOCABULARY})",
    )
    parser.add_argument(
        "--long-tail",
        type=int,
        default=0,
        metavar="N",
        help="give 1 line in N a word never seen before (a long tail of distinct words; "
        "default 0: none)",
    )
    parser.add_argument(
        "--force", action="store_true", help="write even if the output directory is not empty"
    )
    args = parser.parse_args(argv)
    if args.kind != "text":
        return _generate_example_input(args)
    if args.size is None:
        parser.error("--size is required for a text corpus")

    files = (
        args.files if args.files is not None else max(1, math.ceil(args.size / DEFAULT_FILE_BYTES))
    )
    if files < 1:
        parser.error("--files must be at least 1")
    if args.long_tail < 0:
        parser.error("--long-tail must be 0 or more")
    if args.vocabulary < 0:
        parser.error("--vocabulary must be 0 or more")
    if os.path.isdir(args.output) and os.listdir(args.output) and not args.force:
        parser.error(f"output directory {args.output} is not empty (use --force to write anyway)")
    os.makedirs(args.output, exist_ok=True)

    started = time.perf_counter()
    vocab = build_vocabulary(args.vocabulary)
    cum_weights = zipf_cum_weights(len(vocab))

    total = 0
    base, extra = divmod(args.size, files)
    for index in range(files):
        path = os.path.join(args.output, f"corpus-{index:05d}.txt")
        rng = random.Random(args.seed * 1_000_003 + index)
        target = base + (1 if index < extra else 0)
        n = generate_file(path, target, rng, vocab, cum_weights, args.long_tail, index)
        total += n
        print(f"wrote {path} ({n:,} bytes)", flush=True)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {files} file(s), {total:,} bytes ({total / MiB:.1f} MiB) in {elapsed:.1f} s "
        f"(seed {args.seed}, vocabulary {len(vocab):,} words)"
    )
    return 0


def _generate_example_input(args):
    """--kind join or terasort: only their own files are written (again, when run again)."""
    size = args.size if args.size is not None else DEFAULT_SIZES[args.kind]
    os.makedirs(args.output, exist_ok=True)
    if args.kind == "join":
        written = generate_join(args.output, size, args.seed)
        print(f"wrote customers.csv and orders.csv into {args.output} ({written:,} bytes)")
        return 0
    files = args.files if args.files is not None else max(1, math.ceil(size / DEFAULT_FILE_BYTES))
    base, extra = divmod(size, files)
    rows = 0
    for index in range(files):
        path = os.path.join(args.output, f"records-{index:05d}.txt")
        rng = random.Random(args.seed * 1_000_003 + index)
        rows += generate_terasort(path, base + (1 if index < extra else 0), rng, rows)
    print(f"wrote {rows:,} records in {files} file(s) into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
