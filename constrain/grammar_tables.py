"""A grammar IR prepared for the engine: terminal DFAs in one global table, rules as integer arrays.

Steps (each keeps the language unchanged, except where the vocabulary cannot spell a byte):

1. terminals compile to byte DFAs, restricted to the bytes the vocabulary can produce;
2. terminals matching the empty string are split into "non-empty part | nothing", so every lexeme
   consumes at least one byte (the engine's lazy lexeme boundaries rely on that);
3. terminals with the same language are merged;
4. unproductive and unreachable rules are removed; an empty language is an error;
5. a nonterminal's alternatives are factored into shared prefixes and suffixes
   (:mod:`constrain.grammar_factor`).

All terminal DFAs are stacked into one ``global_trans`` table (``int32[G, 256]``): a *global lexer
state* ``g`` names a terminal and a state of its DFA. One extra row, ``eps_state``, is an accepting
state with no transitions belonging to the pseudo-terminal ``eps_term``: the thread that stands for
"a lexeme boundary just happened here".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import numpy.typing as npt

from constrain.errors import GrammarError
from constrain.fsm import ByteDFA, compile_node
from constrain.grammar_factor import factor_alternatives
from constrain.grammar_ir import Grammar, N, Rule, T
from constrain.regex import Node

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@lru_cache(maxsize=4096)
def _compile_terminal(node: Node) -> ByteDFA:
    return compile_node(node)


def terminal_dfa(defn: Node | ByteDFA) -> ByteDFA:
    return defn if isinstance(defn, ByteDFA) else _compile_terminal(defn)


@dataclass
class GrammarTables:
    """Integer tables for the Earley parser and the lexer threads."""

    # terminals
    term_names: list[str]
    term_dfas: list[ByteDFA]
    term_ignore: npt.NDArray[np.bool_]
    """``term_ignore[t]``: completing ``t`` does not advance the parser (``%ignore`` and ``eps_term``)."""
    term_offset: I32
    global_trans: I32
    global_accept: npt.NDArray[np.bool_]
    global_term: I32
    eps_term: int
    eps_state: int
    # rules: symbols 0..n_terms-1 are terminals, n_terms.. are nonterminals
    n_terms: int
    nonterm_names: list[str]
    rule_lhs: I32
    rule_start: I32
    """Dotted rule ``d`` of rule ``r`` at dot ``k`` is ``rule_start[r] + k``; rule ``r`` has
    ``rule_start[r+1] - rule_start[r] - 1`` symbols."""
    dotted_next: I32
    """Symbol after the dot (-1 when the dotted rule is complete)."""
    dotted_lhs: I32
    nullable: npt.NDArray[np.bool_]
    """Per nonterminal (index ``symbol - n_terms``)."""
    start_symbol: int
    """The augmented start nonterminal; rule 0 is ``start' -> start``."""

    @property
    def n_global_states(self) -> int:
        return int(self.global_trans.shape[0])

    def term_of_global(self, g: int) -> int:
        return int(self.global_term[g])


