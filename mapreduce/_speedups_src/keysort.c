/* The stable sort order of a string column: sort_order(offsets, data, offset, count, wide) gives
 * the indices (int64, as bytes) that put the `count` strings starting at index `offset` of an
 * Arrow string array (int32 offsets, or int64 with `wide`) in byte order, which is Python's
 * order of strs; equal strings keep their order. Each string's first 8 bytes (after any that all
 * the strings share), zero-padded, are sorted as a big-endian integer by a stable LSD radix sort (a byte a pass, passes whose byte is
 * the same in every key skipped), then each run of equal prefixes by a stable merge sort of the
 * whole strings (a run already in order, as a repeated key's is, costs one scan). Arrow's own
 * sort compares whole strings from the start for every comparison: several times slower. */
#include "speedups.h"

static inline int
compare_strs(const str_column_view *view, int64_t a, int64_t b)
{
    const unsigned char *x, *y;
    int64_t nx, ny;
    str_at(view, a, &x, &nx);
    str_at(view, b, &y, &ny);
    int order = memcmp(x, y, (size_t)(nx < ny ? nx : ny));
    if (order) {
        return order;
    }
    return nx < ny ? -1 : nx > ny;
}

/* Stable merge sort of rows[0:n] (indices relative to the view) by whole string. */
static void
merge_sort_rows(const str_column_view *view, int64_t *rows, int64_t *scratch, Py_ssize_t n)
{
    if (n < 2) {
        return;
    }
    if (n <= 16) { /* insertion sort: stable */
        for (Py_ssize_t i = 1; i < n; i++) {
            int64_t row = rows[i];
            Py_ssize_t j = i;
            while (j > 0 && compare_strs(view, rows[j - 1], row) > 0) {
                rows[j] = rows[j - 1];
                j--;
            }
            rows[j] = row;
        }
        return;
    }
    Py_ssize_t half = n / 2;
    merge_sort_rows(view, rows, scratch, half);
    merge_sort_rows(view, rows + half, scratch, n - half);
    if (compare_strs(view, rows[half - 1], rows[half]) <= 0) {
        return; /* already in order */
    }
    memcpy(scratch, rows, (size_t)half * sizeof(int64_t));
    Py_ssize_t i = 0, j = half, k = 0;
    while (i < half && j < n) {
        /* the left run's row first when equal: stable */
        if (compare_strs(view, rows[j], scratch[i]) < 0) {
            rows[k++] = rows[j++];
        } else {
            rows[k++] = scratch[i++];
        }
    }
    while (i < half) {
        rows[k++] = scratch[i++];
    }
}

PyObject *
sort_order(PyObject *module, PyObject *args)
{
    Py_buffer offsets, data;
    Py_ssize_t first, count;
    int wide;
    if (!PyArg_ParseTuple(args, "y*y*nnp", &offsets, &data, &first, &count, &wide)) {
        return NULL;
    }
    PyObject *result = NULL;
    uint64_t *keys = NULL, *keys_out = NULL;
    int64_t *rows_out = NULL, *scratch = NULL;
    str_column_view view;
    if (checked_view(&offsets, &data, first, count, wide, &view, "sort_order")) {
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    if (result == NULL || count == 0) {
        goto done;
    }
    int64_t *rows = (int64_t *)PyBytes_AS_STRING(result);
    keys = PyMem_RawMalloc((size_t)count * sizeof(uint64_t));
    keys_out = PyMem_RawMalloc((size_t)count * sizeof(uint64_t));
    rows_out = PyMem_RawMalloc((size_t)count * sizeof(int64_t));
    scratch = PyMem_RawMalloc((size_t)(count / 2 + 1) * sizeof(int64_t));
    if (!keys || !keys_out || !rows_out || !scratch) {
        PyErr_NoMemory();
        Py_CLEAR(result);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    /* The bytes every string starts with (a tuple key's first tag) tell none apart: the prefix
     * sorted by radix starts after them. */
    const unsigned char *head;
    int64_t common;
    str_at(&view, 0, &head, &common);
    for (Py_ssize_t i = 1; i < count && common > 0; i++) {
        const unsigned char *start;
        int64_t size, same = 0;
        str_at(&view, i, &start, &size);
        while (same < common && same < size && start[same] == head[same]) {
            same++;
        }
        common = same;
    }
    Py_ssize_t histogram[8][256];
    memset(histogram, 0, sizeof(histogram));
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *start;
        int64_t size;
        str_at(&view, i, &start, &size);
        start += common;
        size -= common;
        uint64_t key = 0;
        for (int b = 0; b < 8; b++) {
            key = (key << 8) | (b < size ? start[b] : 0);
        }
        keys[i] = key;
        rows[i] = i;
        for (int pass = 0; pass < 8; pass++) {
            histogram[pass][(key >> (8 * pass)) & 0xff]++;
        }
    }
    uint64_t *key_in = keys, *key_to = keys_out;
    int64_t *row_in = rows, *row_to = rows_out;
    for (int pass = 0; pass < 8; pass++) {
        Py_ssize_t *counts = histogram[pass];
        int shift = 8 * pass;
        if (counts[(key_in[0] >> shift) & 0xff] == count) {
            continue; /* every key has this byte: the pass would not move anything */
        }
        Py_ssize_t position = 0;
        for (int digit = 0; digit < 256; digit++) {
            Py_ssize_t here = counts[digit];
            counts[digit] = position;
            position += here;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_ssize_t to = counts[(key_in[i] >> shift) & 0xff]++;
            key_to[to] = key_in[i];
            row_to[to] = row_in[i];
        }
        uint64_t *key_swap = key_in;
        key_in = key_to;
        key_to = key_swap;
        int64_t *row_swap = row_in;
        row_in = row_to;
        row_to = row_swap;
    }
    if (row_in != rows) {
        memcpy(rows, row_in, (size_t)count * sizeof(int64_t));
    }
    /* Runs of equal prefixes, ordered by their whole strings. */
    for (Py_ssize_t start = 0; start < count;) {
        Py_ssize_t end = start + 1;
        while (end < count && key_in[end] == key_in[start]) {
            end++;
        }
        if (end - start > 1) {
            Py_ssize_t i = start + 1;
            while (i < end && compare_strs(&view, rows[i - 1], rows[i]) <= 0) {
                i++;
            }
            if (i < end) {
                merge_sort_rows(&view, rows + start, scratch, end - start);
            }
        }
        start = end;
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_RawFree(keys);
    PyMem_RawFree(keys_out);
    PyMem_RawFree(rows_out);
    PyMem_RawFree(scratch);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}
