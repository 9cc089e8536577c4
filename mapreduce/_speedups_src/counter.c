/* Counting and partitioning string columns (the vectorised path): str_counter and its table,
 * str_partitions. */
#include "speedups.h"

/* Counting the keys of string columns in one hash table (a vectorised REDUCE = "count" job's
 * map side, as a combiner would count): str_counter() makes an empty table (a capsule);
 * str_counter_add(counter, offsets, data, first, count, values) counts `count` rows of a
 * large_string or large_binary array's buffers (int64 offsets, from index `first`), each row
 * adding 1, or its int64 in `values` (an int64 array's data buffer, from index `values_first`)
 * when that is given and not None, and
 * returns how many distinct keys the table holds; str_counter_take(counter) gives them as Arrow
 * buffers (int64 offsets, data, int64 counts) in the order each key was first seen, and empties
 * the table. Keys are equal when their bytes are.
 *
 * Each slot holds a key's first 16 bytes, its size and its count, so a lookup of a key of up to
 * 16 bytes (most words) reads one cache line: on a long tail of distinct words the table outgrows
 * the CPU's cache, and every further read of a lookup would be another miss. */

typedef struct {
    uint64_t head[2]; /* the key's first 16 bytes, zero-padded */
    uint32_t size;    /* the key's size in bytes (a longer key than 4 GiB is refused) */
    uint32_t key;     /* 0: an empty slot; else the key's index + 1 */
    int64_t count;
} str_counter_slot;

typedef struct {
    str_counter_slot *slots;
    size_t mask;         /* slots - 1 (a power of two) */
    int64_t *offsets;    /* keys + 1 offsets into data, as an Arrow offsets buffer */
    size_t keys, key_room;
    unsigned char *data; /* every key's bytes, in the order first seen */
    size_t data_size, data_room;
} str_counter_state;

/* The key's first 16 bytes, zero-padded; `room` is how many bytes may be read from `bytes`.
 * On a little-endian machine, with 16 bytes of room, two whole words are read and masked rather
 * than `size` bytes copied (a call to memcpy per key). */
static inline void
key_head(const unsigned char *bytes, size_t size, size_t room, uint64_t head[2])
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (room >= 16) {
        memcpy(head, bytes, 16);
        if (size < 8) {
            head[0] &= size ? ~0ULL >> (64 - 8 * size) : 0;
            head[1] = 0;
        } else if (size < 16) {
            head[1] &= size > 8 ? ~0ULL >> (128 - 8 * size) : 0;
        }
        return;
    }
#endif
    (void)room;
    head[0] = head[1] = 0;
    memcpy(head, bytes, size < 16 ? size : 16);
}

static inline uint64_t
key_hash(const uint64_t head[2], const unsigned char *bytes, size_t size)
{
    uint64_t hash = ((uint64_t)size * 0x9e3779b97f4a7c15ULL) ^ head[0];
    hash = (hash ^ (hash >> 31)) * 0xbf58476d1ce4e5b9ULL;
    hash ^= head[1];
    hash = (hash ^ (hash >> 29)) * 0x94d049bb133111ebULL;
    for (size_t at = 16; at < size; at += 8) {
        uint64_t word = 0;
        memcpy(&word, bytes + at, size - at < 8 ? size - at : 8);
        hash = ((hash ^ word) ^ (hash >> 31)) * 0xbf58476d1ce4e5b9ULL;
    }
    return hash ^ (hash >> 32);
}

static void
str_counter_free(str_counter_state *state)
{
    table_free(state->slots, state->mask + 1, sizeof(str_counter_slot));
    PyMem_RawFree(state->offsets);
    PyMem_RawFree(state->data);
    memset(state, 0, sizeof(*state));
}

static void
str_counter_destroy(PyObject *capsule)
{
    str_counter_state *state = PyCapsule_GetPointer(capsule, "mapreduce.str_counter");
    if (state != NULL) {
        str_counter_free(state);
        PyMem_RawFree(state);
    }
}

/* An empty table of `room` slots (a power of two); -1 if out of memory. */
static int
str_counter_reset(str_counter_state *state, size_t room)
{
    str_counter_free(state);
    state->slots = table_calloc(room, sizeof(str_counter_slot));
    state->mask = room - 1;
    state->key_room = room / 2;
    state->offsets = PyMem_RawMalloc((state->key_room + 1) * sizeof(int64_t));
    state->data_room = room * 8;
    state->data = PyMem_RawMalloc(state->data_room);
    if (!state->slots || !state->offsets || !state->data) {
        str_counter_free(state);
        return -1;
    }
    state->offsets[0] = 0;
    return 0;
}

