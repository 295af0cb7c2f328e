"""Numba walks for grammar constraints: lexer threads through the token trie and through token bytes.

A *thread* is a pair (parser column ``c``, global lexer state ``g``): a lexeme of terminal
``term[g]`` is being read, started where the parser was at column ``c``. Consuming byte ``b``:

* the lexeme goes on: ``(c, trans[g, b])`` if that state is live;
* if ``g`` accepts, the lexeme may also end before ``b``: the parser moves to ``c2 = advance(c, term[g])``
  (``c`` itself for ignored terminals) and ``b`` starts a new lexeme of every terminal ``c2`` expects.
  Columns share *expected sets* ``e = col_eid[c2]``; for each set and byte the states after that first
  byte are precomputed: ``spawn_gs[spawn_start[e * 256 + b] : spawn_start[e * 256 + b + 1]]``. A set
  the parser makes during a walk (Python lists it afterwards) is spawned from the parser's own set of
  terminals instead: slower per byte, but the walk goes on where it would otherwise stop and run again.

When several lexemes end before the same byte, their parser columns are at the same text position, so
(as in an Earley chart, one column per position) they are merged into one column, their union; this
keeps the number of threads bounded for grammars with ambiguous lexing.

Parser advances and unions are memoised in one open-addressing hash table (:mod:`earley`). A walk
whose caller holds the parser's lock (``write``) computes a missing step itself with the numba parser
(:func:`earley.step1`); otherwise, or when the parser's arrays are full, it drops that path and records
a *miss* (``(c, t)`` with ``t >= 0`` for an advance, ``(a, UNION_MISS - b)`` for a union, ``(c, REFRESH)``
for a column newer than the walk's parser tables); Python computes all misses of a walk at once and the
walk runs again. All functions release the GIL, so many matchers can fill masks from threads.
"""

from __future__ import annotations

import numba
import numpy as np

from constrain.earley import (
    _NEED_ROOM,
    EMPTY_KEY,
    UNION_MISS,
    UNKNOWN,
    _slot,
    step1,
    table_get,
    table_put,
    table_rehash,
    union_key,
)
from constrain.fsm import HASH_SEEDS, mix

OVERFLOW = -3
REFRESH = -3
"""A miss ``(c, REFRESH)``: column ``c`` is newer than the walk's parser tables (another thread made it);
nothing to compute, walk again."""

__all__ = ["EMPTY_KEY", "REFRESH", "UNION_MISS", "UNKNOWN", "table_get", "table_put", "table_rehash", "union_key"]


NOT_LOOKED_UP = -5
"""``buf_a`` value of a thread whose column after its lexeme has not been looked up yet."""


MAX_MISSES = 256
_MAX_SPAWN_COLUMNS = 16
"""Columns a walk spawns from apart at one byte: the merged one and those of ignored lexemes (more
ignored ones merge into the union, which is correct but makes new columns)."""


@numba.njit(cache=True, nogil=True)
def walk_bytes(init_c, init_g, data, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals,
               col_eid, eid_start, eid_gs, term_start, ign_starts, P, write, cap, misses, nmiss):  # type: ignore[no-untyped-def]
    """Threads after consuming ``data`` (empty: rejected). With ``nmiss[0] > 0`` parser steps were
    missing (see :func:`_walk_subtree`); with ``nmiss[0] == -1``, ``cap`` threads per byte did not suffice."""
    n = data.shape[0]
    # the bytes as a one-path trie: node k+1 has byte data[k] at depth k+1; no tokens end anywhere
    node_byte = np.zeros(n + 1, np.uint8)
    node_byte[1:] = data
    node_depth = np.arange(n + 1).astype(np.int32)
    subtree_end = np.full(n + 1, n + 1, np.int32)
    token_start = np.zeros(n + 2, np.int32)
    node_tokens = np.zeros(0, np.int32)
    out = np.zeros(1, np.uint32)
    levels = n + 2
    buf_c = np.empty(cap * levels + init_c.shape[0], np.int64)
    buf_g = np.empty(cap * levels + init_c.shape[0], np.int64)
    buf_a = np.empty(cap * levels + init_c.shape[0], np.int64)
    seg = np.zeros(levels + 1, np.int64)
    if not _walk_subtree(init_c, init_g, 0, node_byte, node_depth, subtree_end, token_start, node_tokens,
                         gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs,
                         term_start, ign_starts, P, write, out, cap, buf_c, buf_g, buf_a, seg, misses, nmiss):
        nmiss[0] = -1
        return buf_c[:0], buf_g[:0]
    if nmiss[0] > 0 or (n > 0 and seg[n + 1] <= seg[n]):
        return buf_c[:0], buf_g[:0]
    lo, hi = (seg[n], seg[n + 1]) if n > 0 else (0, init_c.shape[0])
    return buf_c[lo:hi].copy(), buf_g[lo:hi].copy()


@numba.njit(cache=True, nogil=True)
def walk_tokens_ok(init_c, init_g, tokens, data, offsets, k0, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals,
                   col_eid, eid_start, eid_gs, term_start, ign_starts, P, write, cap, misses, nmiss, ok):  # type: ignore[no-untyped-def]
    """``ok[k]``: whether threads ``(init_c, init_g)`` survive the bytes of token ``tokens[k]``
    (``data[offsets[t]:offsets[t + 1]]``; a token without bytes does not), each by :func:`walk_bytes`, for
    ``k`` from ``k0``. Returns the first ``k`` left undecided, with ``nmiss`` as :func:`walk_bytes` leaves
    it (parser steps missing, or ``cap`` too small), else ``len(tokens)``: one call answers a whole
    vocabulary (a call per token cost more in argument passing than in walking)."""
    for k in range(k0, tokens.shape[0]):
        t = tokens[k]
        lo, hi = offsets[t], offsets[t + 1]
        if hi == lo:
            ok[k] = False
            continue
        out_c, _ = walk_bytes(init_c, init_g, data[lo:hi], gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals,
                              col_eid, eid_start, eid_gs, term_start, ign_starts, P, write, cap, misses, nmiss)
        if nmiss[0] != 0:
            return k
        ok[k] = out_c.shape[0] > 0
    return tokens.shape[0]


