"""Factoring a nonterminal's alternatives into a DAG of shared prefixes and suffixes.

Lark compiles ``a [b] [c] [d]`` into one alternative per subset of the optional parts (SQL's
``select_core`` has 32), and an Earley column holds one item per alternative that the text so far
fits: after a select list, sixteen items wait for the clauses that may follow, and every nested
query multiplies that. The alternatives of a nonterminal are a finite language over symbols; its
minimal acyclic automaton (the trie of the alternatives with equal subtries merged) spells the same
sequences with each shared part once. Nodes that several paths reach, or where paths branch, become
nonterminals of their own; the paths between them become rules. The language of every original
nonterminal is unchanged (the rules spell exactly the original alternatives), so masks are the
same and columns hold fewer items.
"""

from __future__ import annotations

from collections.abc import Sequence

from constrain.grammar_ir import N, Rule, Symbol

_MIN_ALTERNATIVES = 3
"""Nonterminals with fewer alternatives are left as they are."""
_MAX_LENGTH = 256
"""Nor are those with an alternative longer than this (the trie is walked recursively)."""


class _Node:
    __slots__ = ("edges", "final", "key", "name")

    def __init__(self) -> None:
        self.final = False
        self.edges: dict[Symbol, _Node] = {}
        self.key: tuple[object, ...] = ()
        self.name: str | None = None


def _minimal_dag(alternatives: Sequence[tuple[Symbol, ...]]) -> _Node:
    """The trie of ``alternatives`` with equal subtries shared (children are shared first, so equal
    subtries have equal keys)."""
    root = _Node()
    for rhs in alternatives:
        node = root
        for sym in rhs:
            node = node.edges.setdefault(sym, _Node())
        node.final = True
    registry: dict[tuple[object, ...], _Node] = {}

    def share(node: _Node) -> _Node:
        for sym, child in list(node.edges.items()):
            node.edges[sym] = share(child)
        node.key = (node.final, tuple((sym, id(child)) for sym, child in node.edges.items()))
        return registry.setdefault(node.key, node)

    return share(root)


def _factor(lhs: str, alternatives: list[tuple[Symbol, ...]], taken: set[str]) -> list[Rule] | None:
    """Rules spelling ``alternatives`` through the minimal DAG, or None where that does not shrink them."""
    root = _minimal_dag(alternatives)
    indegree: dict[int, int] = {}
    order: list[_Node] = []  # every node once, parents first
    seen: set[int] = set()

    def visit(node: _Node) -> None:
        seen.add(id(node))
        for child in node.edges.values():
            indegree[id(child)] = indegree.get(id(child), 0) + 1
            if id(child) not in seen:
                visit(child)
        order.append(node)

    visit(root)
    order.reverse()
    # a node gets its own nonterminal where paths meet or branch (a final node with edges branches too);
    # a final leaf is the end of a rule, and a chain of single edges stays inside one rule
    root.name = lhs
    k = 0
    for node in order[1:]:
        if node.edges and (indegree[id(node)] > 1 or len(node.edges) + node.final > 1):
            while f"{lhs}#{k}" in taken:
                k += 1
            node.name = f"{lhs}#{k}"
            taken.add(node.name)
            k += 1
    rules: list[Rule] = []
    for node in order:
        if node.name is None:
            continue
        if node.final:
            rules.append(Rule(node.name, ()))
        for sym, child in node.edges.items():
            path: list[Symbol] = [sym]
            while child.name is None and child.edges:  # unnamed: a chain link (one edge) or a final leaf
                (sym2, child), = child.edges.items()
                path.append(sym2)
            if child.name is not None:
                path.append(N(child.name))
            rules.append(Rule(node.name, tuple(path)))
    if sum(len(r.rhs) + 1 for r in rules) >= sum(len(rhs) + 1 for rhs in alternatives):
        return None
    return rules


def _shares_an_end(alternatives: list[tuple[Symbol, ...]]) -> bool:
    """Whether two alternatives begin or end alike (else factoring finds nothing to share), and none is
    too long to factor."""
    firsts: set[Symbol | None] = set()
    lasts: set[Symbol | None] = set()
    for rhs in alternatives:
        if len(rhs) > _MAX_LENGTH:
            return False
        firsts.add(rhs[0] if rhs else None)
        lasts.add(rhs[-1] if rhs else None)
    return len(firsts) < len(alternatives) or len(lasts) < len(alternatives)


def factor_alternatives(rules: list[Rule], nonterminals: set[str]) -> list[Rule]:
    """``rules`` with each nonterminal's alternatives factored where sharing makes them smaller (new
    nonterminals are named ``lhs#k``, not in ``nonterminals``)."""
    by_lhs: dict[str, list[Rule]] = {}
    for r in rules:
        by_lhs.setdefault(r.lhs, []).append(r)
    taken = set(nonterminals)
    out: list[Rule] = []
    for lhs, own in by_lhs.items():
        factored = None
        if len(own) >= _MIN_ALTERNATIVES:
            alternatives = [r.rhs for r in own]
            if _shares_an_end(alternatives):
                factored = _factor(lhs, alternatives, taken)
        out.extend(own if factored is None else factored)
    return out
