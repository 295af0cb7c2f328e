"""An Earley parser over terminals whose chart columns are interned (hash-consed), built in numba.

An Earley column is a set of items ``(dotted rule, origin column)``. We key a column by its *kernel*
(the items reached by scanning or completing, each with a real origin column id); the items predicted
at the column follow from the kernel, so two columns with equal kernels are equal, have equal futures
and get the same id. Origins point at interned columns, so the whole chart is a DAG of shared columns.

This turns Earley parsing, which handles every context-free grammar (ambiguous, left-recursive), into
a lazily built deterministic automaton: ``advance(column, terminal)`` is memoised, and a JSON array's
tenth element is parsed with exactly the columns of its second. Prediction closures are precomputed
per nonterminal (Aycock-Horspool handling of nullable symbols), so building a new column only walks its
kernel.

An item's origin matters only through what the origin column does when the item completes, so items
predicted at columns that would do the same get one representative origin (:func:`_rep`). Without it an
ambiguous repetition (``molecule+``, where a molecule may end after any atom) gives items with every
earlier position as origin, and no column is ever seen twice.

Columns live in flat integer arrays (kernel items encoded as ``dotted << 32 | origin``) and are built
by numba functions: ambiguous grammars (SMILES, character-level GBNF) create a column for nearly every
text position a trie walk visits, so column construction must cost microseconds, not Python time. The
memo of advances and unions is the open-addressing table the lexer walks of :mod:`grammar_walk` read
(keys ``column * (n_terms + 1) + terminal`` and :func:`grammar_walk.union_key`). Each column also gets
the id of its expected-terminal set (``col_eid``), interned the same way.
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from constrain.errors import LimitError
from constrain.grammar_tables import GrammarTables

MAX_COLUMNS = 4_000_000

# ------------------------------------------------------------------ the memo table (read by grammar_walk)
EMPTY_KEY = -1
UNKNOWN = -2
UNION_MISS = -4
"""A union miss of columns ``a`` < ``b`` is reported as ``(a, UNION_MISS - b)``."""
_UNION_FLAG = np.int64(1) << np.int64(62)


@numba.njit(cache=True, nogil=True, inline="always")
def union_key(a, b):  # type: ignore[no-untyped-def]
    """Table key of the union of columns ``a`` < ``b`` (disjoint from advance keys ``c * (n_terms+1) + t``)."""
    return _UNION_FLAG | (np.int64(a) << np.int64(31)) | np.int64(b)


@numba.njit(cache=True, nogil=True, inline="always")
def request_key(a, b, n_terms1):  # type: ignore[no-untyped-def]
    """Memo key of the step request ``(a, b)`` of :func:`step1` (an advance, or a union for ``b <= UNION_MISS``)."""
    if b <= UNION_MISS:
        other = UNION_MISS - b
        return union_key(min(a, other), max(a, other))
    return a * n_terms1 + b


_MIX = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(key, mask):  # type: ignore[no-untyped-def]
    h = np.uint64(key) * _MIX
    return np.int64((h >> np.uint64(20)) & np.uint64(mask))


@numba.njit(cache=True, nogil=True)
def table_get(keys, vals, key):  # type: ignore[no-untyped-def]
    """Value for ``key`` or UNKNOWN."""
    mask = keys.shape[0] - 1
    i = _slot(key, mask)
    while True:
        k = keys[i]
        if k == key:
            return vals[i]
        if k == EMPTY_KEY:
            return UNKNOWN
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def table_put(keys, vals, key, val):  # type: ignore[no-untyped-def]
    """Insert (value first, then key, so a concurrent reader never sees a key without its value)."""
    mask = keys.shape[0] - 1
    i = _slot(key, mask)
    while True:
        k = keys[i]
        if k == key or k == EMPTY_KEY:  # noqa: SIM109 (numba)
            vals[i] = val
            keys[i] = key
            return
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def table_rehash(keys, vals, new_keys, new_vals):  # type: ignore[no-untyped-def]
    for i in range(keys.shape[0]):
        if keys[i] != EMPTY_KEY:
            table_put(new_keys, new_vals, keys[i], vals[i])



I64 = npt.NDArray[np.int64]

_NEED_ROOM = -10
"""Return code of the numba steps: an array lacks room (``need`` says which and how much)."""
_SHIFT = np.int64(32)
_LOW = np.int64(0xFFFFFFFF)
_M1 = np.uint64(0xFF51AFD7ED558CCD)

# counters in ``cnt``
_N_COLS, _N_ITEMS, _N_NTS, _N_EIDS, _N_ETERMS, _N_MEMO, _N_CTAB, _N_ETAB, _N_VIEWS, _N_REPS = range(10)
# what ``need`` asks for (index: minimum size)
(_NEED_COLS, _NEED_ITEMS, _NEED_NTS, _NEED_EIDS, _NEED_ETERMS, _NEED_MEMO, _NEED_CTAB, _NEED_ETAB, _NEED_VIEWS,
 _NEED_REPS) = range(10)
MAX_CANON_NONTERMINALS = 4096
"""Grammars with more nonterminals keep raw origins (the left-corner matrix grows with the square)."""
MAX_CANON_ROWS = 1 << 22
"""The tables of origin representatives stop growing here (at most 160 MB); past three quarters full, new
items keep their raw origins (see :func:`_rep`)."""


@numba.njit(cache=True, nogil=True)
def _hash(arr, lo, hi):  # type: ignore[no-untyped-def]
    h = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(hi - lo)
    for i in range(lo, hi):
        h = (h ^ np.uint64(arr[i])) * _M1
        h ^= h >> np.uint64(31)
    return np.int64(h >> np.uint64(1))


@numba.njit(cache=True, nogil=True)
def _range_of(cl_sym, lo, hi, sym):  # type: ignore[no-untyped-def]
    """``[a, b)``: the entries of sorted ``cl_sym[lo:hi]`` equal to ``sym``."""
    a, b = lo, hi
    while a < b:
        m = (a + b) >> 1
        if cl_sym[m] < sym:
            a = m + 1
        else:
            b = m
    e = a
    while e < hi and cl_sym[e] == sym:
        e += 1
    return a, e


@numba.njit(cache=True, nogil=True)
def _set_add(table, key):  # type: ignore[no-untyped-def]
    """Insert ``key`` (>= 0) into an open-addressing set; True if it was new."""
    mask = table.shape[0] - 1
    i = np.int64((np.uint64(key) * _M1) >> np.uint64(17)) & mask
    while True:
        k = table[i]
        if k == key:
            return False
        if k == -1:
            table[i] = key
            return True
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def _grown_stack(stack, top, more):  # type: ignore[no-untyped-def]
    """A copy of ``stack[:top]`` with room for ``more`` items beyond it (at least double)."""
    out = np.empty(2 * stack.shape[0] + more, np.int64)
    out[:top] = stack[:top]
    return out


@numba.njit(cache=True, nogil=True)
def _view(c, x, dnext, n_terms, reach, col_kstart, k_item, col_nstart, col_nts, out):  # type: ignore[no-untyped-def]
    """What column ``c`` gives an item of nonterminal ``x`` whose origin it is (see :func:`_rep`), written
    to ``out``: its kernel items waiting for a nonterminal ``y`` whose predictions reach ``x`` (``reach[y]``
    holds ``x``), then ``-1 - y`` for each such ``y`` after a dot in its kernel. Returns the length."""
    n = 0
    for q in range(col_kstart[c], col_kstart[c + 1]):
        it = k_item[q]
        s = dnext[it >> _SHIFT]
        if s >= n_terms:
            y = s - n_terms
            if (reach[y, x >> 6] >> np.uint64(x & 63)) & np.uint64(1):
                out[n] = it
                n += 1
    for q in range(col_nstart[c], col_nstart[c + 1]):
        y = col_nts[q] - n_terms
        if (reach[y, x >> 6] >> np.uint64(x & 63)) & np.uint64(1):
            out[n] = -1 - y
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _rep(c, x, dnext, n_terms, col_kstart, k_item, col_nstart, col_nts, canon):  # type: ignore[no-untyped-def]
    """The origin to record for an item of nonterminal ``x`` predicted at column ``c``: the first column
    whose view for ``x`` (:func:`_view`) equals ``c``'s.

    An item's origin is read once, when the item completes: the items of the origin column waiting for
    ``x`` advance, and those of them that complete in turn read the same column for their own
    nonterminals, all of which reach ``x`` through left corners (``reach``). Items whose origins have equal
    views therefore have equal futures, and recording the first such column makes them one item. In an
    ambiguous grammar (``smiles+``: a new molecule may start after any atom) the origins of equivalent
    items are otherwise every earlier text position, so no two columns are ever equal and the parser
    never becomes the finite automaton it is on such text.

    Falls back to ``c`` itself (correct, only less sharing) where the tables are too full."""
    reach, rt, cnt, vt = canon
    if reach.shape[0] == 0:
        return c
    key = (np.int64(c) << np.int64(20)) | np.int64(x)
    rmask = rt.shape[0] - 1
    j = _slot(key, rmask)
    while rt[j, 0] != EMPTY_KEY:
        if rt[j, 0] == key:
            return rt[j, 1]
        j = (j + 1) & rmask
    size = (col_kstart[c + 1] - col_kstart[c]) + (col_nstart[c + 1] - col_nstart[c])
    view = np.empty(size, np.int64)
    n = _view(c, x, dnext, n_terms, reach, col_kstart, k_item, col_nstart, col_nts, view)
    h = _hash(view, 0, n) ^ (np.int64(x) * np.int64(0x1F3D5B79))
    h &= np.int64(0x3FFFFFFFFFFFFFFF)
    mask = vt.shape[0] - 1
    i = h & mask
    rep = -1
    while vt[i, 1] != -1:
        if vt[i, 0] == h and vt[i, 2] == x:
            o = vt[i, 1]
            other = np.empty((col_kstart[o + 1] - col_kstart[o]) + (col_nstart[o + 1] - col_nstart[o]), np.int64)
            m = _view(o, x, dnext, n_terms, reach, col_kstart, k_item, col_nstart, col_nts, other)
            if m == n:
                same = True
                for q in range(n):
                    if other[q] != view[q]:
                        same = False
                        break
                if same:
                    rep = o
                    break
        i = (i + 1) & mask
    if rep < 0:
        if 4 * (cnt[_N_VIEWS] + 1) > 3 * vt.shape[0]:
            return c
        vt[i, 0] = h
        vt[i, 2] = x
        vt[i, 1] = c
        cnt[_N_VIEWS] += 1
        rep = c
    if 4 * (cnt[_N_REPS] + 1) <= 3 * rt.shape[0]:
        rt[j, 1] = rep
        rt[j, 0] = key
        cnt[_N_REPS] += 1
    return rep


@numba.njit(cache=True, nogil=True)
def _close(agenda, n_agenda, dnext, dlhs, nullable, n_terms, start_symbol, cl_start, cl_sym,  # type: ignore[no-untyped-def]
           cl_item, col_kstart, k_item, col_nstart, col_nts, canon):
    """The sorted kernel reached from ``agenda[:n_agenda]``: completions into origin columns and
    nullable skips (see the module docstring). Items predicted at an origin column get their origin's
    representative (:func:`_rep`)."""
    size = 64
    while size < 4 * n_agenda:
        size *= 2
    seen = np.full(size, -1, np.int64)
    out = np.empty(size, np.int64)
    n_out = 0
    stack = agenda[:n_agenda].copy()
    top = n_agenda
    while top > 0:
        top -= 1
        item = stack[top]
        if 2 * (n_out + 1) > seen.shape[0]:
            seen2 = np.full(seen.shape[0] * 2, -1, np.int64)
            for q in range(n_out):
                _set_add(seen2, out[q])
            seen = seen2
            out2 = np.empty(seen.shape[0], np.int64)
            out2[:n_out] = out[:n_out]
            out = out2
        if not _set_add(seen, item):
            continue
        out[n_out] = item
        n_out += 1
        d = item >> _SHIFT
        o = item & _LOW
        sym = dnext[d]
        if sym < 0:  # complete: advance the items of the origin column that wait for this nonterminal
            a_sym = dlhs[d]
            if a_sym == start_symbol:
                continue  # nothing waits for the augmented start symbol
            # kernel items of o waiting for a_sym, then the predicted ones (origin o); the stack grows
            # in place (one pass over o, not a counting pass first)
            for q in range(col_kstart[o], col_kstart[o + 1]):
                it = k_item[q]
                if dnext[it >> _SHIFT] == a_sym:
                    if top >= stack.shape[0]:
                        stack = _grown_stack(stack, top, 1)
                    stack[top] = it + (np.int64(1) << _SHIFT)
                    top += 1
            last_x, rep = -1, o  # items of one nonterminal come in runs: ask _rep once per run
            for q in range(col_nstart[o], col_nstart[o + 1]):
                nt = col_nts[q] - n_terms
                lo, hi = _range_of(cl_sym, cl_start[nt], cl_start[nt + 1], a_sym)
                if top + (hi - lo) > stack.shape[0]:
                    stack = _grown_stack(stack, top, hi - lo)
                for r in range(lo, hi):
                    d2 = cl_item[r]
                    x = dlhs[d2] - n_terms
                    if x != last_x:
                        rep = _rep(o, x, dnext, n_terms, col_kstart, k_item, col_nstart, col_nts, canon)
                        last_x = x
                    stack[top] = ((d2 + 1) << _SHIFT) | rep
                    top += 1
        elif sym >= n_terms and nullable[sym - n_terms]:
            if top >= stack.shape[0]:
                stack = _grown_stack(stack, top, 1)
            stack[top] = item + (np.int64(1) << _SHIFT)
            top += 1
    return np.sort(out[:n_out])


@numba.njit(cache=True, nogil=True)
def _intern(kernel, dnext, n_terms, final_item, cl_start, cl_sym, ce_start, ce_terms,  # type: ignore[no-untyped-def]
            n_nt, cnt, need, col_kstart, k_item, col_nstart, col_nts, col_hash, col_acc, col_eid,
            eset_start, eset_terms, eset_hash, ctab, etab):
    """Id of the column with this (sorted) kernel, made if new; ``_NEED_ROOM`` if an array is full.

    Completed items other than the final one are dropped first: their completions are already in the
    kernel, and nothing reads them again (completions look for items waiting for a nonterminal,
    expected sets for items before a terminal). Keeping them made kernels several times larger (SMILES:
    five times) and columns that differ only in a completed item's origin distinct: after each item of
    ``item*`` the same column, instead of a new one per item."""
    n = 0
    for q in range(kernel.shape[0]):
        d = kernel[q] >> _SHIFT
        if dnext[d] >= 0 or d == final_item:
            kernel[n] = kernel[q]
            n += 1
    kernel = kernel[:n]
    h = _hash(kernel, 0, n)
    mask = ctab.shape[0] - 1
    i = h & mask
    while True:
        c = ctab[i]
        if c == -1:
            break
        if col_hash[c] == h and col_kstart[c + 1] - col_kstart[c] == n:
            same = True
            base = col_kstart[c]
            for q in range(n):
                if k_item[base + q] != kernel[q]:
                    same = False
                    break
            if same:
                return c
        i = (i + 1) & mask
    # a new column: check room first (nothing is written unless everything fits)
    nc = cnt[_N_COLS]
    ok = True
    if nc + 1 >= col_hash.shape[0]:
        need[_NEED_COLS] = nc + 2
        ok = False
    if cnt[_N_ITEMS] + n > k_item.shape[0]:
        need[_NEED_ITEMS] = cnt[_N_ITEMS] + n
        ok = False
    if cnt[_N_NTS] + n > col_nts.shape[0]:
        need[_NEED_NTS] = cnt[_N_NTS] + n
        ok = False
    if 2 * (nc + 1) > ctab.shape[0]:
        need[_NEED_CTAB] = 4 * (nc + 1)
        ok = False
    if cnt[_N_EIDS] + 1 >= eset_hash.shape[0]:
        need[_NEED_EIDS] = cnt[_N_EIDS] + 2
        ok = False
    if cnt[_N_ETERMS] + n_terms > eset_terms.shape[0]:
        need[_NEED_ETERMS] = cnt[_N_ETERMS] + n_terms
        ok = False
    if 2 * (cnt[_N_EIDS] + 1) > etab.shape[0]:
        need[_NEED_ETAB] = 4 * (cnt[_N_EIDS] + 1)
        ok = False
    if not ok:
        return _NEED_ROOM
    # kernel, nonterminals after a dot (their closures are the predicted items), accepting
    base = cnt[_N_ITEMS]
    k_item[base : base + n] = kernel
    nts = np.empty(n, np.int64)
    n_nts = 0
    terms = np.zeros(n_terms, np.bool_)
    acc = False
    for q in range(n):
        d = kernel[q] >> _SHIFT
        if d == final_item:
            acc = True
        sym = dnext[d]
        if sym >= n_terms:
            nts[n_nts] = sym
            n_nts += 1
        elif sym >= 0:
            terms[sym] = True
    nts = np.unique(nts[:n_nts])
    nb = cnt[_N_NTS]
    col_nts[nb : nb + nts.shape[0]] = nts
    for q in range(nts.shape[0]):
        nt = nts[q] - n_terms
        for r in range(ce_start[nt], ce_start[nt + 1]):
            terms[ce_terms[r]] = True
    # the expected set's id
    exp = np.nonzero(terms)[0].astype(np.int64)
    eh = _hash(exp, 0, exp.shape[0])
    emask = etab.shape[0] - 1
    j = eh & emask
    eid = -1
    while True:
        e = etab[j]
        if e == -1:
            break
        if eset_hash[e] == eh and eset_start[e + 1] - eset_start[e] == exp.shape[0]:
            same = True
            eb = eset_start[e]
            for q in range(exp.shape[0]):
                if eset_terms[eb + q] != exp[q]:
                    same = False
                    break
            if same:
                eid = e
                break
        j = (j + 1) & emask
    if eid < 0:
        eid = cnt[_N_EIDS]
        eb = cnt[_N_ETERMS]
        eset_terms[eb : eb + exp.shape[0]] = exp
        eset_start[eid + 1] = eb + exp.shape[0]
        eset_hash[eid] = eh
        cnt[_N_ETERMS] = eb + exp.shape[0]
        cnt[_N_EIDS] = eid + 1
        etab[j] = eid
    col_hash[nc] = h
    col_acc[nc] = acc
    col_eid[nc] = eid
    col_kstart[nc + 1] = base + n
    col_nstart[nc + 1] = nb + nts.shape[0]
    cnt[_N_ITEMS] = base + n
    cnt[_N_NTS] = nb + nts.shape[0]
    cnt[_N_COLS] = nc + 1
    ctab[i] = nc
    return nc


@numba.njit(cache=True, nogil=True)
def step1(P, a, b, pkeys, pvals):  # type: ignore[no-untyped-def]
    """One parser step, memoised in ``pkeys``/``pvals``: advance column ``a`` by terminal ``b``, or for
    ``b <= UNION_MISS`` the union of columns ``a`` and ``UNION_MISS - b``. ``P`` is
    :meth:`EarleyParser.state`. Returns the column (-1: no item expects ``b``) or ``_NEED_ROOM``
    (nothing written; ``need`` says what to grow). While ``need`` holds a request the caller has not
    grown for yet, every step returns ``_NEED_ROOM`` at once: a trie walk meets the same missing step at
    thousands of nodes, and computing its closure each time only to drop it cost SQL masks 0.5 s."""
    (dnext, dlhs, nullable, n_terms, n_terms1, start_symbol, final_item, cl_start, cl_sym, cl_item, ce_start,
     ce_terms, n_nt, cnt, need, col_kstart, k_item, col_nstart, col_nts, col_hash, col_acc, col_eid, eset_start,
     eset_terms, eset_hash, ctab, etab, reach, rt, vt) = P
    for q in range(need.shape[0]):  # an array is already full: the caller must grow it before any step
        if need[q] != 0:
            return _NEED_ROOM
    if 2 * (cnt[_N_MEMO] + 1) > pkeys.shape[0]:
        need[_NEED_MEMO] = 4 * (cnt[_N_MEMO] + 1)
        return _NEED_ROOM
    if 2 * (cnt[_N_VIEWS] + 1) > vt.shape[0] and vt.shape[0] < MAX_CANON_ROWS:
        need[_NEED_VIEWS] = 4 * (cnt[_N_VIEWS] + 1)
        return _NEED_ROOM
    if 2 * (cnt[_N_REPS] + 1) > rt.shape[0] and rt.shape[0] < MAX_CANON_ROWS:
        need[_NEED_REPS] = 4 * (cnt[_N_REPS] + 1)
        return _NEED_ROOM
    canon = (reach, rt, cnt, vt)
    key = request_key(a, b, n_terms1)
    if b <= UNION_MISS:
        b = UNION_MISS - b
        lo_c = min(a, b)
        hi_c = max(a, b)
        merged = np.concatenate((k_item[col_kstart[lo_c] : col_kstart[lo_c + 1]],
                                 k_item[col_kstart[hi_c] : col_kstart[hi_c + 1]]))
        kernel = np.unique(merged)
    else:
        n_ag = 0
        for q in range(col_kstart[a], col_kstart[a + 1]):
            if dnext[k_item[q] >> _SHIFT] == b:
                n_ag += 1
        for q in range(col_nstart[a], col_nstart[a + 1]):
            nt = col_nts[q] - n_terms
            lo, hi = _range_of(cl_sym, cl_start[nt], cl_start[nt + 1], b)
            n_ag += hi - lo
        if n_ag == 0:
            table_put(pkeys, pvals, key, -1)
            cnt[_N_MEMO] += 1
            return -1
        agenda = np.empty(n_ag, np.int64)
        n_ag = 0
        for q in range(col_kstart[a], col_kstart[a + 1]):
            it = k_item[q]
            if dnext[it >> _SHIFT] == b:
                agenda[n_ag] = it + (np.int64(1) << _SHIFT)
                n_ag += 1
        last_x, rep = -1, a
        for q in range(col_nstart[a], col_nstart[a + 1]):
            nt = col_nts[q] - n_terms
            lo, hi = _range_of(cl_sym, cl_start[nt], cl_start[nt + 1], b)
            for r in range(lo, hi):
                d2 = cl_item[r]
                x = dlhs[d2] - n_terms
                if x != last_x:
                    rep = _rep(a, x, dnext, n_terms, col_kstart, k_item, col_nstart, col_nts, canon)
                    last_x = x
                agenda[n_ag] = ((d2 + 1) << _SHIFT) | rep
                n_ag += 1
        kernel = _close(agenda, n_ag, dnext, dlhs, nullable, n_terms, start_symbol, cl_start, cl_sym, cl_item,
                        col_kstart, k_item, col_nstart, col_nts, canon)
    c = _intern(kernel, dnext, n_terms, final_item, cl_start, cl_sym, ce_start, ce_terms, n_nt, cnt, need,
                col_kstart, k_item, col_nstart, col_nts, col_hash, col_acc, col_eid, eset_start, eset_terms,
                eset_hash, ctab, etab)
    if c == _NEED_ROOM:
        return c
    table_put(pkeys, pvals, key, c)
    cnt[_N_MEMO] += 1
    return c


@numba.njit(cache=True, nogil=True)
def _steps(req_a, req_b, P, pkeys, pvals, results):  # type: ignore[no-untyped-def]
    """The memoised answer to each request, else :func:`step1`'s; returns how many were done (fewer on
    ``_NEED_ROOM``). A batch may repeat a request, or hold one another thread answered meanwhile."""
    n_terms1 = P[4]
    for k in range(req_a.shape[0]):
        a, b = req_a[k], req_b[k]
        c = table_get(pkeys, pvals, request_key(a, b, n_terms1))
        if c == UNKNOWN:
            c = step1(P, a, b, pkeys, pvals)
            if c == _NEED_ROOM:
                return k
        results[k] = c
    return req_a.shape[0]


class EarleyParser:
    """Interned Earley columns for one grammar; thread-safe for concurrent readers and one writer.

    Readers (the numba walks) take the arrays as they are when they start; growing an array replaces
    it. Readers that do not hold the lock read only the memo table, ``col_eid`` and the expected sets
    (``eset_*``), so growing one of those also replaces the memo table, and a reader never finds a memo
    entry whose column or expected set its arrays lack. The other arrays grow without it (a long SQL text
    grows kernel items, column hashes or origin views every few thousand new columns, and each growth
    rehashed the whole memo, up to 524,288 slots)."""

    def __init__(self, tables: GrammarTables) -> None:
        self.t = tables
        self.n_terms = tables.n_terms
        self.n_terms1 = tables.n_terms + 1
        self.lock = threading.RLock()
        dnext = tables.dotted_next
        self._dnext = dnext.astype(np.int64)
        self._dlhs = tables.dotted_lhs.astype(np.int64)
        self._nullable = tables.nullable.astype(np.bool_)
        self._n_nt = len(tables.nonterm_names)
        self._final_item = int(tables.rule_start[0]) + 1  # start' -> start .
        _load_growth_kernels()
        self._closures()
        self.cnt = np.zeros(10, np.int64)
        self._need = np.zeros(10, np.int64)
        self.col_kstart = np.zeros(1 << 10, np.int64)
        self.k_item = np.zeros(1 << 12, np.int64)
        self.col_nstart = np.zeros(1 << 10, np.int64)
        self.col_nts = np.zeros(1 << 12, np.int64)
        self.col_hash = np.zeros(1 << 10, np.int64)
        self.col_acc = np.zeros(1 << 10, np.bool_)
        self.col_eid = np.zeros(1 << 10, np.int64)
        self.eset_start = np.zeros(1 << 8, np.int64)
        self.eset_terms = np.zeros(max(1 << 10, 4 * self.n_terms), np.int64)
        self.eset_hash = np.zeros(1 << 8, np.int64)
        self._ctab = np.full(1 << 11, -1, np.int64)
        self._etab = np.full(1 << 9, -1, np.int64)
        self.pkeys = np.full(1 << 12, EMPTY_KEY, np.int64)
        self.pvals = np.full(1 << 12, -1, np.int64)
        self._vt = _view_table(1 << 10)
        self._rt = _rep_table(1 << 10)
        # the first column has id 0, so items predicted there have origin 0
        start_item = np.array([np.int64(int(tables.rule_start[0])) << 32], np.int64)
        no_canon = (np.zeros((0, 1), np.uint64), self._rt, self.cnt, self._vt)  # no column to canonicalise yet
        kernel = _close(start_item, 1, self._dnext, self._dlhs, self._nullable, self.n_terms, tables.start_symbol,
                        self._cl_start, self._cl_sym, self._cl_item, self.col_kstart, self.k_item, self.col_nstart,
                        self.col_nts, no_canon)
        while True:
            c = _intern(kernel, *self._intern_args())
            if c != _NEED_ROOM:
                break
            self._grow()
        self.initial = int(c)
        _load_step_kernel(self)

    # ------------------------------------------------------------------ precomputation
    def _closures(self) -> None:
        """Per nonterminal: dotted rules predicted from it (with nullable advances), sorted by the symbol
        after their dot (``cl_*``), the terminals they expect (``ce_*``), and the left-corner reach that
        canonical origins use (see :func:`_closure_tables`)."""
        cl_start, cl_item, ce_start, ce_terms, reach = _closure_tables(
            self.t.rule_start.astype(np.int64), self._dnext, self._dlhs, self._nullable, self.n_terms,
            self._n_nt <= MAX_CANON_NONTERMINALS)
        self._cl_start = cl_start
        self._cl_item = cl_item
        self._cl_sym = self._dnext[cl_item]
        self._ce_start = ce_start
        self._ce_terms = ce_terms
        self._reach = reach

    # ------------------------------------------------------------------ columns
    def _intern_args(self) -> tuple[object, ...]:
        return (self._dnext, self.n_terms, self._final_item, self._cl_start, self._cl_sym, self._ce_start,
                self._ce_terms, self._n_nt, self.cnt, self._need, self.col_kstart, self.k_item, self.col_nstart,
                self.col_nts, self.col_hash, self.col_acc, self.col_eid, self.eset_start, self.eset_terms,
                self.eset_hash, self._ctab, self._etab)

    def _grow(self) -> None:
        """Enlarge what ``_need`` asks for; a growth of what readers read also rebuilds the memo table (see
        the class doc)."""
        need = self._need.tolist()
        self._need[:] = 0
        if need[_NEED_COLS]:
            if need[_NEED_COLS] > MAX_COLUMNS:
                raise LimitError(f"grammar parse state limit reached ({MAX_COLUMNS} Earley columns)")
            size = max(need[_NEED_COLS], 2 * self.col_hash.shape[0])
            self.col_kstart = _grown(self.col_kstart, size + 1)
            self.col_nstart = _grown(self.col_nstart, size + 1)
            self.col_hash = _grown(self.col_hash, size)
            self.col_acc = _grown(self.col_acc, size)
            self.col_eid = _grown(self.col_eid, size)
        if need[_NEED_ITEMS]:
            self.k_item = _grown(self.k_item, max(need[_NEED_ITEMS], 2 * self.k_item.shape[0]))
        if need[_NEED_NTS]:
            self.col_nts = _grown(self.col_nts, max(need[_NEED_NTS], 2 * self.col_nts.shape[0]))
        if need[_NEED_EIDS]:
            size = max(need[_NEED_EIDS], 2 * self.eset_hash.shape[0])
            self.eset_start = _grown(self.eset_start, size + 1)
            self.eset_hash = _grown(self.eset_hash, size)
        if need[_NEED_ETERMS]:
            self.eset_terms = _grown(self.eset_terms, max(need[_NEED_ETERMS], 2 * self.eset_terms.shape[0]))
        if need[_NEED_CTAB]:
            self._ctab = _rehash_ids(self._ctab, self.col_hash, _pow2(need[_NEED_CTAB]))
        if need[_NEED_ETAB]:
            self._etab = _rehash_ids(self._etab, self.eset_hash, _pow2(need[_NEED_ETAB]))
        if need[_NEED_VIEWS]:
            vt = _view_table(min(_pow2(need[_NEED_VIEWS]), MAX_CANON_ROWS))
            _rehash_views(self._vt, vt)
            self._vt = vt
        if need[_NEED_REPS]:
            rt = _rep_table(min(_pow2(need[_NEED_REPS]), MAX_CANON_ROWS))
            _rehash_reps(self._rt, rt)
            self._rt = rt
        if not (need[_NEED_MEMO] or need[_NEED_COLS] or need[_NEED_EIDS] or need[_NEED_ETERMS]):
            return
        size = self.pkeys.shape[0] * (2 if need[_NEED_MEMO] else 1)
        keys = np.full(size, EMPTY_KEY, np.int64)
        vals = np.full(size, -1, np.int64)
        table_rehash(self.pkeys, self.pvals, keys, vals)
        self.pkeys, self.pvals = keys, vals

    def state(self) -> tuple[object, ...]:
        """The parser's tables as one tuple for numba (:func:`step1`); valid until the next growth."""
        return (self._dnext, self._dlhs, self._nullable, self.n_terms, self.n_terms1, self.t.start_symbol,
                self._final_item, self._cl_start, self._cl_sym, self._cl_item, self._ce_start, self._ce_terms,
                self._n_nt, self.cnt, self._need, self.col_kstart, self.k_item, self.col_nstart, self.col_nts,
                self.col_hash, self.col_acc, self.col_eid, self.eset_start, self.eset_terms, self.eset_hash,
                self._ctab, self._etab, self._reach, self._rt, self._vt)

    def steps(self, req_a: I64, req_b: I64) -> I64:
        """Compute parser steps (see :func:`step1`); memoised in ``pkeys``/``pvals``."""
        n = req_a.shape[0]
        results = np.empty(n, np.int64)
        with self.lock:
            done = 0
            while done < n:
                done += int(_steps(req_a[done:], req_b[done:], self.state(), self.pkeys, self.pvals, results[done:]))
                if done < n:
                    self._grow()
        return results

    def _memo(self, key: int) -> int:
        v = int(table_get(self.pkeys, self.pvals, key))
        return v if v != UNKNOWN else -2

    def advance(self, column: int, terminal: int) -> int:
        """The column after scanning ``terminal`` at ``column`` (-1 if no item expects it). Memoised."""
        hit = self._memo(column * self.n_terms1 + terminal)
        if hit != -2:
            return hit
        return int(self.steps(np.array([column], np.int64), np.array([terminal], np.int64))[0])

    def union(self, a: int, b: int) -> int:
        """The column holding the items of both ``a`` and ``b`` (two parses that reached the same text
        position, as one Earley column). Memoised."""
        if a == b:
            return a
        hit = self._memo(int(union_key(min(a, b), max(a, b))))
        if hit != -2:
            return hit
        return int(self.steps(np.array([min(a, b)], np.int64), np.array([UNION_MISS - max(a, b)], np.int64))[0])

    def accepting(self, column: int) -> bool:
        return bool(self.col_acc[column])

    def eid(self, column: int) -> int:
        """Id of the set of terminals expected at ``column``."""
        return int(self.col_eid[column])

    @property
    def n_eids(self) -> int:
        return int(self.cnt[_N_EIDS])

    def expected_of_eid(self, eid: int) -> tuple[int, ...]:
        return tuple(self.eset_terms[self.eset_start[eid] : self.eset_start[eid + 1]].tolist())

    def expected(self, column: int) -> tuple[int, ...]:
        return self.expected_of_eid(self.eid(column))

    def kernel(self, column: int) -> list[tuple[int, int]]:
        """Items ``(dotted rule, origin)`` of ``column``'s kernel (a debugging aid)."""
        items = self.k_item[self.col_kstart[column] : self.col_kstart[column + 1]].tolist()
        return [(x >> 32, x & 0xFFFFFFFF) for x in items]

    @property
    def n_columns(self) -> int:
        return int(self.cnt[_N_COLS])

    def parse_terminals(self, terminals: list[int]) -> bool:
        """Whether a whole terminal sequence is a sentence (a test helper)."""
        c = self.initial
        for t in terminals:
            c = self.advance(c, t)
            if c < 0:
                return False
        return self.accepting(c)


