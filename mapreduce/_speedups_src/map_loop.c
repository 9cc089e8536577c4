/* The map side's per-pair loops: counting a chunk of (key, value) pairs (count_pairs), the
 * per-record map loop (map_lines) with its table of str keys (str_tally), and the combiner over
 * counted keys (combine_counts).
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
#include "speedups.h"

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

PyObject *
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


/* The per-record map loop: map_lines(mapper, path, lines, start, counts, pairs, room, tally).
 *
 * Calls mapper(path, line) for lines[start:], in order, and takes each pair it yields as
 * shuffle/writer.py's Python path would: with `counts` (a dict; the job has a combiner), exact
 * countable pairs (count_pairs' rule above) are counted into counts[(type(value), value)][key],
 * those with an exact str key into the `tally` first (below), which str_tally_drain adds there;
 * with `pairs` (a list; no combiner), exact 2-tuples are appended to it. No Python code runs per
 * pair but the mapper's own. It returns (status, index, extra, taken):
 *   MAP_DONE      every line mapped; index == len(lines);
 *   MAP_FULL      `room` new keys (counts) or pairs were added; lines[index:] are not mapped yet;
 *   MAP_HANDBACK  lines[index] was mapped and its output is something this loop does not take
 *                 (an item that is not such a pair, an output that is not a generator, list or
 *                 tuple): extra = (items already taken from it but not added, the rest of it),
 *                 for Python to add as the record's output;
 *   MAP_RAISED    mapping lines[index] raised: extra is the exception (with its traceback);
 * taken: how many pairs were added. Only the records before `index` are wholly added. */

enum { MAP_DONE = 0, MAP_FULL = 1, MAP_HANDBACK = 2, MAP_RAISED = 3 };
enum { TAKEN = 0, TAKEN_NEW = 1, DECLINED = 2, TAKE_ERROR = -1 };

/* A word count's keys are mostly strs counted under one value (1): map_lines counts those in
 * a str tally, a C hash table that a map task's writer keeps between calls, and that
 * str_tally_drain adds into counts[(type(value), value)] before the combiner runs. A key costs
 * one probe there, where a large dict costs several cache misses and a new int per pair. A slot
 * holds a strong reference to the key, its hash and times counted; a short ASCII key (up to 15
 * characters) also holds its characters and length inline (`head`), so finding it reads no
 * other memory. The tally counts under one value at a time: the first value it sees after a
 * drain; pairs with any other value go to the dicts as before. */
#define TALLY_FIRST_SLOTS 4096
#define TALLY_HEAD 16
#define TALLY_NOT_INLINE 0xFF                   /* head's last byte of a key not held inline */

typedef struct {
    PyObject *key;                              /* a strong reference, or NULL: empty */
    Py_hash_t hash;
    Py_ssize_t times;
    unsigned char head[TALLY_HEAD];             /* a short ASCII key's characters, then length */
} TallySlot;

typedef struct {
    TallySlot *slots;
    size_t mask;                                /* slots - 1 (a power of two) */
    Py_ssize_t used;
    PyObject *value;                            /* what the keys were counted with, or NULL */
} Tally;

static const char TALLY_NAME[] = "mapreduce.str_tally";

/* The key's head as slots hold it: 1 and filled in when the key is held inline, 0 if not. */
static int
tally_head(PyObject *key, unsigned char head[TALLY_HEAD])
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(key);
    memset(head, 0, TALLY_HEAD);
    if (!PyUnicode_IS_ASCII(key) || length >= TALLY_HEAD) {
        head[TALLY_HEAD - 1] = TALLY_NOT_INLINE;
        return 0;
    }
    memcpy(head, PyUnicode_DATA(key), (size_t)length);
    head[TALLY_HEAD - 1] = (unsigned char)length;
    return 1;
}

static void
tally_clear(Tally *tally)
{
    if (tally->slots != NULL) {
        for (size_t i = 0; i <= tally->mask; i++) {
            Py_CLEAR(tally->slots[i].key);
        }
        table_free(tally->slots, tally->mask + 1, sizeof(TallySlot));
        tally->slots = NULL;
    }
    tally->mask = 0;
    tally->used = 0;
    Py_CLEAR(tally->value);
}