@numba.njit(cache=True, nogil=True)
def _walk_subtree(init_c, init_g, start, node_byte, node_depth, subtree_end, token_start, node_tokens,
                  gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs,
                  term_start, ign_starts, P, write, out, room, buf_c, buf_g, buf_a, seg, misses, nmiss):  # type: ignore[no-untyped-def]
    """Walk the children of ``start`` (no resume records)."""
    none = np.zeros(0, np.int64)
    return _walk_range(init_c, init_g, node_depth[start], start + 1, subtree_end[start], node_byte, node_depth,
                       subtree_end, token_start, node_tokens, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals,
                       col_eid, eid_start, eid_gs, term_start, ign_starts, P, write, out, room, buf_c, buf_g, buf_a,
                       seg, misses, nmiss, none, np.zeros(1, np.int64), none, none, np.zeros(2, np.int64), none, none,
                       none, none, np.zeros(0, np.int32), False)


@numba.njit(cache=True, nogil=True)
def _walk_range(init_c, init_g, depth0, first, end, node_byte, node_depth, subtree_end, token_start, node_tokens,
                gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs,
                term_start, ign_starts, P, write, out, room, buf_c, buf_g, buf_a, seg, misses, nmiss,
                res_node, res_off, res_c, res_g, nres, log_set, log_key, log_val, nlog, dead,
                skip):  # type: ignore[no-untyped-def]
    """The walk itself: depth-first over the trie below ``start``, one level of threads per byte.

    At each node the threads of its parent consume the node's byte (buf[lo:hi] -> buf[hi:w]):
    lexemes go on, and lexemes that may end before the byte move the parser and start the lexemes it
    expects. ``buf_a`` caches each thread's parser column after its lexeme (looked up once per lexeme,
    not at every byte where it could end). Paths that need a parser step missing from the tables are
    dropped and the step is recorded in ``misses``: the caller computes them and walks again (results
    only grow, so partial bits stand).

    ``init_*`` are the threads at depth ``depth0``; the nodes walked are ``first..end`` (a subtree, or the
    children of a node). When ``res_*`` has room, each node where a step was missing is also recorded
    with its parent's threads (``nres[0]`` records, ``nres[1]`` threads), so the caller can resume there
    after computing the step instead of walking everything again.

    When ``log_set`` has room, every parser fact the walk reads (memo key and value: an advance or a
    union) is appended once to ``log_key``/``log_val`` (``nlog[0]`` entries; ``nlog[1] = 1`` if they did
    not fit): :mod:`observed_masks` reuses a mask for a state whose parser answers the same.

    With ``skip``, subtrees whose every token is already in ``out`` are not walked: those are the
    subtrees with no node of ``dead`` in them and no ancestor in it (:func:`dead_roots` of a lexeme whose
    inside mask the caller put in ``out``; a comment or string lexeme covers most of the trie, and walking
    it again below every byte where the lexeme may end is what made such masks cost tens of ms).

    Threads that reach the same lexer state (of a parsed terminal) from different columns become one
    thread on the union of the columns where the parser has it or the walk may compute it (see
    :meth:`GrammarAutomaton._merged`): under every-cut lexing an identifier may have started at each of
    its bytes, one thread each. Ignored lexemes are left apart (see the spawn below).

    Everything is written out in this one loop on purpose: a helper call that takes arrays inside it
    makes numba count references on every iteration, thirty times slower."""
    n0 = init_c.shape[0]
    for k in range(n0):
        buf_c[k] = init_c[k]
        buf_g[k] = init_g[k]
        buf_a[k] = NOT_LOOKED_UP
    seg[1] = n0
    mask = pkeys.shape[0] - 1
    spawn_cols = np.empty(_MAX_SPAWN_COLUMNS, np.int64)  # the columns whose expected lexemes b starts
    eset_start = P[22]  # the parser's expected sets (for sets newer than the spawn lists)
    eset_terms = P[23]
    n_dead = dead.shape[0]
    dp = 0
    if skip:  # the first dead root at or after ``first`` (binary search), then a pointer that only moves on
        dp = np.searchsorted(dead, first)
    node = first
    while node < end:
        if skip:
            while dp < n_dead and dead[dp] <= node:
                dp += 1
            # below a dead root (the last one at or before node): not covered; else covered if none inside
            if (dp == 0 or node >= subtree_end[dead[dp - 1]]) and (dp == n_dead or dead[dp] >= subtree_end[node]):
                node = subtree_end[node]
                continue
        d = node_depth[node] - depth0
        lo = seg[d - 1]
        hi = seg[d]
        b = node_byte[node]
        cap = hi + room
        w = hi
        u = -1  # the merged column of every lexeme that ends before b (-2: unknown, skip the spawn)
        n_ign = 0  # columns of ignored lexemes ending before b, spawned from apart (spawn_cols[1:])
        for k in range(lo, hi):
            c = buf_c[k]
            g = buf_g[k]
            a = buf_a[k]
            ends = gacc[g]
            if ends:
                t = gterm[g]
                if tignore[t]:
                    a = c
                elif a == NOT_LOOKED_UP:  # once per lexeme: the threads below inherit it
                    key = c * n_terms1 + t
                    h = _slot(key, mask)
                    a = UNKNOWN
                    while pkeys[h] != EMPTY_KEY:
                        if pkeys[h] == key:
                            a = pvals[h]
                            break
                        h = (h + 1) & mask
                    if a == UNKNOWN and write:  # compute the step here (rare: once per new column and terminal)
                        a = step1(P, c, t, pkeys, pvals)
                        if a == _NEED_ROOM:  # the parser must grow first: no more steps in this walk
                            a = UNKNOWN
                            write = False
                    if a != UNKNOWN and log_set.shape[0] > 0:
                        lm = log_set.shape[0] - 1
                        hq = _slot(key, lm)
                        while log_set[hq] != EMPTY_KEY and log_set[hq] != key:
                            hq = (hq + 1) & lm
                        if log_set[hq] == EMPTY_KEY:
                            nl = nlog[0]
                            if nl < log_key.shape[0]:
                                log_set[hq] = key
                                log_key[nl] = key
                                log_val[nl] = a
                                nlog[0] = nl + 1
                            else:
                                nlog[1] = 1
                    if a == UNKNOWN:
                        a = NOT_LOOKED_UP
                        ends = False
                        u = -2
                        nm = nmiss[0]
                        dup = False
                        for q in range(nm):
                            if misses[q, 0] == c and misses[q, 1] == t:
                                dup = True
                        if not dup and nm < misses.shape[0]:
                            misses[nm, 0] = c
                            misses[nm, 1] = t
                            nmiss[0] = nm + 1
                    buf_a[k] = a
            g2 = gtrans[g, b]
            if g2 >= 0:
                dup = False
                for q in range(hi, w):
                    if buf_g[q] != g2:
                        continue
                    if buf_c[q] == c:
                        dup = True
                        break
                    if tignore[gterm[g2]]:
                        continue
                    # the same lexer state from another column: one thread on the union of the two (see
                    # GrammarAutomaton._merged), where the union is known or can be computed here
                    lo_c = min(buf_c[q], c)
                    hi_c = max(buf_c[q], c)
                    key = union_key(lo_c, hi_c)
                    h = _slot(key, mask)
                    merged = UNKNOWN
                    while pkeys[h] != EMPTY_KEY:
                        if pkeys[h] == key:
                            merged = pvals[h]
                            break
                        h = (h + 1) & mask
                    if merged == UNKNOWN and write:
                        merged = step1(P, lo_c, UNION_MISS - hi_c, pkeys, pvals)
                        if merged == _NEED_ROOM:
                            merged = UNKNOWN
                            write = False
                    if merged == UNKNOWN or merged >= col_eid.shape[0]:
                        continue  # keep both threads
                    if log_set.shape[0] > 0:
                        lm = log_set.shape[0] - 1
                        hq = _slot(key, lm)
                        while log_set[hq] != EMPTY_KEY and log_set[hq] != key:
                            hq = (hq + 1) & lm
                        if log_set[hq] == EMPTY_KEY:
                            nl = nlog[0]
                            if nl < log_key.shape[0]:
                                log_set[hq] = key
                                log_key[nl] = key
                                log_val[nl] = merged
                                nlog[0] = nl + 1
                            else:
                                nlog[1] = 1
                    buf_c[q] = merged
                    buf_a[q] = NOT_LOOKED_UP
                    dup = True
                    break
                if not dup:
                    if w >= cap:
                        return False
                    buf_c[w] = c
                    buf_g[w] = g2
                    buf_a[w] = a
                    w += 1
            if ends and a == c and tignore[gterm[g]] and n_ign + 1 < _MAX_SPAWN_COLUMNS:
                # an ignored lexeme leaves the parser at c, a column this walk already has: merging it
                # into a union would make a new column (and new item origins) at every byte of a
                # whitespace run where another lexeme ends too
                new = True
                for q in range(n_ign):
                    if spawn_cols[1 + q] == c:
                        new = False
                if new:
                    spawn_cols[1 + n_ign] = c
                    n_ign += 1
            elif ends and a >= 0 and u != -2:
                if u < 0 or u == a:
                    u = a
                else:  # two lexemes end at the same place: their columns merge (one Earley column)
                    lo_c = min(u, a)
                    hi_c = max(u, a)
                    key = union_key(lo_c, hi_c)
                    h = _slot(key, mask)
                    merged = UNKNOWN
                    while pkeys[h] != EMPTY_KEY:
                        if pkeys[h] == key:
                            merged = pvals[h]
                            break
                        h = (h + 1) & mask
                    if merged == UNKNOWN and write:
                        merged = step1(P, lo_c, UNION_MISS - hi_c, pkeys, pvals)
                        if merged == _NEED_ROOM:
                            merged = UNKNOWN
                            write = False
                    if merged != UNKNOWN and log_set.shape[0] > 0:
                        lm = log_set.shape[0] - 1
                        hq = _slot(key, lm)
                        while log_set[hq] != EMPTY_KEY and log_set[hq] != key:
                            hq = (hq + 1) & lm
                        if log_set[hq] == EMPTY_KEY:
                            nl = nlog[0]
                            if nl < log_key.shape[0]:
                                log_set[hq] = key
                                log_key[nl] = key
                                log_val[nl] = merged
                                nlog[0] = nl + 1
                            else:
                                nlog[1] = 1
                    if merged == UNKNOWN:
                        u = -2
                        nm = nmiss[0]
                        dup = False
                        for q in range(nm):
                            if misses[q, 0] == lo_c and misses[q, 1] == UNION_MISS - hi_c:
                                dup = True
                        if not dup and nm < misses.shape[0]:
                            misses[nm, 0] = lo_c
                            misses[nm, 1] = UNION_MISS - hi_c
                            nmiss[0] = nm + 1
                    else:
                        u = merged
        if u >= col_eid.shape[0]:
            # a column made (by another thread) after this walk took its tables: walk again with fresh ones
            nm = nmiss[0]
            if nm < misses.shape[0]:
                misses[nm, 0] = u
                misses[nm, 1] = REFRESH
                nmiss[0] = nm + 1
            u = -2
        if u == -2 and res_node.shape[0] > 0 and nres[0] >= 0:  # resume here once the missing step is known
            r = nres[0]
            nt = nres[1]
            if r < res_node.shape[0] and nt + (hi - lo) <= res_c.shape[0]:
                res_node[r] = node
                for k in range(lo, hi):
                    res_c[nt] = buf_c[k]
                    res_g[nt] = buf_g[k]
                    nt += 1
                res_off[r + 1] = nt
                nres[0] = r + 1
                nres[1] = nt
            else:
                nres[0] = -1  # no room: the caller walks everything again
        spawn_cols[0] = u
        for s in range(0 if u >= 0 else 1, 1 + n_ign):  # b starts each lexeme the parser expects there
            x = spawn_cols[s]
            if s > 0 and x == u:
                continue
            ex = col_eid[x]
            listed = (ex + 1) * 256 < eid_start.shape[0]
            if listed:
                j0 = eid_start[ex * 256 + b]
                j1 = set_end = eid_start[ex * 256 + b + 1]
            else:  # an expected set first made in this walk: its terminals', then the ignored ones' starts
                j0 = eset_start[ex]
                set_end = eset_start[ex + 1]
                j1 = set_end + ign_starts.shape[0]
            for j in range(j0, j1):
                if listed:
                    g3 = eid_gs[j]
                else:
                    g3 = gtrans[term_start[eset_terms[j]] if j < set_end else ign_starts[j - set_end], b]
                    if g3 < 0:
                        continue
                dup = False
                for q in range(hi, w):
                    if buf_g[q] != g3:
                        continue
                    if buf_c[q] == x:
                        dup = True
                        break
                    if tignore[gterm[g3]]:
                        continue
                    # the same lexer state from another column: one thread on the union of the two (see
                    # GrammarAutomaton._merged), where the union is known or can be computed here
                    lo_c = min(buf_c[q], x)
                    hi_c = max(buf_c[q], x)
                    key = union_key(lo_c, hi_c)
                    h = _slot(key, mask)
                    merged = UNKNOWN
                    while pkeys[h] != EMPTY_KEY:
                        if pkeys[h] == key:
                            merged = pvals[h]
                            break
                        h = (h + 1) & mask
                    if merged == UNKNOWN and write:
                        merged = step1(P, lo_c, UNION_MISS - hi_c, pkeys, pvals)
                        if merged == _NEED_ROOM:
                            merged = UNKNOWN
                            write = False
                    if merged == UNKNOWN or merged >= col_eid.shape[0]:
                        continue  # keep both threads
                    if log_set.shape[0] > 0:
                        lm = log_set.shape[0] - 1
                        hq = _slot(key, lm)
                        while log_set[hq] != EMPTY_KEY and log_set[hq] != key:
                            hq = (hq + 1) & lm
                        if log_set[hq] == EMPTY_KEY:
                            nl = nlog[0]
                            if nl < log_key.shape[0]:
                                log_set[hq] = key
                                log_key[nl] = key
                                log_val[nl] = merged
                                nlog[0] = nl + 1
                            else:
                                nlog[1] = 1
                    buf_c[q] = merged
                    buf_a[q] = NOT_LOOKED_UP
                    dup = True
                    break
                if not dup:
                    if w >= cap:
                        return False
                    buf_c[w] = x
                    buf_g[w] = g3
                    buf_a[w] = NOT_LOOKED_UP
                    w += 1
        if w == hi:
            node = subtree_end[node]
            continue
        seg[d + 1] = w
        for j in range(token_start[node], token_start[node + 1]):
            t = node_tokens[j]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        node += 1
    return True


