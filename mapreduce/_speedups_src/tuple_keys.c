/* Tuple keys of strs (bigrams) through the shuffle: encode_str_tuples and encode_str_tuple_column
 * give every key's bytes as shuffle/keys.py's encode_key does (STR s1 00 STR s2 00 ... 00), in one
 * C pass, for exactly the keys keys.str_tuple_encodings takes in Python (else None, and Python
 * decides), and decode_str_tuple_column gives such keys back from a merged run's column on the
 * reduce side. */
#include "speedups.h"

/* The UTF-8 of an exact str that holds no NUL and no lone surrogate, or NULL (no error set). */
static const char *
plain_utf8(PyObject *item, Py_ssize_t *size)
{
    const char *data;
    if (PyUnicode_IS_COMPACT_ASCII(item)) {
        data = (const char *)PyUnicode_DATA(item);
        *size = PyUnicode_GET_LENGTH(item);
    }
    else {
        data = PyUnicode_AsUTF8AndSize(item, size);
        if (data == NULL) {
            PyErr_Clear();                      /* a lone surrogate: Python's path keeps it */
            return NULL;
        }
    }
    return memchr(data, 0, (size_t)*size) == NULL ? data : NULL;  /* a NUL needs escaping */
}

#define STR_TAG 0x20

/* The size of a key's encoding (STR s1 00 STR s2 00 ... 00) when it is a non-empty exact tuple of
 * exact strs with no NUL and no lone surrogate; -1 (no error set) otherwise. */
static Py_ssize_t
str_tuple_size(PyObject *key)
{
    if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) == 0) {
        return -1;
    }
    Py_ssize_t items = PyTuple_GET_SIZE(key), total = 1;  /* the final END */
    for (Py_ssize_t j = 0; j < items; j++) {
        PyObject *item = PyTuple_GET_ITEM(key, j);
        Py_ssize_t size;
        if (!PyUnicode_CheckExact(item) || plain_utf8(item, &size) == NULL) {
            return -1;
        }
        total += size + 2;                      /* STR, the UTF-8, its END */
    }
    return total;
}

/* Writes the encoding of a key str_tuple_size took; returns the position after it. */
static char *
write_str_tuple(PyObject *key, char *position)
{
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(key); j++) {
        Py_ssize_t size;
        const char *data = plain_utf8(PyTuple_GET_ITEM(key, j), &size);
        *position++ = STR_TAG;
        memcpy(position, data, (size_t)size);
        position += size;
        *position++ = 0;
    }
    *position++ = 0;
    return position;
}

PyObject *
encode_str_tuples(PyObject *module, PyObject *args)
{
    PyObject *keys;
    if (!PyArg_ParseTuple(args, "O!:encode_str_tuples", &PyList_Type, &keys)) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(keys);
    if (count == 0) {
        Py_RETURN_NONE;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        return NULL;
    }
    /* Only exact strs are read and no Python code runs, so `keys` cannot change under the loop. */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        Py_ssize_t total = str_tuple_size(key);
        if (total < 0) {
            Py_DECREF(out);                     /* unset slots are NULL, which list_dealloc skips */
            Py_RETURN_NONE;
        }
        PyObject *encoded = PyBytes_FromStringAndSize(NULL, total);
        if (encoded == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        write_str_tuple(key, PyBytes_AS_STRING(encoded));
        PyList_SET_ITEM(out, i, encoded);
    }
    return out;
}

/* A spill's tuple keys of strs as an Arrow column, in one pass and with no bytes object per key:
 * encode_str_tuple_column(keys, num_partitions, crc_start) gives (offsets, data, widest,
 * partitions): the int64 offsets and data of a large_binary array of every key's encoding (as
 * encode_str_tuples), the most items in a key, and, when num_partitions > 1, each key's
 * crc32(encoding, crc_start) % num_partitions as int32s (the stable partition, given the CRC of
 * the prefix key_bytes puts before a tuple's encoding), else None. None when any key is not
 * such a tuple, or there is none (then Python decides). */
PyObject *
encode_str_tuple_column(PyObject *module, PyObject *args)
{
    PyObject *keys;
    Py_ssize_t num_partitions;
    unsigned long crc_start;
    if (!PyArg_ParseTuple(args, "O!nk:encode_str_tuple_column", &PyList_Type, &keys,
                          &num_partitions, &crc_start)) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(keys), total = 0, widest = 0;
    if (count == 0) {
        Py_RETURN_NONE;                         /* as encode_str_tuples */
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        Py_ssize_t size = str_tuple_size(key);
        if (size < 0) {
            Py_RETURN_NONE;
        }
        total += size;
        if (PyTuple_GET_SIZE(key) > widest) {
            widest = PyTuple_GET_SIZE(key);
        }
    }
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (count + 1) * (Py_ssize_t)sizeof(int64_t));
    PyObject *data = PyBytes_FromStringAndSize(NULL, total);
    PyObject *partitions = num_partitions > 1
        ? PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int32_t))
        : Py_NewRef(Py_None);
    if (offsets == NULL || data == NULL || partitions == NULL) {
        Py_XDECREF(offsets);
        Py_XDECREF(data);
        Py_XDECREF(partitions);
        return NULL;
    }
    int64_t *at = (int64_t *)PyBytes_AS_STRING(offsets);
    int32_t *partition = partitions == Py_None ? NULL : (int32_t *)PyBytes_AS_STRING(partitions);
    char *start = PyBytes_AS_STRING(data), *position = start;
    at[0] = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        char *end = write_str_tuple(PyList_GET_ITEM(keys, i), position);
        if (partition != NULL) {
            uint32_t crc = crc32_of((const unsigned char *)position, (size_t)(end - position),
                                    (uint32_t)crc_start);
            partition[i] = (int32_t)(crc % (uint32_t)num_partitions);
        }
        position = end;
        at[i + 1] = position - start;
    }
    return Py_BuildValue("(NNnN)", offsets, data, widest, partitions);
}