static int
tally_allocate(Tally *tally, size_t slots)
{
    tally->slots = table_calloc(slots, sizeof(TallySlot));
    if (tally->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    tally->mask = slots - 1;
    return 0;
}

static void
tally_destroy(PyObject *capsule)
{
    Tally *tally = PyCapsule_GetPointer(capsule, TALLY_NAME);
    if (tally != NULL) {
        tally_clear(tally);
        PyMem_Free(tally);
    }
}

static Tally *
tally_of(PyObject *capsule)
{
    return PyCapsule_GetPointer(capsule, TALLY_NAME);   /* sets the error if it is not one */
}

PyObject *
str_tally(PyObject *module, PyObject *unused)
{
    Tally *tally = PyMem_Calloc(1, sizeof(Tally));
    if (tally == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *capsule = PyCapsule_New(tally, TALLY_NAME, tally_destroy);
    if (capsule == NULL) {
        PyMem_Free(tally);
    }
    return capsule;
}

PyObject *
str_tally_size(PyObject *module, PyObject *capsule)
{
    Tally *tally = tally_of(capsule);
    return tally == NULL ? NULL : PyLong_FromSsize_t(tally->used);
}

static int
same_str(PyObject *a, PyObject *b)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(a);
    int kind = PyUnicode_KIND(a);
    return length == PyUnicode_GET_LENGTH(b) && kind == PyUnicode_KIND(b)
           && memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)(length * kind)) == 0;
}

/* The slot holding `key`, or the empty slot where it belongs. */
static TallySlot *
tally_find(const Tally *tally, PyObject *key, Py_hash_t hash, const unsigned char head[TALLY_HEAD],
           int inline_key)
{
    size_t i = (size_t)hash & tally->mask;
    for (;;) {
        TallySlot *slot = &tally->slots[i];
        if (slot->key == NULL) {
            return slot;
        }
        if (slot->hash == hash
            && (inline_key ? memcmp(slot->head, head, TALLY_HEAD) == 0
                           : slot->key == key || same_str(slot->key, key))) {
            return slot;
        }
        i = (i + 1) & tally->mask;
    }
}

/* Twice the slots, every key moved (their hashes are held: no key is read). */
static int
tally_grow(Tally *tally)
{
    TallySlot *old = tally->slots;
    size_t count = tally->mask + 1;
    if (tally_allocate(tally, count * 2)) {
        tally->slots = old;                     /* unchanged: still whole */
        tally->mask = count - 1;
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (old[i].key != NULL) {
            size_t j = (size_t)old[i].hash & tally->mask;
            while (tally->slots[j].key != NULL) {
                j = (j + 1) & tally->mask;
            }
            tally->slots[j] = old[i];
        }
    }
    table_free(old, count, sizeof(TallySlot));
    return 0;
}

/* Counts an exact str key, whose hash is given, once: 1 if it is new to the tally, 0 if not,
 * -1 on error. */
static int
tally_add(Tally *tally, PyObject *key, Py_hash_t hash)
{
    unsigned char head[TALLY_HEAD];
    int inline_key = tally_head(key, head);
    TallySlot *slot = tally_find(tally, key, hash, head, inline_key);
    if (slot->key != NULL) {
        slot->times++;
        return 0;
    }
    if ((size_t)(tally->used + 1) * 2 > tally->mask + 1) {   /* at most half full */
        if (tally_grow(tally)) {
            return -1;
        }
        slot = tally_find(tally, key, hash, head, inline_key);
    }
    slot->key = Py_NewRef(key);
    slot->hash = hash;
    slot->times = 1;
    memcpy(slot->head, head, TALLY_HEAD);
    tally->used++;
    return 1;
}

/* 1 when pairs with `value` are counted in the tally (the first value it sees after a drain, or
 * one of the same type and equal to it), 0 if not, -1 on error. Values are countable: comparing
 * them runs no Python code. */
