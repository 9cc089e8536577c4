/* Arrow columns without a Python object per item: a spill's key and value columns (str_column,
 * int64_column), a text part file's lines (text_lines) and an input block's lines (split_lines). */
#include "speedups.h"

/* Arrow columns of a spill without a Python object per item: str_column(items) gives the
 * buffers of a large_string array (int64 offsets, UTF-8 data) when every item is an exact str
 * that encodes to UTF-8 (no lone surrogate), in the order of `order` when given (int64 indices,
 * a bytes-like: str_column(items, order) is the column of items taken in that order), and int64_column(items) the data buffer of an
 * int64 array when every item is an exact int within int64; else None (then pyarrow converts
 * the list, or the run pickles it). */

PyObject *
str_column(PyObject *module, PyObject *args)
{
    PyObject *items, *order_object = Py_None;
    if (!PyArg_ParseTuple(args, "O!|O", &PyList_Type, &items, &order_object)) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(items), total = 0;
    Py_buffer order = {0};
    const int64_t *rows = NULL;                 /* the items' order, or NULL: as they are */
    if (order_object != Py_None) {
        if (PyObject_GetBuffer(order_object, &order, PyBUF_SIMPLE)) {
            return NULL;
        }
        rows = (const int64_t *)order.buf;
        if (order.len != count * (Py_ssize_t)sizeof(int64_t)) {
            PyBuffer_Release(&order);
            PyErr_SetString(PyExc_ValueError, "str_column: the order must have an index per item");
            return NULL;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            if (rows[i] < 0 || rows[i] >= count) {
                PyBuffer_Release(&order);
                PyErr_SetString(PyExc_ValueError, "str_column: an index of the order is out of range");
                return NULL;
            }
        }
    }
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        Py_ssize_t size;
        if (!PyUnicode_CheckExact(item)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        if (PyUnicode_IS_COMPACT_ASCII(item)) {
            size = PyUnicode_GET_LENGTH(item);
        }
        else if (PyUnicode_AsUTF8AndSize(item, &size) == NULL) {
            PyErr_Clear();                      /* a lone surrogate: pickled by the run */
            result = Py_NewRef(Py_None);
            goto done;
        }
        total += size;
    }
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (count + 1) * (Py_ssize_t)sizeof(int64_t));
    if (offsets == NULL) {
        goto done;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, total);
    if (data == NULL) {
        Py_DECREF(offsets);
        goto done;
    }
    int64_t *offset = (int64_t *)PyBytes_AS_STRING(offsets);
    char *position = PyBytes_AS_STRING(data);
    int64_t at = 0;
    offset[0] = 0;
    /* Only exact strs are read and no Python code runs, so `items` cannot change meanwhile. */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, rows != NULL ? rows[i] : i);
        Py_ssize_t size;
        const char *utf8 = PyUnicode_IS_COMPACT_ASCII(item)
                               ? (const char *)PyUnicode_DATA(item)
                               : PyUnicode_AsUTF8AndSize(item, &size);  /* cached above */
        if (PyUnicode_IS_COMPACT_ASCII(item)) {
            size = PyUnicode_GET_LENGTH(item);
        }
        memcpy(position + at, utf8, (size_t)size);
        at += size;
        offset[i + 1] = at;
    }
    result = Py_BuildValue("(NN)", offsets, data);
done:
    if (rows != NULL) {
        PyBuffer_Release(&order);
    }
    return result;
}

PyObject *
int64_column(PyObject *module, PyObject *items)
{
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "int64_column(items: list)");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(items);
    PyObject *data = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    if (data == NULL) {
        return NULL;
    }
    int64_t *out = (int64_t *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        int overflow;
        long long number;
        if (!PyLong_CheckExact(item)) {         /* not bool, not an int subclass */
            Py_DECREF(data);
            Py_RETURN_NONE;
        }
        number = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (overflow || (number == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            Py_DECREF(data);
            Py_RETURN_NONE;                     /* beyond int64: pickled by the run */
        }
        out[i] = (int64_t)number;
    }
    return data;
}