/* One key back from encode_str_tuples' bytes (STR s1 00 STR s2 00 ... 00), or NULL with no
 * error set when the bytes are anything else (an escape, a number, a nesting, bad UTF-8).
 * `previous` (or NULL) is the key decoded from the bytes [previous_start, previous_end): an item
 * with the same bytes at the same position is that key's own str, as in sorted keys the first
 * items mostly are, which saves decoding it and makes comparing them an identity check. */
static PyObject *
decode_str_tuple(const char *start, const char *end, PyObject *previous,
                 const char *previous_start, const char *previous_end)
{
    Py_ssize_t items = 0;
    const char *position = start;
    while (position < end && *position == STR_TAG) {   /* count the items, checking the frame */
        const char *nul = memchr(position + 1, 0, (size_t)(end - position - 1));
        if (nul == NULL) {
            return NULL;
        }
        items++;
        position = nul + 1;
    }
    if (items == 0 || position != end - 1 || *position != 0) {
        return NULL;
    }
    PyObject *key = PyTuple_New(items);
    if (key == NULL) {
        return NULL;                            /* MemoryError, raised by the caller */
    }
    position = start;
    const char *before = previous != NULL ? previous_start : NULL;  /* its item i, while alike */
    for (Py_ssize_t i = 0; i < items; i++) {
        const char *nul = memchr(position + 1, 0, (size_t)(end - position - 1));
        Py_ssize_t size = nul - position - 1;
        PyObject *item = NULL;
        if (before != NULL && i < PyTuple_GET_SIZE(previous)) {
            const char *before_nul = memchr(before + 1, 0, (size_t)(previous_end - before - 1));
            if (before_nul - before - 1 == size && memcmp(before + 1, position + 1, (size_t)size) == 0) {
                item = Py_NewRef(PyTuple_GET_ITEM(previous, i));
                before = before_nul + 1;
            }
            else {
                before = NULL;                  /* the keys differ from here on */
            }
        }
        if (item == NULL) {
            item = PyUnicode_DecodeUTF8(position + 1, size, NULL);
            if (item == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    PyErr_Clear();              /* a lone surrogate: Python's path decodes it */
                }
                Py_DECREF(key);
                return NULL;
            }
        }
        PyTuple_SET_ITEM(key, i, item);
        position = nul + 1;
    }
    return key;
}

/* Tuple keys back from a binary column of encode_str_tuples' bytes, on the reduce side:
 * decode_str_tuple_column(offsets, data, first, count, wide) gives the list of the `count` keys
 * from index `first` (int32 offsets, or int64 with `wide`), read from Arrow's buffers (no bytes
 * object per key), or None when any key is other bytes (then Python decodes them). A merged
 * run holds each key's records next to each other: a key equal to the one before is that same
 * tuple object, decoded once, which also makes the reduce's grouping compare by identity; and
 * an item equal to the one before it in the same place is that same str. */
PyObject *
decode_str_tuple_column(PyObject *module, PyObject *args)
{
    Py_buffer offsets, data;
    Py_ssize_t first, count;
    int wide;
    if (!PyArg_ParseTuple(args, "y*y*nnp", &offsets, &data, &first, &count, &wide)) {
        return NULL;
    }
    PyObject *result = NULL;
    str_column_view view;
    if (checked_view(&offsets, &data, first, count, wide, &view, "decode_str_tuple_column")) {
        goto done;
    }
    result = PyList_New(count);
    if (result == NULL) {
        goto done;
    }
    const unsigned char *last_start = NULL;
    int64_t last_size = -1;
    PyObject *last = NULL;                      /* borrowed: held by the list */
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *start;
        int64_t size;
        str_at(&view, i, &start, &size);
        PyObject *key;
        if (last != NULL && size == last_size && memcmp(start, last_start, (size_t)size) == 0) {
            key = Py_NewRef(last);
        }
        else {
            const char *before = (const char *)last_start;
            key = decode_str_tuple((const char *)start, (const char *)start + size, last, before,
                                   last != NULL ? before + last_size : NULL);
            if (key == NULL) {
                Py_CLEAR(result);               /* unset slots are NULL, which list_dealloc skips */
                if (!PyErr_Occurred()) {
                    result = Py_NewRef(Py_None);
                }
                goto done;
            }
        }
        PyList_SET_ITEM(result, i, key);
        last = key;
        last_start = start;
        last_size = size;
    }
done:
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}