static int
tally_takes(Tally *tally, PyObject *value)
{
    if (tally->value == value) {
        return 1;
    }
    if (tally->value == NULL) {
        tally->value = Py_NewRef(value);
        return 1;
    }
    if (Py_TYPE(tally->value) != Py_TYPE(value)) {
        return 0;
    }
    return PyObject_RichCompareBool(tally->value, value, Py_EQ);
}

/* str_tally_drain(tally, counts) -> int: adds every key's times to counts[(type(value),
 * value)][key] and empties the tally (its memory too); how many keys it held. */
PyObject *
str_tally_drain(PyObject *module, PyObject *args)
{
    PyObject *capsule, *counts;
    if (!PyArg_ParseTuple(args, "OO!:str_tally_drain", &capsule, &PyDict_Type, &counts)) {
        return NULL;
    }
    Tally *tally = tally_of(capsule);
    if (tally == NULL) {
        return NULL;
    }
    Py_ssize_t drained = tally->used;
    int failed = 0;
    if (drained > 0) {
        PyObject *key_counts = counts_of_value(counts, tally->value);
        failed = key_counts == NULL;
        for (size_t i = 0; !failed && i <= tally->mask; i++) {
            TallySlot *slot = &tally->slots[i];
            if (slot->key == NULL) {
                continue;
            }
            PyObject *times = PyLong_FromSsize_t(slot->times);
            PyObject *old = times == NULL ? NULL : PyDict_GetItemWithError(key_counts, slot->key);
            PyObject *total = NULL;
            if (old != NULL) {
                total = PyNumber_Add(old, times);
            }
            else if (times != NULL && !PyErr_Occurred()) {
                total = Py_NewRef(times);
            }
            Py_XDECREF(times);
            failed = total == NULL || PyDict_SetItem(key_counts, slot->key, total) < 0;
            Py_XDECREF(total);
        }
    }
    tally_clear(tally);                         /* after an error too: the attempt has failed */
    return failed ? NULL : PyLong_FromSsize_t(drained);
}

/* A tally's slot is mostly a cache miss away, so map_lines counts a str key TALLY_AHEAD keys
 * after it arrives, its slot prefetched meanwhile (while the mapper finds the next words). */
#define TALLY_AHEAD 8

typedef struct {
    PyObject *counts, *pairs, *one;
    Tally *tally;                               /* with counts: where str keys are counted */
    PyObject *last_value, *key_counts;          /* strong references: the cache of counts_of_value */
    Py_ssize_t added;                           /* new keys (counts) or pairs (pairs) added */
    PyObject *ahead[TALLY_AHEAD];               /* strong references: keys not counted yet */
    Py_hash_t ahead_hash[TALLY_AHEAD];
    int ahead_count, ahead_first;
} Taker;

/* Counts the oldest key waiting; -1 on error (the key is released either way). */
static int
count_oldest(Taker *taker)
{
    int first = taker->ahead_first;
    PyObject *key = taker->ahead[first];
    taker->ahead[first] = NULL;
    taker->ahead_first = (first + 1) % TALLY_AHEAD;
    taker->ahead_count--;
    int added = tally_add(taker->tally, key, taker->ahead_hash[first]);
    Py_DECREF(key);
    if (added < 0) {
        return -1;
    }
    taker->added += added;
    return 0;
}

/* Counts every key waiting; -1 on error (all are released either way). */
static int
count_waiting(Taker *taker)
{
    int failed = 0;
    while (taker->ahead_count > 0) {
        if (count_oldest(taker) && !failed) {
            failed = -1;
        }
    }
    return failed;
}

/* Queues an exact str key for the tally, counting the oldest if the queue is full. */
static int
tally_later(Taker *taker, PyObject *key)
{
    Tally *tally = taker->tally;
    Py_hash_t hash = PyObject_Hash(key);        /* kept in the str: the dict needs it anyway */
    if (hash == -1 || (tally->slots == NULL && tally_allocate(tally, TALLY_FIRST_SLOTS))) {
        return -1;
    }
    PREFETCH(&tally->slots[(size_t)hash & tally->mask]);
    if (taker->ahead_count == TALLY_AHEAD && count_oldest(taker)) {
        return -1;
    }
    int at = (taker->ahead_first + taker->ahead_count) % TALLY_AHEAD;
    taker->ahead[at] = Py_NewRef(key);
    taker->ahead_hash[at] = hash;
    taker->ahead_count++;
    return 0;
}

