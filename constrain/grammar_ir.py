"""The grammar intermediate representation every front end compiles to (Lark, GBNF, JSON Schema).

A :class:`Grammar` is a context-free grammar over *terminals*, each terminal a regular language given
as a code-point regex tree (:mod:`constrain.regex`) or directly as a byte DFA (:mod:`constrain.fsm`,
e.g. an intersection of two regexes). Its language is scannerless: a text is in it when
it can be cut into terminal matches (with ignored terminals allowed between any two, and at both
ends) whose terminal sequence the rules derive. Every cut is considered, not only the longest-match
one, so no valid continuation is lost to a lexer's early commitment.

:class:`GrammarBuilder` is the convenient way to build one: terminals are deduplicated by their regex,
helper rules for repetition are generated, names are made unique.
"""

from __future__ import annotations

import re as _re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from constrain.errors import GrammarError
from constrain.fsm import ByteDFA
from constrain.regex import Alt, CharSet, Node, Repeat, Seq, literal, normalize, parse


@dataclass(frozen=True)
class T:
    """A terminal symbol (by name)."""

    name: str


@dataclass(frozen=True)
class N:
    """A nonterminal symbol (by name)."""

    name: str


Symbol = T | N
TerminalDef = Node | ByteDFA


class Rule(NamedTuple):
    """``lhs -> rhs`` (a tuple: grammars are built with many rules, and a frozen dataclass cost twice as
    much to make)."""

    lhs: str
    rhs: tuple[Symbol, ...]


@dataclass
class Grammar:
    """Rules over regex terminals. ``ignore`` names terminals allowed between any two terminals."""

    terminals: dict[str, TerminalDef]
    rules: list[Rule]
    start: str
    ignore: list[str] = field(default_factory=list)
    source: str = ""
    """What the grammar came from (for error messages and caching)."""

    def rules_of(self, name: str) -> list[Rule]:
        return [r for r in self.rules if r.lhs == name]

    def nonterminals(self) -> list[str]:
        return list(dict.fromkeys(r.lhs for r in self.rules))

    def check(self) -> None:
        """Every referenced symbol is defined and the start rule exists."""
        defined = set(self.nonterminals())
        if self.start not in defined:
            raise GrammarError(f"start rule {self.start!r} is not defined")
        terminals = self.terminals
        for r in self.rules:
            for s in r.rhs:
                if type(s) is N:
                    if s.name not in defined:
                        raise GrammarError(f"rule {r.lhs!r} uses undefined rule {s.name!r}")
                elif s.name not in terminals:
                    raise GrammarError(f"rule {r.lhs!r} uses undefined terminal {s.name!r}")
        for name in self.ignore:
            if name not in self.terminals:
                raise GrammarError(f"ignored terminal {name!r} is not defined")

    def to_lark(self, char_level: bool = False) -> str:
        """The grammar as Lark text with start rule ``start``, to check our engine against lark's Earley
        parser (``lark.Lark(text, parser="earley", lexer="dynamic_complete")``).

        Terminals are written as regexes, or with ``char_level=True`` as rules over one-character
        terminals. Only the latter reads exactly the same language: lark's dynamic lexer takes the
        first match of a regex (``|`` is ordered), so a regex terminal can lose some of its strings.
        """
        if char_level:
            return self._to_lark_chars()
        names = {n: f"r{i}_{_clean(n)}" for i, n in enumerate(self.nonterminals())}
        tnames = {t: f"T{i}_{_clean(t).upper()}" for i, t in enumerate(self.terminals)}
        nodes: dict[str, Node | None] = {}
        for t, node in self.terminals.items():
            if isinstance(node, ByteDFA):
                raise GrammarError(f"terminal {t!r} is a DFA; only regex terminals can be written as Lark")
            if nullable(node):  # lark's dynamic lexer refuses zero-width terminals: T? with T non-empty
                nodes[t] = nonempty(node)
                tnames[t] += "?" if nodes[t] is not None else ""
            else:
                nodes[t] = node
        lines = [f"start: {names[self.start]}"]
        for nt in self.nonterminals():
            alts = [" ".join(names[s.name] if isinstance(s, N) else tnames[s.name] for s in r.rhs)
                    for r in self.rules_of(nt)]
            lines.append(f"{names[nt]}: " + "\n    | ".join(alts))
        for t, tnode in nodes.items():
            if tnode is not None:  # '/' is escaped by to_python_regex
                lines.append(f"{tnames[t].rstrip('?')}: /{to_python_regex(tnode)}/s")
        lines += [f"%ignore {tnames[t]}" for t in self.ignore]
        return "\n".join(lines) + "\n"


    def _to_lark_chars(self) -> str:
        names = {n: f"r{i}_{_clean(n)}" for i, n in enumerate(self.nonterminals())}
        tnames = {t: f"t{i}_{_clean(t)}" for i, t in enumerate(self.terminals)}
        lines = [f"start: {names[self.start]}", "empty__: "]
        for nt in self.nonterminals():
            alts = [" ".join(names[s.name] if isinstance(s, N) else tnames[s.name] for s in r.rhs)
                    for r in self.rules_of(nt)]
            lines.append(f"{names[nt]}: " + "\n    | ".join(alts))
        aux: list[str] = []
        for t, node in self.terminals.items():
            if isinstance(node, ByteDFA):
                raise GrammarError(f"terminal {t!r} is a DFA; only regex terminals can be written as Lark")
            lines.append(f"{tnames[t]}: {_lark_expr(node, aux)}")
        lines += aux
        for t in self.ignore:
            node = self.terminals[t]
            assert not isinstance(node, ByteDFA)
            lines.append(f"%ignore /{to_python_regex(nonempty(node) or node)}/s")
        return "\n".join(lines) + "\n"