@numba.njit(cache=True, nogil=True)
def spawn_lists(gtrans, starts, base, ends, out_gs):  # type: ignore[no-untyped-def]
    """One expected set's spawn lists: for each byte ``b``, the distinct live states ``gtrans[s, b]`` over
    ``starts`` (the set's terminals' start states) go to ``out_gs`` in ascending order (room for
    ``256 * len(starts)``), ending at ``ends[b] - base``. Returns how many were written."""
    w = 0
    for b in range(256):
        first = w
        for i in range(starts.shape[0]):
            t = gtrans[starts[i], b]
            if t < 0:
                continue
            q = w  # insert in order, as the walks met them before: ascending
            while q > first and out_gs[q - 1] > t:
                q -= 1
            if q > first and out_gs[q - 1] == t:
                continue
            for k in range(w, q, -1):
                out_gs[k] = out_gs[k - 1]
            out_gs[q] = t
            w += 1
        ends[b] = base + w
    return w


def walk_buffer_size(cap: int, max_depth: int, n_threads: int) -> int:
    """Entries :func:`walk_jobs` may write to its thread buffers: ``cap`` per trie level, and the jobs'
    own threads."""
    return cap * (max_depth + 2) + n_threads + 1


@numba.njit(cache=True, nogil=True)
def walk_jobs(job_c, job_g, job_off, job_depth, job_first, job_end, node_byte, node_depth, subtree_end,
              token_start, node_tokens, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start,
              eid_gs, term_start, ign_starts, P, write, out, cap, max_depth, misses, nmiss, res_node, res_off, res_c,
              res_g, nres, log_set, log_key, log_val, nlog, buf_c, buf_g, buf_a, dead, skip):  # type: ignore[no-untyped-def]
    """Run walks ``k``: threads ``job_*[job_off[k]:job_off[k+1]]`` at depth ``job_depth[k]`` over trie
    nodes ``job_first[k]..job_end[k]`` (see :func:`_walk_range`). Returns False on thread overflow. The
    thread buffers ``buf_*`` hold :func:`walk_buffer_size` entries (the caller's, reused: fresh ones of a
    few hundred kB would be fresh pages to fault in at every walk). ``dead``, ``skip``: see :func:`_walk_range`."""
    seg = np.zeros(max_depth + 3, np.int64)
    for k in range(job_first.shape[0]):
        lo, hi = job_off[k], job_off[k + 1]
        if not _walk_range(job_c[lo:hi], job_g[lo:hi], job_depth[k], job_first[k], job_end[k], node_byte,
                           node_depth, subtree_end, token_start, node_tokens, gtrans, gacc, gterm, tignore,
                           n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs, term_start, ign_starts, P, write,
                           out, cap, buf_c, buf_g, buf_a, seg, misses, nmiss, res_node, res_off, res_c, res_g, nres,
                           log_set, log_key, log_val, nlog, dead, skip):
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _second_cost(i, follow_ok, t, node_byte, subtree_end):  # type: ignore[no-untyped-def]
    """Trie nodes a walk below trie node ``i``, where a lexeme of terminal ``t`` ends, may visit: each
    child, and the whole subtree of each child whose byte may start a lexeme after ``t``
    (``follow_ok[t]``); 0 if no child's may (nothing to walk). The others are met and left at once, so
    counting their subtrees too (as this once did) called walks of a whitespace lexeme's tokens, where an
    identifier that ends below ``" foo"`` may only go on with whitespace, far dearer than they are."""
    cost = 0
    ok = False
    j = i + 1
    end = subtree_end[i]
    while j < end:
        nxt = subtree_end[j]
        if follow_ok[t, node_byte[j]]:
            cost += nxt - j
            ok = True
        else:
            cost += 1
        j = nxt
    return cost if ok else 0