def build_tables(grammar: Grammar, byte_alphabet: npt.NDArray[np.bool_] | None = None,
                 factor: bool = True) -> GrammarTables:
    """Normalise ``grammar`` and lay it out as integer tables (see the module docstring); ``factor``:
    whether to do step 5."""
    grammar.check()
    rules = list(grammar.rules)
    dfas: dict[str, ByteDFA] = {}
    for name, defn in grammar.terminals.items():
        try:
            dfa = terminal_dfa(defn)
        except Exception as e:  # a terminal that does not compile names itself
            raise GrammarError(f"terminal {name!r}: {e}") from e
        if byte_alphabet is not None:
            dfa = dfa.restricted(byte_alphabet)
        dfas[name] = dfa

    # 2. empty-string terminals: T -> (T without "") | ""
    empty_ok = {n: None for n, d in dfas.items() if d.matches_empty}  # in terminal order (a set's is per process)
    for name in empty_ok:
        dfas[name] = dfas[name].without_empty()
    if empty_ok:
        new_rules = []
        for r in rules:
            if any(isinstance(s, T) and s.name in empty_ok for s in r.rhs):
                rhs = tuple(N(f"{s.name}?eps") if isinstance(s, T) and s.name in empty_ok else s for s in r.rhs)
                new_rules.append(Rule(r.lhs, rhs))
            else:
                new_rules.append(r)
        for name in empty_ok:
            new_rules.append(Rule(f"{name}?eps", ()))
            new_rules.append(Rule(f"{name}?eps", (T(name),)))
        rules = new_rules
    # ignored terminals get their own ids (a name may also be used in rules, where it does advance the parser)
    ignore = []
    for n in grammar.ignore:
        if not dfas[n].is_empty:
            dfas[f"{n}%ignore"] = dfas[n]
            ignore.append(f"{n}%ignore")

    # 3. merge terminals with equal languages (only those used in rules; ignored ones stay apart)
    canonical: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for name, dfa in dfas.items():
        if dfa.is_empty or name in ignore:
            continue
        canonical[name] = by_key.setdefault(dfa.key, name)
    renamed = {name: canon for name, canon in canonical.items() if name != canon}
    if renamed:
        rules = [Rule(r.lhs, tuple(T(renamed.get(s.name, s.name)) if isinstance(s, T) else s for s in r.rhs))
                 for r in rules]

    # 4. productive, then reachable (on integers: terminal k is k, or -1 if it matches nothing; nonterminal j
    # is n_used + j)
    term_ids = {n: k for k, n in enumerate(n for n, d in dfas.items() if not d.is_empty)}
    lhs_names = list(dict.fromkeys(r.lhs for r in rules))
    lhs_ids, rhs_start, symbols = _encode(rules, term_ids, lhs_names)
    n_used = len(term_ids)
    keep, term_order = _prune(lhs_ids, rhs_start, symbols, n_used, len(lhs_names), lhs_names.index(grammar.start))
    if not keep.any():
        raise GrammarError(f"the grammar's language is empty: start rule {grammar.start!r} derives no string"
                           + (" this tokenizer can spell" if byte_alphabet is not None else ""))
    kept = keep.nonzero()[0].tolist()
    names_of = list(term_ids)
    used_terms = [names_of[k] for k in term_order.tolist()]
    # 5. alternatives sharing prefixes or suffixes are factored (fewer Earley items per column)
    if factor:
        reach_names = {rules[i].lhs for i in kept}
        rules = factor_alternatives([rules[i] for i in kept], reach_names)
        lhs_names = list(dict.fromkeys(r.lhs for r in rules))
        lhs_ids, rhs_start, symbols = _encode(rules, term_ids, lhs_names)
        kept = list(range(len(rules)))

    # terminal numbering: used terminals, then ignored ones, then eps
    term_names = list(dict.fromkeys([*used_terms, *ignore]))
    term_dfas = [dfas[n] for n in term_names]
    n_terms = len(term_names)
    eps_term = n_terms
    offsets = np.zeros(n_terms + 2, dtype=np.int32)
    offsets[1 : n_terms + 1] = np.cumsum([d.n_states for d in term_dfas], dtype=np.int64)
    offsets[n_terms + 1] = offsets[n_terms] + 1
    total = int(offsets[-1])
    # every terminal's table stacked, its targets shifted by its offset
    gterm = np.repeat(np.arange(n_terms + 1, dtype=np.int32), np.diff(offsets))
    gtrans = _stack(np.concatenate([d.trans for d in term_dfas] + [np.full((1, 256), -1, np.int32)]), gterm, offsets)
    gacc = np.concatenate([d.accepting for d in term_dfas] + [np.zeros(1, bool)]).astype(bool)
    eps_state = total - 1
    gacc[eps_state] = True
    gterm[eps_state] = eps_term
    term_ignore = np.zeros(n_terms + 1, dtype=bool)
    term_ignore[len(used_terms) : n_terms] = True  # the ignored ones (their names are never in rules)
    term_ignore[eps_term] = True

    # rules as integers, with the augmented start rule first: nonterminals numbered by first appearance
    new_term = np.full(n_used, -1, np.int64)
    new_term[term_order] = np.arange(len(term_order))
    start_id = lhs_names.index(grammar.start)
    (rule_lhs, rule_start, dotted_next, dotted_lhs, nt_order) = _layout(
        lhs_ids, rhs_start, symbols, np.array(kept, np.int64), new_term, n_used, start_id, n_terms)
    nonterms = [f"{grammar.start}'", *(lhs_names[k] for k in nt_order.tolist())]
    nullable = _nullable(rule_lhs, rule_start, dotted_next, n_terms, len(nonterms))
    return GrammarTables(
        term_names=term_names, term_dfas=term_dfas, term_ignore=term_ignore, term_offset=offsets,
        global_trans=gtrans, global_accept=gacc, global_term=gterm, eps_term=eps_term, eps_state=eps_state,
        n_terms=n_terms, nonterm_names=nonterms, rule_lhs=rule_lhs, rule_start=rule_start,
        dotted_next=dotted_next, dotted_lhs=dotted_lhs, nullable=nullable, start_symbol=n_terms,
    )


