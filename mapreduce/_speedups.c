/* The map side's hot loop in C: counting a chunk of (key, value) pairs.
 *
 * A word count's mapper yields millions of ("word", 1) pairs; in Python, checking and counting
 * each one costs several times what the mapper itself does. count_pairs does both in one C loop,
 * with exactly the rules of the pure-Python path in shuffle/writer.py (used when this module
 * could not be compiled, and for any chunk this function declines):
 *   - every item must be an exact 2-tuple whose key and value have exactly one of the types
 *     str, bytes, int or None (the key may also be an exact tuple of such values): equal values
 *     of these types are interchangeable, so counting merges nothing that must stay apart
 *     (1, 1.0 and True, or a str and a str subclass);
 *   - counts go to counts[(type(value), value)][key] += 1.
 * If any item breaks the first rule, nothing is counted and False is returned.
 *
 * And encoding tuple keys of strs (bigrams) for the shuffle: encode_str_tuples gives every key's
 * bytes as shuffle/keys.py's encode_key does (STR s1 00 STR s2 00 ... 00), in one C pass, for
 * exactly the keys keys.str_tuple_encodings takes in Python (else None, and Python decides), and
 * decode_str_tuples gives such keys back on the reduce side.
 */
#include <string.h>
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int
countable(PyObject *object)
{
    PyTypeObject *type = Py_TYPE(object);
    return type == &PyUnicode_Type || type == &PyBytes_Type || type == &PyLong_Type
           || object == Py_None;
}

/* A key may also be a tuple of such values (a bigram): tuples compare element by element. */
static int
countable_key(PyObject *key)
{
    if (countable(key)) {
        return 1;
    }
    if (!PyTuple_CheckExact(key)) {
        return 0;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(key);
    for (Py_ssize_t i = 0; i < size; i++) {
        if (!countable(PyTuple_GET_ITEM(key, i))) {
            return 0;
        }
    }
    return 1;
}

static int
all_countable_pairs(PyObject *items)
{
    Py_ssize_t count = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2
            || !countable_key(PyTuple_GET_ITEM(item, 0)) || !countable(PyTuple_GET_ITEM(item, 1))) {
            return 0;
        }
    }
    return 1;
}

/* counts[(type(value), value)], created empty when missing; a borrowed reference, or NULL. */
static PyObject *
counts_of_value(PyObject *counts, PyObject *value)
{
    PyObject *group_key = PyTuple_Pack(2, (PyObject *)Py_TYPE(value), value);
    if (group_key == NULL) {
        return NULL;
    }
    PyObject *key_counts = PyDict_GetItemWithError(counts, group_key);
    if (key_counts == NULL && !PyErr_Occurred()) {
        key_counts = PyDict_New();
        if (key_counts != NULL) {
            int failed = PyDict_SetItem(counts, group_key, key_counts);
            Py_DECREF(key_counts);              /* counts holds it now */
            if (failed) {
                key_counts = NULL;
            }
        }
    }
    Py_DECREF(group_key);
    return key_counts;
}

static PyObject *
count_pairs(PyObject *module, PyObject *args)
{
    PyObject *items, *counts;
    if (!PyArg_ParseTuple(args, "O!O!:count_pairs", &PyList_Type, &items, &PyDict_Type, &counts)) {
        return NULL;
    }
    if (!all_countable_pairs(items)) {
        Py_RETURN_FALSE;
    }
    PyObject *one = PyLong_FromLong(1);
    if (one == NULL) {
        return NULL;
    }
    /* Hashing and comparing exact str, bytes, int and None runs no Python code, so nothing can
     * change `items` or `counts` under this loop, and borrowed references stay valid. */
    PyObject *last_value = NULL, *key_counts = NULL;
    Py_ssize_t count = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        PyObject *key = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        if (value != last_value) {              /* a word count's values are all the one object 1 */
            key_counts = counts_of_value(counts, value);
            if (key_counts == NULL) {
                goto error;
            }
            last_value = value;
        }
        PyObject *old = PyDict_GetItemWithError(key_counts, key);
        PyObject *new;
        if (old == NULL) {
            if (PyErr_Occurred()) {
                goto error;
            }
            Py_INCREF(one);
            new = one;
        }
        else {
            new = PyNumber_Add(old, one);
            if (new == NULL) {
                goto error;
            }
        }
        int failed = PyDict_SetItem(key_counts, key, new);
        Py_DECREF(new);
        if (failed) {
            goto error;
        }
    }
    Py_DECREF(one);
    Py_RETURN_TRUE;
