"""Byte-level DFAs built from code-point regex trees, UTF-8 correct.

Pipeline: regex tree -> partition of the code points into classes -> Thompson NFA over classes ->
subset construction (a DFA over code-point classes) -> UTF-8 expansion (each class transition becomes
byte paths; shared continuation states are reused) -> trim (drop states that cannot reach acceptance)
-> minimise. The result, :class:`ByteDFA`, is an ``int32[n_states, 256]`` table (``-1`` = dead) with
start state 0: the integer table the numba token walks run over.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache, partial

import numba
import numpy as np
import numpy.typing as npt

from constrain.errors import LimitError
from constrain.regex import Alt, CharSet, Node, Ranges, Repeat, Seq, normalize

MAX_NFA_STATES = 400_000
MAX_DFA_STATES = 50_000
PRUNE_AFTER = 250
"""Sets the plain subset construction makes before it may start over with simulation-pruned sets: below
it, no regex pays for the simulation (measured on the regex corpus and JSON-Schema patterns: pruning from
the start was never slower, by 1.1x at worst, once the rule below is applied)."""
PRUNE_AFTER_PER_KERNEL_STATE = 1
"""And sets per kernel NFA state: a nearly deterministic NFA (bounded repeats) makes about one per kernel
state, and simulating its kernel cost up to 4x the whole plain construction."""
MAX_SIMULATION_STATES = 10_000
"""Most kernel NFA states (start and edge targets) whose simulation preorder is computed: two n x n bit
matrices, and about 4 s at 10,000 states (0.3 s at 3,000)."""
_SURROGATES = (0xD800, 0xDFFF)


# ---------------------------------------------------------------- UTF-8
def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8")


def utf8_sequences(lo: int, hi: int) -> list[tuple[tuple[int, int], ...]]:
    """Byte-range sequences whose concatenations are exactly the UTF-8 encodings of code points lo..hi.

    Surrogates are skipped (they have no UTF-8 encoding). Each sequence is a tuple of inclusive byte
    ranges; every byte string in its cross product is one encoded code point of the range.
    """
    out: list[tuple[tuple[int, int], ...]] = []
    stack = [(lo, hi)]
    while stack:
        a, b = stack.pop()
        if a > b:
            continue
        if a <= _SURROGATES[1] and b >= _SURROGATES[0]:
            stack.append((a, _SURROGATES[0] - 1))
            stack.append((_SURROGATES[1] + 1, b))
            continue
        split = False
        for bound in (0x7F, 0x7FF, 0xFFFF):
            if a <= bound < b:
                stack.append((a, bound))
                stack.append((bound + 1, b))
                split = True
                break
        if split:
            continue
        if b <= 0x7F:
            out.append(((a, b),))
            continue
        for i in range(1, 4):
            m = (1 << (6 * i)) - 1
            if (a & ~m) != (b & ~m):
                if a & m:
                    stack.append((a, a | m))
                    stack.append(((a | m) + 1, b))
                    split = True
                    break
                if (b & m) != m:
                    stack.append((a, (b & ~m) - 1))
                    stack.append((b & ~m, b))
                    split = True
                    break
        if split:
            continue
        ea, eb = _encode(a), _encode(b)
        out.append(tuple((x, y) for x, y in zip(ea, eb)))
    return out


# ---------------------------------------------------------------- the byte DFA
@lru_cache(maxsize=16)
def _missing_bytes(alphabet: bytes) -> npt.NDArray[np.intp]:
    """The bytes an alphabet (a bool[256] as bytes) leaves out, as indices (usually none or a few)."""
    return np.flatnonzero(np.frombuffer(alphabet, np.bool_) == 0)


@dataclass(eq=False)
class ByteDFA:
    """A deterministic automaton over bytes: ``trans[s, b]`` is the next state or -1; start state 0."""

    trans: npt.NDArray[np.int32]
    accepting: npt.NDArray[np.bool_]
    _key: str | None = field(default=None, repr=False)
    _restricted: dict[bytes, tuple[ByteDFA | None]] = field(default_factory=dict, repr=False)
    """:meth:`restricted` results by alphabet (terminal DFAs are shared by every grammar that uses them)."""

    @property
    def n_states(self) -> int:
        return int(self.trans.shape[0])

    @property
    def is_empty(self) -> bool:
        """True if the language is empty (trimmed DFAs then have no state at all)."""
        return self.n_states == 0

    @property
    def matches_empty(self) -> bool:
        return self.n_states > 0 and bool(self.accepting[0])

    def accepts(self, data: bytes) -> bool:
        """Whether ``data`` is in the language."""
        s = self.run(data, 0)
        return s >= 0 and bool(self.accepting[s])

    def is_prefix(self, data: bytes) -> bool:
        """Whether ``data`` can be extended to a string of the language (on a trimmed DFA)."""
        return self.run(data, 0) >= 0

    def run(self, data: bytes, state: int = 0) -> int:
        """The state after ``data`` from ``state``, or -1."""
        if self.n_states == 0:
            return -1
        t = self.trans
        for b in data:
            state = int(t[state, b])
            if state < 0:
                return -1
        return state

    @cached_property
    def runs(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The rows as runs of equal targets (:func:`_all_runs`), for language classes: a DFA that lexeme walks
        are derived from is compared with many others, and listing its runs read all its 256-byte rows."""
        return _all_runs(self.trans)  # type: ignore[no-any-return]

    @cached_property
    def key(self) -> str:
        """A content hash: equal for equal tables (caches share work across constraints by it). Two 64-bit
        hashes of the live transitions and the acceptance (:func:`_table_hash`): 4-5x faster than SHA-1
        of the whole table, which cost 14 us for a property name's DFA (about 14 new DFAs per schema)."""
        if self._key is None:
            h1, h2 = _table_hash(self.trans, self.accepting)
            self._key = f"{self.trans.shape[0]}:{int(h1):016x}{int(h2):016x}"
        return self._key

    def without_empty(self) -> ByteDFA:
        """The same language minus the empty string."""
        if not self.matches_empty:
            return self
        n = self.n_states
        trans = np.vstack([self.trans, self.trans[0:1]])
        acc = np.concatenate([self.accepting, [False]])
        # new start = copy of 0 that is not accepting; move it to index 0 by swapping 0 and n
        perm = np.arange(n + 1)
        perm[0], perm[n] = n, 0
        inv = np.empty_like(perm)
        inv[perm] = np.arange(n + 1)
        t2 = trans[perm]
        t2 = np.where(t2 >= 0, inv[np.maximum(t2, 0)], -1).astype(np.int32)
        return trim_and_minimize(t2, acc[perm])

    def restricted(self, alphabet: npt.NDArray[np.bool_]) -> ByteDFA:
        """The sub-language whose strings only use bytes with ``alphabet[b]`` (then trimmed, minimal)."""
        if self.n_states == 0:
            return self
        key = alphabet.tobytes()
        known = self._restricted.get(key)
        if known is not None:
            return known[0] or self
        result = None  # the language already avoids those bytes (None: no reference cycle to itself)
        bad = _missing_bytes(key)
        if len(bad) and (self.trans[:, bad] >= 0).any():
            trans = self.trans.copy()
            trans[:, bad] = -1
            result = trim_and_minimize(trans, self.accepting)
        if len(self._restricted) >= 4:
            self._restricted.clear()
        self._restricted[key] = (result,)
        return result or self

    def shortest_matches(self) -> ByteDFA:
        """Only the strings none of whose proper prefixes is in the language (no transitions out of
        accepting states): the first-match language of a lazy pattern such as ``/\\*.*?\\*/``."""
        if self.n_states == 0 or not (self.trans[self.accepting] >= 0).any():
            return self
        trans = self.trans.copy()
        trans[self.accepting] = -1
        return trim_and_minimize(trans, self.accepting)

    def intersect(self, other: ByteDFA) -> ByteDFA:
        """The DFA of strings in both languages (product construction over reachable pairs)."""
        if self.n_states == 0 or other.n_states == 0:
            return trim_and_minimize(np.zeros((0, 256), np.int32), np.zeros(0, bool))
        trans, acc = _product(self.trans, self.accepting, other.trans, other.accepting, MAX_DFA_STATES, False)
        if trans.shape[0] > MAX_DFA_STATES:
            raise LimitError(f"intersection too large: more than {MAX_DFA_STATES} DFA states")
        return trim_and_minimize(trans, acc)

    def difference(self, other: ByteDFA) -> ByteDFA:
        """The DFA of strings in this language and not in ``other``: the product with ``other`` completed by
        a sink and with acceptance flipped (its complement, left unminimised: the product is minimised)."""
        n = other.n_states
        if self.n_states == 0 or n == 0:
            return self
        trans = np.where(other.trans >= 0, other.trans, n).astype(np.int32)
        trans = np.concatenate([trans, np.full((1, 256), n, np.int32)])
        accepting = np.concatenate([~other.accepting, np.ones(1, np.bool_)])
        return self.intersect(ByteDFA(trans, accepting))

    def union(self, other: ByteDFA, limit: int = MAX_DFA_STATES) -> ByteDFA:
        """The DFA of strings in either language (product over reachable pairs, a missing side is dead)."""
        if self.n_states == 0:
            return other
        if other.n_states == 0:
            return self
        trans, acc = _product(self.trans, self.accepting, other.trans, other.accepting, limit, True)
        if trans.shape[0] > limit:
            raise LimitError(f"union too large: more than {limit} DFA states")
        return trim_and_minimize(trans, acc)

    def to_dict(self) -> dict[str, object]:
        return {"trans": self.trans.tolist(), "accepting": self.accepting.tolist()}