def _encode(rules: list[Rule], term_ids: dict[str, int], lhs_names: list[str]) -> tuple[I64, I64, I64]:
    """Rules as integer arrays: left-hand sides, and right-hand sides concatenated (terminal ``k`` as ``k``, or
    -1 if it matches nothing; nonterminal ``j`` of ``lhs_names`` as ``len(term_ids) + j``; -2 if undefined)."""
    n_used = len(term_ids)
    ids = {n: n_used + j for j, n in enumerate(lhs_names)}
    lhs = np.array([ids[r.lhs] - n_used for r in rules], np.int64)
    lengths = np.fromiter((len(r.rhs) for r in rules), np.int64, len(rules))
    rhs_start = np.zeros(len(rules) + 1, np.int64)
    np.cumsum(lengths, out=rhs_start[1:])
    rhs = np.fromiter((term_ids.get(x.name, -1) if type(x) is T else ids.get(x.name, -2)
                       for r in rules for x in r.rhs), np.int64, int(rhs_start[-1]))
    return lhs, rhs_start, rhs


@numba.njit(cache=True, nogil=True)
def _derivable_nts(lhs, starts, ends, rhs, first_nt, n_nt, terminals_block):  # type: ignore[no-untyped-def]
    """Nonterminals that derive something when each rule ``r`` (symbols ``rhs[starts[r]:ends[r]]``) needs its
    nonterminals to (the least fixed point, by counting what each rule still waits for: linear); a rule with
    a symbol below 0, or with any terminal when ``terminals_block``, derives nothing."""
    n_rules = lhs.shape[0]
    waiting = np.zeros(n_rules, np.int64)
    users_start = np.zeros(n_nt + 1, np.int64)
    for r in range(n_rules):
        for k in range(starts[r], ends[r]):
            x = rhs[k]
            if x < 0 or (x < first_nt and terminals_block):
                waiting[r] = -1
                break
    for r in range(n_rules):
        if waiting[r] < 0:
            continue
        for k in range(starts[r], ends[r]):
            if rhs[k] >= first_nt:
                waiting[r] += 1
                users_start[rhs[k] - first_nt + 1] += 1
    for j in range(n_nt):
        users_start[j + 1] += users_start[j]
    users = np.empty(users_start[n_nt], np.int64)
    fill = users_start[:n_nt].copy()
    for r in range(n_rules):
        if waiting[r] < 0:
            continue
        for k in range(starts[r], ends[r]):
            if rhs[k] >= first_nt:
                users[fill[rhs[k] - first_nt]] = r
                fill[rhs[k] - first_nt] += 1
    done = np.zeros(n_nt, np.bool_)
    ready = np.empty(n_rules + 1, np.int64)
    n_ready = 0
    for r in range(n_rules):
        if waiting[r] == 0:
            ready[n_ready] = lhs[r]
            n_ready += 1
    while n_ready:
        n_ready -= 1
        a = ready[n_ready]
        if done[a]:
            continue
        done[a] = True
        for u in range(users_start[a], users_start[a + 1]):
            r = users[u]
            waiting[r] -= 1
            if waiting[r] == 0:
                ready[n_ready] = lhs[r]
                n_ready += 1
    return done