/* The text of a text part file for two string columns: text_lines(key_offsets, key_data,
 * key_first, value_offsets, value_data, value_first, count) gives `key<TAB>value` lines joined by
 * line breaks (no last one) for `count` rows of two large_string arrays (int64 offsets, from
 * index key_first and value_first), or None when a key or value holds a tab, CR or LF (which
 * only Python's format_field writes). One copy of each field, where joining them by Arrow made
 * the lines, then the text (two copies), after copying each column out to search it. */

static int
has_break_or_tab(const char *text, size_t size)
{
    return memchr(text, '\t', size) != NULL || memchr(text, '\n', size) != NULL
           || memchr(text, '\r', size) != NULL;
}

PyObject *
text_lines(PyObject *module, PyObject *args)
{
    Py_buffer key_offsets, key_data, value_offsets, value_data;
    Py_ssize_t key_first, value_first, count;
    if (!PyArg_ParseTuple(args, "y*y*ny*y*nn", &key_offsets, &key_data, &key_first,
                          &value_offsets, &value_data, &value_first, &count)) {
        return NULL;
    }
    PyObject *result = NULL;
    str_column_view key_view, value_view;
    if (checked_view(&key_offsets, &key_data, key_first, count, 1, &key_view, "text_lines")
        || checked_view(&value_offsets, &value_data, value_first, count, 1, &value_view,
                        "text_lines")) {
        goto done;
    }
    const int64_t *keys = key_view.offsets64, *values = value_view.offsets64;
    const char *key_text = (const char *)key_data.buf, *value_text = (const char *)value_data.buf;
    size_t key_bytes = (size_t)(keys[count] - keys[0]);
    size_t value_bytes = (size_t)(values[count] - values[0]);
    if (has_break_or_tab(key_text + keys[0], key_bytes)
        || has_break_or_tab(value_text + values[0], value_bytes)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t total = count ? (Py_ssize_t)(key_bytes + value_bytes) + 2 * count - 1 : 0;
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) {
        goto done;
    }
    char *out = PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        size_t size = (size_t)(keys[i + 1] - keys[i]);
        memcpy(out, key_text + keys[i], size);
        out += size;
        *out++ = '\t';
        size = (size_t)(values[i + 1] - values[i]);
        memcpy(out, value_text + values[i], size);
        out += size;
        if (i + 1 < count) {
            *out++ = '\n';
        }
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&key_offsets);
    PyBuffer_Release(&key_data);
    PyBuffer_Release(&value_offsets);
    PyBuffer_Release(&value_data);
    return result;
}

/* Lines for an Arrow array without a Python str: split_lines(data) gives the buffers (int64
 * offsets, bytes) of a large_string array of the lines of `data` that end with a line break (a
 * CR before the LF dropped: CRLF reads as LF), as text.arrow_complete_lines makes them; the
 * caller checks that they are UTF-8. One copy, where decoding to a str, converting it to Arrow
 * and splitting it by Arrow made three. */

PyObject *
split_lines(PyObject *module, PyObject *args)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) {
        return NULL;
    }
    const char *text = (const char *)data.buf, *end = text + data.len;
    Py_ssize_t count = 0;
    for (const char *at = text; (at = memchr(at, '\n', (size_t)(end - at))) != NULL; at++) {
        count++;
    }
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (count + 1) * (Py_ssize_t)sizeof(int64_t));
    PyObject *lines = offsets ? PyBytes_FromStringAndSize(NULL, data.len - count) : NULL;
    if (lines == NULL) {
        Py_XDECREF(offsets);
        PyBuffer_Release(&data);
        return NULL;
    }
    int64_t *offset = (int64_t *)PyBytes_AS_STRING(offsets);
    char *out = PyBytes_AS_STRING(lines);
    int64_t size = 0;
    offset[0] = 0;
    const char *line = text;
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        size_t length = (size_t)(newline - line);
        if (length && line[length - 1] == '\r') {
            length--;
        }
        memcpy(out + size, line, length);
        size += (int64_t)length;
        offset[i + 1] = size;
        line = newline + 1;
    }
    PyBuffer_Release(&data);
    if (_PyBytes_Resize(&lines, (Py_ssize_t)size)) {
        Py_DECREF(offsets);
        return NULL;
    }
    return Py_BuildValue("(NN)", offsets, lines);
}