@numba.njit(cache=True, nogil=True)
def mix(h1, h2, v):  # type: ignore[no-untyped-def]
    """One step of the two 64-bit hash chains the content keys here use (multiply, xor-shift)."""
    h1 = (h1 ^ v) * np.uint64(0xFF51AFD7ED558CCD)
    h1 ^= h1 >> np.uint64(31)
    h2 = (h2 + v) * np.uint64(0xC4CEB9FE1A85EC53)
    h2 ^= h2 >> np.uint64(29)
    return h1, h2


HASH_SEEDS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))
"""The starting values of :func:`mix`'s two chains."""


@numba.njit(cache=True, nogil=True)
def _table_hash(trans, accepting):  # type: ignore[no-untyped-def]
    """Two 64-bit hashes of a DFA table: each state's acceptance, then its live transitions (byte, target)."""
    h1, h2 = HASH_SEEDS
    for s in range(trans.shape[0]):
        h1, h2 = mix(h1, h2, (np.uint64(s) << np.uint64(2)) | np.uint64(2 if accepting[s] else 1))
        for b in range(256):
            t = trans[s, b]
            if t >= 0:
                h1, h2 = mix(h1, h2, (np.uint64(t) << np.uint64(12)) | np.uint64((b << 1) | 1) << np.uint64(2))
    return h1, h2


def trim_and_minimize(trans: npt.NDArray[np.int32], accepting: npt.NDArray[np.bool_]) -> ByteDFA:
    """Drop unreachable and dead states, merge equivalent ones, renumber in BFS order from start 0."""
    trans = np.ascontiguousarray(trans, dtype=np.int32)
    accepting = np.ascontiguousarray(accepting, dtype=np.bool_)
    if trans.shape[0] == 0:
        return ByteDFA(np.zeros((0, 256), np.int32), np.zeros(0, bool))
    out, out_acc = _trim_minimize_bytes(trans, accepting)
    return ByteDFA(out, out_acc)


@numba.njit(cache=True, nogil=True)
def _trim_minimize_bytes(trans, accepting):  # type: ignore[no-untyped-def]
    """:func:`_trim_minimize` over classes of bytes that every state treats alike (a JSON string's DFA
    has about ten), then back to bytes. Classes are numbered by their smallest byte, so the breadth-first
    numbering of the result is the one a byte-level minimisation gives."""
    n = trans.shape[0]
    col_hash = np.full(256, np.uint64(0x9E3779B97F4A7C15))
    for s in range(n):  # row by row: 256 independent hash chains, in memory order
        for b in range(256):
            h = (col_hash[b] ^ np.uint64(trans[s, b] + 2)) * np.uint64(0xFF51AFD7ED558CCD)
            col_hash[b] = h ^ (h >> np.uint64(31))
    class_of = np.empty(256, np.int64)
    rep = np.empty(256, np.int64)  # the smallest byte of each class
    k = 0
    for b in range(256):
        found = -1
        for c in range(k):
            r = rep[c]
            if col_hash[r] == col_hash[b]:
                same = True
                for s in range(n):
                    if trans[s, r] != trans[s, b]:
                        same = False
                        break
                if same:
                    found = c
                    break
        if found < 0:
            rep[k] = b
            found = k
            k += 1
        class_of[b] = found
    small = np.empty((n, k), np.int32)
    for s in range(n):
        for c in range(k):
            small[s, c] = trans[s, rep[c]]
    out_small, out_acc = _trim_minimize(small, accepting)
    out = np.empty((out_small.shape[0], 256), np.int32)
    for s in range(out_small.shape[0]):
        for b in range(256):
            out[s, b] = out_small[s, class_of[b]]
    return out, out_acc


@numba.njit(cache=True, nogil=True)
def state_language_key(trans, accepting, start):  # type: ignore[no-untyped-def]
    """Two 64-bit hashes of the language of ``start`` in a minimal, trimmed DFA: its reachable part
    numbered in breadth-first, byte order is the language's canonical automaton, so equal languages
    (from any DFAs) hash equal. Length-bounded strings share their tails this way: "at most 7 more
    characters" is one state whether the bound was 10 or 50."""
    h1, h2, _ = bounded_language_key(trans, accepting, start, trans.shape[0])
    return h1, h2


@numba.njit(cache=True, nogil=True)
def bounded_language_key(trans, accepting, start, cap):  # type: ignore[no-untyped-def]
    """:func:`state_language_key` and how many states ``start`` reaches, or ``cap + 1`` (and no key) once
    it reaches more than ``cap``: one breadth-first pass where the caller would count, then hash."""
    ids = np.full(trans.shape[0], -1, np.int64)
    order = np.empty(trans.shape[0], np.int64)
    ids[start] = 0
    order[0] = start
    n = 1
    k = 0
    h1, h2 = HASH_SEEDS
    while k < n:
        s = order[k]
        k += 1
        h1, h2 = mix(h1, h2, np.uint64(2 if accepting[s] else 1))
        for b in range(256):
            t = trans[s, b]
            if t < 0:
                continue
            if ids[t] < 0:
                if n >= cap:
                    return np.int64(0), np.int64(0), cap + 1
                ids[t] = n
                order[n] = t
                n += 1
            h1, h2 = mix(h1, h2, np.uint64((ids[t] << 8) | b) + np.uint64(3))
    return np.int64(h1 >> np.uint64(1)), np.int64(h2 >> np.uint64(1)), n


@numba.njit(cache=True, nogil=True)
def _append_runs(trans, s, run_b, run_t, q):  # type: ignore[no-untyped-def]
    """Row ``s`` as runs of equal targets from ``q`` on: bytes ``run_b[k]..run_b[k+1]-1`` go to
    ``run_t[k]`` (-1: dead). Returns where the next row starts."""
    prev = -2
    for b in range(256):
        t = trans[s, b]
        if t != prev:
            run_b[q] = b
            run_t[q] = t
            q += 1
            prev = t
    return q


@numba.njit(cache=True, nogil=True)
def _all_runs(trans):  # type: ignore[no-untyped-def]
    """Every row as runs (see :func:`_append_runs`); row ``s`` is ``row_at[s]..row_at[s+1]-1``."""
    n = trans.shape[0]
    row_at = np.empty(n + 1, np.int64)
    row_b = np.empty(256, np.int64)
    row_t = np.empty(256, np.int64)
    q = 0
    for s in range(n):  # count first (a row at a time): most rows are a few runs, and n * 256 slots is megabytes
        row_at[s] = q
        q += _append_runs(trans, s, row_b, row_t, 0)
    row_at[n] = q
    run_b = np.empty(q, np.int64)
    run_t = np.empty(q, np.int64)
    for s in range(n):
        _append_runs(trans, s, run_b, run_t, row_at[s])
    return row_at, run_b, run_t


