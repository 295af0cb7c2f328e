"""Numba walks for grammar constraints: lexer threads through the token trie and through token bytes.

A *thread* is a pair (parser column ``c``, global lexer state ``g``): a lexeme of terminal
``term[g]`` is being read, started where the parser was at column ``c``. Consuming byte ``b``:

* the lexeme goes on: ``(c, trans[g, b])`` if that state is live;
* if ``g`` accepts, the lexeme may also end before ``b``: the parser moves to ``c2 = advance(c, term[g])``
  (``c`` itself for ignored terminals) and ``b`` starts a new lexeme of every terminal ``c2`` expects:
  ``(c2, trans[start, b])`` for each ``start`` in ``spawn(c2)``.

When several lexemes end before the same byte, their parser columns are at the same text position, so
(as in an Earley chart, one column per position) they are merged into one column, their union; this
keeps the number of threads bounded for grammars with ambiguous lexing.

Parser advances and unions are memoised in one open-addressing hash table filled from Python; a walk
that needs an entry not yet computed stops and reports it (a *miss*: ``(c, t)`` with ``t >= 0`` for an
advance, ``(a, UNION_MISS - b)`` for a union), Python computes it, and the walk runs again. All functions
release the GIL, so many matchers can fill masks from threads.
"""

from __future__ import annotations

import numba
import numpy as np

EMPTY_KEY = -1
UNKNOWN = -2
UNION_MISS = -4
"""A union miss of columns ``a`` < ``b`` is reported as ``(a, UNION_MISS - b)``."""
OVERFLOW = -3
_UNION_FLAG = np.int64(1) << np.int64(62)


@numba.njit(cache=True, nogil=True, inline="always")
def union_key(a, b):  # type: ignore[no-untyped-def]
    """Table key of the union of columns ``a`` < ``b`` (disjoint from advance keys ``c * (n_terms+1) + t``)."""
    return _UNION_FLAG | (np.int64(a) << np.int64(31)) | np.int64(b)
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


@numba.njit(cache=True, nogil=True, inline="always")
def _push(buf_c, buf_g, lo, w, c, g):  # type: ignore[no-untyped-def]
    for k in range(lo, w):
        if buf_c[k] == c and buf_g[k] == g:
            return w
    buf_c[w] = c
    buf_g[w] = g
    return w + 1


@numba.njit(cache=True, nogil=True)
def _step(buf_c, buf_g, lo, hi, b, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals,
          col_eid, eid_start, eid_gs, cap):  # type: ignore[no-untyped-def]
    """Threads buf[lo:hi] consume byte ``b``; results go to buf[hi:w]. Returns (w, miss_c, miss_t)."""
    w = hi
    u = -1  # the merged column of every lexeme that ends before b
    for k in range(lo, hi):
        c = buf_c[k]
        g = buf_g[k]
        g2 = gtrans[g, b]
        if g2 >= 0:
            if w >= cap:
                return OVERFLOW, OVERFLOW, OVERFLOW
            w = _push(buf_c, buf_g, hi, w, c, g2)
        if gacc[g]:
            t = gterm[g]
            if tignore[t]:
                c2 = c
            else:
                c2 = table_get(pkeys, pvals, c * n_terms1 + t)
                if c2 == UNKNOWN:
                    return w, c, t
                if c2 < 0:
                    continue
            if u < 0 or u == c2:
                u = c2
            else:
                lo_c = min(u, c2)
                hi_c = max(u, c2)
                m = table_get(pkeys, pvals, union_key(lo_c, hi_c))
                if m == UNKNOWN:
                    return w, lo_c, UNION_MISS - hi_c
                u = m
    if u >= 0:
        e = col_eid[u]
        for j in range(eid_start[e], eid_start[e + 1]):
            g3 = gtrans[eid_gs[j], b]
            if g3 >= 0:
                if w >= cap:
                    return OVERFLOW, OVERFLOW, OVERFLOW
                w = _push(buf_c, buf_g, hi, w, u, g3)
    return w, -1, -1