@numba.njit(cache=True, nogil=True)
def _prune(lhs, rhs_start, rhs, n_used, n_nt, start):  # type: ignore[no-untyped-def]
    """The rules to keep (every symbol spellable and productive, the left-hand side reachable from
    ``start``) and the used terminals in order of discovery (depth first from ``start``, rules in order)."""
    n_rules = lhs.shape[0]
    productive = _derivable_nts(lhs, rhs_start[:-1], rhs_start[1:], rhs, n_used, n_nt, False)
    keep = np.zeros(n_rules, np.bool_)
    if not productive[start]:
        return keep, np.zeros(0, np.int64)
    for r in range(n_rules):
        ok = productive[lhs[r]]
        for k in range(rhs_start[r], rhs_start[r + 1]):
            x = rhs[k]
            if x < 0 or (x >= n_used and not productive[x - n_used]):
                ok = False
                break
        keep[r] = ok
    by_lhs_start = np.zeros(n_nt + 1, np.int64)
    for r in range(n_rules):
        if keep[r]:
            by_lhs_start[lhs[r] + 1] += 1
    for j in range(n_nt):
        by_lhs_start[j + 1] += by_lhs_start[j]
    by_lhs = np.empty(by_lhs_start[n_nt], np.int64)
    fill = by_lhs_start[:n_nt].copy()
    for r in range(n_rules):
        if keep[r]:
            by_lhs[fill[lhs[r]]] = r
            fill[lhs[r]] += 1
    reach = np.zeros(n_nt, np.bool_)
    seen_term = np.zeros(n_used, np.bool_)
    term_order = np.empty(n_used, np.int64)
    n_order = 0
    stack = np.empty(n_nt, np.int64)
    reach[start] = True
    stack[0] = start
    top = 1
    while top:
        top -= 1
        a = stack[top]
        for i in range(by_lhs_start[a], by_lhs_start[a + 1]):
            r = by_lhs[i]
            for k in range(rhs_start[r], rhs_start[r + 1]):
                x = rhs[k]
                if x >= n_used:
                    if not reach[x - n_used]:
                        reach[x - n_used] = True
                        stack[top] = x - n_used
                        top += 1
                elif not seen_term[x]:
                    seen_term[x] = True
                    term_order[n_order] = x
                    n_order += 1
    for r in range(n_rules):
        keep[r] = keep[r] and reach[lhs[r]]
    return keep, term_order[:n_order].copy()


@numba.njit(cache=True, nogil=True)
def _layout(lhs, rhs_start, rhs, kept, new_term, n_used, start, n_terms):  # type: ignore[no-untyped-def]
    """The kept rules, renumbered, after the augmented start rule ``start' -> start``: nonterminals by first
    appearance as a left-hand side (``start'`` is ``n_terms``), terminals by ``new_term``. Returns each
    rule's left-hand side, where its dotted rules start, the symbol after each dot (-1 at the end), each
    dotted rule's left-hand side, and the old nonterminal ids in their new order."""
    n_nt = 0
    for r in range(lhs.shape[0]):
        n_nt = max(n_nt, lhs[r] + 1)
    n_nt = max(n_nt, start + 1)
    new_nt = np.full(n_nt, -1, np.int64)
    nt_order = np.empty(n_nt, np.int64)
    n_new = 0
    for r in kept:
        if new_nt[lhs[r]] < 0:
            new_nt[lhs[r]] = n_new
            nt_order[n_new] = lhs[r]
            n_new += 1
    n_rules = kept.shape[0] + 1
    rule_lhs = np.empty(n_rules, np.int32)
    rule_start = np.zeros(n_rules + 1, np.int32)
    rule_start[1] = 2
    for i in range(kept.shape[0]):
        r = kept[i]
        rule_start[i + 2] = rule_start[i + 1] + rhs_start[r + 1] - rhs_start[r] + 1
    dotted_next = np.full(rule_start[n_rules], -1, np.int32)
    dotted_lhs = np.empty(rule_start[n_rules], np.int32)
    rule_lhs[0] = n_terms
    dotted_next[0] = n_terms + 1 + new_nt[start]
    dotted_lhs[0] = n_terms
    dotted_lhs[1] = n_terms
    for i in range(kept.shape[0]):
        r = kept[i]
        a = n_terms + 1 + new_nt[lhs[r]]
        rule_lhs[i + 1] = a
        base = rule_start[i + 1]
        for k in range(rhs_start[r], rhs_start[r + 1]):
            x = rhs[k]
            dotted_next[base + k - rhs_start[r]] = new_term[x] if x < n_used else n_terms + 1 + new_nt[x - n_used]
        for k in range(base, rule_start[i + 2]):
            dotted_lhs[k] = a
    return rule_lhs, rule_start, dotted_next, dotted_lhs, nt_order[:n_new].copy()