@numba.njit(cache=True, nogil=True)
def state_prefix_key(trans, accepting, start, depth, max_pairs):  # type: ignore[no-untyped-def]
    """Two 64-bit hashes of what ``start`` does with strings of at most ``depth`` bytes: which of them keep
    the DFA live, and which are accepted. A token-trie walk from ``start`` (tries no deeper than ``depth``)
    reads nothing else, so states whose languages differ only further on share this key: "at most 300
    more characters" and "any number of characters" are one key at depth 128.

    The key is a Merkle hash of that finite tree, bottom up: a state ``r`` bytes below ``start`` hashes its
    acceptance and, unless ``r == depth``, its live bytes as maximal byte ranges with equal child hashes
    (ranges, so that a state costs its few distinct transitions, not 256 bytes, at every depth). It is a
    function of the depth-bounded language alone, whatever the DFA. Returns ``(0, 0, False)`` when the
    (state, depth) pairs met exceed ``max_pairs``."""
    n = trans.shape[0]
    m1 = np.uint64(0xFF51AFD7ED558CCD)
    m2 = np.uint64(0xC4CEB9FE1A85EC53)
    # each met state's transitions as runs of equal targets: bytes run_b[k]..run_b[k+1]-1 go to run_t[k]
    run_at = np.full(n, -1, np.int64)
    run_b = np.empty(1024, np.int64)
    run_t = np.empty(1024, np.int64)
    n_runs = 0
    layer_states = np.empty(max_pairs, np.int64)
    layer_off = np.zeros(depth + 2, np.int64)
    seen_at = np.full(n, -1, np.int64)  # the last layer a state joined
    layer_states[0] = start
    layer_off[1] = 1
    seen_at[start] = 0
    last = 0  # deepest non-empty layer
    for r in range(depth):
        lo = layer_off[r]
        hi = layer_off[r + 1]
        layer_off[r + 2] = hi
        for k in range(lo, hi):
            s = layer_states[k]
            if run_at[s] < 0:
                if n_runs + 257 > run_b.shape[0]:
                    grown_b = np.empty(2 * run_b.shape[0], np.int64)
                    grown_t = np.empty(2 * run_b.shape[0], np.int64)
                    grown_b[:n_runs] = run_b[:n_runs]
                    grown_t[:n_runs] = run_t[:n_runs]
                    run_b = grown_b
                    run_t = grown_t
                run_at[s] = n_runs
                n_runs = _append_runs(trans, s, run_b, run_t, n_runs)
                run_b[n_runs] = 256  # end marker (its target is never read)
                run_t[n_runs] = -1
                n_runs += 1
            q = run_at[s]
            while run_b[q] < 256:
                t = run_t[q]
                q += 1
                if t >= 0 and seen_at[t] != r + 1:
                    w = layer_off[r + 2]
                    if w >= max_pairs:
                        return np.int64(0), np.int64(0), False
                    seen_at[t] = r + 1
                    layer_states[w] = t
                    layer_off[r + 2] = w + 1
        if layer_off[r + 2] == hi:
            break
        last = r + 1
    # bottom up: hashes of layer r from those of layer r + 1 (found through pos_below)
    sig1 = np.zeros(layer_off[last + 1], np.uint64)
    sig2 = np.zeros(layer_off[last + 1], np.uint64)
    pos_below = np.full(n, -1, np.int64)
    for r in range(last, -1, -1):
        if r < last:
            for k in range(layer_off[r + 1], layer_off[r + 2]):
                pos_below[layer_states[k]] = k
        for k in range(layer_off[r], layer_off[r + 1]):
            s = layer_states[k]
            v = np.uint64(2 if accepting[s] else 1)
            h1 = (np.uint64(0x9E3779B97F4A7C15) ^ v) * m1
            h2 = (np.uint64(0xC2B2AE3D27D4EB4F) + v) * m2
            if r < last:
                q = run_at[s]
                open_b = -1  # the range being merged: its first byte and child hashes
                c1 = np.uint64(0)
                c2 = np.uint64(0)
                while True:
                    b = run_b[q]
                    t = run_t[q] if b < 256 else -1
                    d1 = sig1[pos_below[t]] if t >= 0 else np.uint64(0)
                    d2 = sig2[pos_below[t]] if t >= 0 else np.uint64(0)
                    if open_b >= 0 and (t < 0 or d1 != c1 or d2 != c2):  # close the open range before b
                        x = np.uint64((open_b << 9) | b)
                        h1 = (h1 ^ x ^ c1) * m1
                        h1 ^= h1 >> np.uint64(31)
                        h2 = (h2 + x + c2) * m2
                        h2 ^= h2 >> np.uint64(29)
                        open_b = -1
                    if b >= 256:
                        break
                    if t >= 0 and open_b < 0:
                        open_b = b
                        c1 = d1
                        c2 = d2
                    q += 1
            sig1[k] = h1 ^ (h1 >> np.uint64(33))
            sig2[k] = h2 ^ (h2 >> np.uint64(31))
    return np.int64(sig1[0] >> np.uint64(1)), np.int64(sig2[0] >> np.uint64(1)), True


@numba.njit(cache=True, nogil=True)
def _open_table(n):  # type: ignore[no-untyped-def]
    """An open-addressing table for up to ``n`` signatures, at most half full: the signatures, the entry
    owning each slot (-1: free) and the mask that wraps a probe (the size is a power of two)."""
    size = 16
    while size < 2 * n:
        size *= 2
    return np.empty(size, np.uint64), np.full(size, -1, np.int64), size - 1


@numba.njit(cache=True, nogil=True)
def _signature_hash(s, row_at, run_b, run_t, cls):  # type: ignore[no-untyped-def]
    """Hash of state ``s``'s class and the classes its bytes lead to (-1: dead), over its runs merged where
    neighbouring runs reach one class."""
    m1 = np.uint64(0xFF51AFD7ED558CCD)
    x = (np.uint64(cls[s]) + np.uint64(0x9E3779B97F4A7C15)) * m1
    last = -2
    for q in range(row_at[s], row_at[s + 1]):
        t = run_t[q]
        c = -1 if t < 0 else cls[t]
        if c != last:
            x = (x ^ np.uint64((run_b[q] << 32) + c + 1)) * m1
            x ^= x >> np.uint64(31)
            last = c
    return x


@numba.njit(cache=True, nogil=True)
def _same_successors(s, u, row_at, run_b, run_t, cls):  # type: ignore[no-untyped-def]
    """Whether every byte leads ``s`` and ``u`` to one class (or kills both), run by run."""
    i = row_at[s]
    j = row_at[u]
    while True:
        ts = run_t[i]
        tu = run_t[j]
        if (-1 if ts < 0 else cls[ts]) != (-1 if tu < 0 else cls[tu]):
            return False
        end_s = run_b[i + 1] if i + 1 < row_at[s + 1] else 256
        end_u = run_b[j + 1] if j + 1 < row_at[u + 1] else 256
        if end_s >= 256 and end_u >= 256:
            return True
        if end_s <= end_u:
            i += 1
        if end_u <= end_s:
            j += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _push_member(head, nxt, prv, c, s):  # type: ignore[no-untyped-def]
    """Put state ``s`` first in class ``c``'s list of members (see :func:`_moore_rounds`)."""
    nxt[s] = head[c]
    prv[s] = -1
    if head[c] >= 0:
        prv[head[c]] = s
    head[c] = s


