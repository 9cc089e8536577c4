/* The map side's hot loops in C: the per-record map loop (map_lines), counting a chunk of
 * (key, value) pairs (count_pairs), the combiner over counted keys (combine_counts), a spill's
 * Arrow columns (str_column, int64_column) and tuple keys of strs (encode_str_tuples,
 * decode_str_tuple_column).
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
 * decode_str_tuple_column gives such keys back from a merged run's column on the reduce side.
 */
#include <stdint.h>
#include <string.h>
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

/* Zeroed memory for a hash table of `count` entries of `size` bytes (the str tally's, the str
 * counter's), and its release. A large table is mapped on its own, in huge pages where the kernel
 * gives them on request: a probe into a table of tens of MB then rarely misses the TLB (perf put
 * most of a word count's probing time on page walks with 4 KB pages). Needs no GIL. */
#define TABLE_MAPPED_BYTES (4u << 20)

static void *
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

static void
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

static PyObject *
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

static PyObject *
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
static PyObject *
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

static PyObject *
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

static PyObject *
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


/* Arrow columns of a spill without a Python object per item: str_column(items) gives the
 * buffers of a large_string array (int64 offsets, UTF-8 data) when every item is an exact str
 * that encodes to UTF-8 (no lone surrogate), in the order of `order` when given (int64 indices,
 * a bytes-like: str_column(items, order) is the column of items taken in that order), and int64_column(items) the data buffer of an
 * int64 array when every item is an exact int within int64; else None (then pyarrow converts
 * the list, or the run pickles it). */

static PyObject *
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

static PyObject *
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

/* CRC-32 as zlib.crc32 computes it (reflected polynomial 0xEDB88320): crc32(data, start). */
static uint32_t crc_table[256];

static void
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

static uint32_t
crc32_of(const unsigned char *data, size_t size, uint32_t start)
{
    uint32_t c = start ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        c = crc_table[(c ^ data[i]) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

/* A spill's tuple keys of strs as an Arrow column, in one pass and with no bytes object per key:
 * encode_str_tuple_column(keys, num_partitions, crc_start) gives (offsets, data, widest,
 * partitions): the int64 offsets and data of a large_binary array of every key's encoding (as
 * encode_str_tuples), the most items in a key, and, when num_partitions > 1, each key's
 * crc32(encoding, crc_start) % num_partitions as int32s (the stable partition, given the CRC of
 * the prefix key_bytes puts before a tuple's encoding), else None. None when any key is not
 * such a tuple, or there is none (then Python decides). */
static PyObject *
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

/* The stable sort order of a string column: sort_order(offsets, data, offset, count, wide) gives
 * the indices (int64, as bytes) that put the `count` strings starting at index `offset` of an
 * Arrow string array (int32 offsets, or int64 with `wide`) in byte order, which is Python's
 * order of strs; equal strings keep their order. Each string's first 8 bytes (after any that all
 * the strings share), zero-padded, are sorted as a big-endian integer by a stable LSD radix sort (a byte a pass, passes whose byte is
 * the same in every key skipped), then each run of equal prefixes by a stable merge sort of the
 * whole strings (a run already in order, as a repeated key's is, costs one scan). Arrow's own
 * sort compares whole strings from the start for every comparison: several times slower. */

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

/* The view of `count` strings of an Arrow string or binary array from index `first` (int32
 * offsets, or int64 with `wide`), once every one is checked to lie within the data buffer; -1
 * with ValueError (naming `function`) when not. */
static int
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

static PyObject *
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

/* Tuple keys back from a binary column of encode_str_tuples' bytes, on the reduce side:
 * decode_str_tuple_column(offsets, data, first, count, wide) gives the list of the `count` keys
 * from index `first` (int32 offsets, or int64 with `wide`), read from Arrow's buffers (no bytes
 * object per key), or None when any key is other bytes (then Python decodes them). A merged
 * run holds each key's records next to each other: a key equal to the one before is that same
 * tuple object, decoded once, which also makes the reduce's grouping compare by identity; and
 * an item equal to the one before it in the same place is that same str. */
static PyObject *
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

static PyObject *
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

static PyObject *
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

static PyObject *
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

static PyObject *
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

static PyObject *
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

static PyObject *
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
    PyObject *itertools = PyImport_ImportModule("itertools");
    if (itertools == NULL) {
        return NULL;
    }
    make_crc_table();
    repeat_type = PyObject_GetAttrString(itertools, "repeat");
    Py_DECREF(itertools);
    if (repeat_type == NULL) {
        return NULL;
    }
    return PyModule_Create(&module);
}
