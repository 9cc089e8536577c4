/* mapreduce._speedups: the optional C versions of the hot loops (setup.py builds it where a
 * compiler exists; each caller has the same loop in Python for when it could not be built).
 *
 * This file is the module: its method table and init. The functions are in
 * mapreduce/_speedups_src/, one concern a file:
 *   map_loop.c    the map side's per-pair loops: count_pairs, map_lines and its str tally,
 *                 combine_counts;
 *   columns.c     Arrow columns without a Python object per item: str_column, int64_column,
 *                 text_lines, split_lines;
 *   tuple_keys.c  tuple keys of strs through the shuffle: encode_str_tuples,
 *                 encode_str_tuple_column, decode_str_tuple_column;
 *   keysort.c     the radix sort of a string column: sort_order;
 *   counter.c     counting and partitioning string columns: str_counter*, str_partitions;
 *   common.c      what they share: hash-table memory, checked string-column views, CRC-32.
 */
#include "_speedups_src/speedups.h"

static PyMethodDef methods[] = {
    {"count_pairs", count_pairs, METH_VARARGS,
     "count_pairs(items: list, counts: dict) -> bool\n\n"
     "Count exact (key, value) 2-tuples of str/bytes/int/None (keys: or tuples of those) into\n"
     "counts[(type(value), value)][key];\n"
     "False, counting nothing, if any item is not such a pair."},
    {"map_lines", (PyCFunction)(void (*)(void))map_lines, METH_FASTCALL,
     "map_lines(mapper, path, lines, start, counts, pairs, room, tally) -> (status, index, extra, "
     "taken)\n\n"
     "mapper(path, line) for lines[start:], its pairs counted into counts (as count_pairs; str\n"
     "keys into the tally, see str_tally_drain) or appended to pairs, until done (0), `room`\n"
     "keys or pairs added (1), an output it does not take (2: extra = (items taken but not\n"
     "added, the rest)), or an exception (3: extra)."},
    {"str_tally", str_tally, METH_NOARGS,
     "str_tally() -> tally: an empty table of str keys counted under one value, for map_lines."},
    {"str_tally_size", str_tally_size, METH_O,
     "str_tally_size(tally) -> int: how many distinct keys the tally holds."},
    {"str_tally_drain", str_tally_drain, METH_VARARGS,
     "str_tally_drain(tally, counts: dict) -> int: adds the tally's counts into\n"
     "counts[(type(value), value)][key] as count_pairs would, empties it, and returns how many\n"
     "keys it held."},
    {"combine_counts", (PyCFunction)(void (*)(void))combine_counts, METH_FASTCALL,
     "combine_counts(combiner, key_counts, value, groups, position) -> None | tuple\n\n"
     "The combiner over counted keys from PyDict_Next's position on, into groups; stops at a\n"
     "key it leaves to Python: (position, group, times, called, output)."},
    {"sort_order", sort_order, METH_VARARGS,
     "sort_order(offsets, data, offset, count, wide): the stable byte order of a string column, "
     "as int64 indices (bytes)."},
    {"text_lines", text_lines, METH_VARARGS,
     "text_lines(key_offsets, key_data, key_first, value_offsets, value_data, value_first, "
     "count) -> bytes | None: key<TAB>value lines of two large_string columns."},
    {"split_lines", split_lines, METH_VARARGS,
     "split_lines(data) -> (offsets: bytes, text: bytes): a large_string array's buffers of "
     "the lines of data that end in a line break (CRLF read as LF)."},
    {"str_counter", str_counter, METH_NOARGS,
     "str_counter() -> counter: an empty table of key counts for str_counter_add."},
    {"str_counter_add", str_counter_add, METH_VARARGS,
     "str_counter_add(counter, offsets, data, first, count, values=None, values_first=0) -> int: "
     "count rows of a large string or binary array's buffers (each adds 1, or its int64 in values); the "
     "number of distinct keys counted."},
    {"str_partitions", str_partitions, METH_VARARGS,
     "str_partitions(offsets, data, first, count, partitions) -> bytes: crc32(key) % "
     "partitions of rows of a large string or binary array's buffers, as int32s."},
    {"str_counter_take", str_counter_take, METH_O,
     "str_counter_take(counter) -> (offsets, data, counts: bytes, keys: int): the distinct "
     "keys in the order first seen and their counts, as Arrow buffers; the counter empties."},
    {"str_column", str_column, METH_VARARGS,
     "str_column(items: list, order=None) -> (offsets: bytes, data: bytes) | None\n\n"
     "The int64 offsets and UTF-8 data of a large_string array of exact strs, in the order "
     "of the int64 indices `order` when given; None otherwise."},
    {"int64_column", int64_column, METH_O,
     "int64_column(items: list) -> bytes | None\n\n"
     "The data of an int64 array of exact ints within int64; None otherwise."},
    {"encode_str_tuples", encode_str_tuples, METH_VARARGS,
     "encode_str_tuples(keys: list) -> list | None\n\n"
     "shuffle.keys.encode_key of every key when all are non-empty exact tuples of exact strs with\n"
     "no NUL and no lone surrogate; None otherwise (then Python encodes them)."},
    {"encode_str_tuple_column", encode_str_tuple_column, METH_VARARGS,
     "encode_str_tuple_column(keys: list, num_partitions, crc_start) -> tuple | None\n\n"
     "(offsets, data, widest, partitions): a large_binary column of encode_str_tuples' bytes,\n"
     "the most items in a key, and each key's crc32 % num_partitions (int32s; None for one)."},
    {"decode_str_tuple_column", decode_str_tuple_column, METH_VARARGS,
     "decode_str_tuple_column(offsets, data, first, count, wide) -> list | None\n\n"
     "The tuple keys back from a binary column of encode_str_tuples' bytes (a key equal to the\n"
     "one before is the same object); None when any key is other bytes (then Python decodes)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mapreduce._speedups",
    "C versions of the map side's per-pair loops (optional: shuffle/writer.py has the same in Python).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    make_crc_table();
    if (map_loop_init()) {
        return NULL;
    }
    return PyModule_Create(&module);
}