@numba.njit(cache=True, nogil=True)
def _moore_rounds(row_at, run_b, run_t, accepting, max_rounds, rows):  # type: ignore[no-untyped-def]
    """Moore's refinement of the states (rows as runs, see :func:`_all_runs`): after round ``r`` two states
    share a class exactly when they agree on every string of at most ``r`` bytes (which are live, which
    accepted). Runs until a round changes nothing or ``max_rounds`` rounds (``-1``: no limit); returns the
    classes and the rounds done, and writes round ``r``'s classes to ``rows[r]`` where ``rows`` has that row.

    A round only revisits the states with a successor that changed class in the round before: the others
    still have the signature their class shares (a class that splits keeps its id for the part that did
    not move). A bounded string splits one state off its counter per round, so recomputing every
    signature every round cost its length times its size (18 ms for 3,573 states over 128 rounds). Class
    ids are stable, not dense."""
    n = accepting.shape[0]
    # predecessors of each state, each once
    pred_at = np.zeros(n + 1, np.int64)
    last = np.full(n, -1, np.int64)
    for s in range(n):
        for q in range(row_at[s], row_at[s + 1]):
            t = run_t[q]
            if t >= 0 and last[t] != s:
                last[t] = s
                pred_at[t + 1] += 1
    for t in range(n):
        pred_at[t + 1] += pred_at[t]
    preds = np.empty(pred_at[n], np.int64)
    fill = pred_at[:n].copy()
    last[:] = -1
    for s in range(n):
        for q in range(row_at[s], row_at[s + 1]):
            t = run_t[q]
            if t >= 0 and last[t] != s:
                last[t] = s
                preds[fill[t]] = s
                fill[t] += 1
    cls = np.empty(n, np.int32)
    _acceptance_classes(accepting, cls)
    next_id = 2  # ids 0 and 1 are the acceptance classes (one of them may be empty)
    # members of each class as a doubly linked list
    head = np.full(n + 2, -1, np.int64)
    nxt = np.empty(n, np.int64)
    prv = np.empty(n, np.int64)
    for s in range(n - 1, -1, -1):
        _push_member(head, nxt, prv, cls[s], s)
    if rows.shape[0]:
        rows[0] = cls
    is_dirty = np.ones(n, np.bool_)
    dirty = np.arange(n)
    n_dirty = n
    sig = np.empty(n, np.uint64)
    ref = np.full(n + 2, -2, np.int64)  # per class this round: a member that is not dirty (-1: none; -2: unseen)
    kept = np.zeros(n + 2, np.bool_)  # per class this round: a group already keeps its id
    touched = np.empty(n, np.int64)
    moved = np.empty(n, np.int64)
    moved_to = np.empty(n, np.int32)
    r = 0
    while n_dirty and r != max_rounds:
        r += 1
        for i in range(n_dirty):
            sig[dirty[i]] = _signature_hash(dirty[i], row_at, run_b, run_t, cls)
        size = 16
        while size < 2 * n_dirty:
            size *= 2
        mask = size - 1
        group_rep = np.full(size, -1, np.int64)
        group_id = np.empty(size, np.int32)
        n_touched = 0
        n_moved = 0
        for i in range(n_dirty):
            s = dirty[i]
            c = cls[s]
            if ref[c] == -2:
                m = head[c]
                while m >= 0 and is_dirty[m]:
                    m = nxt[m]
                ref[c] = m
                touched[n_touched] = c
                n_touched += 1
                if m >= 0:
                    sig[m] = _signature_hash(m, row_at, run_b, run_t, cls)
            m = ref[c]
            if m >= 0 and sig[m] == sig[s] and _same_successors(s, m, row_at, run_b, run_t, cls):
                continue  # the signature of the class's members that did not move: stays
            j = np.int64(sig[s] & np.uint64(mask))
            while group_rep[j] >= 0:
                u = group_rep[j]
                if cls[u] == c and sig[u] == sig[s] and _same_successors(s, u, row_at, run_b, run_t, cls):
                    break
                j = (j + 1) & mask
            if group_rep[j] < 0:
                group_rep[j] = s
                if m < 0 and not kept[c]:  # every member is dirty: the first group keeps the id
                    kept[c] = True
                    group_id[j] = c
                else:
                    group_id[j] = next_id
                    next_id += 1
            if group_id[j] != c:
                moved[n_moved] = s
                moved_to[n_moved] = group_id[j]
                n_moved += 1
        for k in range(n_touched):
            ref[touched[k]] = -2
            kept[touched[k]] = False
        for k in range(n_moved):  # after the round: signatures read the classes of the round before
            s = moved[k]
            c = cls[s]
            if prv[s] >= 0:
                nxt[prv[s]] = nxt[s]
            else:
                head[c] = nxt[s]
            if nxt[s] >= 0:
                prv[nxt[s]] = prv[s]
            cls[s] = moved_to[k]
            _push_member(head, nxt, prv, moved_to[k], s)
        for i in range(n_dirty):
            is_dirty[dirty[i]] = False
        n_dirty = 0
        for k in range(n_moved):
            t = moved[k]
            for q in range(pred_at[t], pred_at[t + 1]):
                p = preds[q]
                if not is_dirty[p]:
                    is_dirty[p] = True
                    dirty[n_dirty] = p
                    n_dirty += 1
        if r < rows.shape[0]:
            rows[r] = cls
        if n_moved == 0:
            break
    return cls, r


@numba.njit(cache=True, nogil=True)
def _acceptance_classes(accepting, out):  # type: ignore[no-untyped-def]
    """Round 0 of Moore's refinement into ``out``: class 1 accepting, 0 not."""
    for s in range(accepting.shape[0]):
        out[s] = 1 if accepting[s] else 0


@numba.njit(cache=True, nogil=True)
def joint_classes(runs_a, aa, runs_b, ab, max_length):  # type: ignore[no-untyped-def]
    """:func:`length_classes` of the states of two trimmed DFAs together, given as their runs
    (:attr:`ByteDFA.runs`) and acceptance: ``out[r, s]`` for state ``s`` of ``a``, ``out[r, len(a) + s]`` for
    state ``s`` of ``b``; equal classes in row ``r``, the same strings of at most ``r`` bytes (the last row:
    of every length, or of every length up to ``max_length``). Moore's rounds over ``b``'s runs appended to
    ``a``'s (targets shifted by ``a``'s size). A lexeme walk reads no more than the trie is deep, and below a
    trie node no more than its subtree is high: "at most 20 more characters" and "any string" differ only
    below the nodes of longer tokens, where one row (the languages cut at the trie's depth) told them apart
    at every node and so walked the whole trie."""
    row_a, b_a, t_a = runs_a
    row_b, b_b, t_b = runs_b
    na = row_a.shape[0] - 1
    nb = row_b.shape[0] - 1
    qa = row_a[na]
    row_at = np.empty(na + nb + 1, np.int64)
    row_at[:na] = row_a[:na]
    row_at[na:] = row_b + qa
    run_b = np.concatenate((b_a, b_b))
    run_t = np.concatenate((t_a, t_b))
    for q in range(qa, run_t.shape[0]):
        if run_t[q] >= 0:
            run_t[q] += na
    return length_classes((row_at, run_b, run_t), np.concatenate((aa, ab)), max_length)


@numba.njit(cache=True, nogil=True)
def length_classes(runs, accepting, max_length):  # type: ignore[no-untyped-def]
    """``out[r, s]``: a class of state ``s`` of a DFA given as its runs (:attr:`ByteDFA.runs`) such that two
    states share it exactly when they agree on every string of at most ``r`` bytes (which are live, which
    accepted), for ``r`` up to ``max_length`` or until the classes stop changing (then the last row holds
    for every longer ``r``): Moore's rounds (:func:`_moore_rounds`), one per byte of lookahead, every one
    kept."""
    row_at, run_b, run_t = runs
    out = np.empty((max_length + 1, accepting.shape[0]), np.int32)
    rounds = _moore_rounds(row_at, run_b, run_t, accepting, max_length, out)[1]
    return out[: rounds + 1].copy()


@numba.njit(cache=True, nogil=True)
def _product(ta, aa, tb, ab, limit, union):  # type: ignore[no-untyped-def]
    """Reachable pairs of the product automaton, -1 standing for a dead side. ``union``: a pair lives while
    either side does and accepts where either accepts; else both sides must live and accept. Stops
    (returning limit+1 rows) past ``limit`` states."""
    nb = tb.shape[0] + 1
    ids = numba.typed.Dict.empty(numba.int64, numba.int64)
    pa = [0]
    pb = [0]
    ids[nb + 1] = 0
    rows = [np.full(256, -1, np.int32)]
    i = 0
    while i < len(pa) and len(pa) <= limit:
        x = pa[i]
        y = pb[i]
        row = rows[i]
        prev_u = -2  # neighbouring bytes mostly go to the same pair: look it up once per run
        prev_v = -2
        j = -1
        for c in range(256):
            u = ta[x, c] if x >= 0 else -1
            v = tb[y, c] if y >= 0 else -1
            if (u >= 0 or v >= 0) if union else (u >= 0 and v >= 0):
                if u != prev_u or v != prev_v:
                    key = (u + 1) * nb + (v + 1)
                    j = ids.get(key, -1)
                    if j < 0:
                        j = len(pa)
                        ids[key] = j
                        pa.append(u)
                        pb.append(v)
                        rows.append(np.full(256, -1, np.int32))
                    prev_u = u
                    prev_v = v
                row[c] = j
        i += 1
    n = len(pa)
    out = np.empty((n, 256), np.int32)
    acc = np.zeros(n, np.bool_)
    for k in range(n):
        out[k] = rows[k]
        in_a = pa[k] >= 0 and aa[pa[k]]
        in_b = pb[k] >= 0 and ab[pb[k]]
        acc[k] = (in_a or in_b) if union else (in_a and in_b)
    return out, acc


@numba.njit(cache=True, nogil=True)
def _live_states(trans, accepting):  # type: ignore[no-untyped-def]
    """States reachable from 0 that can reach an accepting state."""
    n = trans.shape[0]
    width = trans.shape[1]
    reach = np.zeros(n, np.bool_)
    stack = np.empty(n, np.int64)
    reach[0] = True
    stack[0] = 0
    top = 1
    # reverse adjacency (CSR) for co-reachability, built while exploring
    indeg = np.zeros(n + 1, np.int64)
    while top:
        top -= 1
        s = stack[top]
        for b in range(width):
            t = trans[s, b]
            if t >= 0:
                indeg[t + 1] += 1
                if not reach[t]:
                    reach[t] = True
                    stack[top] = t
                    top += 1
    for i in range(n):
        indeg[i + 1] += indeg[i]
    fill = indeg[:-1].copy()
    preds = np.empty(indeg[n], np.int64)
    for s in range(n):
        if reach[s]:
            for b in range(width):
                t = trans[s, b]
                if t >= 0:
                    preds[fill[t]] = s
                    fill[t] += 1
    live = np.zeros(n, np.bool_)
    top = 0
    for s in range(n):
        if reach[s] and accepting[s]:
            live[s] = True
            stack[top] = s
            top += 1
    while top:
        top -= 1
        t = stack[top]
        for k in range(indeg[t], indeg[t + 1]):
            s = preds[k]
            if not live[s]:
                live[s] = True
                stack[top] = s
                top += 1
    return live