PyObject *
str_counter(PyObject *module, PyObject *unused)
{
    str_counter_state *state = PyMem_RawCalloc(1, sizeof(str_counter_state));
    if (state == NULL || str_counter_reset(state, 1 << 12)) {
        PyMem_RawFree(state);
        return PyErr_NoMemory();
    }
    PyObject *capsule = PyCapsule_New(state, "mapreduce.str_counter", str_counter_destroy);
    if (capsule == NULL) {
        str_counter_free(state);
        PyMem_RawFree(state);
    }
    return capsule;
}

/* Twice the slots (and room for twice the keys), every key placed again; -1 if out of memory. */
static int
str_counter_grow(str_counter_state *state)
{
    size_t room = (state->mask + 1) * 2;
    str_counter_slot *slots = table_calloc(room, sizeof(str_counter_slot));
    int64_t *offsets = PyMem_RawRealloc(state->offsets, (room / 2 + 1) * sizeof(int64_t));
    if (offsets != NULL) {
        state->offsets = offsets;
    }
    if (slots == NULL || offsets == NULL) {
        table_free(slots, room, sizeof(str_counter_slot));
        return -1;
    }
    size_t mask = room - 1;
    for (size_t old = 0; old <= state->mask; old++) {
        str_counter_slot *entry = &state->slots[old];
        if (entry->key == 0) {
            continue;
        }
        const unsigned char *bytes = state->data + state->offsets[entry->key - 1];
        size_t slot = (size_t)key_hash(entry->head, bytes, entry->size) & mask;
        while (slots[slot].key) {
            slot = (slot + 1) & mask;
        }
        slots[slot] = *entry;
    }
    table_free(state->slots, state->mask + 1, sizeof(str_counter_slot));
    state->slots = slots;
    state->mask = mask;
    state->key_room = room / 2;
    return 0;
}

/* Adds `times` to the count of the key `bytes` (whose head and hash are given); -1 if out of
 * memory. */
static inline int
str_counter_count(str_counter_state *state, const unsigned char *bytes, size_t size,
                  const uint64_t head[2], uint64_t hash, int64_t times)
{
    size_t slot = (size_t)hash & state->mask;
    for (;;) {
        str_counter_slot *entry = &state->slots[slot];
        if (entry->key == 0) {
            break;
        }
        if (entry->size == size && entry->head[0] == head[0] && entry->head[1] == head[1]
            && (size <= 16
                || memcmp(state->data + state->offsets[entry->key - 1] + 16, bytes + 16,
                          size - 16) == 0)) {
            entry->count += times;
            return 0;
        }
        slot = (slot + 1) & state->mask;
    }
    /* A new key (str_counter_add refused any of 4 GiB or more). */
    if (state->keys >= 0xfffffffeU) {
        return -1;
    }
    size_t end = state->data_size + size;
    if (end > state->data_room) {
        size_t room = state->data_room * 2 > end ? state->data_room * 2 : end;
        unsigned char *data = PyMem_RawRealloc(state->data, room);
        if (data == NULL) {
            return -1;
        }
        state->data = data;
        state->data_room = room;
    }
    size_t key = state->keys++;
    memcpy(state->data + state->data_size, bytes, size);
    state->data_size = end;
    state->offsets[key + 1] = (int64_t)end;
    str_counter_slot *entry = &state->slots[slot];
    entry->head[0] = head[0];
    entry->head[1] = head[1];
    entry->size = (uint32_t)size;
    entry->key = (uint32_t)(key + 1);
    entry->count = times;
    if (state->keys >= state->key_room) {
        return str_counter_grow(state);
    }
    return 0;
}