@numba.njit(cache=True, nogil=True)
def _stack(stacked, gterm, offsets):  # type: ignore[no-untyped-def]
    """Each terminal's transition rows with targets shifted by its offset in the global table."""
    out = np.empty(stacked.shape, np.int32)
    for g in range(stacked.shape[0]):
        off = offsets[gterm[g]]
        for b in range(256):
            t = stacked[g, b]
            out[g, b] = t + off if t >= 0 else -1
    return out


def _nullable(rule_lhs: npt.NDArray[np.int32], rule_start: npt.NDArray[np.int32],
              dotted_next: npt.NDArray[np.int32], n_terms: int, n_nt: int) -> npt.NDArray[np.bool_]:
    """Per nonterminal: whether it derives the empty string."""
    starts = rule_start.astype(np.int64)
    return _derivable_nts(rule_lhs.astype(np.int64) - n_terms, starts[:-1], starts[1:] - 1,
                          dotted_next.astype(np.int64), n_terms, n_nt, True)


def follow_bytes(tables: GrammarTables) -> npt.NDArray[np.bool_]:
    """``[t, b]``: whether some lexeme may start with byte ``b`` right after terminal ``t``'s: the first bytes
    of the terminals that follow ``t`` in some sentential form (FOLLOW), and of the ignored ones. A lexeme
    of ``t`` ending inside a token before any other byte has no continuation (the eps row is all True)."""
    n_terms = tables.n_terms
    first = tables.global_trans[tables.term_offset[:n_terms].astype(np.int64)] >= 0  # [t, b]
    words = np.packbits(first, axis=1, bitorder="little").view(np.uint64).reshape(n_terms, 4)
    ignored = np.packbits(first[tables.term_ignore[:n_terms]].any(axis=0), bitorder="little").view(np.uint64)
    follow = _follow_words(tables.rule_start.astype(np.int64), tables.dotted_next.astype(np.int64),
                           tables.dotted_lhs.astype(np.int64), tables.nullable, n_terms,
                           np.ascontiguousarray(words), ignored.copy())
    out = np.ones((n_terms + 1, 256), np.bool_)
    out[:n_terms] = np.unpackbits(follow.view(np.uint8).reshape(n_terms, 32), axis=1, bitorder="little").astype(bool)
    return out