@numba.njit(cache=True, nogil=True)
def _mark(e, elems, loc, sidx, first, marked, touched, n_touched):  # type: ignore[no-untyped-def]
    s = sidx[e]
    i = loc[e]
    j = first[s] + marked[s]
    elems[i] = elems[j]
    loc[elems[i]] = i
    elems[j] = e
    loc[e] = j
    if marked[s] == 0:
        touched[n_touched] = s
        n_touched += 1
    marked[s] += 1
    return n_touched


@numba.njit(cache=True, nogil=True)
def _split(n_sets, elems, sidx, first, past, marked, touched, n_touched):  # type: ignore[no-untyped-def]
    """Split every touched set into its marked and unmarked parts; the smaller part becomes a new set."""
    while n_touched:
        n_touched -= 1
        s = touched[n_touched]
        j = first[s] + marked[s]
        if j == past[s]:
            marked[s] = 0
            continue
        z = n_sets
        if marked[s] <= past[s] - j:
            first[z] = first[s]
            past[z] = j
            first[s] = j
        else:
            past[z] = past[s]
            first[z] = j
            past[s] = j
        for i in range(first[z], past[z]):
            sidx[elems[i]] = z
        marked[s] = 0
        marked[z] = 0
        n_sets += 1
    return n_sets


@numba.njit(cache=True, nogil=True)
def _trim_minimize(trans, accepting):  # type: ignore[no-untyped-def]
    """Trim, then minimise with Valmari and Lehtinen's partition refinement (partial DFAs, O(m log n)).

    Any table width: byte DFAs (256 columns) and DFAs over code-point classes.
    """
    live = _live_states(trans, accepting)
    n_all = trans.shape[0]
    width = trans.shape[1]
    if not live[0]:
        return np.zeros((0, width), np.int32), np.zeros(0, np.bool_)
    old_to_new = np.full(n_all, -1, np.int64)
    n = 0
    for s in range(n_all):
        if live[s]:
            old_to_new[s] = n
            n += 1
    # transitions among live states: tail, label, head
    m = 0
    for s in range(n_all):
        if live[s]:
            for b in range(width):
                t = trans[s, b]
                if t >= 0 and live[t]:
                    m += 1
    tail = np.empty(m, np.int64)
    label = np.empty(m, np.int64)
    head = np.empty(m, np.int64)
    k = 0
    for s in range(n_all):
        if live[s]:
            for b in range(width):
                t = trans[s, b]
                if t >= 0 and live[t]:
                    tail[k] = old_to_new[s]
                    label[k] = b
                    head[k] = old_to_new[t]
                    k += 1
    acc = np.zeros(n, np.bool_)
    for s in range(n_all):
        if live[s]:
            acc[old_to_new[s]] = accepting[s]
    # block partition of states
    b_elems = np.arange(n)
    b_loc = np.arange(n)
    b_sidx = np.zeros(n, np.int64)
    b_first = np.zeros(n + 1, np.int64)
    b_past = np.zeros(n + 1, np.int64)
    b_marked = np.zeros(n + 1, np.int64)
    b_touched = np.zeros(n + 1, np.int64)
    b_past[0] = n
    nb = 1
    nt = 0
    for q in range(n):
        if acc[q]:
            nt = _mark(q, b_elems, b_loc, b_sidx, b_first, b_marked, b_touched, nt)
    nb = _split(nb, b_elems, b_sidx, b_first, b_past, b_marked, b_touched, nt)
    # cord partition of transitions, by label
    c_elems = np.empty(m, np.int64)  # transitions by label, stably (a counting sort: labels < width)
    label_start = np.zeros(width + 1, np.int64)
    for t in range(m):
        label_start[label[t] + 1] += 1
    for x in range(width):
        label_start[x + 1] += label_start[x]
    for t in range(m):
        c_elems[label_start[label[t]]] = t
        label_start[label[t]] += 1
    c_loc = np.empty(m, np.int64)
    c_sidx = np.zeros(m, np.int64)
    c_first = np.zeros(m + 1, np.int64)
    c_past = np.zeros(m + 1, np.int64)
    c_marked = np.zeros(m + 1, np.int64)
    c_touched = np.zeros(m + 1, np.int64)
    nc = 0
    if m:
        cur = label[c_elems[0]]
        for i in range(m):
            t = c_elems[i]
            if label[t] != cur:
                cur = label[t]
                c_past[nc] = i
                nc += 1
                c_first[nc] = i
            c_sidx[t] = nc
            c_loc[t] = i
        c_past[nc] = m
        nc += 1
    # incoming transitions per state
    in_start = np.zeros(n + 1, np.int64)
    for t in range(m):
        in_start[head[t] + 1] += 1
    for q in range(n):
        in_start[q + 1] += in_start[q]
    fill = in_start[:-1].copy()
    incoming = np.empty(m, np.int64)
    for t in range(m):
        incoming[fill[head[t]]] = t
        fill[head[t]] += 1
    b = 1
    c = 0
    while c < nc:
        nt = 0
        for i in range(c_first[c], c_past[c]):
            nt = _mark(tail[c_elems[i]], b_elems, b_loc, b_sidx, b_first, b_marked, b_touched, nt)
        nb = _split(nb, b_elems, b_sidx, b_first, b_past, b_marked, b_touched, nt)
        c += 1
        while b < nb:
            nt = 0
            for i in range(b_first[b], b_past[b]):
                q = b_elems[i]
                for j in range(in_start[q], in_start[q + 1]):
                    nt = _mark(incoming[j], c_elems, c_loc, c_sidx, c_first, c_marked, c_touched, nt)
            nc = _split(nc, c_elems, c_sidx, c_first, c_past, c_marked, c_touched, nt)
            b += 1
    # quotient automaton, numbered in BFS order from the start block
    order = np.full(nb, -1, np.int64)
    queue = np.empty(nb, np.int64)
    order[b_sidx[0]] = 0
    queue[0] = b_sidx[0]
    qn = 1
    rep = np.empty(nb, np.int64)
    for q in range(n):
        rep[b_sidx[q]] = q
    # successor lists of representatives
    out_start = np.zeros(n + 1, np.int64)
    for t in range(m):
        out_start[tail[t] + 1] += 1
    for q in range(n):
        out_start[q + 1] += out_start[q]
    qi = 0
    while qi < qn:
        blk = queue[qi]
        qi += 1
        r = rep[blk]
        for t in range(out_start[r], out_start[r + 1]):
            hb = b_sidx[head[t]]
            if order[hb] < 0:
                order[hb] = qn
                queue[qn] = hb
                qn += 1
    out = np.full((nb, width), -1, np.int32)
    out_acc = np.zeros(nb, np.bool_)
    for t in range(m):  # transitions are sorted by tail, so each state's run is contiguous
        if rep[b_sidx[tail[t]]] == tail[t]:
            out[order[b_sidx[tail[t]]], label[t]] = order[b_sidx[head[t]]]
    for blk in range(nb):
        out_acc[order[blk]] = acc[rep[blk]]
    return out, out_acc


# ---------------------------------------------------------------- regex tree -> NFA over classes
def _collect_sets(node: Node, out: list[Ranges]) -> None:
    if isinstance(node, CharSet):
        out.append(node.ranges)
    elif isinstance(node, (Seq, Alt)):
        for it in node.items:
            _collect_sets(it, out)
    elif isinstance(node, Repeat):
        _collect_sets(node.item, out)


def _partition(sets: Sequence[Ranges]) -> tuple[list[Ranges], dict[Ranges, int]]:
    """Split the code points into classes: maximal sets of code points that belong to the same char sets."""
    unique = list(dict.fromkeys(sets))
    bounds = {0}
    for rs in unique:
        for lo, hi in rs:
            bounds.add(lo)
            bounds.add(hi + 1)
    points = sorted(b for b in bounds if b <= 0x10FFFF)
    # membership signature of each elementary interval
    sig_of_interval: list[int] = [0] * len(points)
    for k, rs in enumerate(unique):
        bit = 1 << k
        for lo, hi in rs:
            i = _index(points, lo)
            while i < len(points) and points[i] <= hi:
                sig_of_interval[i] |= bit
                i += 1
    class_of_sig: dict[int, int] = {}
    class_ranges: list[list[tuple[int, int]]] = []
    for i, p in enumerate(points):
        sig = sig_of_interval[i]
        if sig == 0:
            continue
        end = (points[i + 1] - 1) if i + 1 < len(points) else 0x10FFFF
        c = class_of_sig.setdefault(sig, len(class_ranges))
        if c == len(class_ranges):
            class_ranges.append([])
        class_ranges[c].append((p, end))
    bits_of_set: dict[Ranges, int] = {}
    for k, rs in enumerate(unique):
        bits = 0
        for sig, c in class_of_sig.items():
            if sig >> k & 1:
                bits |= 1 << c
        bits_of_set[rs] = bits
    return [normalize(r) for r in class_ranges], bits_of_set


