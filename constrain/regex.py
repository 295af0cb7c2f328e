"""Python-style regular expressions -> a small syntax tree over Unicode code-point sets.

interegular parses the pattern. We subclass its parser only to give ``\\w``, ``\\d`` and ``\\s`` (and
their negations) the Unicode meaning Python's ``re`` gives them for ``str`` patterns, and to represent
character classes as code-point ranges rather than explicit character sets. Constructs that are not
regular (backreferences, lookaround, word boundaries, anchors in the middle) are rejected with the
construct and its position. ``fsm.py`` turns the tree into a byte-level DFA.

Semantics are those of ``re.fullmatch``: a leading ``^`` and trailing ``$``/``\\Z`` are no-ops and removed.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import interegular
from interegular import patterns as ip
from interegular.utils.simple_parser import NoMatch, nomatch

from constrain.errors import RegexError

MAX_CODE_POINT = 0x10FFFF
Ranges = tuple[tuple[int, int], ...]


# ---------------------------------------------------------------- syntax tree
class Node:
    """A regular expression over code points."""


@dataclass(frozen=True)
class CharSet(Node):
    """One code point out of sorted, disjoint, non-adjacent inclusive ranges (surrogates excluded later)."""

    ranges: Ranges


@dataclass(frozen=True)
class Seq(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alt(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Repeat(Node):
    item: Node
    min: int
    max: int | None


def cached_hash(node: Any) -> int:
    """A frozen dataclass's hash, computed once (regex trees and JSON-Schema languages are keys of several
    caches; the generated hash walks the whole tree on every lookup). Kept in the instance dict, beside the
    frozen fields."""
    h: int | None = node.__dict__.get("_hash")
    if h is None:
        h = hash((type(node), *(getattr(node, f) for f in node.__dataclass_fields__)))  # type: ignore[attr-defined]
        object.__setattr__(node, "_hash", h)
    return h


for _cls in (CharSet, Seq, Alt, Repeat):
    _cls.__hash__ = cached_hash  # type: ignore[assignment]

EMPTY = Seq(())
NOTHING = CharSet(())


@lru_cache(maxsize=1 << 16)
def literal(text: str) -> Node:
    """The regex matching exactly ``text`` (trees are immutable: schemas that share keys share them). The
    text is kept beside the fields (``_text``), so the DFA builder need not read it back char by char."""
    node = Seq(tuple(map(_char, text)))
    if text.isascii() or _SURROGATE.search(text) is None:
        object.__setattr__(node, "_text", text)
    return node


_SURROGATE = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=1 << 12)
def _char(c: str) -> CharSet:
    return CharSet(((ord(c), ord(c)),))


# ---------------------------------------------------------------- code-point range algebra
def normalize(ranges: list[tuple[int, int]] | Ranges) -> Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return tuple(out)


def contains(ranges: Ranges, cp: int) -> bool:
    i = bisect.bisect_right(ranges, (cp, MAX_CODE_POINT + 1)) - 1
    return i >= 0 and ranges[i][0] <= cp <= ranges[i][1]


def _points_to_ranges(points: list[int]) -> Ranges:
    return normalize([(p, p) for p in points])


@cache
def _all_code_points() -> str:
    """Every code point but the surrogates, in order, as one string (index ``i`` is ``i`` below 0xD800)."""
    import numpy as np

    cps = np.concatenate([np.arange(0xD800, dtype="<u4"), np.arange(0xE000, MAX_CODE_POINT + 1, dtype="<u4")])
    return cps.tobytes().decode("utf-32-le")


@cache
def unicode_class(name: str) -> Ranges:
    """Code points that Python's ``re`` matches with ``\\d``, ``\\w`` or ``\\s`` in a str pattern.

    Asked of ``re`` itself over all code points, one match per run of members (fast: this is paid on
    the first compile that uses the class).
    """
    text = _all_code_points()
    gap = 0xE000 - 0xD800

    def cp(i: int) -> int:
        return i if i < 0xD800 else i + gap

    out: list[tuple[int, int]] = []
    for m in re.finditer("\\" + name + "+", text):
        a, b = m.start(), m.end() - 1
        if a < 0xD800 <= b:  # a run across the surrogate gap is two ranges
            out += [(a, 0xD7FF), (0xE000, cp(b))]
        else:
            out.append((cp(a), cp(b)))
    return normalize(out)


@lru_cache(maxsize=1)
def _lowercase_table() -> tuple[Ranges, dict[int, int], dict[int, list[int]]]:
    """sre's simple lowercase mapping: the code points it changes, their lowercase, and its inverse."""
    import _sre

    lower = {}
    for c in range(MAX_CODE_POINT + 1):
        if not 0xD800 <= c <= 0xDFFF:
            lo = _sre.unicode_tolower(c)
            if lo != c:
                lower[c] = lo
    inverse: dict[int, list[int]] = {}
    for c, lo in lower.items():
        inverse.setdefault(lo, []).append(c)
    return _points_to_ranges(list(lower)), lower, inverse