static int
take_pair(Taker *taker, PyObject *item)
{
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
        return DECLINED;
    }
    if (taker->pairs != NULL) {
        return PyList_Append(taker->pairs, item) ? TAKE_ERROR : TAKEN_NEW;
    }
    PyObject *key = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
    if (!countable_key(key) || !countable(value)) {
        return DECLINED;
    }
    if (PyUnicode_CheckExact(key)) {
        int takes = tally_takes(taker->tally, value);
        if (takes < 0) {
            return TAKE_ERROR;
        }
        if (takes) {                            /* taker->added counts it if it is new */
            return tally_later(taker, key) ? TAKE_ERROR : TAKEN;
        }
    }
    if (value != taker->last_value) {
        PyObject *key_counts = counts_of_value(taker->counts, value);
        if (key_counts == NULL) {
            return TAKE_ERROR;
        }
        Py_INCREF(key_counts);
        Py_XSETREF(taker->key_counts, key_counts);
        Py_INCREF(value);                       /* held, so its address is not reused */
        Py_XSETREF(taker->last_value, value);
    }
    PyObject *old = PyDict_GetItemWithError(taker->key_counts, key);
    if (old == NULL) {
        if (PyErr_Occurred()) {
            return TAKE_ERROR;
        }
        return PyDict_SetItem(taker->key_counts, key, taker->one) ? TAKE_ERROR : TAKEN_NEW;
    }
    PyObject *new = PyNumber_Add(old, taker->one);
    if (new == NULL) {
        return TAKE_ERROR;
    }
    int failed = PyDict_SetItem(taker->key_counts, key, new);
    Py_DECREF(new);
    return failed ? TAKE_ERROR : TAKEN;
}

/* The raised exception, normalized and holding its traceback (a new reference). */
static PyObject *
fetch_exception(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
}

PyObject *
map_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "map_lines takes 8 arguments");
        return NULL;
    }
    PyObject *mapper = args[0], *lines = args[2];
    Py_ssize_t start = PyLong_AsSsize_t(args[3]), room = PyLong_AsSsize_t(args[6]);
    if ((start == -1 || room == -1) && PyErr_Occurred()) {
        return NULL;
    }
    Taker taker;
    memset(&taker, 0, sizeof taker);
    taker.counts = args[4] == Py_None ? NULL : args[4];
    taker.pairs = args[5] == Py_None ? NULL : args[5];
    if (!PyList_CheckExact(lines) || (taker.counts == NULL) == (taker.pairs == NULL)
        || (taker.counts != NULL && !PyDict_CheckExact(taker.counts))
        || (taker.pairs != NULL && !PyList_CheckExact(taker.pairs)) || start < 0
        || (taker.counts != NULL) != (args[7] != Py_None)) {
        PyErr_SetString(PyExc_TypeError,
                        "map_lines(mapper, path, lines: list, start: int, counts: dict | None, "
                        "pairs: list | None, room: int, tally): one of counts (with a tally) "
                        "and pairs");
        return NULL;
    }
    if (taker.counts != NULL && (taker.tally = tally_of(args[7])) == NULL) {
        return NULL;
    }
    taker.one = PyLong_FromLong(1);
    if (taker.one == NULL) {
        return NULL;
    }
    int status = MAP_DONE;
    PyObject *extra = NULL;
    Py_ssize_t taken = 0, index = start;
    PyObject *call[2] = {args[1], NULL};
    for (; index < PyList_GET_SIZE(lines); index++) {
        if (taker.added + taker.ahead_count >= room) {
            if (count_waiting(&taker)) {       /* the keys waiting may be new ones */
                goto error;
            }
            if (taker.added >= room) {
                status = MAP_FULL;
                break;
            }
        }
        if ((index & 1023) == 0 && PyErr_CheckSignals()) {
            goto failed;                        /* Ctrl-C, even if the mapper is all C */
        }
        PyObject *line = PyList_GET_ITEM(lines, index);
        Py_INCREF(line);                        /* the mapper may do anything, even to the list */
        call[1] = line;
        PyObject *output = PyObject_Vectorcall(mapper, call, 2, NULL);
        Py_DECREF(line);
        if (output == NULL) {
            goto failed;
        }
        if (output == Py_None) {                /* a mapper that yields nothing may return None */
            Py_DECREF(output);
            continue;
        }
        PyObject *iterator = output;
        if (!PyGen_CheckExact(output)) {
            if (!PyList_CheckExact(output) && !PyTuple_CheckExact(output)) {
                extra = Py_BuildValue("(()N)", output);  /* Python adds it, or says what it is */
                status = MAP_HANDBACK;
                goto stop;
            }
            iterator = PyObject_GetIter(output);
            Py_DECREF(output);
            if (iterator == NULL) {
                goto failed;
            }
        }
        iternextfunc next = Py_TYPE(iterator)->tp_iternext;
        for (;;) {
            PyObject *item = next(iterator);
            if (item == NULL) {
                if (PyErr_Occurred()) {
                    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
                        Py_DECREF(iterator);
                        goto failed;
                    }
                    PyErr_Clear();
                }
                break;
            }
            int took = take_pair(&taker, item);
            if (took == DECLINED) {
                extra = Py_BuildValue("((N)N)", item, iterator);
                status = MAP_HANDBACK;
                goto stop;
            }
            Py_DECREF(item);
            if (took == TAKE_ERROR) {           /* MemoryError: the framework's failure */
                Py_DECREF(iterator);
                goto error;
            }
            taken++;
            taker.added += took;
        }
        Py_DECREF(iterator);
    }
    goto stop;