PyObject *
str_counter_add(PyObject *module, PyObject *args)
{
    PyObject *capsule, *values_object = Py_None;
    Py_buffer offsets, data, values = {0};
    Py_ssize_t first, count, values_first = 0;
    if (!PyArg_ParseTuple(args, "Oy*y*nn|On", &capsule, &offsets, &data, &first, &count,
                          &values_object, &values_first)) {
        return NULL;
    }
    PyObject *result = NULL;
    str_counter_state *state = PyCapsule_GetPointer(capsule, "mapreduce.str_counter");
    if (state == NULL) {
        goto done;
    }
    if (values_object != Py_None && PyObject_GetBuffer(values_object, &values, PyBUF_SIMPLE)) {
        goto done;
    }
    if (first < 0 || count < 0 || values_first < 0
        || (size_t)offsets.len < (size_t)(first + count + 1) * sizeof(int64_t)
        || (values.buf != NULL
            && (size_t)values.len < (size_t)(values_first + count) * sizeof(int64_t))) {
        PyErr_SetString(PyExc_ValueError, "str_counter_add: a buffer is too short");
        goto done;
    }
    str_column_view view;
    if (checked_view(&offsets, &data, first, count, 1, &view, "str_counter_add")) {
        goto done;
    }
    const int64_t *at = view.offsets64;
    for (Py_ssize_t i = 1; i <= count; i++) {
        if (at[i] - at[i - 1] > (int64_t)0xffffffffU) {
            PyErr_SetString(PyExc_ValueError, "str_counter_add: a key of 4 GiB or more");
            goto done;
        }
    }
    const unsigned char *bytes = (const unsigned char *)data.buf;
    const int64_t *times = values.buf != NULL ? (const int64_t *)values.buf + values_first : NULL;
    int failed = 0;
    /* The GIL stays held: the table is shared state (another thread adding to the same counter
     * meanwhile would corrupt it), and a map task's executor runs no other thread. */
    /* A block's keys are hashed and their slots fetched into the cache first, so that the
     * lookups then wait for several cache misses at once rather than for one after another. */
    enum { BLOCK = 32 };
    uint64_t heads[BLOCK][2], hashes[BLOCK];
    for (Py_ssize_t start = 0; start < count && !failed; start += BLOCK) {
        Py_ssize_t end = count - start < BLOCK ? count : start + BLOCK;
        for (Py_ssize_t i = start; i < end; i++) {
            size_t size = (size_t)(at[i + 1] - at[i]);
            key_head(bytes + at[i], size, (size_t)(data.len - at[i]), heads[i - start]);
            hashes[i - start] = key_hash(heads[i - start], bytes + at[i], size);
            PREFETCH(&state->slots[(size_t)hashes[i - start] & state->mask]);
        }
        for (Py_ssize_t i = start; i < end; i++) {
            if (str_counter_count(state, bytes + at[i], (size_t)(at[i + 1] - at[i]),
                                  heads[i - start], hashes[i - start], times ? times[i] : 1)) {
                failed = 1;
                break;
            }
        }
    }
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyLong_FromSize_t(state->keys);
done:
    if (values.buf != NULL) {
        PyBuffer_Release(&values);
    }
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

PyObject *
str_counter_take(PyObject *module, PyObject *capsule)
{
    str_counter_state *state = PyCapsule_GetPointer(capsule, "mapreduce.str_counter");
    if (state == NULL) {
        return NULL;
    }
    size_t keys = state->keys;
    PyObject *offsets = PyBytes_FromStringAndSize((const char *)state->offsets,
                                                  (Py_ssize_t)((keys + 1) * sizeof(int64_t)));
    PyObject *data = PyBytes_FromStringAndSize((const char *)state->data,
                                               (Py_ssize_t)state->data_size);
    PyObject *counts = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(keys * sizeof(int64_t)));
    if (!offsets || !data || !counts) {
        Py_XDECREF(offsets);
        Py_XDECREF(data);
        Py_XDECREF(counts);
        return NULL;
    }
    int64_t *count = (int64_t *)PyBytes_AS_STRING(counts);
    for (size_t slot = 0; slot <= state->mask; slot++) {
        if (state->slots[slot].key) {
            count[state->slots[slot].key - 1] = state->slots[slot].count;
        }
    }
    if (str_counter_reset(state, 1 << 12)) {
        Py_DECREF(offsets);
        Py_DECREF(data);
        Py_DECREF(counts);
        return PyErr_NoMemory();
    }
    return Py_BuildValue("(NNNn)", offsets, data, counts, (Py_ssize_t)keys);
}

/* The stable partitions of a string column: str_partitions(offsets, data, first, count,
 * partitions) gives crc32(key) % partitions of `count` rows of a large_string or large_binary
 * array's buffers (int64 offsets, from index `first`) as int32s (bytes): the shuffle's
 * stable_partition of a str (its UTF-8 bytes) or bytes key, with no Python object per key. */

PyObject *
str_partitions(PyObject *module, PyObject *args)
{
    Py_buffer offsets, data;
    Py_ssize_t first, count, partitions;
    if (!PyArg_ParseTuple(args, "y*y*nnn", &offsets, &data, &first, &count, &partitions)) {
        return NULL;
    }
    PyObject *result = NULL;
    str_column_view view;
    if (checked_view(&offsets, &data, first, count, 1, &view, "str_partitions")) {
        goto done;
    }
    if (partitions < 1 || partitions > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "str_partitions: partitions must be in 1..2**31-1");
        goto done;
    }
    const int64_t *at = view.offsets64;
    result = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int32_t));
    if (result == NULL) {
        goto done;
    }
    int32_t *out = (int32_t *)PyBytes_AS_STRING(result);
    const unsigned char *bytes = (const unsigned char *)data.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        uint32_t crc = crc32_of(bytes + at[i], (size_t)(at[i + 1] - at[i]), 0);
        out[i] = (int32_t)(crc % (uint32_t)partitions);
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}
