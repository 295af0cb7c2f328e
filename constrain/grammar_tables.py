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

from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numba
import numpy as np
import numpy.typing as npt

from constrain.errors import GrammarError
from constrain.fsm import ByteDFA, compile_node
from constrain.grammar_factor import factor_alternatives
from constrain.grammar_ir import Grammar, N, Rule, T
from constrain.regex import Node

I32 = npt.NDArray[np.int32]
SymbolT = TypeVar("SymbolT", bound=Hashable)


@lru_cache(maxsize=4096)
def _compile_terminal(node: Node) -> ByteDFA:
    return compile_node(node)


def _derivable(rules: list[tuple[SymbolT, list[SymbolT]]]) -> set[SymbolT]:
    """Left-hand sides that derive something when each rule needs all its listed symbols to (the least
    fixed point, by counting what each rule still waits for: linear, not one pass per nesting level)."""
    waiting = [len(syms) for _, syms in rules]
    users: dict[SymbolT, list[int]] = {}
    for i, (_, syms) in enumerate(rules):
        for x in syms:
            users.setdefault(x, []).append(i)
    done: set[SymbolT] = set()
    ready = [lhs for (lhs, _), n in zip(rules, waiting) if n == 0]
    while ready:
        lhs = ready.pop()
        if lhs in done:
            continue
        done.add(lhs)
        for i in users.get(lhs, ()):
            waiting[i] -= 1
            if waiting[i] == 0:
                ready.append(rules[i][0])
    return done


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
    rules_of: list[list[int]]
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
    empty_ok: set[str] = {n for n, d in dfas.items() if d.matches_empty}
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

    # 4. productive, then reachable
    usable_t = {n for n, d in dfas.items() if not d.is_empty}
    spellable: list[tuple[Rule, list[str]]] = []  # rules whose terminals all match something, and their nonterminals
    for r in rules:
        if all(s.name in usable_t for s in r.rhs if type(s) is T):
            spellable.append((r, [s.name for s in r.rhs if type(s) is N]))
    productive = _derivable([(r.lhs, nts) for r, nts in spellable])
    if grammar.start not in productive:
        raise GrammarError(f"the grammar's language is empty: start rule {grammar.start!r} derives no string"
                           + (" this tokenizer can spell" if byte_alphabet is not None else ""))
    rules = [r for r, nts in spellable if r.lhs in productive and all(x in productive for x in nts)]
    by_lhs: dict[str, list[Rule]] = {}
    for r in rules:
        by_lhs.setdefault(r.lhs, []).append(r)
    reach = {grammar.start}
    stack = [grammar.start]
    used_terms: dict[str, None] = {}  # in order of discovery
    while stack:
        nt = stack.pop()
        for r in by_lhs.get(nt, []):
            for s in r.rhs:
                if isinstance(s, N) and s.name not in reach:
                    reach.add(s.name)
                    stack.append(s.name)
                elif isinstance(s, T):
                    used_terms.setdefault(s.name)
    rules = [r for r in rules if r.lhs in reach]
    # 5. alternatives sharing prefixes or suffixes are factored (fewer Earley items per column)
    if factor:
        rules = factor_alternatives(rules, reach)

    # terminal numbering: used terminals, then ignored ones, then eps
    term_names = list(dict.fromkeys([*used_terms, *ignore]))
    term_id = {n: i for i, n in enumerate(term_names)}
    term_dfas = [dfas[n] for n in term_names]
    n_terms = len(term_names)
    eps_term = n_terms
    offsets = np.zeros(n_terms + 2, dtype=np.int32)
    for i, d in enumerate(term_dfas):
        offsets[i + 1] = offsets[i] + d.n_states
    offsets[n_terms + 1] = offsets[n_terms] + 1
    total = int(offsets[-1])
    # every terminal's table stacked, its targets shifted by its offset (one numpy pass for all of them)
    gterm = np.repeat(np.arange(n_terms + 1, dtype=np.int32), np.diff(offsets))
    stacked = np.concatenate([d.trans for d in term_dfas] + [np.full((1, 256), -1, np.int32)]).astype(np.int32)
    gtrans = np.where(stacked >= 0, stacked + offsets[gterm][:, None], -1).astype(np.int32)
    gacc = np.concatenate([d.accepting for d in term_dfas] + [np.zeros(1, bool)]).astype(bool)
    eps_state = total - 1
    gacc[eps_state] = True
    gterm[eps_state] = eps_term
    term_ignore = np.zeros(n_terms + 1, dtype=bool)
    for n in ignore:
        term_ignore[term_id[n]] = True
    term_ignore[eps_term] = True

    # rules as integers, with the augmented start rule first
    nonterms = [f"{grammar.start}'", *dict.fromkeys(r.lhs for r in rules)]
    nt_id = {n: n_terms + i for i, n in enumerate(nonterms)}
    int_rules: list[tuple[int, tuple[int, ...]]] = [(nt_id[nonterms[0]], (nt_id[grammar.start],))]
    for r in rules:
        int_rules.append((nt_id[r.lhs], tuple(term_id[x.name] if isinstance(x, T) else nt_id[x.name] for x in r.rhs)))
    rule_start = np.zeros(len(int_rules) + 1, dtype=np.int32)
    for i, (_, syms) in enumerate(int_rules):
        rule_start[i + 1] = rule_start[i] + len(syms) + 1
    dotted_next = np.full(int(rule_start[-1]), -1, dtype=np.int32)
    dotted_lhs = np.zeros(int(rule_start[-1]), dtype=np.int32)
    rules_of: list[list[int]] = [[] for _ in nonterms]
    for i, (lhs, syms) in enumerate(int_rules):
        base = int(rule_start[i])
        dotted_next[base : base + len(syms)] = syms
        dotted_lhs[base : base + len(syms) + 1] = lhs
        rules_of[lhs - n_terms].append(i)
    nullable = np.zeros(len(nonterms), dtype=bool)
    for symbol in _derivable([(lhs, list(syms)) for lhs, syms in int_rules if all(x >= n_terms for x in syms)]):
        nullable[symbol - n_terms] = True
    return GrammarTables(
        term_names=term_names, term_dfas=term_dfas, term_ignore=term_ignore, term_offset=offsets,
        global_trans=gtrans, global_accept=gacc, global_term=gterm, eps_term=eps_term, eps_state=eps_state,
        n_terms=n_terms, nonterm_names=nonterms, rule_lhs=np.array([lhs for lhs, _ in int_rules], dtype=np.int32),
        rule_start=rule_start, dotted_next=dotted_next, dotted_lhs=dotted_lhs, nullable=nullable,
        rules_of=rules_of, start_symbol=n_terms,
    )


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
    """FIRST and FOLLOW as sets of first bytes (four 64-bit words each), to a fixpoint over the rules;
    returns each terminal's FOLLOW bytes with the ignored terminals' first bytes."""
    n_nt = nullable.shape[0]
    first = np.zeros((n_nt, 4), np.uint64)
    changed = True
    while changed:
        changed = False
        for r in range(rule_start.shape[0] - 1):
            a = dlhs[rule_start[r]] - n_terms
            for k in range(rule_start[r], rule_start[r + 1] - 1):
                s = dnext[k]
                for w in range(4):
                    v = first[a, w] | (tfirst[s, w] if s < n_terms else first[s - n_terms, w])
                    if v != first[a, w]:
                        first[a, w] = v
                        changed = True
                if s < n_terms or not nullable[s - n_terms]:
                    break
    follow_nt = np.zeros((n_nt, 4), np.uint64)
    follow_t = np.zeros((n_terms, 4), np.uint64)
    trailer = np.zeros(4, np.uint64)
    changed = True
    while changed:
        changed = False
        for r in range(rule_start.shape[0] - 1):
            a = dlhs[rule_start[r]] - n_terms
            for w in range(4):
                trailer[w] = follow_nt[a, w]
            for k in range(rule_start[r + 1] - 2, rule_start[r] - 1, -1):
                s = dnext[k]
                if s < n_terms:
                    for w in range(4):
                        follow_t[s, w] |= trailer[w]
                        trailer[w] = tfirst[s, w]
                    continue
                x = s - n_terms
                for w in range(4):
                    v = follow_nt[x, w] | trailer[w]
                    if v != follow_nt[x, w]:
                        follow_nt[x, w] = v
                        changed = True
                    trailer[w] = (trailer[w] | first[x, w]) if nullable[x] else first[x, w]
    for t in range(n_terms):
        for w in range(4):
            follow_t[t, w] |= ignored[w]
    return follow_t