failed:
    extra = fetch_exception();
    status = MAP_RAISED;
stop:
    if (count_waiting(&taker)) {
        Py_XDECREF(extra);
        goto error;
    }
    if (extra == NULL && status != MAP_DONE && status != MAP_FULL) {
        goto error;                             /* Py_BuildValue failed */
    }
    Py_XDECREF(taker.key_counts);
    Py_XDECREF(taker.last_value);
    Py_DECREF(taker.one);
    return Py_BuildValue("(inNn)", status, index, extra != NULL ? extra : Py_NewRef(Py_None),
                         taken);
error:
    for (int i = 0; i < TALLY_AHEAD; i++) {
        Py_XDECREF(taker.ahead[i]);            /* (none left when count_waiting has run) */
    }
    Py_XDECREF(taker.key_counts);
    Py_XDECREF(taker.last_value);
    Py_DECREF(taker.one);
    return NULL;
}

/* The combiner over counted keys: combine_counts(combiner, key_counts, value, groups, position).
 *
 * For each key counted `times` under `value` (counts[(type(value), value)] as above), from
 * PyDict_Next's `position` on, does what MapOutputWriter._combine_counted does in Python: the
 * key's group is the key itself (str, tuple) or (type(key), key); a key seen once joins `groups`
 * as [value]; else combiner(key, repeat(value, times)) is called and, when it gives exactly one
 * exact 2-tuple whose key is the key (same type, equal), groups[group] = [its value]. Anything
 * else stops the loop: it returns (position after the key, group, times, called, output), for
 * Python to finish that key (called: the combiner's output, listed if it was iterable; not
 * called: the group already held values), or None when every key is done. The combiner's
 * exceptions propagate. Keys and values are countable, so comparing them runs no Python code. */

static PyObject *repeat_type;                   /* itertools.repeat */

int
map_loop_init(void)
{
    PyObject *itertools = PyImport_ImportModule("itertools");
    if (itertools == NULL) {
        return -1;
    }
    repeat_type = PyObject_GetAttrString(itertools, "repeat");
    Py_DECREF(itertools);
    return repeat_type == NULL ? -1 : 0;
}

static PyObject *
group_key_of(PyObject *key)
{
    if (PyUnicode_CheckExact(key) || PyTuple_CheckExact(key)) {
        return Py_NewRef(key);
    }
    return PyTuple_Pack(2, (PyObject *)Py_TYPE(key), key);
}