def _lark_expr(node: Node, aux: list[str]) -> str:
    """A regex tree as a Lark expression over one-character terminals; alternatives and repetitions
    become helper rules in ``aux`` (lark expands groups, ``~ m..n`` and ``[...]`` combinatorially)."""
    if isinstance(node, CharSet):
        return f"/{to_python_regex(node)}/s"
    if isinstance(node, Seq):
        return "(" + " ".join(_lark_expr(x, aux) for x in node.items) + ")" if node.items else "empty__"
    if isinstance(node, Alt):  # a rule, not an inline group: lark multiplies out groups in sequences
        k = len(aux)
        aux.append("")  # reserve the slot: the alternatives may add rules of their own
        aux[k] = f"alt{k}__: " + " | ".join(_lark_expr(x, aux) for x in node.items)
        return f"alt{k}__"
    if isinstance(node, Repeat):
        inner = _lark_expr(node.item, aux)
        head = " ".join([inner] * node.min) if node.min else "empty__"
        if node.max is None:
            star = f"rep{len(aux)}__"
            aux.append(f"{star}: empty__ | {star} {inner}")
            return f"({head} {star})"
        tail = "empty__"
        for _ in range(node.max - node.min):
            name = f"rep{len(aux)}__"
            aux.append(f"{name}: empty__ | {inner} {tail}")
            tail = name
        return f"({head} {tail})"
    raise TypeError(node)


def nullable(node: Node) -> bool:
    """Whether a regex tree matches the empty string."""
    if isinstance(node, CharSet):
        return False
    if isinstance(node, Seq):
        return all(nullable(x) for x in node.items)
    if isinstance(node, Alt):
        return any(nullable(x) for x in node.items)
    if isinstance(node, Repeat):
        return node.min == 0 or nullable(node.item)
    raise TypeError(node)


def nonempty(node: Node) -> Node | None:
    """A regex tree for the non-empty strings of ``node`` (None if it matches only the empty string)."""
    if not nullable(node):
        return node
    if isinstance(node, Seq):
        alts: list[Node] = []
        for k, item in enumerate(node.items):  # the first non-empty part is item k
            head = nonempty(item)
            if head is not None:
                alts.append(Seq((head, *node.items[k + 1 :])))
        return None if not alts else alts[0] if len(alts) == 1 else Alt(tuple(alts))
    if isinstance(node, Alt):
        parts = [p for p in (nonempty(x) for x in node.items) if p is not None]
        return None if not parts else parts[0] if len(parts) == 1 else Alt(tuple(parts))
    if isinstance(node, Repeat):
        head = nonempty(node.item)
        if head is None or node.max == 0:
            return None
        rest = Repeat(node.item, max(node.min - 1, 0), None if node.max is None else node.max - 1)
        return Seq((head, rest))
    raise TypeError(node)


def _clean(name: str) -> str:
    return _re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower()[:20] or "x"


# ---------------------------------------------------------------- regex trees back to text
_SPECIAL = set(r"\.^$*+?{}[]|()/-")


def _char(cp: int, in_class: bool) -> str:
    ch = chr(cp)
    if ch in _SPECIAL or (in_class and ch in "]^"):
        return "\\" + ch
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if 0xD800 <= cp <= 0xDFFF or (cp >= 0xE000 and not ch.isprintable()):
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    return ch


def to_python_regex(node: Node) -> str:
    """A Python regex string for a regex tree (``re.fullmatch`` semantics, DOTALL-independent)."""
    if isinstance(node, CharSet):
        rs = node.ranges
        if len(rs) == 1 and rs[0][0] == rs[0][1]:
            return _char(rs[0][0], False)
        if not rs:
            return "[^\\x00-\\U0010ffff]"
        body = "".join(_char(a, True) if a == b else f"{_char(a, True)}-{_char(b, True)}" for a, b in rs)
        return f"[{body}]"
    if isinstance(node, Seq):
        return "".join(_group(it) if isinstance(it, Alt) else to_python_regex(it) for it in node.items)
    if isinstance(node, Alt):
        return "|".join(to_python_regex(it) for it in node.items)
    if isinstance(node, Repeat):
        inner = to_python_regex(node.item)
        if not (isinstance(node.item, CharSet)):
            inner = f"(?:{inner})"
        if node.max is None:
            q = "*" if node.min == 0 else "+" if node.min == 1 else f"{{{node.min},}}"
        elif node.min == 0 and node.max == 1:
            q = "?"
        elif node.min == node.max:
            q = f"{{{node.min}}}"
        else:
            q = f"{{{node.min},{node.max}}}"
        return inner + q
    raise TypeError(node)


