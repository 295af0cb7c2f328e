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
    such rules, and left- or right-recursive rules of the form ``x: a | x b`` / ``x: a | b x`` with
    regular ``a`` and ``b`` (``a b*`` and ``b* a``, which is what repetition helpers are).

    Valid for grammars without ignored terminals (the language is scannerless, so merging lexemes does
    not change it), and it matters for speed: fewer, longer lexemes mean fewer parser steps per
    token. Rules whose regex would exceed ``max_nodes`` tree nodes stay rules.
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
        return parts[0] if len(parts) == 1 else Seq(tuple(parts))

    def alt(nodes: list[Node]) -> Node:
        return nodes[0] if len(nodes) == 1 else Alt(tuple(nodes))

    changed = True
    while changed:
        changed = False
        for nt, alts in by_lhs.items():
            if nt in regex or nt == g.start:
                continue
            self_ref = N(nt)
            left = [rhs[1:] for rhs in alts if rhs[:1] == (self_ref,)]
            right = [rhs[:-1] for rhs in alts if rhs[-1:] == (self_ref,) and rhs[:1] != (self_ref,)]
            base = [rhs for rhs in alts if self_ref not in rhs]
            if len(left) + len(right) + len(base) != len(alts) or (left and right) or not base:
                continue
            base_nodes = [as_node(rhs) for rhs in base]
            loop_nodes = [as_node(rhs) for rhs in left or right]
            if any(x is None for x in base_nodes + loop_nodes):
                continue
            node = alt([x for x in base_nodes if x is not None])
            if loop_nodes:
                body = alt([x for x in loop_nodes if x is not None])
                if body == node:  # x: a | x a  is  a+
                    node = Repeat(node, 1, None)
                else:
                    loop = Repeat(body, 0, None)
                    node = Seq((node, loop)) if left else Seq((loop, node))
            if _size(node) > max_nodes:
                continue
            regex[nt] = node
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
            new: list[Symbol] = []
            for s in rhs:
                if isinstance(s, N) and s.name in regex:
                    new.append(b.terminal(regex[s.name], name=s.name))
                else:
                    new.append(s)
            out_rules.append((nt, new))
    for nt, new_rhs in out_rules:
        b.add(N(nt), new_rhs)
    return b.build(g.start, source=g.source)


def _size(node: Node) -> int:
    if isinstance(node, CharSet):
        return 1
    if isinstance(node, Repeat):
        return 1 + _size(node.item) * max(1, node.max or node.min or 1)
    if isinstance(node, (Seq, Alt)):
        return 1 + sum(_size(x) for x in node.items)
    return 1