/* 1 when `produced` is one exact 2-tuple keyed by `key` itself, 0 if not, -1 on error. */
static int
combined_as_itself(PyObject *produced, PyObject *key)
{
    if (PyList_GET_SIZE(produced) != 1) {
        return 0;
    }
    PyObject *pair = PyList_GET_ITEM(produced, 0);
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
        return 0;
    }
    PyObject *out_key = PyTuple_GET_ITEM(pair, 0);
    if (out_key == key) {
        return 1;
    }
    if (Py_TYPE(out_key) != Py_TYPE(key)) {
        return 0;
    }
    return PyObject_RichCompareBool(out_key, key, Py_EQ);
}

PyObject *
combine_counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyDict_CheckExact(args[1]) || !PyDict_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "combine_counts(combiner, key_counts: dict, value, groups: dict, "
                        "position: int)");
        return NULL;
    }
    PyObject *combiner = args[0], *key_counts = args[1], *value = args[2], *groups = args[3];
    Py_ssize_t position = PyLong_AsSsize_t(args[4]);
    if (position == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *key, *times;
    /* key_counts is the writer's detached dict: nothing else holds it, so the combiner's code
     * cannot change it while PyDict_Next walks it; its items are held during each call. */
    while (PyDict_Next(key_counts, &position, &key, &times)) {
        Py_INCREF(key);
        Py_INCREF(times);
        PyObject *group_key = group_key_of(key), *result = NULL, *output = NULL;
        int called = 0, done = 0;
        if (group_key == NULL) {
            goto error;
        }
        PyObject *held = PyDict_GetItemWithError(groups, group_key);
        if (held == NULL && PyErr_Occurred()) {
            goto error;
        }
        if (held == NULL) {
            Py_ssize_t n = PyLong_AsSsize_t(times);
            if (n == -1 && PyErr_Occurred()) {
                goto error;
            }
            if (n == 1) {
                PyObject *values = PyList_New(1);
                if (values == NULL) {
                    goto error;
                }
                PyList_SET_ITEM(values, 0, Py_NewRef(value));
                int failed = PyDict_SetItem(groups, group_key, values);
                Py_DECREF(values);
                if (failed) {
                    goto error;
                }
                done = 1;
            }
            else {
                PyObject *repeat_args[2] = {value, times};
                PyObject *values = PyObject_Vectorcall(repeat_type, repeat_args, 2, NULL);
                if (values == NULL) {
                    goto error;
                }
                PyObject *call_args[2] = {key, values};
                output = PyObject_Vectorcall(combiner, call_args, 2, NULL);
                Py_DECREF(values);
                if (output == NULL) {
                    goto error;
                }
                called = 1;
                if (PyGen_CheckExact(output) || PyList_CheckExact(output)
                    || PyTuple_CheckExact(output)) {
                    PyObject *produced = PySequence_List(output);
                    Py_SETREF(output, produced);
                    if (output == NULL) {
                        goto error;
                    }
                    int itself = combined_as_itself(output, key);
                    if (itself < 0) {
                        goto error;
                    }
                    if (itself) {
                        PyObject *values = PyList_New(1);
                        if (values == NULL) {
                            goto error;
                        }
                        PyObject *pair = PyList_GET_ITEM(output, 0);
                        PyList_SET_ITEM(values, 0, Py_NewRef(PyTuple_GET_ITEM(pair, 1)));
                        int failed = PyDict_SetItem(groups, group_key, values);
                        Py_DECREF(values);
                        if (failed) {
                            goto error;
                        }
                        done = 1;
                    }
                }
            }
        }
        if (!done) {
            result = Py_BuildValue("(nOOOO)", position, group_key, times,
                                   called ? Py_True : Py_False, output ? output : Py_None);
        }
        Py_XDECREF(output);
        Py_DECREF(group_key);
        Py_DECREF(key);
        Py_DECREF(times);
        if (!done) {
            return result;
        }
        continue;
    error:
        Py_XDECREF(output);
        Py_XDECREF(group_key);
        Py_DECREF(key);
        Py_DECREF(times);
        return NULL;
    }
    Py_RETURN_NONE;
}