@numba.njit(cache=True, nogil=True)
def walk_bytes(init_c, init_g, data, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals,
               col_eid, eid_start, eid_gs, cap):  # type: ignore[no-untyped-def]
    """Threads after consuming ``data``. Returns (cols, states, miss_c, miss_t); empty arrays = rejected."""
    buf_c = np.empty(2 * cap, np.int64)
    buf_g = np.empty(2 * cap, np.int64)
    n = init_c.shape[0]
    for k in range(n):
        buf_c[k] = init_c[k]
        buf_g[k] = init_g[k]
    lo = 0
    hi = n
    for b in data:
        # results are written after hi, then moved to the front
        w, mc, mt = _step(buf_c, buf_g, lo, hi, b, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals,
                          col_eid, eid_start, eid_gs, 2 * cap)
        if w < 0:
            return buf_c[:0], buf_g[:0], OVERFLOW, OVERFLOW
        if mc >= 0:
            return buf_c[:0], buf_g[:0], mc, mt
        m = w - hi
        for k in range(m):
            buf_c[k] = buf_c[hi + k]
            buf_g[k] = buf_g[hi + k]
        lo = 0
        hi = m
        if m == 0:
            break
    return buf_c[:hi].copy(), buf_g[:hi].copy(), -1, -1


@numba.njit(cache=True, nogil=True)
def walk_subtree(init_c, init_g, start, node_byte, node_depth, subtree_end, token_start, node_tokens,
                 gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs,
                 out, cap, max_depth):  # type: ignore[no-untyped-def]
    """Set in ``out`` the bit of every token below trie node ``start`` that some path of threads accepts.

    ``init_*`` are the threads after the bytes of ``start``; ``cap`` bounds the threads per byte. Returns
    (-1, -1), a miss, or (OVERFLOW, OVERFLOW) if the thread buffer overflowed (call again with a larger
    ``cap``)."""
    levels = max_depth - node_depth[start] + 2
    buf_c = np.empty(cap * levels + init_c.shape[0], np.int64)
    buf_g = np.empty(cap * levels + init_g.shape[0], np.int64)
    seg = np.zeros(levels + 1, np.int64)
    return _walk_subtree(init_c, init_g, start, node_byte, node_depth, subtree_end, token_start, node_tokens,
                         gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs,
                         out, cap, buf_c, buf_g, seg)


@numba.njit(cache=True, nogil=True)
def _walk_subtree(init_c, init_g, start, node_byte, node_depth, subtree_end, token_start, node_tokens,
                  gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs,
                  out, cap, buf_c, buf_g, seg):  # type: ignore[no-untyped-def]
    depth0 = node_depth[start]
    n = init_c.shape[0]
    for k in range(n):
        buf_c[k] = init_c[k]
        buf_g[k] = init_g[k]
    seg[1] = n
    i = start + 1
    end = subtree_end[start]
    while i < end:
        d = node_depth[i] - depth0
        lo = seg[d - 1]
        hi = seg[d]
        w, mc, mt = _step(buf_c, buf_g, lo, hi, node_byte[i], gtrans, gacc, gterm, tignore, n_terms1,
                          pkeys, pvals, col_eid, eid_start, eid_gs, hi + cap)
        if w < 0:
            return OVERFLOW, OVERFLOW
        if mc >= 0:
            return mc, mt
        if w == hi:
            i = subtree_end[i]
            continue
        seg[d + 1] = w
        for j in range(token_start[i], token_start[i + 1]):
            t = node_tokens[j]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        i += 1
    return -1, -1


