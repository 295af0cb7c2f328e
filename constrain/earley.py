"""An Earley parser over terminals whose chart columns are interned (hash-consed).

An Earley column is a set of items ``(dotted rule, origin column)``. We key a column by its *kernel*
(the items reached by scanning or completing, each with a real origin column id); the items predicted
at the column follow from the kernel, so two columns with equal kernels are equal, have equal futures
and get the same id. Origins point at interned columns, so the whole chart is a DAG of shared columns.

This turns Earley parsing, which handles every context-free grammar (ambiguous, left-recursive), into
a lazily built deterministic automaton: ``advance(column, terminal)`` is memoised, and a JSON array's
tenth element is parsed with exactly the columns of its second. Prediction closures are precomputed
per nonterminal (Aycock-Horspool handling of nullable symbols), so building a new column only walks its
kernel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from constrain.errors import LimitError
from constrain.grammar_tables import GrammarTables

MAX_COLUMNS = 4_000_000


@dataclass(eq=False)
class Column:
    id: int
    kernel: tuple[tuple[int, int], ...]
    """Items (dotted rule, origin column id), sorted."""
    predicted: frozenset[int]
    """Dotted rules predicted here (their origin is this column)."""
    expected: tuple[int, ...]
    """Terminals some item expects next (sorted)."""
    accepting: bool
    _waiting: dict[int, list[tuple[int, int]]] | None = field(default=None, repr=False)


class EarleyParser:
    """Interned Earley columns for one grammar; thread-safe for concurrent readers and one writer."""

    def __init__(self, tables: GrammarTables) -> None:
        self.t = tables
        self.n_terms = tables.n_terms
        self.columns: list[Column] = []
        self._by_kernel: dict[tuple[tuple[int, int], ...], int] = {}
        self._advance: dict[tuple[int, int], int] = {}
        self._lock = threading.RLock()
        self._dotted_next = tables.dotted_next.tolist()
        self._dotted_lhs = tables.dotted_lhs.tolist()
        self._nullable = tables.nullable.tolist()
        self._closure, self._closure_expected = self._prediction_closures()
        self._final_item = int(tables.rule_start[0]) + 1  # start' -> start .
        # the first column has id 0, so items predicted there have origin 0
        self.initial = self._intern(self._close([(int(tables.rule_start[0]), 0)]))

    # ------------------------------------------------------------------ precomputation
    def _prediction_closures(self) -> tuple[list[frozenset[int]], list[frozenset[int]]]:
        """Per nonterminal: dotted rules predicted from it (with nullable advances) and terminals they expect."""
        t = self.t
        n_nt = len(t.nonterm_names)
        direct: list[set[int]] = []
        for i in range(n_nt):
            items: set[int] = set()
            stack = [int(t.rule_start[r]) for r in t.rules_of[i]]
            while stack:
                d = stack.pop()
                if d in items:
                    continue
                items.add(d)
                sym = self._dotted_next[d]
                if sym >= self.n_terms and self._nullable[sym - self.n_terms]:
                    stack.append(d + 1)
            direct.append(items)
        # close over predicted nonterminals (fixed point)
        closure = [set(s) for s in direct]
        changed = True
        while changed:
            changed = False
            for i in range(n_nt):
                add: set[int] = set()
                for d in closure[i]:
                    sym = self._dotted_next[d]
                    if sym >= self.n_terms:
                        add |= closure[sym - self.n_terms]
                if not add <= closure[i]:
                    closure[i] |= add
                    changed = True
        frozen = [frozenset(c) for c in closure]
        expected = [frozenset(self._dotted_next[d] for d in c if 0 <= self._dotted_next[d] < self.n_terms)
                    for c in frozen]
        return frozen, expected

    # ------------------------------------------------------------------ columns
    def _intern(self, kernel: tuple[tuple[int, int], ...]) -> int:
        hit = self._by_kernel.get(kernel)
        if hit is not None:
            return hit
        if len(self.columns) >= MAX_COLUMNS:
            raise LimitError(f"grammar parse state limit reached ({MAX_COLUMNS} Earley columns)")
        nt = self.n_terms
        predicted: set[int] = set()
        expected: set[int] = set()
        for d, _ in kernel:
            sym = self._dotted_next[d]
            if sym >= nt:
                predicted |= self._closure[sym - nt]
                expected |= self._closure_expected[sym - nt]
            elif sym >= 0:
                expected.add(sym)
        col = Column(
            id=len(self.columns), kernel=kernel, predicted=frozenset(predicted), expected=tuple(sorted(expected)),
            accepting=any(d == self._final_item for d, _ in kernel),
        )
        self.columns.append(col)
        self._by_kernel[kernel] = col.id
        return col.id

    def _waiting(self, col: Column) -> dict[int, list[tuple[int, int]]]:
        """Items of ``col`` grouped by the nonterminal after their dot (for completion)."""
        w = col._waiting
        if w is None:
            w = {}
            nt = self.n_terms
            for d, o in col.kernel:
                sym = self._dotted_next[d]
                if sym >= nt:
                    w.setdefault(sym, []).append((d, o))
            for d in col.predicted:
                sym = self._dotted_next[d]
                if sym >= nt:
                    w.setdefault(sym, []).append((d, col.id))
            col._waiting = w
        return w

    def advance(self, column: int, terminal: int) -> int:
        """The column after scanning ``terminal`` at ``column`` (-1 if no item expects it). Memoised."""
        key = (column, terminal)
        hit = self._advance.get(key)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._advance.get(key)
            if hit is not None:
                return hit
            result = self._compute_advance(column, terminal)
            self._advance[key] = result
            return result

    def _compute_advance(self, column: int, terminal: int) -> int:
        col = self.columns[column]
        dnext = self._dotted_next
        agenda: list[tuple[int, int]] = []
        for d, o in col.kernel:
            if dnext[d] == terminal:
                agenda.append((d + 1, o))
        for d in col.predicted:
            if dnext[d] == terminal:
                agenda.append((d + 1, column))
        if not agenda:
            return -1
        return self._intern(self._close(agenda))

    def _close(self, agenda: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
        """The kernel reached from ``agenda``: completions into origin columns and nullable skips."""
        nt = self.n_terms
        dnext = self._dotted_next
        kernel: set[tuple[int, int]] = set()
        while agenda:
            item = agenda.pop()
            if item in kernel:
                continue
            kernel.add(item)
            d, o = item
            sym = dnext[d]
            if sym < 0:  # complete: advance the items of the origin column that wait for this nonterminal
                if self._dotted_lhs[d] == self.t.start_symbol:
                    continue  # nothing waits for the augmented start symbol
                for d2, o2 in self._waiting(self.columns[o]).get(self._dotted_lhs[d], ()):
                    agenda.append((d2 + 1, o2))
            elif sym >= nt and self._nullable[sym - nt]:
                agenda.append((d + 1, o))
        return tuple(sorted(kernel))

    def union(self, a: int, b: int) -> int:
        """The column holding the items of both ``a`` and ``b`` (two parses that reached the same text
        position, as one Earley column). Memoised."""
        key = (-1 - min(a, b), max(a, b))
        hit = self._advance.get(key)
        if hit is not None:
            return hit
        with self._lock:
            merged = tuple(sorted(set(self.columns[a].kernel) | set(self.columns[b].kernel)))
            result = self._intern(merged)
            self._advance[key] = result
            return result

    def accepting(self, column: int) -> bool:
        return self.columns[column].accepting

    def expected(self, column: int) -> tuple[int, ...]:
        return self.columns[column].expected

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def parse_terminals(self, terminals: list[int]) -> bool:
        """Whether a whole terminal sequence is a sentence (a test helper)."""
        c = self.initial
        for t in terminals:
            c = self.advance(c, t)
            if c < 0:
                return False
        return self.accepting(c)


def expected_mask(parser: EarleyParser, column: int) -> np.ndarray:
    """Boolean mask over terminals expected at ``column`` (debugging aid)."""
    m = np.zeros(parser.n_terms, dtype=bool)
    m[list(parser.expected(column))] = True
    return m