def _index(points: list[int], x: int) -> int:
    import bisect

    return bisect.bisect_left(points, x)


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int]]] = []

    def new(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise LimitError(f"regex too large: more than {MAX_NFA_STATES} automaton states (bounded repeats?)")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node: Node, bits_of: dict[Ranges, int], start: int) -> int:
        """Add ``node`` after ``start``; return its end state."""
        if isinstance(node, CharSet):
            end = self.new()
            bits = bits_of.get(node.ranges, 0)
            if bits:
                self.edges[start].append((bits, end))
            return end
        if isinstance(node, Seq):
            cur = start
            for it in node.items:
                cur = self.build(it, bits_of, cur)
            return cur
        if isinstance(node, Alt):
            end = self.new()
            for it in node.items:
                s = self.new()
                self.eps[start].append(s)
                e = self.build(it, bits_of, s)
                self.eps[e].append(end)
            return end
        if isinstance(node, Repeat):
            cur = start
            for _ in range(node.min):
                cur = self.build(node.item, bits_of, cur)
            if node.max is None:
                loop = self.new()
                self.eps[cur].append(loop)
                e = self.build(node.item, bits_of, loop)
                self.eps[e].append(loop)
                return loop
            end = self.new()
            self.eps[cur].append(end)
            for _ in range(node.max - node.min):
                cur = self.build(node.item, bits_of, cur)
                self.eps[cur].append(end)
            return end
        raise TypeError(f"unknown regex node {node!r}")


def _closure(nfa: _NFA, states: frozenset[int], memo: dict[int, frozenset[int]]) -> frozenset[int]:
    out: set[int] = set()
    for s in states:
        c = memo.get(s)
        if c is None:
            seen = {s}
            stack = [s]
            while stack:
                x = stack.pop()
                for y in nfa.eps[x]:
                    if y not in seen:
                        seen.add(y)
                        stack.append(y)
            c = frozenset(seen)
            memo[s] = c
        out |= c
    return frozenset(out)


_Edges = Sequence[list[tuple[int, int]]]
"""Labelled edges by state: ``(bits over code-point classes, target)``."""
_Kernel = tuple[list[list[tuple[int, int]]], list[bool]]
"""An epsilon-free NFA over kernel states (:func:`_kernel`): edges by state, and acceptance."""


class _Subsets:
    """The subset construction over code-point classes, from the set ``start``: a set's successor on a
    class is ``settle`` of the targets of its members' edges on it. Resumable, so that the caller can
    watch its size (:meth:`run`)."""

    def __init__(self, start: frozenset[int], edges: _Edges, settle: Callable[[frozenset[int]], frozenset[int]],
                 finals: frozenset[int]) -> None:
        self.edges = edges
        self.settle = settle
        self.finals = finals
        self.ids = {start: 0}
        self.order = [start]
        self.rows: list[dict[int, int]] = []
        """Per finished set, class -> DFA state."""

    @property
    def done(self) -> bool:
        return len(self.rows) == len(self.order)

    def accepting(self) -> list[bool]:
        """Per set: whether it holds a member of ``finals``."""
        return [not self.finals.isdisjoint(d) for d in self.order]

    def run(self, limit: int) -> bool:
        """Go on until every set is finished (True) or more than ``limit`` sets were made (False)."""
        edges, settle, ids, order = self.edges, self.settle, self.ids, self.order
        i = len(self.rows)
        while i < len(order):
            if len(order) > limit:
                return False
            moves: dict[int, set[int]] = {}  # edge label (a set of classes, as bits) -> NFA targets
            for s in order[i]:
                for bits, t in edges[s]:
                    moves.setdefault(bits, set()).add(t)
            # Split the classes into groups that lead to the same NFA targets (one closure per group, not
            # per class): refine by each label in turn.
            groups: list[tuple[int, frozenset[int]]] = []
            for bits, targets in moves.items():
                refined: list[tuple[int, frozenset[int]]] = []
                rest = bits
                for cb, ts in groups:
                    inside = cb & bits
                    if inside:
                        refined.append((inside, ts | targets))
                        rest &= ~inside
                    if cb & ~bits:
                        refined.append((cb & ~bits, ts))
                if rest:
                    refined.append((rest, frozenset(targets)))
                groups = refined
            row: dict[int, int] = {}
            for cb, group_targets in groups:
                tgt = settle(group_targets)
                j = ids.get(tgt)
                if j is None:
                    j = len(order)
                    ids[tgt] = j
                    order.append(tgt)
                while cb:
                    low = cb & -cb
                    row[low.bit_length() - 1] = j
                    cb ^= low
            self.rows.append(row)
            i += 1
        return True