@numba.njit(cache=True, nogil=True)
def _closure_tables(rule_start, dnext, dlhs, nullable, nt0, with_reach):  # type: ignore[no-untyped-def]
    """Per nonterminal, the dotted rules a prediction of it adds (its own rules' starts, advanced over
    nullable symbols, and those of every nonterminal they predict in turn), sorted by (symbol after the
    dot, dotted rule): ``cl_start``/``cl_item``; the terminals those expect, ascending: ``ce_start``/
    ``ce_terms``; and, if ``with_reach``, the left-corner reach as bits (row ``y``: the nonterminals a
    prediction from ``y`` reaches, ``y`` included; else no rows). Closures are least fixpoints, iterated in
    depth-first postorder of the prediction graph (one pass and a check, unless it has cycles)."""
    n_nt = nullable.shape[0]
    n_rules = rule_start.shape[0] - 1
    n_items = dnext.shape[0]
    # each rule's start, advanced over nullable symbols: the items its left-hand side predicts directly
    in_direct = np.zeros(n_items, np.bool_)
    for r in range(n_rules):
        d = rule_start[r]
        in_direct[d] = True
        while dnext[d] >= nt0 and nullable[dnext[d] - nt0]:
            d += 1
            in_direct[d] = True
    # rank items by (symbol after the dot, item): a counting sort on the symbol, items ascending within
    n_sym = nt0 + n_nt + 1
    sym_start = np.zeros(n_sym + 1, np.int64)
    for d in range(n_items):
        if in_direct[d]:
            sym_start[dnext[d] + 2] += 1
    for x in range(n_sym):
        sym_start[x + 1] += sym_start[x]
    n_ranked = sym_start[n_sym]
    ranked = np.empty(n_ranked, np.int64)
    rank = np.full(n_items, -1, np.int64)
    for d in range(n_items):
        if in_direct[d]:
            k = sym_start[dnext[d] + 1]
            sym_start[dnext[d] + 1] += 1
            ranked[k] = d
            rank[d] = k
    words = max(1, (n_ranked + 63) // 64)
    bits = np.zeros((n_nt, words), np.uint64)
    reach_words = (n_nt + 63) // 64 if with_reach else 1
    reach = np.zeros((n_nt if with_reach else 0, reach_words), np.uint64)
    # prediction edges: nonterminal -> the nonterminals after the dots of its direct items
    edge_start = np.zeros(n_nt + 1, np.int64)
    for d in range(n_items):
        if in_direct[d] and dnext[d] >= nt0:
            edge_start[dlhs[d] - nt0 + 1] += 1
    for i in range(n_nt):
        edge_start[i + 1] += edge_start[i]
    edges = np.empty(edge_start[n_nt], np.int64)
    fill = edge_start[:n_nt].copy()
    for d in range(n_items):
        if in_direct[d]:
            i = dlhs[d] - nt0
            k = rank[d]
            bits[i, k >> 6] |= np.uint64(1) << np.uint64(k & 63)
            if dnext[d] >= nt0:
                edges[fill[i]] = dnext[d] - nt0
                fill[i] += 1
    if with_reach:
        for i in range(n_nt):
            reach[i, i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    # depth-first postorder over the prediction edges
    order = np.empty(n_nt, np.int64)
    n_order = 0
    seen = np.zeros(n_nt, np.bool_)
    stack = np.empty(n_nt, np.int64)
    pos = np.empty(n_nt, np.int64)
    for root in range(n_nt):
        if seen[root]:
            continue
        seen[root] = True
        stack[0] = root
        pos[0] = edge_start[root]
        top = 1
        while top:
            v = stack[top - 1]
            if pos[top - 1] < edge_start[v + 1]:
                w = edges[pos[top - 1]]
                pos[top - 1] += 1
                if not seen[w]:
                    seen[w] = True
                    stack[top] = w
                    pos[top] = edge_start[w]
                    top += 1
            else:
                order[n_order] = v
                n_order += 1
                top -= 1
    changed = True
    while changed:
        changed = False
        for v in order:
            for e in range(edge_start[v], edge_start[v + 1]):
                w = edges[e]
                if w == v:
                    continue
                for k in range(words):
                    x = bits[v, k] | bits[w, k]
                    if x != bits[v, k]:
                        bits[v, k] = x
                        changed = True
                if with_reach:
                    for k in range(reach_words):
                        x = reach[v, k] | reach[w, k]
                        if x != reach[v, k]:
                            reach[v, k] = x
                            changed = True
    # closures as item lists, rows in order, ranks ascending; expected terminals deduplicated in passing
    cl_start = np.zeros(n_nt + 1, np.int64)
    for i in range(n_nt):
        c = 0
        for k in range(words):
            x = bits[i, k]
            while x:
                x &= x - np.uint64(1)
                c += 1
        cl_start[i + 1] = cl_start[i] + c
    cl_item = np.empty(cl_start[n_nt], np.int64)
    ce_start = np.zeros(n_nt + 1, np.int64)
    ce_terms = np.empty(cl_start[n_nt], np.int64)
    n_ce = 0
    j = 0
    for i in range(n_nt):
        last = -1
        for k in range(words):
            x = bits[i, k]
            while x:
                low = x & (~x + np.uint64(1))
                b = 0
                while (low >> np.uint64(b)) != np.uint64(1):
                    b += 1
                x ^= low
                d = ranked[k * 64 + b]
                cl_item[j] = d
                j += 1
                s = dnext[d]
                if 0 <= s < nt0 and s != last:
                    ce_terms[n_ce] = s
                    n_ce += 1
                    last = s
        ce_start[i + 1] = n_ce
    return cl_start, cl_item, ce_start, ce_terms[:n_ce].copy(), reach


def _pow2(n: int) -> int:
    return 1 << max(4, (int(n) - 1).bit_length())


def _grown(a: Any, size: int) -> Any:
    out = np.zeros(size, a.dtype)
    out[: a.shape[0]] = a
    return out


@numba.njit(cache=True, nogil=True)
def _rehash_ids_nb(old, hashes, new):  # type: ignore[no-untyped-def]
    mask = new.shape[0] - 1
    for i in range(old.shape[0]):
        c = old[i]
        if c >= 0:
            j = hashes[c] & mask
            while new[j] != -1:
                j = (j + 1) & mask
            new[j] = c


def _rehash_ids(old: I64, hashes: I64, size: int) -> I64:
    new = np.full(size, -1, np.int64)
    _rehash_ids_nb(old, hashes, new)
    return new


def expected_mask(parser: EarleyParser, column: int) -> npt.NDArray[np.bool_]:
    """Boolean mask over terminals expected at ``column`` (debugging aid)."""
    m = np.zeros(parser.n_terms, dtype=bool)
    m[list(parser.expected(column))] = True
    return m


def _view_table(size: int) -> npt.NDArray[np.int64]:
    """An empty table of origin views (see :func:`_rep`), a row per slot: hash, column (-1: free), nonterminal."""
    table = np.zeros((size, 3), np.int64)
    table[:, 1] = -1
    return table


def _rep_table(size: int) -> npt.NDArray[np.int64]:
    """An empty memo of :func:`_rep`, a row per slot: key (``column << 20 | nonterminal``), answer."""
    return np.full((size, 2), EMPTY_KEY, np.int64)


@numba.njit(cache=True, nogil=True)
def _rehash_views(vt, new):  # type: ignore[no-untyped-def]
    mask = new.shape[0] - 1
    for i in range(vt.shape[0]):
        if vt[i, 1] >= 0:
            j = vt[i, 0] & mask
            while new[j, 1] != -1:
                j = (j + 1) & mask
            new[j] = vt[i]


@numba.njit(cache=True, nogil=True)
def _rehash_reps(rt, new):  # type: ignore[no-untyped-def]
    mask = new.shape[0] - 1
    for i in range(rt.shape[0]):
        if rt[i, 0] != EMPTY_KEY:
            j = _slot(rt[i, 0], mask)
            while new[j, 0] != EMPTY_KEY:
                j = (j + 1) & mask
            new[j] = rt[i]


_growth_kernels_loaded = False
_step_kernel_loaded = False


def _load_step_kernel(parser: EarleyParser) -> None:
    """Load :func:`_steps` with the first parser of a process, on no requests: a JSON schema's first mask
    paid its 15 ms (a Lark or GBNF compile makes its first mask, which loads it)."""
    global _step_kernel_loaded
    if _step_kernel_loaded:
        return
    none = np.zeros(0, np.int64)
    _steps(none, none, parser.state(), parser.pkeys, parser.pvals, np.empty(0, np.int64))
    _step_kernel_loaded = True


def _load_growth_kernels() -> None:
    """Run the table-growth kernels once on tiny tables. Loading them from numba's cache takes 3-5 ms
    each; without this, the mask computation that first grows a parser in a process paid all of it (a
    13-16 ms token), where the first parser built now does."""
    global _growth_kernels_loaded
    if _growth_kernels_loaded:
        return
    _rehash_ids_nb(np.full(16, -1, np.int64), np.zeros(4, np.int64), np.full(32, -1, np.int64))
    _rehash_views(_view_table(16), _view_table(32))
    _rehash_reps(_rep_table(16), _rep_table(32))
    table_rehash(np.full(16, EMPTY_KEY, np.int64), np.full(16, -1, np.int64), np.full(32, EMPTY_KEY, np.int64),
                 np.full(32, -1, np.int64))
    _growth_kernels_loaded = True
