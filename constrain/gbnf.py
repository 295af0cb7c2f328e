"""llama.cpp GBNF grammars -> the grammar IR.

GBNF (llama.cpp ``grammars/README.md``): ``name ::= expression`` rules, the start rule is ``root``;
expressions are sequences, ``|`` alternatives, ``( )`` groups, ``*`` ``+`` ``?`` ``{m}`` ``{m,}``
``{m,n}`` repetition, string literals with C-style escapes (``\\n``, ``\\xHH``, ``\\uHHHH``,
``\\UHHHHHHHH``), character classes ``[a-z]``/``[^...]``, ``.`` (any character) and ``#`` comments. A
rule ends at a newline unless inside parentheses or right after ``::=`` or ``|``, as in llama.cpp.

GBNF is character-level (no lexer), so every maximal regular sub-expression becomes one terminal:
the language is unchanged and the engine sees few, long lexemes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from constrain.errors import GrammarError
from constrain.grammar_ir import Grammar, GrammarBuilder, N, Symbol, T
from constrain.regex import EMPTY, MAX_CODE_POINT, Alt, CharSet, Node, Repeat, Seq, complement, literal, normalize


# ---------------------------------------------------------------- syntax tree
@dataclass(frozen=True)
class Ref:
    name: str
    line: int
    column: int


@dataclass(frozen=True)
class Re:
    """A regular piece (literal, class, any char)."""

    node: Node


@dataclass(frozen=True)
class Cat:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Rep:
    item: Expr
    lo: int
    hi: int | None


Expr = Ref | Re | Cat | Or | Rep

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-", "/": "/",
            "'": "'", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "^": "^", ".": "."}


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    # positions
    def where(self, i: int | None = None) -> tuple[int, int]:
        i = self.i if i is None else i
        line = self.s.count("\n", 0, i) + 1
        col = i - (self.s.rfind("\n", 0, i) + 1) + 1
        return line, col

    def error(self, msg: str, i: int | None = None) -> GrammarError:
        line, col = self.where(i)
        return GrammarError(f"invalid GBNF: {msg}", line, col)

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def space(self, newlines: bool) -> None:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "#":
                while self.i < len(self.s) and self.s[self.i] not in "\r\n":
                    self.i += 1
            elif c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            else:
                break

    def name(self) -> str:
        j = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] in "-_"):
            self.i += 1
        if j == self.i:
            raise self.error(f"expected a rule name, found {self.peek()!r}" if self.peek() else "unexpected end")
        return self.s[j : self.i]

    # grammar
    def grammar(self) -> list[tuple[str, Expr, int]]:
        rules = []
        self.space(True)
        while self.i < len(self.s):
            start = self.i
            name = self.name()
            self.space(False)
            if not self.s.startswith("::=", self.i):
                raise self.error("expected '::='")
            self.i += 3
            self.space(True)
            expr = self.alternatives(nested=False)
            rules.append((name, expr, start))
            self.space(False)
            if self.i < len(self.s) and self.peek() not in "\r\n":
                raise self.error(f"unexpected {self.peek()!r}")
            self.space(True)
        return rules

    def alternatives(self, nested: bool) -> Expr:
        items = [self.sequence(nested)]
        while self.peek() == "|":
            self.i += 1
            self.space(True)
            items.append(self.sequence(nested))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def sequence(self, nested: bool) -> Expr:
        items: list[Expr] = []
        while True:
            c = self.peek()
            if not c or c in "|)" or c in "\r\n":
                break
            atom = self.atom()
            self.space(nested)  # llama.cpp allows spaces before a repetition operator
            items.append(self.postfix(atom, nested))
            self.space(nested)
        return items[0] if len(items) == 1 else Cat(tuple(items))

    def atom(self) -> Expr:
        c = self.peek()
        if c == '"':
            return Re(literal(self.string()))
        if c == "[":
            return Re(self.char_class())
        if c == ".":
            self.i += 1
            return Re(CharSet(((0, MAX_CODE_POINT),)))
        if c == "(":
            self.i += 1
            self.space(True)
            e = self.alternatives(nested=True)
            if self.peek() != ")":
                raise self.error("expected ')'")
            self.i += 1
            return e
        if c.isalnum() or c in "-_":
            line, col = self.where()
            return Ref(self.name(), line, col)
        raise self.error(f"unexpected {c!r}" if c else "unexpected end of grammar")

    def postfix(self, e: Expr, nested: bool) -> Expr:
        while True:
            self.space(nested)
            c = self.peek()
            if c == "*":
                self.i += 1
                e = Rep(e, 0, None)
            elif c == "+":
                self.i += 1
                e = Rep(e, 1, None)
            elif c == "?":
                self.i += 1
                e = Rep(e, 0, 1)
            elif c == "{":
                start = self.i
                self.i += 1
                lo_s = self._digits()
                hi: int | None
                if self.peek() == ",":
                    self.i += 1
                    hi_s = self._digits()
                    hi = int(hi_s) if hi_s else None
                else:
                    hi = int(lo_s) if lo_s else None
                if not lo_s or self.peek() != "}":
                    raise self.error("bad repetition {m,n}", start)
                self.i += 1
                lo = int(lo_s)
                if hi is not None and hi < lo:
                    raise self.error(f"bad repetition {{{lo},{hi}}}", start)
                e = Rep(e, lo, hi)
            else:
                return e

    def _digits(self) -> str:
        self.space(False)
        j = self.i
        while self.peek().isdigit():
            self.i += 1
        out = self.s[j : self.i]
        self.space(False)
        return out

    def _char(self) -> int:
        c = self.peek()
        if not c:
            raise self.error("unexpected end inside a literal")
        if c != "\\":
            self.i += 1
            return ord(c)
        start = self.i
        self.i += 1
        e = self.peek()
        self.i += 1
        width = {"x": 2, "u": 4, "U": 8}.get(e)
        if width:
            digits = self.s[self.i : self.i + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"bad \\{e} escape", start)
            self.i += width
            cp = int(digits, 16)
            if cp > MAX_CODE_POINT:
                raise self.error("code point out of range", start)
            return cp
        if e in _ESCAPES:
            return ord(_ESCAPES[e])
        raise self.error(f"unknown escape \\{e}", start)

    def string(self) -> str:
        self.i += 1
        out = []
        while self.peek() != '"':
            if not self.peek() or self.peek() in "\r\n":
                raise self.error("unterminated string literal")
            out.append(chr(self._char()))
        self.i += 1
        return "".join(out)

    def char_class(self) -> CharSet:
        start = self.i
        self.i += 1
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        ranges = []
        while self.peek() != "]":
            if not self.peek():
                raise self.error("unterminated character class", start)
            lo = self._char()
            hi = lo
            if self.peek() == "-" and self.s[self.i + 1 : self.i + 2] not in ("]", ""):
                self.i += 1
                hi = self._char()
                if hi < lo:
                    raise self.error("bad character range", start)
            ranges.append((lo, hi))
        self.i += 1
        rs = normalize(ranges)
        return CharSet(complement(rs) if negate else rs)


# ---------------------------------------------------------------- to the IR
def _regular(e: Expr) -> Node | None:
    """The regex of an expression without rule references, else None."""
    if isinstance(e, Re):
        return e.node
    if isinstance(e, Ref):
        return None
    if isinstance(e, Rep):
        inner = _regular(e.item)
        return None if inner is None else Repeat(inner, e.lo, e.hi)
    parts = [_regular(x) for x in e.items]
    if any(p is None for p in parts):
        return None
    nodes = tuple(p for p in parts if p is not None)
    return Seq(nodes) if isinstance(e, Cat) else Alt(nodes)


class _Converter:
    def __init__(self, rules: list[tuple[str, Expr, int]], parser: _Parser) -> None:
        self.b = GrammarBuilder()
        self.parser = parser
        self.names: dict[str, str] = {}
        for name, _, _pos in rules:
            if name in self.names:
                continue
            self.names[name] = name
            self.b._names.add(name)
        self.rules = rules

    def convert(self) -> Grammar:
        for name, expr, _ in self.rules:
            self.b.add(N(name), *self.alternatives(expr))
        if "root" not in self.names:
            raise GrammarError("GBNF grammar has no 'root' rule")
        return self.b.build("root")

    def alternatives(self, e: Expr) -> list[list[Symbol]]:
        if isinstance(e, Or) and _regular(e) is None:
            return [self.sequence(x) for x in e.items]
        return [self.sequence(e)]

    def sequence(self, e: Expr) -> list[Symbol]:
        items = e.items if isinstance(e, Cat) else (e,)
        out: list[Symbol] = []
        pending: list[Node] = []
        for x in items:
            node = _regular(x)
            if node is not None:
                pending.append(node)
                continue
            if pending:
                out.append(self.b.terminal(Seq(tuple(pending)) if len(pending) > 1 else pending[0]))
                pending = []
            out.append(self.symbol(x))
        if pending:
            out.append(self.b.terminal(Seq(tuple(pending)) if len(pending) > 1 else pending[0]))
        return [s for s in out if not (isinstance(s, T) and self.b.terminals[s.name] == EMPTY)]

    def symbol(self, e: Expr) -> Symbol:
        if isinstance(e, Ref):
            if e.name not in self.names:
                raise GrammarError(f"undefined rule {e.name!r}", e.line, e.column)
            return N(e.name)
        if isinstance(e, Rep):
            inner = self.group(e.item)
            if e.hi is None and e.lo == 0:
                return self.b.star(inner)
            if e.hi is None and e.lo == 1:
                return self.b.plus(inner)
            return self.b.repeat(inner, e.lo, e.hi)
        return self.group(e)

    def group(self, e: Expr) -> Symbol:
        node = _regular(e)
        if node is not None:
            return self.b.terminal(node)
        if isinstance(e, Ref):
            return self.symbol(e)
        return self.b.define("group", *self.alternatives(e))


def gbnf_to_grammar(text: str) -> Grammar:
    """Parse GBNF ``text`` into the grammar IR (start rule ``root``); errors carry line and column."""
    parser = _Parser(text)
    rules = parser.grammar()
    if not rules:
        raise GrammarError("empty GBNF grammar")
    g = _Converter(rules, parser).convert()
    g.source = text
    return inline_regular_rules(g)


def inline_regular_rules(g: Grammar, max_nodes: int = 4000) -> Grammar:
    """Replace rules whose language is regular by one terminal each: rules that only use terminals and
    such rules, and groups of mutually recursive rules that are right-linear (each alternative names
    the group at most once, at its end: ``ws ::= ([ \\t\\n] ws)?``) or left-linear (at its start, as
    the repetition helpers ``x: | x a`` are), solved by Arden's rule (``X = a X | b`` is ``a* b``).

    Valid for grammars without ignored terminals (the language is scannerless, so merging lexemes does
    not change it), and it matters for speed: fewer, longer lexemes mean fewer parser steps per token,
    and a right-recursive rule the parser keeps would add an Earley item per repetition to every
    column after it. Rules whose regex would exceed ``max_nodes`` tree nodes stay rules.
    """
    if g.ignore:
        return g
    regex: dict[str, Node] = {}
    by_lhs: dict[str, list[tuple[Symbol, ...]]] = {}
    for r in g.rules:
        by_lhs.setdefault(r.lhs, []).append(r.rhs)

    def as_node(rhs: tuple[Symbol, ...]) -> Node | None:
        """The regex of a sequence of terminals and regular rules, or None."""
        parts: list[Node] = []
        for sym in rhs:
            x = g.terminals[sym.name] if isinstance(sym, T) else regex.get(sym.name)
            if not isinstance(x, Node):  # a rule not (yet) regular, or a DFA terminal
                return None
            parts.append(x)
        return EMPTY if not parts else parts[0] if len(parts) == 1 else Seq(tuple(parts))

    changed = True
    while changed:
        changed = False
        for nt, alts in by_lhs.items():
            if nt in regex or nt == g.start:
                continue
            nodes = [as_node(rhs) for rhs in alts]
            if all(x is not None for x in nodes):
                node = _alt([x for x in nodes if x is not None])
                if _size(node) <= max_nodes:
                    regex[nt] = node
                    changed = True
        if changed:
            continue
        open_rules = {nt for nt in by_lhs if nt not in regex and nt != g.start}
        for group in _recursive_groups(open_rules, by_lhs):
            solved = _solve_linear(group, by_lhs, as_node, left=False) or _solve_linear(group, by_lhs, as_node,
                                                                                       left=True)
            if solved is not None and all(_size(x) <= max_nodes for x in solved.values()):
                regex.update(solved)
                changed = True
    if not regex:
        return g
    b = GrammarBuilder()
    b.terminals.update(g.terminals)
    out_rules: list[tuple[str, list[Symbol]]] = []
    for nt, alts in by_lhs.items():
        if nt in regex:
            continue
        for rhs in alts:
            whole = as_node(rhs) if len(rhs) > 1 else None
            if whole is not None and _size(whole) <= max_nodes:
                # a regular alternative of a rule that stays a rule (the start rule, or one that recurses in
                # another alternative): one lexeme. Only whole alternatives: with the regular runs between a
                # rule's nonterminals merged too, the C grammars ran 2.5-3x slower (longer, more ambiguous
                # lexemes; measured on resampled strings)
                out_rules.append((nt, [b.terminal(whole)]))
                continue
            new = [b.terminal(regex[s.name], name=s.name) if isinstance(s, N) and s.name in regex else s
                   for s in rhs]
            out_rules.append((nt, new))
    for nt, new_rhs in out_rules:
        b.add(N(nt), new_rhs)
    return b.build(g.start, source=g.source)


def _seq(a: Node, b: Node) -> Node:
    return b if a == EMPTY else a if b == EMPTY else Seq((a, b))


def _alt(nodes: list[Node]) -> Node:
    unique = list(dict.fromkeys(nodes))
    return unique[0] if len(unique) == 1 else Alt(tuple(unique))


def _recursive_groups(names: set[str], by_lhs: dict[str, list[tuple[Symbol, ...]]]) -> list[list[str]]:
    """The strongly connected groups of ``names`` (rules referring to each other) that are recursive."""
    edges = {nt: sorted({s.name for rhs in by_lhs[nt] for s in rhs if isinstance(s, N) and s.name in names})
             for nt in sorted(names)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    for root in edges:  # Tarjan's algorithm, iterative
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            nt, i = work.pop()
            if i == 0:
                index[nt] = low[nt] = len(index)
                stack.append(nt)
                on_stack.add(nt)
            if i < len(edges[nt]):
                work.append((nt, i + 1))
                nxt = edges[nt][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[nt] = min(low[nt], index[nxt])
                continue
            if low[nt] == index[nt]:
                group = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    group.append(x)
                    if x == nt:
                        break
                if len(group) > 1 or nt in edges[nt]:
                    groups.append(group)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[nt])
    return groups


def _solve_linear(group: list[str], by_lhs: dict[str, list[tuple[Symbol, ...]]],
                  as_node: Callable[[tuple[Symbol, ...]], Node | None], left: bool) -> dict[str, Node] | None:
    """Regexes of a right-linear (``left``: left-linear) group of rules, else None.

    Each rule is an equation ``X = a1 Y1 | ... | b`` (left-linear: ``X = Y1 a1 | ... | b``) over the group;
    eliminating one rule at a time (Arden: ``X = a X | r`` is ``X = a* r``) leaves each with a regex."""
    members = set(group)
    coef: dict[str, dict[str, Node]] = {}
    const: dict[str, Node | None] = {}

    def cat(outer: Node, inner: Node) -> Node:  # outer coefficient, then the inner rule's part
        return _seq(inner, outer) if left else _seq(outer, inner)

    for x in group:
        coef[x] = {}
        parts: list[Node] = []
        for rhs in by_lhs[x]:
            refs = [i for i, s in enumerate(rhs) if isinstance(s, N) and s.name in members]
            if not refs:
                node = as_node(rhs)
                if node is None:
                    return None
                parts.append(node)
                continue
            at = 0 if left else len(rhs) - 1
            if refs != [at]:
                return None
            node = as_node(rhs[1:] if left else rhs[:-1])
            if node is None:
                return None
            y = rhs[at].name
            coef[x][y] = _alt([coef[x][y], node]) if y in coef[x] else node
        const[x] = _alt(parts) if parts else None
    for k in group:
        loop = coef[k].pop(k, None)
        if loop is not None:
            star = Repeat(loop, 0, None)
            coef[k] = {y: cat(star, r) for y, r in coef[k].items()}
            ck0 = const[k]
            const[k] = None if ck0 is None else cat(star, ck0)
        for x in group:
            if x == k or k not in coef[x]:
                continue
            r = coef[x].pop(k)
            for y, r2 in coef[k].items():
                term = cat(r, r2)
                coef[x][y] = _alt([coef[x][y], term]) if y in coef[x] else term
            ck = const[k]
            if ck is not None:
                term = cat(r, ck)
                cx = const[x]
                const[x] = term if cx is None else _alt([cx, term])
    out: dict[str, Node] = {}
    for x in group:
        cx = const[x]
        if coef[x] or cx is None:  # an empty language: leave it to the grammar checks
            return None
        out[x] = cx
    return out


def _size(node: Node) -> int:
    if isinstance(node, CharSet):
        return 1
    if isinstance(node, Repeat):
        return 1 + _size(node.item) * max(1, node.max or node.min or 1)
    if isinstance(node, (Seq, Alt)):
        return 1 + sum(_size(x) for x in node.items)
    return 1