def _pruned_subsets(edges: list[list[tuple[int, int]]], accepting: list[bool]) -> _Subsets:
    """The subset construction over sets of kernel states with every member dropped that another member
    simulates (:func:`_simulation`): a set's language is the union of its members', so each DFA state keeps
    its language and minimisation gives the same DFA. A search such as ``.*(a/x+|b/y+).*`` keeps its
    after-a-match state, which simulates every partial match, alone instead of beside each combination of
    them (50,000+ subsets for ten alternatives, where the minimal DFA has 72 states). ``edges`` and
    ``accepting`` are the kernel NFA (:func:`_kernel`); the construction is not run yet."""
    n_words = max(1, (max((b.bit_length() for es in edges for b, _ in es), default=0) + 63) // 64)
    edge_at = np.zeros(len(edges) + 1, np.int64)
    edge_at[1:] = np.cumsum([len(es) for es in edges])
    edge_tgt = np.array([t for es in edges for _, t in es], np.int64)
    edge_bits = np.array([[(b >> (64 * w)) & 0xFFFF_FFFF_FFFF_FFFF for w in range(n_words)]
                          for es in edges for b, _ in es], np.uint64).reshape(-1, n_words)
    sim = _simulation(edge_at, edge_tgt, edge_bits, np.array(accepting, np.bool_))
    above = _strictly_above(sim)
    dominated_if = [int.from_bytes(row.astype("<u8").tobytes(), "little") for row in above]
    bit = [1 << k for k in range(len(edges))]
    pruned: dict[frozenset[int], frozenset[int]] = {}

    def prune(ts: frozenset[int]) -> frozenset[int]:
        got = pruned.get(ts)
        if got is None:
            mask = 0
            for t in ts:
                mask |= bit[t]
            got = pruned[ts] = frozenset(t for t in ts if not dominated_if[t] & mask)
        return got

    finals = frozenset(k for k, a in enumerate(accepting) if a)
    return _Subsets(frozenset([0]), edges, prune, finals)


def _kernel(nfa: _NFA, start: int, final: int, memo: dict[int, frozenset[int]],
            cap: int) -> _Kernel | None:
    """The NFA without epsilons, over its kernel states (the start, then labelled-edge targets as they are
    reached, numbered from 0): state ``k``'s edges are those of every state in its closure (targets merged,
    labels or-ed) and it accepts if its closure holds ``final``. None past ``cap`` states."""
    ids = {start: 0}
    order = [start]
    edges: list[list[tuple[int, int]]] = []
    accepting: list[bool] = []
    i = 0
    while i < len(order):
        closed = _closure(nfa, frozenset([order[i]]), memo)
        by_target: dict[int, int] = {}
        for s in closed:
            for bits, t in nfa.edges[s]:
                k = ids.setdefault(t, len(order))
                if k == len(order):
                    if k >= cap:
                        return None
                    order.append(t)
                by_target[k] = by_target.get(k, 0) | bits
        edges.append(sorted((b, k) for k, b in by_target.items()))
        accepting.append(final in closed)
        i += 1
    return edges, accepting


@numba.njit(cache=True, nogil=True)
def _simulation(edge_at, edge_tgt, edge_bits, accepting):  # type: ignore[no-untyped-def]
    """The greatest simulation preorder of an epsilon-free NFA (state ``p``'s edges are
    ``edge_at[p]..edge_at[p+1]-1``, labels as bitsets of ``edge_bits.shape[1]`` words): bit ``q`` of row
    ``p`` says q simulates p (p accepting implies q accepting, and every edge of p on a class is matched by
    an edge of q on that class to a state simulating p's target), so p's language is within q's.

    Starts from the pairs that pass acceptance and cover p's classes, then removes pairs that fail the
    edge condition until none does; a state is checked again only if the row of one of its targets
    changed since its last check."""
    n = accepting.shape[0]
    n_words = edge_bits.shape[1]
    row_words = (n + 63) // 64
    one = np.uint64(1)
    union = np.zeros((n, n_words), np.uint64)
    for p in range(n):
        for e in range(edge_at[p], edge_at[p + 1]):
            union[p] |= edge_bits[e]
    sim = np.zeros((n, row_words), np.uint64)
    for p in range(n):
        for q in range(n):
            if accepting[p] and not accepting[q]:
                continue
            covered = True
            for w in range(n_words):
                if union[p, w] & ~union[q, w]:
                    covered = False
            if covered:
                sim[p, q >> 6] |= one << np.uint64(q & 63)
    changed_at = np.zeros(n, np.int64)  # the tick at which each row last lost a pair
    checked_at = np.full(n, -1, np.int64)  # the tick at which each row was last checked
    cover = np.empty(n_words, np.uint64)
    tick = 0
    changed = True
    while changed:
        changed = False
        for p in range(n):
            if checked_at[p] >= 0:
                stale = False
                for e in range(edge_at[p], edge_at[p + 1]):
                    if changed_at[edge_tgt[e]] >= checked_at[p]:
                        stale = True
                        break
                if not stale:
                    continue
            tick += 1
            checked_at[p] = tick
            for wq in range(row_words):
                if sim[p, wq] == 0:
                    continue
                for q in range(wq * 64, min(n, wq * 64 + 64)):
                    bit = one << np.uint64(q & 63)
                    if q == p or not sim[p, wq] & bit:
                        continue
                    ok = True
                    for e in range(edge_at[p], edge_at[p + 1]):  # q must match each edge of p
                        pt = edge_tgt[e]
                        cover[:] = 0
                        for f in range(edge_at[q], edge_at[q + 1]):
                            qt = edge_tgt[f]
                            if (sim[pt, qt >> 6] >> np.uint64(qt & 63)) & one:
                                for w in range(n_words):
                                    cover[w] |= edge_bits[f, w]
                        for w in range(n_words):
                            if edge_bits[e, w] & ~cover[w]:
                                ok = False
                        if not ok:
                            break
                    if not ok:
                        sim[p, wq] &= ~bit
                        changed_at[p] = tick
                        changed = True
    return sim


@numba.njit(cache=True, nogil=True)
def _strictly_above(sim):  # type: ignore[no-untyped-def]
    """Row ``p``: the states q != p that simulate p and that p does not simulate, or that simulate each
    other with p and have a smaller number. A strict order, so dropping every state that a member of a
    set is strictly above keeps, for each dropped one, a member above it."""
    n = sim.shape[0]
    one = np.uint64(1)
    out = np.zeros_like(sim)
    for p in range(n):
        for q in range(n):
            if q != p and (sim[p, q >> 6] >> np.uint64(q & 63)) & one:
                back = (sim[q, p >> 6] >> np.uint64(p & 63)) & one
                if not back or q < p:
                    out[p, q >> 6] |= one << np.uint64(q & 63)
    return out


def _chain_table(data: bytes) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """The table of the DFA of exactly ``data``: a chain of states, already trimmed and minimal."""
    n = len(data)
    trans = np.full((n + 1, 256), -1, np.int32)
    trans[np.arange(n), np.frombuffer(data, np.uint8)] = np.arange(1, n + 1, dtype=np.int32)
    accepting = np.zeros(n + 1, np.bool_)
    accepting[n] = True
    return trans, accepting


@lru_cache(maxsize=8192)
def literal_dfa(data: bytes) -> ByteDFA:
    """The DFA of exactly ``data``, kept across compiles and keyed by its bytes instead of a table hash.
    JSON Schema grammars have a literal per property key; compiling each from a regex tree took longer
    than all the rest of a small schema's terminals. (:func:`compile_node` builds the same table under the
    content key, so that a Lark literal merges with any other terminal of the same language.)"""
    return ByteDFA(*_chain_table(data), _key=f"lit:{data.hex()}")


def literal_of(dfa: ByteDFA) -> bytes | None:
    """The bytes a :func:`literal_dfa` DFA spells (state ``k`` reads ``data[k:]``), None for any other DFA."""
    key = dfa._key
    return bytes.fromhex(key[4:]) if key is not None and key.startswith("lit:") else None


def compile_node(node: Node) -> ByteDFA:
    """A trimmed, minimal byte DFA for a code-point regex tree (UTF-8 encoded strings)."""
    text = _literal_text(node)
    if text is not None:  # a literal (keywords, punctuation): its byte chain, built directly
        return ByteDFA(*_chain_table(text.encode("utf-8")))
    texts = _literal_alternatives(node) if isinstance(node, Alt) else None
    if texts is not None:  # enums and property names: a trie of their bytes, minimised (no subset construction)
        return _trie_dfa([t.encode("utf-8") for t in texts])
    sets: list[Ranges] = []
    _collect_sets(node, sets)
    classes, bits_of = _partition(sets)
    nfa = _NFA()
    start = nfa.new()
    final = nfa.build(node, bits_of, start)
    memo: dict[int, frozenset[int]] = {}
    # The plain construction first. Past PRUNE_AFTER sets and PRUNE_AFTER_PER_KERNEL_STATE sets per kernel
    # state, it starts over with simulation-pruned sets; where the kernel is too large to simulate it goes on
    # plainly.
    subsets = _Subsets(_closure(nfa, frozenset([start]), memo), nfa.edges, partial(_closure, nfa, memo=memo),
                       frozenset([final]))
    if not subsets.run(min(PRUNE_AFTER, MAX_DFA_STATES)):
        kernel = _kernel(nfa, start, final, memo, MAX_SIMULATION_STATES)
        if kernel is not None and not subsets.run(min(PRUNE_AFTER_PER_KERNEL_STATE * len(kernel[0]), MAX_DFA_STATES)):
            subsets = _pruned_subsets(*kernel)
        subsets.run(MAX_DFA_STATES)
    if not subsets.done:
        raise LimitError(f"regex too large: more than {MAX_DFA_STATES} DFA states")
    char_trans, char_accepting = subsets.rows, subsets.accepting()
    # Minimise over code-point classes first: the UTF-8 expansion and the byte-level minimisation then
    # work on the (often much) smaller automaton.
    table = np.full((len(char_trans), max(len(classes), 1)), -1, np.int32)
    for s, row in enumerate(char_trans):
        if row:
            table[s, list(row)] = list(row.values())
    small, small_acc = _trim_minimize(table, np.array(char_accepting, dtype=np.bool_))
    if small.shape[0] == 0:
        return trim_and_minimize(np.zeros((0, 256), np.int32), np.zeros(0, bool))
    small_trans = [{int(c): int(r[c]) for c in np.flatnonzero(r >= 0)} for r in small]
    return _utf8_expand(small_trans, [bool(x) for x in small_acc], classes)


def _literal_text(node: Node) -> str | None:
    """The string a regex tree matches if it is a sequence of single (non-surrogate) code points."""
    known: str | None = node.__dict__.get("_text")  # built by regex.literal
    if known is not None:
        return known
    items = node.items if isinstance(node, Seq) else (node,) if isinstance(node, CharSet) else None
    if items is None:
        return None
    chars = []
    for x in items:
        if not (isinstance(x, CharSet) and len(x.ranges) == 1 and x.ranges[0][0] == x.ranges[0][1]):
            return None
        cp = x.ranges[0][0]
        if 0xD800 <= cp <= 0xDFFF:
            return None
        chars.append(chr(cp))
    return "".join(chars)


def _literal_alternatives(node: Node) -> list[str] | None:
    """The strings of an alternation of literals (nested alternations too), else None."""
    if isinstance(node, Alt):
        out: list[str] = []
        for item in node.items:
            sub = _literal_alternatives(item)
            if sub is None:
                return None
            out += sub
        return out
    text = _literal_text(node)
    return None if text is None else [text]


def _trie_dfa(strings: list[bytes]) -> ByteDFA:
    """The minimal DFA of finitely many byte strings: their trie, minimised bottom-up (shared suffixes merge)."""
    lengths = np.fromiter((len(x) for x in strings), np.int64, len(strings))
    ends = np.cumsum(lengths)
    trans, accepting = _trie_table(np.frombuffer(b"".join(strings), np.uint8), ends)
    out, out_acc = _minimize_tree_prefix(trans, accepting, trans.shape[0])
    return ByteDFA(out, out_acc)


@numba.njit(cache=True, nogil=True)
def _trie_table(data, ends):  # type: ignore[no-untyped-def]
    """The trie of the strings ``data[ends[i-1]:ends[i]]`` as a DFA table (nodes in order of creation)."""
    trans = np.full((data.shape[0] + 1, 256), -1, np.int32)
    accepting = np.zeros(data.shape[0] + 1, np.bool_)
    n = 1
    start = 0
    for end in ends:
        state = 0
        for k in range(start, end):
            b = data[k]
            if trans[state, b] < 0:
                trans[state, b] = n
                n += 1
            state = trans[state, b]
        accepting[state] = True
        start = end
    return trans[:n], accepting[:n]


@numba.njit(cache=True, nogil=True)
def _minimize_tree_prefix(trans, accepting, n_tree):  # type: ignore[no-untyped-def]
    """Trim and minimise a byte DFA whose rows ``n_tree..`` are a minimal, trimmed DFA closed under its
    transitions, and whose rows ``< n_tree`` (a trie, alone or walked beside that DFA) only lead to rows of
    larger index; numbered in breadth-first, byte order from row 0, as :func:`trim_and_minimize` does.

    The tree is acyclic, so its rows are classed bottom-up by their signature (acceptance, and the class
    of each byte's target), looked up among the classes already made, the DFA's rows included: by
    induction on height, two rows with one language get one signature (the DFA's own rows are pairwise
    distinct, being minimal; were they not, the result would accept the same strings without being
    minimal). Linear in the table: 38 us where partition refinement took 145 us, for an object's eight
    names against JSON strings (m = 3,000 transitions)."""
    n = trans.shape[0]
    m1 = np.uint64(0xFF51AFD7ED558CCD)
    slot_sig, slot_rep, mask = _open_table(n)
    cls = np.empty(n, np.int64)  # the representative row of each row's class; -1: dead
    for q in range(n_tree, n):
        cls[q] = q
    for r in range(n - 1, -1, -1):  # the DFA's rows (never merged), then the tree from its leaves up
        live = accepting[r]
        h = np.uint64(2 if accepting[r] else 1) * m1
        last = -1
        for b in range(256):  # hashed by runs of bytes with one target class (a string's row has few)
            t = trans[r, b]
            c = -1 if t < 0 else cls[t]
            if c != last:
                live |= c >= 0
                h = (h ^ ((np.uint64(b) << np.uint64(40)) | np.uint64(c + 1))) * m1
                h ^= h >> np.uint64(31)
                last = c
        if not live:  # a tree row that accepts nothing (the DFA's rows are trimmed)
            cls[r] = -1
            continue
        j = np.int64(h & np.uint64(mask))
        found = -1
        while slot_rep[j] >= 0:
            if r < n_tree and slot_sig[j] == h:
                u = slot_rep[j]
                same = accepting[u] == accepting[r]
                for b in range(256):
                    if not same:
                        break
                    tr = trans[r, b]
                    tu = trans[u, b]
                    same = (-1 if tr < 0 else cls[tr]) == (-1 if tu < 0 else cls[tu])
                if same:
                    found = u
                    break
            j = (j + 1) & mask
        if found >= 0:
            cls[r] = found
        else:
            slot_sig[j] = h
            slot_rep[j] = r
            cls[r] = r
    if cls[0] < 0:
        return np.zeros((0, 256), np.int32), np.zeros(0, np.bool_)
    order = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    order[cls[0]] = 0
    queue[0] = cls[0]
    qn = 1
    qi = 0
    while qi < qn:  # breadth-first over representatives; bytes in order
        r = queue[qi]
        qi += 1
        for b in range(256):
            t = trans[r, b]
            if t >= 0 and cls[t] >= 0 and order[cls[t]] < 0:
                order[cls[t]] = qn
                queue[qn] = cls[t]
                qn += 1
    out = np.full((qn, 256), -1, np.int32)
    out_acc = np.zeros(qn, np.bool_)
    for i in range(qn):
        r = queue[i]
        out_acc[i] = accepting[r]
        for b in range(256):
            t = trans[r, b]
            if t >= 0 and cls[t] >= 0:
                out[i, b] = order[cls[t]]
    return out, out_acc


def except_strings(dfa: ByteDFA, strings: list[bytes]) -> ByteDFA:
    """The strings of ``dfa`` (minimal and trimmed, as every DFA built here) other than ``strings`` (JSON
    strings other than an object's property names): the trie of ``strings`` walked beside ``dfa``, leaving
    to ``dfa``'s own states where it ends, then minimised bottom-up (:func:`_minimize_tree_prefix`). The
    same minimal DFA as ``dfa.difference(<DFA of strings>)`` without building that DFA or the general
    product."""
    if dfa.n_states == 0 or not strings:
        return dfa
    ends = np.cumsum(np.fromiter((len(x) for x in strings), np.int64, len(strings)))
    trie, is_word = _trie_table(np.frombuffer(b"".join(strings), np.uint8), ends)
    trans, accepting = _except_table(dfa.trans, dfa.accepting, trie, is_word)
    out, out_acc = _minimize_tree_prefix(trans, accepting, trie.shape[0])
    return ByteDFA(out, out_acc)


@numba.njit(cache=True, nogil=True)
def _except_table(trans, accepting, trie, is_word):  # type: ignore[no-untyped-def]
    """See :func:`except_strings`: rows ``0..n-1`` are the trie's nodes (:func:`_trie_table`: the root
    first, each node after its parent), each paired with the state of ``trans`` its bytes reach (-1:
    none); rows ``n + q`` are ``trans``'s state ``q``. A byte the trie does not continue with goes to its
    node's state's row."""
    n = trie.shape[0]
    n_dfa = trans.shape[0]
    state_of = np.full(n, -1, np.int64)
    state_of[0] = 0
    out = np.full((n + n_dfa, 256), -1, np.int32)
    acc = np.zeros(n + n_dfa, np.bool_)
    for node in range(n):
        q = state_of[node]
        acc[node] = q >= 0 and accepting[q] and not is_word[node]
        for b in range(256):
            c = trie[node, b]
            if c >= 0:
                out[node, b] = c
                state_of[c] = trans[q, b] if q >= 0 else -1
            elif q >= 0 and trans[q, b] >= 0:
                out[node, b] = n + trans[q, b]
    for q in range(n_dfa):
        acc[n + q] = accepting[q]
        for b in range(256):
            if trans[q, b] >= 0:
                out[n + q, b] = n + trans[q, b]
    return out, acc


def _utf8_expand(char_trans: list[dict[int, int]], accepting: list[bool], classes: list[Ranges]) -> ByteDFA:
    """Replace each code-point-class transition by the byte paths of its UTF-8 encodings. Rows are written
    straight into a table (building 256-entry lists and converting them was a third of the time), and
    a state's classes toward one target are expanded once per distinct set of classes."""
    n_char = len(char_trans)
    cap = max(64, 2 * n_char)
    rows = np.full((cap, 256), -1, np.int32)
    acc = np.zeros(cap, np.bool_)
    acc[:n_char] = accepting
    n_rows = n_char
    inter_ids: dict[frozenset[tuple[tuple[tuple[int, int], ...], int]], int] = {}
    pending: list[tuple[int, list[tuple[tuple[tuple[int, int], ...], int]]]] = []
    seq_cache: dict[tuple[int, ...], list[tuple[tuple[int, int], ...]]] = {}
    for s, row in enumerate(char_trans):
        by_target: dict[int, list[int]] = {}
        for c, t in row.items():
            by_target.setdefault(t, []).append(c)
        items: list[tuple[tuple[tuple[int, int], ...], int]] = []
        for t, cs in by_target.items():
            key = tuple(cs)
            seqs = seq_cache.get(key)
            if seqs is None:
                seqs = [q for lo, hi in normalize([r for c in cs for r in classes[c]]) for q in utf8_sequences(lo, hi)]
                seq_cache[key] = seqs
            items.extend([(q, t) for q in seqs])
        pending.append((s, items))
    while pending:
        s, items = pending.pop()
        groups: dict[tuple[int, int], list[tuple[tuple[tuple[int, int], ...], int]]] = {}
        for q, t in items:
            groups.setdefault(q[0], []).append((q, t))
        firsts = sorted(groups)
        for (_, hi), (lo2, _) in itertools.pairwise(firsts):
            assert hi < lo2, "UTF-8 sequences of disjoint classes have equal or disjoint first bytes"
        for (lo, hi), group in groups.items():
            if len(group[0][0]) == 1:
                assert len(group) == 1
                rows[s, lo : hi + 1] = group[0][1]
                continue
            rest = frozenset((q[1:], t) for q, t in group)
            j = inter_ids.get(rest)
            if j is None:
                j = n_rows
                if j >= MAX_DFA_STATES:
                    raise LimitError(f"regex too large: more than {MAX_DFA_STATES} DFA states")
                if j == cap:
                    cap *= 2
                    rows = np.concatenate([rows, np.full((cap - j, 256), -1, np.int32)])
                    acc = np.concatenate([acc, np.zeros(cap - j, np.bool_)])
                n_rows += 1
                inter_ids[rest] = j
                pending.append((j, list(rest)))
            rows[s, lo : hi + 1] = j
    return trim_and_minimize(rows[:n_rows], acc[:n_rows])


@lru_cache(maxsize=512)
def compile_regex(pattern: str, flags: int = 0) -> ByteDFA:
    """``re.fullmatch`` semantics of ``pattern`` as a byte DFA over UTF-8."""
    from constrain.regex import parse

    return compile_node(parse(pattern, flags))