def _subtract(ranges: Ranges, remove: Ranges) -> Ranges:
    """``ranges`` minus ``remove`` (both normalised)."""
    return _intersect(ranges, complement(remove))


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def case_closure(ranges: Ranges) -> Ranges:
    """The code points ``re.IGNORECASE`` matches with a class of ``ranges``.

    As sre does: a character matches when its simple lowercase is the lowercase of a member (or one of
    sre's extra case equivalences of it, such as 'ı' for 'i').
    """
    from re import _casefix  # type: ignore[attr-defined]

    changed, lower, inverse = _lowercase_table()
    lowered = set(lower[c] for lo, hi in _intersect(ranges, changed) for c in range(lo, hi + 1))
    for lo_c in list(lowered) + [c for lo, hi in _subtract(ranges, changed) for c in range(lo, hi + 1)
                                   if c in _casefix._EXTRA_CASES and hi - lo < 4096]:
        lowered.update(_casefix._EXTRA_CASES.get(lo_c, ()))
    base = _subtract(ranges, changed)  # members that are their own lowercase
    targets = normalize(list(base) + [(x, x) for x in lowered])
    extra = [c for x in lowered for c in inverse.get(x, ())]
    extra += [c for x in _casefix._EXTRA_CASES for c in inverse.get(x, ()) if contains(base, x)]
    extra += [c for lo, hi in _intersect(base, _points_to_ranges(list(inverse))) for x in range(lo, hi + 1)
              for c in inverse[x]]
    return normalize(list(targets) + [(c, c) for c in extra])


# ---------------------------------------------------------------- parsing (interegular)
@dataclass(frozen=True)
class _Class(ip._Repeatable):  # type: ignore[misc]
    """A character class inside interegular's tree: positive ranges, possibly negated.

    ``category`` holds members that came from ``\\w``, ``\\d``, ``\\s``: like sre, IGNORECASE does not
    case-fold those.
    """

    ranges: Ranges
    negated: bool
    category: Ranges = ()

    def simplify(self) -> _Class:
        return self

    def _get_alphabet(self, flags: object) -> Any:  # never called: we do not use interegular's FSMs
        raise NotImplementedError

    def _get_prefix_postfix(self) -> tuple[int, int]:
        return 0, 0

    def _get_lengths(self) -> tuple[int, int]:
        return 1, 1

    def to_fsm(self, alphabet: Any = None, prefix_postfix: Any = None, flags: Any = None) -> Any:
        raise NotImplementedError