@numba.njit(cache=True, nogil=True)
def cross_walk(g0, e, e_again, spawn_start, spawn_gs, node_byte, node_depth, subtree_end, token_start, node_tokens,
               gtrans, gacc, gterm, tignore, follow_ok, max_depth, max_second, out, second_nodes, second_states,
               visited):  # type: ignore[no-untyped-def]
    """Tokens that finish the lexeme in state ``g0`` somewhere inside them and go on in the next lexeme.

    The next lexeme is one of expected set ``e`` (what the parser expects after this terminal, plus the
    ignored terminals). Sets in ``out`` the tokens whose rest stays inside next lexemes; an ignored
    lexeme (whitespace) ending there spawns set ``e_again``, since it leaves the parser where it was:
    ``e`` itself, or, where ``e`` is part of the expected set (a crossing computed in parts, see
    ``GrammarAutomaton._split_cross``), the whole set, whose terminals include ``e``'s.
    Where a next lexeme of a parsed terminal could itself end with more bytes to come (a second
    boundary), records (trie node, lexer state) for the caller, which needs the parser to continue, unless
    no byte below the node may start a lexeme after that terminal (``follow_ok[terminal]``; all True: no
    such check). Returns the number of such records, or -1 on overflow or once the trie nodes below the
    records pass ``max_second`` (the caller then walks the thread exactly instead: stopping early saves the
    rest of a walk whose result would not be used); ``visited[0]`` counts the trie nodes walked (about what
    an exact walk of the thread costs), ``visited[1]`` gets what the walks below the records will cost
    (:func:`_second_cost`, summed). Depends only on ``g0`` and ``e``."""
    n_nodes = node_byte.shape[0]
    ns = 0
    for b in range(256):
        ns = max(ns, spawn_start[e * 256 + b + 1] - spawn_start[e * 256 + b],
                 spawn_start[e_again * 256 + b + 1] - spawn_start[e_again * 256 + b])
    cap = 4 * ns + 8
    own = np.full(max_depth + 2, -1, np.int64)  # the lexeme in progress (g0's terminal), per depth
    nxt = np.empty((max_depth + 2, cap), np.int64)  # next-lexeme states per depth
    cnt = np.zeros(max_depth + 2, np.int64)
    own[0] = g0
    n_second = 0
    second_size = 0
    i = 1
    while i < n_nodes:
        d = node_depth[i]
        b = node_byte[i]
        p = own[d - 1]
        g = gtrans[p, b] if p >= 0 else -1
        own[d] = g
        c = 0
        # next lexemes go on; the lexeme ending before b starts set e, an ignored next one set e_again
        respawn = p >= 0 and gacc[p] and d > 1
        again = False
        for k in range(cnt[d - 1] + 1):
            # k < cnt[d-1]: a next lexeme goes on; k == cnt[d-1]: the spawned ones (written out, see _step)
            lo_k, hi_k = k, k + 1
            if k == cnt[d - 1]:
                if not (respawn or again):
                    break
                spawned = e_again if again else e
                lo_k, hi_k = spawn_start[spawned * 256 + b], spawn_start[spawned * 256 + b + 1]
            for kk in range(lo_k, hi_k):
                if k < cnt[d - 1]:
                    q = nxt[d - 1, k]
                    g2 = gtrans[q, b]
                    if gacc[q] and tignore[gterm[q]]:
                        again = True
                else:
                    g2 = spawn_gs[kk]
                if g2 < 0:
                    continue
                dup = False
                for q2 in range(c):
                    if nxt[d, q2] == g2:
                        dup = True
                        break
                if not dup:
                    if c >= nxt.shape[1]:
                        return -1
                    nxt[d, c] = g2
                    c += 1
        cnt[d] = c
        if g < 0 and c == 0:
            i = subtree_end[i]
            continue
        visited[0] += 1
        if c > 0:
            for j in range(token_start[i], token_start[i + 1]):
                t = node_tokens[j]
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            if subtree_end[i] > i + 1:
                for k in range(c):
                    q = nxt[d, k]
                    if gacc[q] and not tignore[gterm[q]]:
                        cost = _second_cost(i, follow_ok, gterm[q], node_byte, subtree_end)
                        if cost == 0:
                            continue
                        if n_second >= second_nodes.shape[0]:
                            return -1
                        second_nodes[n_second] = i
                        second_states[n_second] = q
                        n_second += 1
                        second_size += cost
                        if second_size > max_second:
                            return -1
        i += 1
    visited[1] = second_size
    return n_second