def _group(node: Node) -> str:
    return f"(?:{to_python_regex(node)})"


# ---------------------------------------------------------------- builder
class GrammarBuilder:
    """Builds a :class:`Grammar`: ``terminal``/``literal`` make terminals, ``rule`` makes nonterminals.

    Symbols passed around are :class:`T` and :class:`N`. Repetition helpers create left-recursive
    helper rules (Earley handles left recursion without growing its state).
    """

    def __init__(self) -> None:
        self.terminals: dict[str, TerminalDef] = {}
        self._by_regex: dict[Node | str, T] = {}
        self.rules: list[Rule] = []
        self._names: set[str] = set()
        self.ignore: list[str] = []

    def fresh(self, base: str) -> str:
        name = base
        k = 1
        while name in self._names or name in self.terminals:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    # terminals
    def terminal(self, regex: Node | ByteDFA | str, name: str | None = None, flags: int = 0) -> T:
        """A terminal for a regex tree, a byte DFA or a Python regex string (deduplicated by content)."""
        node: TerminalDef = parse(regex, flags) if isinstance(regex, str) else regex
        key: Node | str = node.key if isinstance(node, ByteDFA) else node
        hit = self._by_regex.get(key)
        if hit is not None:
            return hit
        tname = self.fresh(name or f"T{len(self.terminals)}")
        self.terminals[tname] = node
        sym = self._by_regex[key] = T(tname)
        return sym

    def literal(self, text: str) -> T:
        return self.terminal(literal(text), name=None)

    def char_class(self, ranges: Iterable[tuple[int, int]]) -> T:
        return self.terminal(CharSet(normalize(list(ranges))))

    # nonterminals
    def rule(self, name: str | None = None) -> N:
        """A new nonterminal (alternatives are added with :meth:`add`)."""
        return N(self.fresh(name or "r"))

    def add(self, nt: N, *alternatives: Sequence[Symbol]) -> N:
        for alt in alternatives:
            self.rules.append(Rule(nt.name, tuple(alt)))
        return nt

    def define(self, name: str | None, *alternatives: Sequence[Symbol]) -> N:
        return self.add(self.rule(name), *alternatives)

    def seq(self, *symbols: Symbol, name: str | None = None) -> N:
        return self.define(name or "seq", list(symbols))

    def alt(self, *symbols: Symbol, name: str | None = None) -> N:
        return self.define(name or "alt", *[[s] for s in symbols])

    def star(self, sym: Symbol, name: str | None = None) -> N:
        """``sym*`` as ``x: | x sym`` (left recursive)."""
        nt = self.rule(name or "star")
        return self.add(nt, [], [nt, sym])

    def plus(self, sym: Symbol, name: str | None = None) -> N:
        nt = self.rule(name or "plus")
        return self.add(nt, [sym], [nt, sym])

    def opt(self, sym: Symbol, name: str | None = None) -> N:
        return self.define(name or "opt", [], [sym])

    def repeat(self, sym: Symbol, lo: int, hi: int | None, name: str | None = None) -> N:
        """``sym{lo,hi}`` (``hi=None``: unbounded); bounded tails nest optional groups."""
        if lo < 0 or (hi is not None and hi < lo):
            raise GrammarError(f"bad repetition bounds {{{lo},{hi}}}")
        head: list[Symbol] = [sym] * lo
        if hi is None:
            return self.define(name or "rep", [*head, self.star(sym)])
        tail: Symbol | None = None
        for _ in range(hi - lo):
            inner: list[Symbol] = [sym] if tail is None else [sym, tail]
            tail = self.define("rep_tail", [], inner)
        return self.define(name or "rep", head if tail is None else [*head, tail])

    def separated(self, item: Symbol, sep: Symbol, lo: int = 0, name: str | None = None) -> N:
        """``item (sep item)*`` (``lo=0`` also allows nothing)."""
        more = self.star(self.seq(sep, item))
        one = self.seq(item, more)
        return self.define(name or "list", [one]) if lo >= 1 else self.define(name or "list", [], [one])

    def build(self, start: N | str, source: str = "") -> Grammar:
        g = Grammar(dict(self.terminals), list(self.rules), start.name if isinstance(start, N) else start,
                    list(self.ignore), source)
        g.check()
        return g


__all__ = ["Grammar", "GrammarBuilder", "N", "Rule", "Symbol", "T", "to_python_regex"]