_UNICODE_ESCAPES = {"d": "d", "w": "w", "s": "s", "D": "d", "W": "w", "S": "s"}
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class _Parser(ip._ParsePattern):  # type: ignore[misc]
    """interegular's parser with Unicode-correct classes (``\\w``, ``\\d``, ``\\s``) as code-point ranges."""

    def escaped(self, inner: bool = False) -> _Class:
        start = self.index - 1
        if not inner and self.index < len(self.data) and self.data[self.index] in "bBAZ":
            c = self.data[self.index]
            what = {"b": "word boundary \\b", "B": "\\B", "A": "anchor \\A", "Z": "anchor \\Z"}[c]
            raise RegexError(f"{what} is not supported", self.data, start)
        if self.index < len(self.data) and self.data[self.index] in "uUN":
            return self._unicode_escape(start)
        if self.index < len(self.data) and self.data[self.index] in _UNICODE_ESCAPES:
            c = self.data[self.index]
            self.index += 1
            return _Class((), c.isupper(), unicode_class(_UNICODE_ESCAPES[c]))
        try:
            group = super().escaped(inner)
        except ip.Unsupported as e:
            raise RegexError(f"unsupported escape ({e})", self.data, start) from None
        return _Class(normalize([(ord(ch), ord(ch)) for ch in group.chars]), bool(group.negated))

    def _unicode_escape(self, start: int) -> _Class:
        c = self.data[self.index]
        if c == "N":
            raise RegexError("named characters \\N{...} are not supported", self.data, start)
        width = 4 if c == "u" else 8
        digits = self.data[self.index + 1 : self.index + 1 + width]
        if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise RegexError(f"bad \\{c} escape", self.data, start)
        self.index += 1 + width
        cp = int(digits, 16)
        if cp > MAX_CODE_POINT:
            raise RegexError(f"code point {cp:#x} out of range", self.data, start)
        return _Class(((cp, cp),), False)

    def chargroup(self) -> _Class:
        negate = self.static_b("^")
        parts: list[_Class] = []
        first = True
        while True:
            # a ']' right after '[' or '[^' is a literal, as in Python
            if first and self.index < len(self.data) and self.data[self.index] == "]":
                self.index += 1
                parts.append(_Class(((ord("]"), ord("]")),), False))
                first = False
                continue
            first = False
            try:
                parts.append(self.chargroup_inner())
            except nomatch:
                break
        self.static("]")
        ranges: list[tuple[int, int]] = []
        category: list[tuple[int, int]] = []
        for p in parts:
            if p.negated:  # only \\W, \\D, \\S are negated inside a class
                category.extend(complement(normalize(list(p.ranges) + list(p.category))))
            else:
                ranges.extend(p.ranges)
                category.extend(p.category)
        return _Class(normalize(ranges), negate, normalize(category))

    def chargroup_inner(self) -> Any:
        start = self.index
        if self.static_b("\\"):
            base = self.escaped(True)
        else:
            ch = self.any_but("\\", "]")
            if ch == "[" and self.index < len(self.data) and self.data[self.index] in ":=.":
                raise RegexError("POSIX classes like [:alpha:] are not supported", self.data, start)
            base = _Class(((ord(ch), ord(ch)),), False)
        if self.static_b("-"):
            if self.peek_static("]"):
                self.index -= 1  # a trailing '-' is a literal; let the next round read it
                return base
            end = self.escaped(True) if self.static_b("\\") else None
            if end is None:
                ch = self.any_but("\\", "]")
                end = _Class(((ord(ch), ord(ch)),), False)
            plain = not (base.negated or end.negated or base.category or end.category)
            if not plain or len(base.ranges) != 1 or len(end.ranges) != 1:
                raise RegexError("bad character range", self.data, start)
            lo, hi = base.ranges[0][0], end.ranges[0][0]
            if base.ranges[0][0] != base.ranges[0][1] or end.ranges[0][0] != end.ranges[0][1] or lo > hi:
                raise RegexError("bad character range", self.data, start)
            return _Class(((lo, hi),), False)
        return base


_CASE = ip.REFlags.CASE_INSENSITIVE
_DOTALL = ip.REFlags.SINGLE_LINE


