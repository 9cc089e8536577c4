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
 */
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

static PyMethodDef methods[] = {
    {"count_pairs", count_pairs, METH_VARARGS,
     "count_pairs(items: list, counts: dict) -> bool\n\n"
     "Count exact (key, value) 2-tuples of str/bytes/int/None (keys: or tuples of those) into\n"
     "counts[(type(value), value)][key];\n"
     "False, counting nothing, if any item is not such a pair."},
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