error:
    Py_DECREF(one);
    return NULL;
}


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

static PyObject *
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
        if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) == 0) {
            goto decline;
        }
        Py_ssize_t items = PyTuple_GET_SIZE(key), total = 1;  /* the final END */
        for (Py_ssize_t j = 0; j < items; j++) {
            PyObject *item = PyTuple_GET_ITEM(key, j);
            Py_ssize_t size;
            if (!PyUnicode_CheckExact(item) || plain_utf8(item, &size) == NULL) {
                goto decline;
            }
            total += size + 2;                  /* STR, the UTF-8, its END */
        }
        PyObject *encoded = PyBytes_FromStringAndSize(NULL, total);
        if (encoded == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        char *position = PyBytes_AS_STRING(encoded);
        for (Py_ssize_t j = 0; j < items; j++) {
            Py_ssize_t size;
            const char *data = plain_utf8(PyTuple_GET_ITEM(key, j), &size);
            *position++ = STR_TAG;
            memcpy(position, data, (size_t)size);
            position += size;
            *position++ = 0;
        }
        *position = 0;
        PyList_SET_ITEM(out, i, encoded);
    }
    return out;
decline:
    Py_DECREF(out);                             /* unset slots are NULL, which list_dealloc skips */
    Py_RETURN_NONE;
}

/* One key back from encode_str_tuples' bytes (STR s1 00 STR s2 00 ... 00), or NULL with no
 * error set when the bytes are anything else (an escape, a number, a nesting, bad UTF-8). */
static PyObject *
decode_str_tuple(PyObject *data)
{
    const char *start = PyBytes_AS_STRING(data), *end = start + PyBytes_GET_SIZE(data);
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
    for (Py_ssize_t i = 0; i < items; i++) {
        const char *nul = memchr(position + 1, 0, (size_t)(end - position - 1));
        PyObject *item = PyUnicode_DecodeUTF8(position + 1, nul - position - 1, NULL);
        if (item == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();                  /* a lone surrogate: Python's path decodes it */
            }
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, i, item);
        position = nul + 1;
    }
    return key;
}

static PyObject *
decode_str_tuples(PyObject *module, PyObject *args)
{
    PyObject *encoded;
    if (!PyArg_ParseTuple(args, "O!:decode_str_tuples", &PyList_Type, &encoded)) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(encoded);
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *data = PyList_GET_ITEM(encoded, i);
        PyObject *key = PyBytes_CheckExact(data) ? decode_str_tuple(data) : NULL;
        if (key == NULL) {
            Py_DECREF(out);
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        PyList_SET_ITEM(out, i, key);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"count_pairs", count_pairs, METH_VARARGS,
     "count_pairs(items: list, counts: dict) -> bool\n\n"
     "Count exact (key, value) 2-tuples of str/bytes/int/None (keys: or tuples of those) into\n"
     "counts[(type(value), value)][key];\n"
     "False, counting nothing, if any item is not such a pair."},
    {"encode_str_tuples", encode_str_tuples, METH_VARARGS,
     "encode_str_tuples(keys: list) -> list | None\n\n"
     "shuffle.keys.encode_key of every key when all are non-empty exact tuples of exact strs with\n"
     "no NUL and no lone surrogate; None otherwise (then Python encodes them)."},
    {"decode_str_tuples", decode_str_tuples, METH_VARARGS,
     "decode_str_tuples(encoded: list) -> list | None\n\n"
     "The tuple keys back from encode_str_tuples' bytes; None when any item is other bytes\n"
     "(then Python decodes them)."},
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
    return PyModule_Create(&module);
}
