"""Reuse of grammar masks across parser states that look the same to the mask computation.

A grammar state's mask is computed from its lexer threads ``(column, lexer state)`` by asking the
Earley parser a few questions: the column after a terminal (or none), the union of two columns, and
the expected-terminal set (``eid``) of each column. Parser columns keep their derivation history, so
most new states have new columns even where the grammar is in a familiar place (the fifth nested
subquery, the third argument list): in the SQL grammar 12,674 mask computations gave 588 distinct
masks. The computation reads columns only through those answers, so if the answers for a new state
match the ones a past computation got, its mask is the same.

An *observation* records, relative to a state's distinct columns (its *roots*, numbered ``0..R-1``),
every question the computation asked, in the order asked: ``(kind, x, y, r)`` with ``kind`` ``ADVANCE``
(column ``x`` and terminal ``y``) or ``UNION`` (columns ``x`` and ``y``), where columns are numbered as
first seen and ``r`` numbers the answer (``-1``: no column). It also keeps the ``eid`` of each numbered
column. Replaying it on another state with the same lexer states asks the same questions of that
state's columns; the mask is reused only if every answer agrees: the same dead ends, the same
``eid``s, and the same columns equal to each other. Then a run of the computation on the new state,
renaming columns, makes the same questions and gets the same answers, so it computes the same mask
(the order of threads may differ, which the computation does not depend on). Reuse is exact, never
approximate.
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from constrain.earley import (
    _NEED_ROOM,
    _UNION_FLAG,
    EMPTY_KEY,
    UNION_MISS,
    UNKNOWN,
    _set_add,
    request_key,
    step1,
    table_get,
    table_put,
)

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]

ADVANCE = 0
UNION = 1
LOG_CAPACITY = 4096
"""Parser facts one mask computation may log; a computation that reads more is not kept for reuse."""
MATCH, MISMATCH, MISS = 1, 0, 2


@numba.njit(cache=True, nogil=True)
def observation(roots, log_key, log_val, n_log, n_terms1, col_eid):  # type: ignore[no-untyped-def]
    """Turn a log of memo entries (absolute columns) into relative questions ``ops [n, 4]`` and the
    ``eid`` of each numbered column; ``ops`` is empty with ``ok[0] = 0`` if a question names a column
    that was never seen (not expected: every walk starts from known columns)."""
    cap = 1
    while cap < 4 * (roots.shape[0] + n_log + 1):
        cap *= 2
    number_key = np.full(cap, EMPTY_KEY, np.int64)  # column -> its number (the memo table's layout)
    number_val = np.empty(cap, np.int64)
    cols = np.empty(roots.shape[0] + n_log, np.int64)
    n = 0
    ops = np.empty((n_log, 4), np.int64)
    ok = np.ones(1, np.int64)
    for i in range(roots.shape[0] + n_log):
        kind = x = y = -1
        if i < roots.shape[0]:
            c = roots[i]
        else:
            key = log_key[i - roots.shape[0]]
            c = log_val[i - roots.shape[0]]
            if key & _UNION_FLAG:
                kind = UNION
                x = table_get(number_key, number_val, (key ^ _UNION_FLAG) >> np.int64(31))
                y = table_get(number_key, number_val, key & np.int64(0x7FFFFFFF))
            else:
                kind = ADVANCE
                x = table_get(number_key, number_val, key // n_terms1)
                y = key % n_terms1
            if x < 0 or y < 0:  # the column(s) asked about must be numbered already
                ok[0] = 0
                return ops[:0], cols[:0], ok
        r = -1
        if c >= 0:
            r = table_get(number_key, number_val, c)
            if r < 0:
                table_put(number_key, number_val, c, n)
                cols[n] = c
                r = n
                n += 1
        if kind >= 0:
            j = i - roots.shape[0]
            ops[j, 0] = kind
            ops[j, 1] = x
            ops[j, 2] = y
            ops[j, 3] = r
    eids = np.empty(n, np.int64)
    for k in range(n):
        eids[k] = col_eid[cols[k]]
    return ops, eids, ok


@numba.njit(cache=True, nogil=True)
def replay(roots, ops, eids, pkeys, pvals, n_terms1, P, write, misses, nmiss):  # type: ignore[no-untyped-def]
    """Ask ``ops`` of the columns ``roots``: MATCH if every answer agrees with the observation, MISMATCH
    if one does not, MISS if the parser lacks a step (recorded in ``misses``; with ``write`` the caller
    holds the parser's lock and missing steps are computed here)."""
    col_eid = P[21]
    cols = np.empty(eids.shape[0], np.int64)
    size = 16
    while size < 2 * eids.shape[0]:
        size *= 2
    seen = np.full(size, -1, np.int64)  # the columns numbered so far
    n = roots.shape[0]
    for i in range(n):
        if col_eid[roots[i]] != eids[i]:
            return MISMATCH
        cols[i] = roots[i]
        _set_add(seen, roots[i])
    for k in range(ops.shape[0]):
        kind = ops[k, 0]
        a = cols[ops[k, 1]]
        if kind == ADVANCE:
            step = ops[k, 2]
        else:  # a union, named as step1 and the misses name it
            b = cols[ops[k, 2]]
            a, step = min(a, b), UNION_MISS - max(a, b)
        v = table_get(pkeys, pvals, request_key(a, step, n_terms1))
        if v == UNKNOWN and write:
            v = step1(P, a, step, pkeys, pvals)
            if v == _NEED_ROOM:
                v = UNKNOWN
        if v == UNKNOWN:
            misses[0, 0] = a
            misses[0, 1] = step
            nmiss[0] = 1
            return MISS
        r = ops[k, 3]
        if r < 0 or v < 0:  # a dead end must be one in both
            if (r < 0) != (v < 0):
                return MISMATCH
            continue
        if r < n:
            if cols[r] != v:
                return MISMATCH
            continue
        if col_eid[v] != eids[r]:
            return MISMATCH
        if not _set_add(seen, v):  # a column first seen here must be new here too
            return MISMATCH
        cols[n] = v
        n += 1
    return MATCH


_WINDOW = 32
"""Lookups over which :meth:`ObservedMasks.observing` judges whether observing pays."""
_MIN_HIT_RATE = 8
"""A window pays if at least one lookup in this many found a mask."""
_FIRST_PAUSE, _MAX_PAUSE = 16, 1024
"""Lookups that skip observation after a window that did not pay, doubled after each such window in a row."""


class ObservedMasks:
    """Masks kept with the observation that computed them, found by (thread shape, root ``eid``s).

    Observing costs every computation (a key, replays of the candidates, the record) and pays only where
    states recur with new columns (nested grammars: most lookups find a mask), not where they rarely do
    (most JSON schemas): after a window of lookups with few finds, observation pauses, longer after each
    such window in a row.

    Bounded in bytes (observations and the distinct masks they hold): past ``max_bytes`` everything is
    dropped and collected again, which costs only recomputation."""

    def __init__(self, max_bytes: int = 64 << 20, per_key: int = 32, observe_after: int = 0) -> None:
        self._lookups = 0  # in this window (updated without a lock: a lost count only shifts a window)
        self._finds = 0
        self._paused = observe_after  # lookups skipped before the first window (see GrammarAutomaton)
        self._pause = _FIRST_PAUSE
        self._entries: dict[tuple[Any, ...], list[tuple[I64, I64, U32]]] = {}
        self._max_bytes = max_bytes
        self._bytes = 0
        self._per_key = per_key
        self._masks: dict[bytes, U32] = {}  # equal masks share memory
        self.reused = 0
        """Masks found by replay (for tests and statistics)."""
        self._lock = threading.Lock()

    @staticmethod
    def key(cols: I64, gs: I64, col_eid: I64) -> tuple[tuple[Any, ...], I64]:
        """(lookup key, roots) of a state's threads (sorted by column). In Python: states hold a few
        threads, where numpy's per-call cost is most of the work."""
        roots: list[int] = []
        inverse: list[int] = []
        for c in cols.tolist():
            if not roots or roots[-1] != c:
                roots.append(c)
            inverse.append(len(roots) - 1)
        return (tuple(inverse), gs.tobytes(), tuple(col_eid[roots].tolist())), np.array(roots, np.int64)

    def observing(self) -> bool:
        """Whether to look this state up and record its computation (False while paused)."""
        if self._max_bytes == 0:
            return False
        if self._paused > 0:
            self._paused -= 1
            return False
        return True

    def looked_up(self, found: bool) -> None:
        self._lookups += 1
        self._finds += found
        if self._lookups >= _WINDOW:
            if self._finds * _MIN_HIT_RATE < self._lookups:
                self._paused = self._pause
                self._pause = min(2 * self._pause, _MAX_PAUSE)
            else:
                self._pause = _FIRST_PAUSE
            self._lookups = self._finds = 0

    def candidates(self, key: tuple[Any, ...]) -> list[tuple[I64, I64, U32]]:
        return list(self._entries.get(key, ()))  # a copy: other threads may reorder the list

    def matched(self, key: tuple[Any, ...], i: int) -> None:
        """Entry ``i`` of ``key`` matched: try it first next time."""
        with self._lock:
            self.reused += 1
            entries = self._entries.get(key)
            if entries is not None and 0 < i < len(entries):
                entries.insert(0, entries.pop(i))

    def add(self, key: tuple[Any, ...], ops: I64, eids: I64, mask: U32) -> None:
        if self._max_bytes == 0:
            return
        ops = ops.astype(np.int32)  # kinds, column numbers, terminals: small
        with self._lock:
            content = mask.tobytes()
            shared = self._masks.get(content)
            if shared is None:
                shared = self._masks[content] = mask
                self._bytes += int(mask.nbytes)
            entries = self._entries.setdefault(key, [])
            entries.append((ops, eids, shared))
            self._bytes += int(ops.nbytes + eids.nbytes) + 64
            if len(entries) > self._per_key:
                dropped = entries.pop(-2)
                self._bytes -= int(dropped[0].nbytes + dropped[1].nbytes) + 64
            if self._bytes > self._max_bytes:
                self._entries.clear()
                self._masks.clear()
                self._bytes = 0