@numba.njit(cache=True, nogil=True)
def _pair_walk(gtrans, gacc, restarts, p0, q0, limit):  # type: ignore[no-untyped-def]
    """The state pairs that the same bytes take global lexer states ``p0`` and ``q0`` to, where from an
    accepting ``p`` each of the ``restarts`` (start states) may also read the next byte (a new lexeme).
    Returns whether ``q`` lives wherever ``p`` goes on (DFAs are trimmed: a live ``p`` may still accept),
    False also past ``limit`` pairs, and the distinct ``q`` met beside an accepting ``p``."""
    n = np.int64(gtrans.shape[0])
    seen = {p0 * n + q0}
    stack = [p0 * n + q0]
    ends = {np.int64(-1)}
    ends.discard(np.int64(-1))
    while len(stack):
        k = stack.pop()
        p = k // n
        q = k % n
        if gacc[p]:
            ends.add(q)
        for b in range(256):
            q2 = gtrans[q, b]
            for j in range(-1, restarts.shape[0] if gacc[p] else 0):
                p2 = gtrans[p, b] if j < 0 else gtrans[restarts[j], b]
                if p2 < 0:
                    continue
                if q2 < 0:
                    return False, np.zeros(0, np.int64)
                k2 = p2 * n + q2
                if k2 not in seen:
                    if len(seen) >= limit:
                        return False, np.zeros(0, np.int64)
                    seen.add(k2)
                    stack.append(k2)
    out = np.empty(len(ends), np.int64)
    for i, q in enumerate(ends):
        out[i] = q
    return True, out