@numba.njit(cache=True, nogil=True)
def walk_boundaries(starts, cols, eps_state, node_byte, node_depth, subtree_end, token_start, node_tokens,
                    gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid, eid_start, eid_gs,
                    out, cap, max_depth):  # type: ignore[no-untyped-def]
    """For each k: a lexeme boundary at trie node ``starts[k]`` with the parser at column ``cols[k]``;
    walk the tokens below it (see :func:`walk_subtree`). Returns (index reached, miss_c, miss_t)."""
    one_c = np.empty(1, np.int64)
    one_g = np.empty(1, np.int64)
    one_g[0] = eps_state
    buf_c = np.empty(cap * (max_depth + 2) + 1, np.int64)
    buf_g = np.empty(cap * (max_depth + 2) + 1, np.int64)
    seg = np.zeros(max_depth + 3, np.int64)
    for k in range(starts.shape[0]):
        one_c[0] = cols[k]
        mc, mt = _walk_subtree(one_c, one_g, starts[k], node_byte, node_depth, subtree_end, token_start,
                               node_tokens, gtrans, gacc, gterm, tignore, n_terms1, pkeys, pvals, col_eid,
                               eid_start, eid_gs, out, cap, buf_c, buf_g, seg)
        if mc != -1:
            return k, mc, mt
    return starts.shape[0], -1, -1


@numba.njit(cache=True, nogil=True)
def cross_walk(g0, spawn_gs, node_byte, node_depth, subtree_end, token_start, node_tokens, gtrans, gacc, gterm,
               tignore, max_depth, out, second_nodes, second_states):  # type: ignore[no-untyped-def]
    """Tokens that finish the lexeme in state ``g0`` somewhere inside them and go on in the next lexeme.

    The next lexeme starts in one of ``spawn_gs`` (what the parser expects after this terminal, plus the
    ignored terminals). Sets in ``out`` the tokens whose rest stays inside next lexemes; an ignored
    lexeme (whitespace) ending there spawns ``spawn_gs`` again, since it leaves the parser where it was.
    Where a next lexeme of a parsed terminal could itself end with more bytes to come (a second
    boundary), records (trie node, lexer state) for the caller, which needs the parser to continue.
    Returns the number of such records, or -1 on overflow. Depends only on ``g0`` and ``spawn_gs``."""
    n_nodes = node_byte.shape[0]
    ns = spawn_gs.shape[0]
    cap = 4 * ns + 8
    own = np.full(max_depth + 2, -1, np.int64)  # the lexeme in progress (g0's terminal), per depth
    nxt = np.empty((max_depth + 2, cap), np.int64)  # next-lexeme states per depth
    cnt = np.zeros(max_depth + 2, np.int64)
    own[0] = g0
    n_second = 0
    i = 1
    while i < n_nodes:
        d = node_depth[i]
        b = node_byte[i]
        p = own[d - 1]
        g = gtrans[p, b] if p >= 0 else -1
        own[d] = g
        c = 0
        # next lexemes go on; an ignored one that ended before b starts the expected ones again
        respawn = p >= 0 and gacc[p] and d > 1
        for k in range(cnt[d - 1]):
            q = nxt[d - 1, k]
            g2 = gtrans[q, b]
            if g2 >= 0:
                c = _add(nxt, d, c, g2)
                if c < 0:
                    return -1
            if gacc[q] and tignore[gterm[q]]:
                respawn = True
        if respawn:
            for k in range(ns):
                g2 = gtrans[spawn_gs[k], b]
                if g2 >= 0:
                    c = _add(nxt, d, c, g2)
                    if c < 0:
                        return -1
        cnt[d] = c
        if g < 0 and c == 0:
            i = subtree_end[i]
            continue
        if c > 0:
            for j in range(token_start[i], token_start[i + 1]):
                t = node_tokens[j]
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            if subtree_end[i] > i + 1:
                for k in range(c):
                    q = nxt[d, k]
                    if gacc[q] and not tignore[gterm[q]]:
                        if n_second >= second_nodes.shape[0]:
                            return -1
                        second_nodes[n_second] = i
                        second_states[n_second] = q
                        n_second += 1
        i += 1
    return n_second


@numba.njit(cache=True, nogil=True, inline="always")
def _add(nxt, d, c, g):  # type: ignore[no-untyped-def]
    for q in range(c):
        if nxt[d, q] == g:
            return c
    if c >= nxt.shape[1]:
        return -1
    nxt[d, c] = g
    return c + 1
