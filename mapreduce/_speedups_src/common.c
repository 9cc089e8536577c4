/* What the parts of mapreduce._speedups share: hash-table memory (huge pages for large tables),
 * the checked view of an Arrow string column's buffers, and CRC-32 as zlib computes it. */
#include "speedups.h"
#ifdef __linux__
#include <sys/mman.h>
#endif

/* Zeroed memory for a hash table of `count` entries of `size` bytes (the str tally's, the str
 * counter's), and its release. A large table is mapped on its own, in huge pages where the kernel
 * gives them on request: a probe into a table of tens of MB then rarely misses the TLB (perf put
 * most of a word count's probing time on page walks with 4 KB pages). Needs no GIL. */
#define TABLE_MAPPED_BYTES (4u << 20)

void *
table_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        return NULL;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (count * size >= TABLE_MAPPED_BYTES) {
        void *memory =
            mmap(NULL, count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            return NULL;
        }
        (void)madvise(memory, count * size, MADV_HUGEPAGE);   /* advice: else small pages */
        return memory;
    }
#endif
    return PyMem_RawCalloc(count, size);
}

void
table_free(void *memory, size_t count, size_t size)
{
    if (memory == NULL) {
        return;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (count * size >= TABLE_MAPPED_BYTES) {
        munmap(memory, count * size);
        return;
    }
#endif
    PyMem_RawFree(memory);
}

/* The view of `count` strings of an Arrow string or binary array from index `first` (int32
 * offsets, or int64 with `wide`), once every one is checked to lie within the data buffer; -1
 * with ValueError (naming `function`) when not. */
int
checked_view(Py_buffer *offsets, Py_buffer *data, Py_ssize_t first, Py_ssize_t count, int wide,
             str_column_view *view, const char *function)
{
    size_t width = wide ? sizeof(int64_t) : sizeof(int32_t);
    if (first < 0 || count < 0 || (size_t)offsets->len < (size_t)(first + count + 1) * width) {
        PyErr_Format(PyExc_ValueError, "%s: the offsets buffer is too short", function);
        return -1;
    }
    view->data = (const unsigned char *)data->buf;
    view->offsets32 = wide ? NULL : (const int32_t *)offsets->buf + first;
    view->offsets64 = wide ? (const int64_t *)offsets->buf + first : NULL;
    for (Py_ssize_t i = 0; i <= count; i++) {
        int64_t at = wide ? view->offsets64[i] : view->offsets32[i];
        int64_t before = i == 0 ? 0 : wide ? view->offsets64[i - 1] : view->offsets32[i - 1];
        if (at < 0 || at > data->len || (i && at < before)) {
            PyErr_Format(PyExc_ValueError, "%s: the offsets do not fit the data", function);
            return -1;
        }
    }
    return 0;
}

/* CRC-32 as zlib.crc32 computes it (reflected polynomial 0xEDB88320): crc32(data, start). */
static uint32_t crc_table[256];

void
make_crc_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[n] = c;
    }
}

uint32_t
crc32_of(const unsigned char *data, size_t size, uint32_t start)
{
    uint32_t c = start ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        c = crc_table[(c ^ data[i]) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}