@numba.njit(cache=True, nogil=True)
def _includes(gtrans, gacc, p0, q0, limit):  # type: ignore[no-untyped-def]
    """Whether every string that global lexer state ``p0`` accepts, ``q0`` accepts too; False also past
    ``limit`` state pairs."""
    ok, ends = _pair_walk(gtrans, gacc, np.zeros(0, np.int64), p0, q0, limit)
    return ok and gacc[ends].all()


@numba.njit(cache=True, nogil=True)
def covers_after_ignored(gtrans, gacc, ign_starts, a, h, u0, limit):  # type: ignore[no-untyped-def]
    """Whether lexer state ``h`` (of a parsed terminal U) reads, after any bytes ``x``, whatever a fresh
    lexeme of U (start state ``u0``) reads after an ignored lexeme in state ``a`` (and any run of further
    ignored lexemes) ends on ``x``: for every string ``x`` on which that run may end, the strings
    ``h`` accepts after ``x`` include those ``u0`` accepts. Threads ``(c, a)`` and ``(c, h)`` on one
    parser column ``c`` then make every token of the first's that goes on in a U lexeme a token of the
    second's too (an ignored lexeme leaves the parser at ``c``). False also past ``limit`` state pairs."""
    ok, ends = _pair_walk(gtrans, gacc, ign_starts, a, h, limit)  # the run goes on only where h does
    if not ok:
        return False
    for q in ends:  # noqa: SIM110 - a loop, not all() over a generator, in numba
        if not _includes(gtrans, gacc, u0, q, limit):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def lexeme_walk(g0, gtrans, gacc, node_key, node_token, subtree_end, token_start, node_tokens, max_depth, inside,
                boundaries, visited):  # type: ignore[no-untyped-def]
    """Tokens that stay inside the lexeme in lexer state ``g0`` (bits set in ``inside``), and the trie
    nodes below the root where that lexeme may end with more bytes to come (its *boundaries*, in
    preorder; their count is returned, or -1 if ``boundaries`` is too small, the mask being complete
    either way). ``visited[0]`` counts the trie nodes walked."""
    n_nodes = node_key.shape[0]
    stack = np.empty(max_depth + 1, np.int64)
    stack[0] = g0
    nb = 0
    i = 1
    n_visited = 0
    while i < n_nodes:
        key = node_key[i]
        s = gtrans[stack[(key >> 8) - 1], key & 255]
        if s < 0:
            i = subtree_end[i]
            continue
        stack[key >> 8] = s
        n_visited += 1
        t = node_token[i]
        if t >= 0:
            inside[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        elif t == -2:
            for j in range(token_start[i], token_start[i + 1]):
                t = node_tokens[j]
                inside[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        if gacc[s] and subtree_end[i] > i + 1 and nb >= 0:
            if nb >= boundaries.shape[0]:
                nb = -1  # too many to list; the inside mask is still completed
            else:
                boundaries[nb] = i
                nb += 1
        i += 1
    visited[0] += n_visited
    return nb


@numba.njit(cache=True, nogil=True)
def literal_lexeme(rest, root_child, node_key, node_token, subtree_end, token_start, node_tokens, inside,
                   boundaries):  # type: ignore[no-untyped-def]
    """:func:`lexeme_walk` of a literal's state that has ``rest`` (bytes, non-empty) to read: the tokens
    along ``rest``'s path down the trie, and the node where ``rest`` ends as the one boundary if tokens go
    on below it. Only that path is visited (its children scanned), not every node below the root the
    literal's DFA lets through: the same result for a fraction of the cost. Returns (boundaries, visited,
    the last node of the path): the tokens are those along the path to that node, so it and the boundary
    count are the whole result. ``root_child``: the first byte's node, found without a scan."""
    node = 0
    nb = 0
    for depth in range(rest.shape[0]):
        if depth == 0:
            i = root_child[rest[0]]
            if i < 0:
                return nb, 0, 0
        else:
            want = (np.int64(depth + 1) << 8) | np.int64(rest[depth])
            i = node + 1
            end = subtree_end[node]
            while i < end and node_key[i] != want:
                i = subtree_end[i]
            if i >= end:
                return nb, depth, node
        node = i
        t = node_token[i]
        if t >= 0:
            inside[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        elif t == -2:
            for j in range(token_start[i], token_start[i + 1]):
                t = node_tokens[j]
                inside[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    if subtree_end[node] > node + 1:
        boundaries[0] = node
        nb = 1
    return nb, rest.shape[0], node


@numba.njit(cache=True, nogil=True)
def merged_boundaries(base, removed, added):  # type: ignore[no-untyped-def]
    """``base`` without ``removed`` and with ``added``, all three ascending (:func:`lexeme_diff_walk` lists
    both in preorder). ``np.setdiff1d`` and ``np.union1d`` sort the ~65,000 boundaries of an identifier-like
    lexeme again (5 ms for each new lexer state of SQL's case-free keywords with Llama 3); a merge that
    compared every element took 180 us; the runs of ``base`` between the few changes are copied whole."""
    nb = base.shape[0]
    out = np.empty(nb + added.shape[0], base.dtype)
    i = r = a = n = 0
    while True:
        nxt_r = removed[r] if r < removed.shape[0] else -1
        nxt_a = added[a] if a < added.shape[0] else -1
        if nxt_r < 0 and nxt_a < 0:
            break
        v = nxt_r if nxt_a < 0 or (0 <= nxt_r < nxt_a) else nxt_a
        lo = i + int(np.searchsorted(base[i:], v))  # the first index at or after i whose boundary is not below v
        out[n : n + lo - i] = base[i:lo]
        n += lo - i
        i = lo
        if i < nb and base[i] == v:  # removed, or added again: dropped from base here
            i += 1
        if nxt_a == v:
            out[n] = v
            n += 1
            a += 1
        if nxt_r == v:
            r += 1
    out[n : n + nb - i] = base[i:]
    n += nb - i
    return out[:n]


@numba.njit(cache=True, nogil=True)
def dead_roots(g0, gtrans, node_key, subtree_end, max_depth, out):  # type: ignore[no-untyped-def]
    """The trie nodes where the lexeme in lexer state ``g0`` dies (the first dead node of each path below
    the root, in preorder) into ``out``; their count, or -1 if ``out`` is too small. Every token of a
    subtree that holds none of them, and has none above it, stays inside the lexeme (each trie node is a
    prefix of a token below it, and a lexeme that dies stays dead): :func:`_walk_range` skips those."""
    n_nodes = node_key.shape[0]
    stack = np.empty(max_depth + 1, np.int64)
    stack[0] = g0
    n = 0
    i = 1
    while i < n_nodes:
        key = node_key[i]
        s = gtrans[stack[(key >> 8) - 1], key & 255]
        if s < 0:
            if n >= out.shape[0]:
                return -1
            out[n] = i
            n += 1
            i = subtree_end[i]
            continue
        stack[key >> 8] = s
        i += 1
    return n


@numba.njit(cache=True, nogil=True)
def lexeme_digest(inside, boundaries):  # type: ignore[no-untyped-def]
    """Two 64-bit hashes of a lexeme walk's result: the nonzero words of ``inside`` with their positions,
    then ``boundaries`` (empty for none listed: callers mark that case apart). Most new lexemes are a few
    bytes of a literal, so this reads 4,000 words and hashes a handful (SHA-1 of them all took 9 us)."""
    h1, h2 = HASH_SEEDS
    for i in range(inside.shape[0]):
        w = inside[i]
        if w != 0:
            h1, h2 = mix(h1, h2, (np.uint64(i) << np.uint64(32)) | np.uint64(w))
    for k in range(boundaries.shape[0]):
        h1, h2 = mix(h1, h2, np.uint64(boundaries[k]) + (np.uint64(1) << np.uint64(40)))
    return np.int64(h1 >> np.uint64(1)), np.int64(h2 >> np.uint64(1))


@numba.njit(cache=True, nogil=True)
def boundary_exits(bnodes, node_byte, subtree_end):  # type: ignore[no-untyped-def]
    """The children of boundary nodes ``bnodes`` (a lexeme's, in preorder) grouped by byte, as
    ``(exit_start, exit_node)``: those of byte ``b`` are ``exit_node[exit_start[b]:exit_start[b + 1]]``,
    in preorder."""
    counts = np.zeros(257, np.int64)
    for k in range(bnodes.shape[0]):
        j = bnodes[k] + 1
        while j < subtree_end[bnodes[k]]:
            counts[node_byte[j] + 1] += 1
            j = subtree_end[j]
    for b in range(256):
        counts[b + 1] += counts[b]
    exit_start = counts.copy()
    exit_node = np.empty(counts[256], np.int32)
    for k in range(bnodes.shape[0]):
        j = bnodes[k] + 1
        while j < subtree_end[bnodes[k]]:
            b = node_byte[j]
            exit_node[counts[b]] = j
            counts[b] += 1
            j = subtree_end[j]
    return exit_start, exit_node


@numba.njit(cache=True, nogil=True)
def derived_exits(base_start, base_node, removed, added, node_byte, subtree_end, marks):  # type: ignore[no-untyped-def]
    """:func:`boundary_exits` of a lexeme walked from a known one (:func:`lexeme_diff_walk`): the known one's
    exits less the children of the boundaries it lost (``removed``), plus those of the boundaries it gained
    (``added``, after the known ones of their byte: :func:`cross_exits` does not depend on the order).
    Listing an identifier-like lexeme's 70,000 exits again took 0.5 ms at each new lexer state of a
    keyword-excluding identifier. ``marks``: all False over the trie's nodes, and left so."""
    for k in range(removed.shape[0]):
        j = removed[k] + 1
        while j < subtree_end[removed[k]]:
            marks[j] = True
            j = subtree_end[j]
    add_start, add_node = boundary_exits(added, node_byte, subtree_end)
    exit_start = np.zeros(257, np.int64)
    for b in range(256):
        kept = 0
        for x in range(base_start[b], base_start[b + 1]):
            if not marks[base_node[x]]:
                kept += 1
        exit_start[b + 1] = exit_start[b] + kept + add_start[b + 1] - add_start[b]
    exit_node = np.empty(exit_start[256], np.int32)
    for b in range(256):
        w = exit_start[b]
        for x in range(base_start[b], base_start[b + 1]):
            if not marks[base_node[x]]:
                exit_node[w] = base_node[x]
                w += 1
        for x in range(add_start[b], add_start[b + 1]):
            exit_node[w] = add_node[x]
            w += 1
    for k in range(removed.shape[0]):
        j = removed[k] + 1
        while j < subtree_end[removed[k]]:
            marks[j] = False
            j = subtree_end[j]
    return exit_start, exit_node


@numba.njit(cache=True, nogil=True)
def cross_exits(exit_start, exit_node, e, e_again, spawn_start, spawn_gs, node_byte, node_depth, subtree_end,
                token_start, node_tokens, gtrans, gacc, gterm, tignore, follow_ok, max_depth, budget, max_second, out,
                second_nodes, second_states, visited):  # type: ignore[no-untyped-def]
    """:func:`cross_walk` from a lexeme's boundaries (:func:`lexeme_walk`), given as its *exits*
    (:func:`boundary_exits`): below each boundary node only the next lexemes (expected set ``e``) are
    walked, not the lexeme itself again, and only from the children whose byte starts a lexeme of ``e``
    (an identifier has a boundary at nearly every one of its ~70,000 nodes with Llama 3, where the children
    after which a comma, a dot or a parenthesis may come are a few thousand). Returns the number of
    second-boundary records (in another order than :func:`cross_walk`'s: callers sort them), -1 on
    overflow or past ``max_second`` (as there), -2 past ``budget`` visited nodes (nested boundaries whose
    subtrees overlap: the single walk of :func:`cross_walk` is then cheaper).

    The per-byte step of the next lexemes and the second-boundary records are :func:`cross_walk`'s, written
    out again on purpose: one helper shared by both (``inline="always"``) made cross masks 3.6x slower
    (numba counts references on the array arguments at every node)."""
    ns = 0
    for b in range(256):
        ns = max(ns, spawn_start[e * 256 + b + 1] - spawn_start[e * 256 + b],
                 spawn_start[e_again * 256 + b + 1] - spawn_start[e_again * 256 + b])
    cap = 4 * ns + 8
    nxt = np.empty((max_depth + 2, cap), np.int64)
    cnt = np.zeros(max_depth + 2, np.int64)
    n_second = 0
    second_size = 0
    b0 = -1
    x = 0
    x_end = 0
    while True:
        if x >= x_end:  # the next byte that starts a lexeme of set e and has exits
            b0 += 1
            while b0 < 256 and (spawn_start[e * 256 + b0 + 1] == spawn_start[e * 256 + b0]
                                or exit_start[b0 + 1] == exit_start[b0]):
                b0 += 1
            if b0 >= 256:
                break
            x = exit_start[b0]
            x_end = exit_start[b0 + 1]
        i = exit_node[x]
        x += 1
        d0 = node_depth[i] - 1
        cnt[d0] = 0
        end = subtree_end[i]
        while i < end:
            d = node_depth[i]
            b = node_byte[i]
            c = 0
            respawn = d == d0 + 1  # the lexeme ended at the boundary: b starts a next lexeme
            again = False
            for k in range(cnt[d - 1] + 1):
                lo_k, hi_k = k, k + 1
                if k == cnt[d - 1]:
                    if not (respawn or again):
                        break
                    spawned = e_again if again else e
                    lo_k, hi_k = spawn_start[spawned * 256 + b], spawn_start[spawned * 256 + b + 1]
                for kk in range(lo_k, hi_k):
                    if k < cnt[d - 1]:
                        q = nxt[d - 1, k]
                        g2 = gtrans[q, b]
                        if gacc[q] and tignore[gterm[q]]:
                            again = True
                    else:
                        g2 = spawn_gs[kk]
                    if g2 < 0:
                        continue
                    dup = False
                    for q2 in range(c):
                        if nxt[d, q2] == g2:
                            dup = True
                            break
                    if not dup:
                        if c >= nxt.shape[1]:
                            return -1
                        nxt[d, c] = g2
                        c += 1
            cnt[d] = c
            if c == 0:
                i = subtree_end[i]
                continue
            visited[0] += 1
            if visited[0] > budget:
                return -2
            for j in range(token_start[i], token_start[i + 1]):
                t = node_tokens[j]
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            if subtree_end[i] > i + 1:
                for k in range(c):
                    q = nxt[d, k]
                    if gacc[q] and not tignore[gterm[q]]:
                        cost = _second_cost(i, follow_ok, gterm[q], node_byte, subtree_end)
                        if cost == 0:
                            continue
                        if n_second >= second_nodes.shape[0]:
                            return -1
                        second_nodes[n_second] = i
                        second_states[n_second] = q
                        n_second += 1
                        second_size += cost
                        if second_size > max_second:
                            return -1
            i += 1
    visited[1] = second_size
    return n_second


@numba.njit(cache=True, nogil=True)
def lexeme_diff_walk(g0, trans_g, acc_g, h0, trans_h, acc_h, classes, h_offset, node_key, node_token, subtree_end,
                     subtree_height, token_start, node_tokens, max_depth, inside, added, removed,
                     budget):  # type: ignore[no-untyped-def]
    """:func:`lexeme_walk` of state ``g0`` from that of another state ``h0`` whose result is known: ``inside``
    holds ``h0``'s mask on entry and ``g0``'s on return. Both are walked together, and a subtree is skipped
    as soon as the two states agree on every string as long as the longest token below it:
    ``classes[r, s]`` (``trans_g``'s state ``s``) and ``classes[r, h_offset + s]`` (``trans_h``'s) are equal
    when the states agree on strings of up to ``r`` bytes (the last row standing for every longer ``r``).
    :func:`fsm.length_classes` gives these rows for one DFA, :func:`fsm.joint_classes` for two. So only the
    trie's paths where they differ are walked: a string that must not be ``"$schema"`` costs the ``$s...``
    tokens, and "at most 40 more characters" from "at most 45" or from any string costs the tokens longer
    than 40 bytes. Boundaries of ``g0`` that ``h0`` lacks go to ``added``,
    the converse to ``removed`` (preorder). Returns ``(n_added, n_removed)``, or ``(-1, -1)`` past
    ``budget`` nodes or a full list."""
    n_nodes = node_key.shape[0]
    last_row = classes.shape[0] - 1
    stack_g = np.empty(max_depth + 1, np.int64)
    stack_h = np.empty(max_depth + 1, np.int64)
    stack_g[0] = g0
    stack_h[0] = h0
    n_add = 0
    n_rem = 0
    visited = 0
    i = 1
    while i < n_nodes:
        key = node_key[i]
        d = key >> 8
        b = key & 255
        pg = stack_g[d - 1]
        ph = stack_h[d - 1]
        x = trans_g[pg, b] if pg >= 0 else -1
        y = trans_h[ph, b] if ph >= 0 else -1
        r = min(subtree_height[i], last_row)
        if (x < 0 and y < 0) or (x >= 0 and y >= 0 and classes[r, x] == classes[r, h_offset + y]):
            i = subtree_end[i]  # the same below (or nothing): h0's result stands
            continue
        visited += 1
        if visited > budget:
            return -1, -1
        stack_g[d] = x
        stack_h[d] = y
        if (x >= 0) != (y >= 0):  # the tokens ending here are in exactly one of the two masks
            t = node_token[i]
            if t != -1:
                lo = token_start[i] if t == -2 else 0
                hi = token_start[i + 1] if t == -2 else 1
                for j in range(lo, hi):
                    tt = node_tokens[j] if t == -2 else t
                    bit = np.uint32(1) << np.uint32(tt & 31)
                    if x >= 0:
                        inside[tt >> 5] |= bit
                    else:
                        inside[tt >> 5] &= ~bit
        if subtree_end[i] > i + 1:
            bx = x >= 0 and acc_g[x]
            by = y >= 0 and acc_h[y]
            if bx and not by:
                if n_add >= added.shape[0]:
                    return -1, -1
                added[n_add] = i
                n_add += 1
            elif by and not bx:
                if n_rem >= removed.shape[0]:
                    return -1, -1
                removed[n_rem] = i
                n_rem += 1
        i += 1
    return n_add, n_rem
