/* What the parts of the optional C extension mapreduce._speedups share. The module itself
 * (mapreduce/_speedups.c) is its method table: each function below is in the file named with it.
 * Only the module's init is exported from the shared library; these names are hidden in it. */
#ifndef MAPREDUCE_SPEEDUPS_H
#define MAPREDUCE_SPEEDUPS_H

#include <stdint.h>
#include <string.h>
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#define SPEEDUPS_INTERNAL __attribute__((visibility("hidden")))
#else
#define PREFETCH(address) ((void)(address))
#define SPEEDUPS_INTERNAL
#endif

/* common.c */
SPEEDUPS_INTERNAL void *table_calloc(size_t count, size_t size);
SPEEDUPS_INTERNAL void table_free(void *memory, size_t count, size_t size);

typedef struct {
    const unsigned char *data;
    const int32_t *offsets32;
    const int64_t *offsets64;
} str_column_view;

static inline void
str_at(const str_column_view *view, int64_t index, const unsigned char **start, int64_t *size)
{
    int64_t begin, end;
    if (view->offsets64) {
        begin = view->offsets64[index];
        end = view->offsets64[index + 1];
    } else {
        begin = view->offsets32[index];
        end = view->offsets32[index + 1];
    }
    *start = view->data + begin;
    *size = end - begin;
}

SPEEDUPS_INTERNAL int checked_view(Py_buffer *offsets, Py_buffer *data, Py_ssize_t first,
                                   Py_ssize_t count, int wide, str_column_view *view,
                                   const char *function);
SPEEDUPS_INTERNAL void make_crc_table(void);
SPEEDUPS_INTERNAL uint32_t crc32_of(const unsigned char *data, size_t size, uint32_t start);

/* map_loop.c: its init finds itertools.repeat (combine_counts' values); -1 on error. */
SPEEDUPS_INTERNAL int map_loop_init(void);

/* The module's functions: map_loop.c, columns.c, tuple_keys.c, keysort.c, counter.c. */
SPEEDUPS_INTERNAL PyObject *count_pairs(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *map_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
SPEEDUPS_INTERNAL PyObject *str_tally(PyObject *module, PyObject *unused);
SPEEDUPS_INTERNAL PyObject *str_tally_size(PyObject *module, PyObject *capsule);
SPEEDUPS_INTERNAL PyObject *str_tally_drain(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *combine_counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
SPEEDUPS_INTERNAL PyObject *str_column(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *int64_column(PyObject *module, PyObject *items);
SPEEDUPS_INTERNAL PyObject *encode_str_tuples(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *encode_str_tuple_column(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *decode_str_tuple_column(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *sort_order(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *text_lines(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *split_lines(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *str_counter(PyObject *module, PyObject *unused);
SPEEDUPS_INTERNAL PyObject *str_counter_add(PyObject *module, PyObject *args);
SPEEDUPS_INTERNAL PyObject *str_counter_take(PyObject *module, PyObject *capsule);
SPEEDUPS_INTERNAL PyObject *str_partitions(PyObject *module, PyObject *args);

#endif