@numba.njit(cache=True, nogil=True)
def _follow_words(rule_start, dnext, dlhs, nullable, n_terms, tfirst, ignored):  # type: ignore[no-untyped-def]
    """FIRST and FOLLOW as sets of first bytes (four 64-bit words each); returns each terminal's FOLLOW
    bytes with the ignored terminals' first bytes. Each rule is read once for what it adds itself, and
    the sets it passes on (``FIRST(A) >= FIRST(B)`` for ``A -> B ...``, ``FOLLOW(X) >= FOLLOW(A)`` for
    ``A -> ... X``) become edges along which a worklist spreads them: sweeping every rule until nothing
    changed took a pass per link of the longest chain (0.7 ms for a 2,000-rule schema grammar, in the
    first mask that crosses a lexeme)."""
    n_nt = nullable.shape[0]
    n_rules = rule_start.shape[0] - 1
    first = np.zeros((n_nt, 4), np.uint64)
    src = np.empty(dnext.shape[0], np.int64)  # edges: set[dst] >= set[src] (at most one per dotted item)
    dst = np.empty(dnext.shape[0], np.int64)
    n_e = 0
    for r in range(n_rules):
        a = dlhs[rule_start[r]] - n_terms
        for k in range(rule_start[r], rule_start[r + 1] - 1):
            s = dnext[k]
            if s < n_terms:
                for w in range(4):
                    first[a, w] |= tfirst[s, w]
                break
            src[n_e] = s - n_terms
            dst[n_e] = a
            n_e += 1
            if not nullable[s - n_terms]:
                break
    _spread(first, src[:n_e], dst[:n_e])
    follow_nt = np.zeros((n_nt, 4), np.uint64)
    follow_t = np.zeros((n_terms, 4), np.uint64)
    t_src = np.empty(dnext.shape[0], np.int64)  # FOLLOW(t) >= FOLLOW(t_src) where what follows t may vanish
    t_dst = np.empty(dnext.shape[0], np.int64)
    n_e = n_t = 0
    trailer = np.zeros(4, np.uint64)  # FIRST of the rest of the rule
    for r in range(n_rules):
        a = dlhs[rule_start[r]] - n_terms
        trailer[:] = 0
        rest_nullable = True
        for k in range(rule_start[r + 1] - 2, rule_start[r] - 1, -1):
            s = dnext[k]
            if s < n_terms:
                for w in range(4):
                    follow_t[s, w] |= trailer[w]
                    trailer[w] = tfirst[s, w]
                if rest_nullable:
                    t_src[n_t] = a
                    t_dst[n_t] = s
                    n_t += 1
                rest_nullable = False
                continue
            x = s - n_terms
            for w in range(4):
                follow_nt[x, w] |= trailer[w]
                trailer[w] = (trailer[w] | first[x, w]) if nullable[x] else first[x, w]
            if rest_nullable:
                src[n_e] = a
                dst[n_e] = x
                n_e += 1
            rest_nullable = rest_nullable and nullable[x]
    _spread(follow_nt, src[:n_e], dst[:n_e])
    for e in range(n_t):
        for w in range(4):
            follow_t[t_dst[e], w] |= follow_nt[t_src[e], w]
    for t in range(n_terms):
        for w in range(4):
            follow_t[t, w] |= ignored[w]
    return follow_t


@numba.njit(cache=True, nogil=True)
def _spread(sets, src, dst):  # type: ignore[no-untyped-def]
    """The least ``sets`` (rows of four words, grown in place) with ``sets[dst[e]] >= sets[src[e]]`` for every
    edge ``e``: a worklist over the edges leaving each changed row."""
    n = sets.shape[0]
    out_start = np.zeros(n + 1, np.int64)
    for e in range(src.shape[0]):
        out_start[src[e] + 1] += 1
    for x in range(n):
        out_start[x + 1] += out_start[x]
    out = np.empty(src.shape[0], np.int64)
    fill = out_start[:n].copy()
    for e in range(src.shape[0]):
        out[fill[src[e]]] = dst[e]
        fill[src[e]] += 1
    queued = np.ones(n, np.bool_)
    stack = np.arange(n)
    top = n
    while top:
        top -= 1
        x = stack[top]
        queued[x] = False
        for q in range(out_start[x], out_start[x + 1]):
            y = out[q]
            grew = False
            for w in range(4):
                v = sets[y, w] | sets[x, w]
                if v != sets[y, w]:
                    sets[y, w] = v
                    grew = True
            if grew and not queued[y]:
                queued[y] = True
                stack[top] = y
                top += 1