def parse(pattern: str, flags: int = 0) -> Node:
    """Parse a Python regex (``re.fullmatch`` semantics) into a code-point syntax tree.

    ``flags`` takes ``re.IGNORECASE`` and ``re.DOTALL`` (``re.MULTILINE`` only affects anchors, which
    are rejected inside the pattern anyway). Raises :class:`RegexError` naming what is unsupported.
    """
    body = _strip_anchors(pattern)
    parser = _Parser(body)
    try:
        tree = parser.parse()
    except RegexError:
        raise
    except ip.Unsupported as e:
        raise RegexError(f"unsupported construct: {e}", pattern, parser.index) from None
    except (ip.InvalidSyntax, NoMatch, nomatch):
        raise RegexError("invalid regex syntax", pattern, parser.index) from None
    except ValueError as e:
        raise RegexError(f"invalid regex: {e}", pattern, parser.index) from None
    base = ip.REFlags(0)
    if flags & re.IGNORECASE:
        base |= _CASE
    if flags & re.DOTALL:
        base |= _DOTALL
    return _convert(tree, base, pattern)


def has_lazy_quantifier(pattern: str) -> bool:
    """Whether ``pattern`` uses a lazy quantifier (``*?``, ``+?``, ``??``, ``{m,n}?``) outside a class."""
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]":
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif c in "*+?}" and pattern[i + 1 : i + 2] == "?" and not (c == "?" and pattern[i - 1 : i] == "("):
            return True
        i += 1
    return False


def _strip_anchors(pattern: str) -> str:
    body = pattern[1:] if pattern.startswith("^") else pattern
    if body.endswith("\\Z") and not _escaped_at(body, len(body) - 2):
        body = body[:-2]
    elif body.endswith("$") and not _escaped_at(body, len(body) - 1):
        body = body[:-1]
    return body


def _escaped_at(text: str, i: int) -> bool:
    n = 0
    while i - 1 - n >= 0 and text[i - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


def _convert(node: object, flags: ip.REFlags, pattern: str) -> Node:
    if isinstance(node, ip.Pattern):
        f = ip._combine_flags(flags, node.added_flags, node.removed_flags)
        items = tuple(_convert(o, f, pattern) for o in node.options)
        return items[0] if len(items) == 1 else Alt(items)
    if isinstance(node, ip._Concatenation):
        parts = []
        for p in node.parts:
            if isinstance(p, ip._NonCapturing):
                kind = "lookbehind" if p.backwards else "lookahead"
                found = [i for i in (pattern.find(m) for m in ("(?=", "(?!", "(?<=", "(?<!")) if i >= 0]
                raise RegexError(f"{kind} assertions are not supported", pattern, min(found, default=None))
            parts.append(_convert(p, flags, pattern))
        return parts[0] if len(parts) == 1 else Seq(tuple(parts))
    if isinstance(node, ip._Repeated):
        if node.max is not None and node.max < node.min:
            raise RegexError(f"bad repetition {{{node.min},{node.max}}}", pattern)
        return Repeat(_convert(node.base, flags, pattern), node.min, node.max)
    if isinstance(node, _Class):
        ranges = case_closure(node.ranges) if flags & _CASE and node.ranges else node.ranges
        ranges = normalize(list(ranges) + list(node.category))
        return CharSet(complement(ranges) if node.negated else ranges)
    if isinstance(node, ip._CharGroup):  # plain characters parsed by interegular itself
        ranges = normalize([(ord(c), ord(c)) for c in node.chars])
        if flags & _CASE:
            ranges = case_closure(ranges)
        return CharSet(complement(ranges) if node.negated else ranges)
    if node is ip._DOT:
        if flags & _DOTALL:
            return CharSet(((0, MAX_CODE_POINT),))
        return CharSet(((0, 9), (11, MAX_CODE_POINT)))
    if node is ip._EMPTY:
        return EMPTY
    raise RegexError(f"unsupported regex construct {type(node).__name__}", pattern)


__all__ = ["EMPTY", "NOTHING", "Alt", "CharSet", "Node", "Repeat", "Seq", "interegular", "literal", "parse"]
