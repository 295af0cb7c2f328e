"""Regular languages of JSON lexemes: string encodings, ECMA-262 patterns, string formats, numeric ranges.

Everything here is a regular language, built as a code-point regex tree (:mod:`constrain.regex`) or,
where Boolean operations are needed, a byte DFA (:mod:`constrain.fsm`). :class:`Lang` is a small
Boolean algebra over such languages (and, or, not) that the JSON Schema converter uses for string and
number constraints: every combination of ``pattern``, lengths, ``format``, ``enum``, ranges and
``multipleOf`` under ``allOf``/``anyOf``/``not`` stays exact, and emptiness is decided on the DFA.

Conventions (documented for users in :func:`constrain.json_schema.schema_to_grammar`):

* Strings are written in the form ``json.dumps(s, ensure_ascii=False)`` produces: every character is
  written raw except ``"`` ``\\`` (escaped as ``\\"`` ``\\\\``), ``\\b \\f \\n \\r \\t``, and the other
  control characters U+0000-U+001F (``\\u00XX``, lowercase hex). Each character therefore has exactly one
  spelling, so lengths, patterns and literals translate one-to-one.
* Numbers follow JSON syntax (``-0`` allowed). Unconstrained ``number`` and ``integer`` also take
  exponents (``1e5``; for integers only non-negative exponents of an integer mantissa, which are always
  integral). Any bound, ``multipleOf`` or ``const`` restricts to exponent-free spellings (``12.50``,
  ``-3``), where the value can be compared exactly; an integer may be written ``5`` or ``5.0``.
* Patterns are ECMA-262 regexes (with Unicode semantics: ``\\d`` is ASCII, ``.`` excludes line
  terminators, ``$`` only matches at the end), matched as a search over the decoded string.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from constrain.errors import LimitError, RegexError
from constrain.fsm import MAX_DFA_STATES, ByteDFA, compile_node, except_strings, trim_and_minimize
from constrain.regex import (
    EMPTY,
    MAX_CODE_POINT,
    Alt,
    CharSet,
    Node,
    Repeat,
    Seq,
    cached_hash,
    complement,
    literal,
    normalize,
)

DIGIT = CharSet(((0x30, 0x39),))
NONZERO = CharSet(((0x31, 0x39),))
ANY_CHAR = CharSet(((0, MAX_CODE_POINT),))


def opt(node: Node) -> Node:
    return Repeat(node, 0, 1)


def alt(nodes: list[Node]) -> Node | None:
    """Alternation of ``nodes`` (``None`` when there are none)."""
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else Alt(tuple(nodes))


def seq(*nodes: Node) -> Node:
    items: list[Node] = []
    for n in nodes:
        items.extend(n.items if isinstance(n, Seq) else (n,))
    return items[0] if len(items) == 1 else Seq(tuple(items))


def chars(text: str) -> CharSet:
    return CharSet(normalize([(ord(c), ord(c)) for c in text]))


# ================================================================ JSON string encoding
_SHORT_ESCAPES = {0x22: '"', 0x5C: "\\", 0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}
_SPECIAL = normalize([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)])
_RAW = complement(_SPECIAL)


def _intersect_ranges(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out = []
    for lo, hi in a:
        for lo2, hi2 in b:
            x, y = max(lo, lo2), min(hi, hi2)
            if x <= y:
                out.append((x, y))
    return normalize(out)


def encode_charset(ranges: tuple[tuple[int, int], ...]) -> Node | None:
    """The JSON string-body spellings of one character out of ``ranges`` (raw or escaped)."""
    parts: list[Node] = []
    raw = _intersect_ranges(ranges, _RAW)
    if raw:
        parts.append(CharSet(raw))
    special = [c for lo, hi in _intersect_ranges(ranges, _SPECIAL) for c in range(lo, hi + 1)]
    short = [c for c in special if c in _SHORT_ESCAPES]
    esc: list[Node] = []
    if short:
        esc.append(chars("".join(_SHORT_ESCAPES[c] for c in short)))
    hexes = [c for c in special if c not in _SHORT_ESCAPES]
    by_high: list[Node] = []
    for high in (0, 1):
        lows = "".join(f"{c & 15:x}" for c in hexes if c >> 4 == high)
        if lows:
            by_high.append(seq(literal(str(high)), chars(lows)))
    if by_high:
        esc.append(seq(literal("u00"), alt(by_high)))  # type: ignore[arg-type]
    if esc:
        parts.append(seq(literal("\\"), alt(esc)))  # type: ignore[arg-type]
    return alt(parts)


ENC_CHAR: Node = encode_charset(((0, MAX_CODE_POINT),))  # type: ignore[assignment]
"""Any one character, as written inside a JSON string."""


def encode(node: Node) -> Node | None:
    """Map a regex over decoded characters to the same language over JSON string bodies."""
    if isinstance(node, CharSet):
        return encode_charset(node.ranges)
    if isinstance(node, Seq):
        items = [encode(x) for x in node.items]
        if any(x is None for x in items):
            return None
        return Seq(tuple(items))  # type: ignore[arg-type]
    if isinstance(node, Alt):
        return alt([x for x in (encode(i) for i in node.items) if x is not None])
    if isinstance(node, Repeat):
        inner = encode(node.item)
        if inner is None:
            return EMPTY if node.min == 0 else None
        return Repeat(inner, node.min, node.max)
    raise TypeError(node)


def quoted(body: Node) -> Node:
    return seq(literal('"'), body, literal('"'))


def string_literal(text: str) -> Node:
    """The one spelling of ``text`` as a JSON string (with quotes)."""
    return literal(json.dumps(text, ensure_ascii=False))


def string_length(lo: int, hi: int | None) -> Node:
    """JSON strings (with quotes) of ``lo`` to ``hi`` characters."""
    return quoted(Repeat(ENC_CHAR, lo, hi))


# ================================================================ ECMA-262 patterns
@dataclass(frozen=True)
class Anchor(Node):
    """``^`` or ``$`` inside a pattern tree (removed by :func:`pattern_node` before compiling)."""

    kind: str


_LINE_TERMINATORS = normalize([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])
_ECMA_SPACE = normalize([(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                         (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
                         (0xFEFF, 0xFEFF)])
_ECMA_CLASSES = {
    "d": ((0x30, 0x39),),
    "w": normalize([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]),
    "s": _ECMA_SPACE,
}
_CONTROL_ESCAPES = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
_SYNTAX = set("^$\\.*+?()[]{}|/-")


@lru_cache(maxsize=1)
def _categories() -> dict[str, tuple[tuple[int, int], ...]]:
    """Unicode general categories (two-letter, one-letter and long names) as code-point ranges."""
    by_cat: dict[str, list[tuple[int, int]]] = {}
    prev, start = None, 0
    for cp in range(MAX_CODE_POINT + 2):
        cat = unicodedata.category(chr(cp)) if cp <= MAX_CODE_POINT else None
        if cat != prev:
            if prev is not None:
                by_cat.setdefault(prev, []).append((start, cp - 1))
            prev, start = cat, cp
    out = {k: normalize(v) for k, v in by_cat.items()}
    for letter in "LMNPSZC":
        out[letter] = normalize([r for k, v in out.items() if len(k) == 2 and k[0] == letter for r in v])
    long_names = {
        "Letter": "L", "Cased_Letter": "LC", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll",
        "Titlecase_Letter": "Lt", "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M",
        "Nonspacing_Mark": "Mn", "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N",
        "Decimal_Number": "Nd", "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No", "Punctuation": "P",
        "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd", "Open_Punctuation": "Ps",
        "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi", "Final_Punctuation": "Pf",
        "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm", "Currency_Symbol": "Sc",
        "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z", "Space_Separator": "Zs",
        "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Other": "C", "Control": "Cc", "Format": "Cf",
        "Surrogate": "Cs", "Private_Use": "Co", "Unassigned": "Cn",
    }
    out["LC"] = normalize(list(out.get("Lu", ())) + list(out.get("Ll", ())) + list(out.get("Lt", ())))
    for name, short in long_names.items():
        out[name] = out.get(short, ())
    return out


class _EcmaParser:
    """Recursive-descent parser for ECMA-262 regexes (Unicode mode) into code-point regex trees."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def error(self, msg: str) -> RegexError:
        return RegexError(msg, self.p, self.i)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def parse(self) -> Node:
        node = self.alternation()
        if self.i != len(self.p):
            raise self.error("unbalanced parenthesis")
        return node

    def alternation(self) -> Node:
        items = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            items.append(self.sequence())
        return items[0] if len(items) == 1 else Alt(tuple(items))

    def sequence(self) -> Node:
        items: list[Node] = []
        while self.peek() not in ("", "|", ")"):
            atom = self.atom()
            items.append(self.quantified(atom))
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def quantified(self, atom: Node) -> Node:
        c = self.peek()
        lo: int
        hi: int | None
        if c == "*":
            lo, hi = 0, None
        elif c == "+":
            lo, hi = 1, None
        elif c == "?":
            lo, hi = 0, 1
        elif c == "{":
            bounds = self._braces()
            if bounds is None:
                return atom
            lo, hi = bounds
            self.i -= 1  # _braces consumed through '}'; the common step below moves past it
        else:
            return atom
        self.i += 1
        if self.peek() == "?":  # lazy quantifiers match the same language
            self.i += 1
        if isinstance(atom, Anchor):
            raise self.error("quantified anchor")
        if hi is not None and hi < lo:
            raise self.error("numbers out of order in {} quantifier")
        return Repeat(atom, lo, hi)

    def _braces(self) -> tuple[int, int | None] | None:
        """Parse ``{n}``, ``{n,}``, ``{n,m}`` at ``self.i``; ``None`` (nothing consumed) if not a quantifier."""
        j = self.i + 1
        k = j
        while k < len(self.p) and self.p[k].isdigit():
            k += 1
        if k == j:
            return None
        lo = int(self.p[j:k])
        hi: int | None = lo
        if k < len(self.p) and self.p[k] == ",":
            m = k + 1
            while m < len(self.p) and self.p[m].isdigit():
                m += 1
            hi = int(self.p[k + 1 : m]) if m > k + 1 else None
            k = m
        if k >= len(self.p) or self.p[k] != "}":
            return None
        self.i = k + 1
        return lo, hi

    def atom(self) -> Node:
        c = self.peek()
        if c == "(":
            return self.group()
        if c == "[":
            self.i += 1
            return self.char_class()
        if c == ".":
            self.i += 1
            return CharSet(complement(_LINE_TERMINATORS))
        if c in "^$":
            self.i += 1
            return Anchor(c)
        if c == "\\":
            self.i += 1
            return self.escape()
        if c in "*+?":
            raise self.error("nothing to repeat")
        if c == "{" and self._braces() is not None:
            raise self.error("nothing to repeat")
        self.i += 1
        return CharSet(((ord(c), ord(c)),))

    def group(self) -> Node:
        self.i += 1
        if self.peek() == "?":
            nxt = self.peek(1)
            if nxt == ":":
                self.i += 2
            elif nxt == "<" and self.peek(2) not in ("=", "!"):
                end = self.p.find(">", self.i)
                if end < 0:
                    raise self.error("bad named group")
                self.i = end + 1
            elif nxt in ("=", "!") or (nxt == "<" and self.peek(2) in ("=", "!")):
                raise self.error("lookaround assertions are not supported")
            else:
                raise self.error("unsupported group syntax")
        inner = self.alternation()
        if self.peek() != ")":
            raise self.error("missing )")
        self.i += 1
        return inner

    def _hex(self, n: int) -> int:
        digits = self.p[self.i : self.i + n]
        if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise self.error("bad hex escape")
        self.i += n
        return int(digits, 16)

    def _code_point_escape(self) -> int | None:
        """After a backslash: a single-character escape, or ``None`` if the escape is a class."""
        c = self.peek()
        if c in _CONTROL_ESCAPES:
            self.i += 1
            return _CONTROL_ESCAPES[c]
        if c == "0" and not self.peek(1).isdigit():
            self.i += 1
            return 0
        if c == "c" and self.peek(1).isalpha() and self.peek(1).isascii():
            self.i += 2
            return ord(self.p[self.i - 1]) % 32
        if c == "x":
            self.i += 1
            return self._hex(2)
        if c == "u":
            self.i += 1
            if self.peek() == "{":
                end = self.p.find("}", self.i)
                digits = self.p[self.i + 1 : end] if end > 0 else ""
                if (not digits or any(d not in "0123456789abcdefABCDEF" for d in digits)
                        or int(digits, 16) > MAX_CODE_POINT):
                    raise self.error("bad \\u{...} escape")
                self.i = end + 1
                return int(digits, 16)
            cp = self._hex(4)
            if 0xD800 <= cp <= 0xDBFF and self.p[self.i : self.i + 2] == "\\u":
                save = self.i
                self.i += 2
                try:
                    low = self._hex(4)
                except RegexError:
                    low = -1
                if 0xDC00 <= low <= 0xDFFF:
                    return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                self.i = save
            return cp
        if c and (c in _SYNTAX or not (c.isascii() and c.isalnum())):
            # syntax characters; other punctuation too, as ECMA-262 Annex B (and every JSON Schema
            # validator in practice) reads "\," or "\@" as the character itself
            self.i += 1
            return ord(c)
        return None

    def _class_escape(self) -> tuple[tuple[int, int], ...] | None:
        c = self.peek()
        if c.lower() in _ECMA_CLASSES:
            self.i += 1
            ranges = _ECMA_CLASSES[c.lower()]
            return complement(ranges) if c.isupper() else ranges
        if c in "pP" and self.peek(1) == "{":
            end = self.p.find("}", self.i)
            name = self.p[self.i + 2 : end] if end > 0 else ""
            if name.startswith(("General_Category=", "gc=")):
                name = name.split("=", 1)[1]
            cats = _categories()
            if name not in cats:
                raise self.error(f"unsupported Unicode property \\{c}{{{name}}}")
            self.i = end + 1
            return complement(cats[name]) if c == "P" else cats[name]
        return None

    def escape(self) -> Node:
        c = self.peek()
        if c in "bB":
            raise self.error("word boundaries are not supported")
        if c.isdigit() and c != "0":
            raise self.error("backreferences are not supported")
        if c == "k" and self.peek(1) == "<":
            raise self.error("backreferences are not supported")
        ranges = self._class_escape()
        if ranges is not None:
            return CharSet(ranges)
        cp = self._code_point_escape()
        if cp is None:
            raise self.error(f"invalid escape \\{c}")
        return CharSet(((cp, cp),))

    def char_class(self) -> Node:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        ranges: list[tuple[int, int]] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.error("missing ]")
            if c == "]":
                self.i += 1
                break
            lo = self._class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self._class_atom()
                if isinstance(lo, tuple) or isinstance(hi, tuple):
                    raise self.error("class escape in a range")
                if hi < lo:
                    raise self.error("range out of order in character class")
                ranges.append((lo, hi))
            elif isinstance(lo, tuple):
                ranges.extend(lo)
            else:
                ranges.append((lo, lo))
        rs = normalize(ranges)
        return CharSet(complement(rs) if negate else rs)

    def _class_atom(self) -> int | tuple[tuple[int, int], ...]:
        c = self.peek()
        self.i += 1
        if c != "\\":
            return ord(c)
        e = self.peek()
        if e == "b":
            self.i += 1
            return 8
        if e == "-":
            self.i += 1
            return ord("-")
        ranges = self._class_escape()
        if ranges is not None:
            return ranges
        cp = self._code_point_escape()
        if cp is None:
            raise self.error(f"invalid escape \\{e}")
        return cp


def _has_anchor(node: Node) -> bool:
    if isinstance(node, Anchor):
        return True
    if isinstance(node, (Seq, Alt)):
        return any(_has_anchor(x) for x in node.items)
    if isinstance(node, Repeat):
        return _has_anchor(node.item)
    return False


def _sequences(node: Node) -> list[list[Node]]:
    """``node`` as alternatives of flat item lists, distributing alternations that hold anchors."""
    if isinstance(node, Alt):
        return [s for item in node.items for s in _sequences(item)]
    items = list(node.items) if isinstance(node, Seq) else [node]
    out: list[list[Node]] = [[]]
    for it in items:
        if _has_anchor(it) and isinstance(it, (Seq, Alt)):
            subs = _sequences(it)
            out = [o + s for o in out for s in subs]
            if len(out) > 256:
                raise RegexError("too many anchored alternatives")
        else:
            out = [[*o, it] for o in out]
    return out


@lru_cache(maxsize=1024)
def pattern_node(pattern: str) -> Node:
    """The decoded strings that contain a match of the ECMA-262 ``pattern`` (``re.search`` semantics)."""
    tree = _EcmaParser(pattern).parse()
    anything = Repeat(ANY_CHAR, 0, None)
    options: list[Node] = []
    for items in _sequences(tree):
        bos = eos = False
        while items and isinstance(first := items[0], Anchor):
            if first.kind == "$":
                if any(not _nullable(x) for x in items[1:] if not isinstance(x, Anchor)):
                    items = [CharSet(())]  # '$' before something non-empty: nothing matches
                    break
                eos = True
            bos = bos or first.kind == "^"
            items = items[1:]
        while items and isinstance(last := items[-1], Anchor):
            if last.kind == "^" and any(not _nullable(x) for x in items[:-1] if not isinstance(x, Anchor)):
                items = [CharSet(())]
                break
            eos = eos or last.kind == "$"
            bos = bos or last.kind == "^"
            items = items[:-1]
        if any(_has_anchor(x) for x in items):
            raise RegexError("anchors are only supported at the start or end of an alternative", pattern)
        core: Node = Seq(tuple(items)) if len(items) != 1 else items[0]
        options.append(seq(*([] if bos else [anything]), core, *([] if eos else [anything])))
    return options[0] if len(options) == 1 else Alt(tuple(options))


def _nullable(node: Node) -> bool:
    if isinstance(node, CharSet):
        return False
    if isinstance(node, Seq):
        return all(_nullable(x) for x in node.items)
    if isinstance(node, Alt):
        return any(_nullable(x) for x in node.items)
    if isinstance(node, Repeat):
        return node.min == 0 or _nullable(node.item)
    return True  # anchors


def check_pattern(pattern: str) -> None:
    """Raise :class:`RegexError` if ``pattern`` is not a supported ECMA-262 regex."""
    pattern_node(pattern)


# ================================================================ string formats
def _rx(text: str) -> Node:
    from constrain.regex import parse

    return parse(text)


_H = "[0-9a-fA-F]"
_DEC_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}"
_H16 = f"{_H}{{1,4}}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "(?:" + "|".join([
    f"(?:{_H16}:){{6}}{_LS32}",
    f"::(?:{_H16}:){{5}}{_LS32}",
    f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    f"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    f"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")"
# RFC 1123 host names. Labels with "--" in positions 3-4 (IDNA A-labels such as "xn--...") are refused,
# since checking their Punycode is not a regular language.
_A = "[A-Za-z0-9]"
_X = "[A-Za-z0-9-]"


def _label(max_len: int) -> str:
    """A host-name label of 1..max_len characters (max_len >= 5) that is not an A-label."""
    return f"(?:{_A}|{_A}{_A}|{_A}{_X}{_A}|{_A}{_X}{_X}{_A}|{_A}{_X}(?:{_X}{_A}|{_A}{_X}){_X}{{0,{max_len - 5}}}{_A})"


_HOSTNAME = rf"{_label(63)}(?:\.{_label(63)})*"
# The 253-character limit on a whole host name, combined with the 63-character limit on labels, needs
# about 24,000 DFA states; we enforce a sound subset instead: up to 4 labels of up to 63 characters
# (the last up to 61), or up to 10 labels of up to 24 characters. Both stay within 253.
_HOSTNAME_BOUNDED = (rf"(?:{_label(63)}(?:\.{_label(63)}){{0,2}}(?:\.{_label(61)})?"
                     rf"|{_label(24)}(?:\.{_label(24)}){{0,9}})")
# RFC 3986
_UNRESERVED = "A-Za-z0-9._~\\-"
_SUBDELIMS = "!$&'()*+,;="
_PCT = f"%{_H}{_H}"
_PCHAR = f"(?:[{_UNRESERVED}{_SUBDELIMS}:@]|{_PCT})"
_SCHEME = "[A-Za-z][A-Za-z0-9+.-]*"
_USERINFO = f"(?:[{_UNRESERVED}{_SUBDELIMS}:]|{_PCT})*"
_IPVFUTURE = f"[vV]{_H}+\\.[{_UNRESERVED}{_SUBDELIMS}:]+"
_HOST = f"(?:\\[(?:{_IPV6}|{_IPVFUTURE})\\]|{_IPV4}|(?:[{_UNRESERVED}{_SUBDELIMS}]|{_PCT})*)"
_AUTHORITY = f"(?:{_USERINFO}@)?{_HOST}(?::[0-9]*)?"
_SEGMENT = f"{_PCHAR}*"
_SEGMENT_NZ = f"{_PCHAR}+"
_SEGMENT_NZ_NC = f"(?:[{_UNRESERVED}{_SUBDELIMS}@]|{_PCT})+"
_PATH_ABEMPTY = f"(?:/{_SEGMENT})*"
_PATH_ABSOLUTE = f"/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"
_PATH_ROOTLESS = f"{_SEGMENT_NZ}(?:/{_SEGMENT})*"
_PATH_NOSCHEME = f"{_SEGMENT_NZ_NC}(?:/{_SEGMENT})*"
_QUERY = f"(?:{_PCHAR}|[/?])*"
_HIER = f"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS}|)"
_URI = f"{_SCHEME}:{_HIER}(?:\\?{_QUERY})?(?:#{_QUERY})?"
_RELATIVE = f"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_NOSCHEME}|)(?:\\?{_QUERY})?(?:#{_QUERY})?"
_ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_QTEXT = "[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\x20-\\x7e]"
_EMAIL = (f"(?:{_ATEXT}+(?:\\.{_ATEXT}+)*|\"(?:{_QTEXT})*\")@"
          f"(?:{_HOSTNAME}|\\[{_IPV4}\\]|\\[IPv6:{_IPV6}\\])")
_DURATION = (
    "P(?:(?:[0-9]+D|[0-9]+M(?:[0-9]+D)?|[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?)"
    "(?:T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S))?"
    "|T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)|[0-9]+W)"
)
_JSON_POINTER = "(?:/(?:[^~/]|~[01])*)*"


def _date() -> str:
    """RFC 3339 full-date with the right number of days per month (29 February only in leap years)."""
    leap = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
    days = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
            "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
    return f"(?:[0-9]{{4}}-{days}|{leap}-02-29)"


def _time() -> str:
    """RFC 3339 full-time. A leap second (:60) is accepted at 23:59 UTC written with a zero offset.

    The exact rule (the local time must be 23:59 UTC whatever the offset, e.g. 15:59:60-08:00) needs an
    11,000-state automaton, so leap seconds written with a non-zero offset are refused (sound subset)."""
    hh, mm = "(?:[01][0-9]|2[0-3])", "[0-5][0-9]"
    frac = r"(?:\.[0-9]+)?"
    normal = f"{hh}:{mm}:[0-5][0-9]{frac}(?:[Zz]|[+-]{hh}:{mm})"
    leap = f"23:59:60{frac}(?:[Zz]|[+-]00:00)"
    return f"(?:{normal}|{leap})"


FORMATS: dict[str, str] = {
    "date": _date(),
    "time": _time(),
    "date-time": f"{_date()}[Tt]{_time()}",
    "duration": _DURATION,
    "email": _EMAIL,
    "hostname": _HOSTNAME_BOUNDED,
    "ipv4": _IPV4,
    "ipv6": _IPV6,
    "uuid": f"{_H}{{8}}-{_H}{{4}}-{_H}{{4}}-{_H}{{4}}-{_H}{{12}}",
    "uri": _URI,
    "uri-reference": f"(?:{_URI}|{_RELATIVE})",
    "json-pointer": _JSON_POINTER,
    "base64": "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?",  # contentEncoding (RFC 4648)
    "relative-json-pointer": f"(?:0|[1-9][0-9]*)(?:#|{_JSON_POINTER})",
}
"""Regexes (Python syntax, over decoded characters, full match) of the formats we enforce exactly."""
FORMAT_MAX_LENGTH: dict[str, int] = {}
"""Formats with an overall length limit on top of their regex (applied by DFA intersection)."""
UNSUPPORTED_FORMATS = frozenset({"regex", "idn-hostname", "idn-email", "iri", "iri-reference", "uri-template"})
"""Formats JSON Schema defines that we cannot enforce exactly (not regular, or not implemented)."""


@lru_cache(maxsize=64)
def format_node(name: str) -> Node:
    """The decoded strings of a known format (without the overall length limit, see FORMAT_MAX_LENGTH)."""
    return _rx(FORMATS[name])


# ================================================================ numbers
NUMBER_RX = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
INTEGER_RX = r"-?(?:0|[1-9][0-9]*)(?:\.0+)?(?:[eE]\+?[0-9]+)?"
PLAIN_NUMBER_RX = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"


def _digits_between(lo: str, hi: str) -> Node:
    """Digit strings of len(lo) == len(hi) digits between ``lo`` and ``hi`` (inclusive, lexicographic)."""
    n = len(lo)
    if n == 0:
        return EMPTY
    if lo == "0" * n and hi == "9" * n:
        return Repeat(DIGIT, n, n)
    a, b = int(lo[0]), int(hi[0])
    if a == b:
        return seq(literal(lo[0]), _digits_between(lo[1:], hi[1:]))
    rest_lo, rest_hi = lo[1:], hi[1:]
    parts: list[Node] = []
    lo_full = rest_lo == "0" * (n - 1)
    hi_full = rest_hi == "9" * (n - 1)
    first = a if lo_full else a + 1
    last = b if hi_full else b - 1
    if not lo_full:
        parts.append(seq(literal(lo[0]), _digits_between(rest_lo, "9" * (n - 1))))
    if first <= last:
        parts.append(seq(CharSet(((0x30 + first, 0x30 + last),)), Repeat(DIGIT, n - 1, n - 1)))
    if not hi_full:
        parts.append(seq(literal(hi[0]), _digits_between("0" * (n - 1), rest_hi)))
    return alt(parts)  # type: ignore[return-value]


def uint_range(lo: int, hi: int | None) -> Node | None:
    """Canonical decimal spellings ("0" or no leading zero) of the integers in [lo, hi] (lo >= 0)."""
    if hi is not None and hi < lo:
        return None
    parts: list[Node] = []
    if lo == 0:
        parts.append(literal("0"))
        lo = 1
        if hi is not None and hi < 1:
            return parts[0]
    top = len(str(hi)) if hi is not None else len(str(lo))
    for d in range(len(str(lo)), top + 1):
        a = max(lo, 10 ** (d - 1))
        b = 10**d - 1 if hi is None else min(hi, 10**d - 1)
        if a <= b:
            parts.append(_digits_between(str(a), str(b)))
    if hi is None:
        parts.append(seq(NONZERO, Repeat(DIGIT, len(str(lo)), None)))
    return alt(parts)


def _digits(d: Decimal) -> tuple[str, int]:
    """Digits (no leading or trailing zeros, "" for zero) and exponent of a decimal, without rounding."""
    _, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits)).lstrip("0")
    stripped = text.rstrip("0")
    return stripped, exp + len(text) - len(stripped)


def _split(d: Decimal) -> tuple[int, str]:
    """Integer part and fraction digits (no trailing zeros) of a non-negative decimal, exactly."""
    text, exp = _digits(d)
    if exp >= 0:
        return int(text + "0" * exp) if text else 0, ""
    k = -exp
    whole, frac = (text[:-k], text[-k:]) if k < len(text) else ("", text.rjust(k, "0"))
    return int(whole or "0"), frac.rstrip("0")


_ANY_FRAC = Repeat(DIGIT, 1, None)


def _frac(f: str | None, f_incl: bool, g: str | None, g_incl: bool) -> tuple[bool, Node | None]:
    """Fraction digit strings F with ``0.f <(=) 0.F <(=) 0.g`` (``None``: no bound; ``g`` None means < 1).

    Returns whether the absent fraction (value 0) qualifies, and a node for the non-empty F (or None)."""
    if f == "" and f_incl:
        f = None
    if f is None and g is None:
        return True, _ANY_FRAC
    if g == "":  # F must be zero
        ok = g_incl and f is None
        return ok, (Repeat(literal("0"), 1, None) if ok else None)
    if f == "" and g is None:  # strictly positive
        return False, seq(Repeat(literal("0"), 0, None), NONZERO, Repeat(DIGIT, 0, None))
    empty_ok = f is None and (g is None or g != "" or g_incl)
    f0 = int(f[0]) if f else 0
    g0 = int(g[0]) if g else 9
    parts: list[Node] = []
    free: list[int] = []
    for d in range(10):
        if (f is not None and d < f0) or (g is not None and d > g0):
            continue
        lower = f is not None and d == f0
        upper = g is not None and d == g0
        if not lower and not upper:
            free.append(d)
            continue
        sub_empty, sub = _frac(f[1:] if lower else None, f_incl, g[1:] if upper else None, g_incl)  # type: ignore[index]
        rest = alt(([EMPTY] if sub_empty else []) + ([sub] if sub is not None else []))
        if rest is not None:
            parts.append(seq(literal(str(d)), rest))
    if free:
        parts.insert(0, seq(CharSet(normalize([(0x30 + d, 0x30 + d) for d in free])), Repeat(DIGIT, 0, None)))
    return empty_ok, alt(parts)


def _with_frac(int_part: Node, frac: tuple[bool, Node | None]) -> Node | None:
    empty_ok, node = frac
    tails: list[Node] = ([EMPTY] if empty_ok else []) + ([seq(literal("."), node)] if node is not None else [])
    t = alt(tails)
    return None if t is None else seq(int_part, t)


def _magnitudes(lo: Decimal | None, lo_incl: bool, hi: Decimal | None, hi_incl: bool) -> Node | None:
    """Spellings ``I(.F)?`` of the non-negative values between the bounds (lo None means >= 0)."""
    if lo is None:
        lo, lo_incl = Decimal(0), True
    if hi is not None and (hi < lo or (hi == lo and not (lo_incl and hi_incl))):
        return None
    li, lf = _split(lo)
    if hi is not None:
        hi_i, hf = _split(hi)
        if hi_i == li:
            return _with_frac(literal(str(li)), _frac(lf, lo_incl, hf, hi_incl))
    parts: list[Node | None] = [_with_frac(literal(str(li)), _frac(lf, lo_incl, None, False))]
    middle = uint_range(li + 1, None if hi is None else hi_i - 1)
    if middle is not None:
        parts.append(seq(middle, opt(seq(literal("."), _ANY_FRAC))))
    if hi is not None:
        parts.append(_with_frac(literal(str(hi_i)), _frac(None, True, hf, hi_incl)))
    return alt([p for p in parts if p is not None])


def _int_magnitudes(lo: Decimal | None, lo_incl: bool, hi: Decimal | None, hi_incl: bool,
                    fraction: bool = True) -> Node | None:
    """Spellings ``I(.0+)?`` (``I`` alone if not ``fraction``) of the non-negative integers between the bounds."""
    a = 0 if lo is None else (
        math.floor(Fraction(lo)) + 1 if not lo_incl and lo == int(lo) else math.ceil(Fraction(lo)))
    a = max(a, 0)
    b = None if hi is None else (
        math.ceil(Fraction(hi)) - 1 if not hi_incl and hi == int(hi) else math.floor(Fraction(hi)))
    node = uint_range(a, b)
    if node is None or not fraction:
        return node
    return seq(node, opt(seq(literal("."), Repeat(literal("0"), 1, None))))


def number_range(lo: Decimal | None, lo_incl: bool, hi: Decimal | None, hi_incl: bool, integer: int) -> Node | None:
    """Exponent-free JSON numbers with a value in the range (``None`` bounds are open); None if empty.

    ``integer``: 0 any number, 1 integers (``5`` or ``5.0``), 2 integers without a fraction part (draft 4)."""
    def mags(a: Decimal | None, ai: bool, b: Decimal | None, bi: bool) -> Node | None:
        if integer:
            return _int_magnitudes(a, ai, b, bi, fraction=integer == 1)
        return _magnitudes(a, ai, b, bi)

    parts: list[Node] = []
    zero = Decimal(0)
    if hi is None or hi > zero or (hi == zero and hi_incl):
        pos = mags(lo if lo is not None and lo > zero else zero, lo_incl if lo is not None and lo >= zero else True,
                   hi, hi_incl)
        if pos is not None:
            parts.append(pos)
        if ((lo is None or lo < zero or (lo == zero and lo_incl)) and (hi is None or hi >= zero)
                and (hi is None or hi > zero or hi_incl)):  # negative zero: "-0", "-0.0"
            z = mags(zero, True, zero, True)
            if z is not None:
                parts.append(seq(literal("-"), z))
    if lo is None or lo < zero:
        # negative values: magnitude m = -x in (max(0, -hi), -lo]
        m_lo, m_lo_incl = (zero, False) if hi is None or hi >= zero else (hi.copy_negate(), hi_incl)
        if m_lo == zero:
            m_lo_incl = False
        neg = mags(m_lo, m_lo_incl, None if lo is None else lo.copy_negate(), lo_incl)
        if neg is not None:
            parts.append(seq(literal("-"), neg))
    return alt(parts)


def to_decimal(x: int | float | Decimal) -> Decimal:
    """The decimal a JSON number in a schema means (floats by their shortest repr: 0.1 is 1/10)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    return Decimal(x)


def multiple_of_states(q: Decimal) -> int:
    """About how many DFA states :func:`multiple_of_dfa` needs."""
    text, exp = _digits(q)
    return int(text) * (10**exp if exp > 0 else 1) * (2 + max(0, -exp))


MAX_MULTIPLE_STATES = 20_000


def multiple_of_dfa(q: Decimal) -> ByteDFA:
    """Exponent-free spellings over ``-0-9.`` whose value is a multiple of ``q`` (syntax is not checked).

    With q = a * 10^-s: x is a multiple of q iff x * 10^s is an integer divisible by a. States track the
    remainder mod a and how many fraction digits were read (past s, only zeros may follow)."""
    text, exp = _digits(q)
    a = int(text) * (10**exp if exp > 0 else 1)
    s = -exp if exp < 0 else 0
    if a * (s + 2) > MAX_MULTIPLE_STATES:
        raise LimitError(f"multipleOf {q} needs too many automaton states")
    # state id: phase 0 (integer part) rem r -> r; phase 1 with k fraction digits (k=0..s) rem r -> a + k*a + r
    # phase 2 (past s fraction digits, remainder 0 only; nonzero digits die) -> a*(s+2)
    n = a * (s + 2) + 1
    trans = np.full((n + 1, 256), -1, np.int32)
    acc = np.zeros(n + 1, bool)
    start = n  # before the sign
    past = a * (s + 2)
    for r in range(a):
        for dgt in range(10):
            trans[r, 0x30 + dgt] = (r * 10 + dgt) % a
            trans[start, 0x30 + dgt] = dgt % a
        trans[r, ord(".")] = a + r
        acc[r] = (r * 10**s) % a == 0
        for k in range(s + 1):
            sid = a + k * a + r
            acc[sid] = (r * 10 ** (s - k)) % a == 0
            for dgt in range(10):
                if k < s:
                    trans[sid, 0x30 + dgt] = a + (k + 1) * a + (r * 10 + dgt) % a
                elif r == 0 and dgt == 0:
                    trans[sid, 0x30] = past
    trans[start, ord("-")] = 0
    trans[past, 0x30] = past
    acc[past] = True
    # renumber so that the start state is 0
    perm = np.array([start] + [i for i in range(n + 1) if i != start])
    inv = np.empty_like(perm)
    inv[perm] = np.arange(n + 1)
    t2 = trans[perm]
    t2 = np.where(t2 >= 0, inv[np.maximum(t2, 0)], -1).astype(np.int32)
    return trim_and_minimize(t2, acc[perm])


# ================================================================ DFA Boolean operations
def dfa_union(a: ByteDFA, b: ByteDFA) -> ByteDFA:
    """Strings in either language."""
    if a.is_empty:
        return b
    if b.is_empty:
        return a
    return a.union(b, MAX_UNION_STATES)


MAX_UNION_STATES = 50_000


def dfa_length_range(d: ByteDFA) -> tuple[int, int | None] | None:
    """Shortest and longest accepted byte length (longest None if unbounded); None if empty."""
    n = d.n_states
    if n == 0:
        return None
    succ = [sorted({int(t) for t in d.trans[s] if t >= 0}) for s in range(n)]
    # shortest: BFS
    dist = [-1] * n
    dist[0] = 0
    order = [0]
    for s in order:
        for t in succ[s]:
            if dist[t] < 0:
                dist[t] = dist[s] + 1
                order.append(t)
    shortest = min(dist[s] for s in range(n) if d.accepting[s])
    # longest: a trimmed DFA has unbounded length iff it has a cycle
    indeg = [0] * n
    for s in range(n):
        for t in succ[s]:
            indeg[t] += 1
    topo = [s for s in range(n) if indeg[s] == 0]
    longest = [0] * n
    i = 0
    while i < len(topo):
        s = topo[i]
        i += 1
        for t in succ[s]:
            longest[t] = max(longest[t], longest[s] + 1)
            indeg[t] -= 1
            if indeg[t] == 0:
                topo.append(t)
    if len(topo) < n:
        return shortest, None
    return shortest, max(longest[s] for s in range(n) if d.accepting[s])



def node_length(node: Node) -> tuple[int, int | None]:
    """Shortest and longest match of a code-point regex tree, in characters (longest None: unbounded)."""
    if isinstance(node, CharSet):
        return (1, 1) if node.ranges else (0, 0)
    if isinstance(node, Seq):
        lo, hi_s = 0, 0
        unbounded = False
        for it in node.items:
            a, b = node_length(it)
            lo += a
            if b is None:
                unbounded = True
            else:
                hi_s += b
        return lo, None if unbounded else hi_s
    if isinstance(node, Alt):
        ls = [node_length(it) for it in node.items]
        his = [b for _, b in ls if b is not None]
        return min(a for a, _ in ls), None if len(his) < len(ls) else max(his)
    if isinstance(node, Repeat):
        a, b = node_length(node.item)
        if b == 0:
            return 0, 0
        return a * node.min, None if node.max is None or b is None else b * node.max
    return 0, 0


@lru_cache(maxsize=256)
def string_length_dfa(lo: int, hi: int | None, only: bytes | None = None) -> ByteDFA:
    """JSON strings (with quotes) of lo..hi characters, built by tiling the one-character DFA.

    Much faster than compiling ``"ENC{lo,hi}"`` through the NFA (the result has about 14 states per
    counted character). With ``only`` (a byte set), characters use only those bytes: a length bound to be
    intersected with a pattern that only uses ASCII letters needs one state per character, not 14."""
    if hi is not None and hi < lo:
        return trim_and_minimize(np.zeros((0, 256), np.int32), np.zeros(0, bool))
    one = compile_node(ENC_CHAR)
    if only is not None:
        keep = np.zeros(256, bool)
        keep[np.frombuffer(only, np.uint8)] = True
        one = trim_and_minimize(np.where(keep[None, :], one.trans, -1), one.accepting)
        if one.is_empty:  # no character can be written: only the empty string
            return compile_node(literal('""')) if lo == 0 else trim_and_minimize(
                np.zeros((0, 256), np.int32), np.zeros(0, bool))
    finals = np.flatnonzero(one.accepting)
    assert len(finals) == 1 and not (one.trans[finals[0]] >= 0).any()
    fin = int(finals[0])
    inner = [s for s in range(one.n_states) if s != fin]
    k = len(inner)
    idx = {s: i for i, s in enumerate(inner)}
    base = np.full((k, 256), -1, np.int64)  # -2 marks "a character ends here"
    for s in inner:
        row = one.trans[s]
        for b in range(256):
            t = int(row[b])
            if t >= 0:
                base[idx[s], b] = -2 if t == fin else idx[t]
    levels = (hi if hi is not None else lo) + 1
    n = 1 + levels * k + 1  # opening-quote state, counted states, accept state
    if n > MAX_DFA_STATES:  # before allocating n x 256 (a 65,535 bound would take a gigabyte)
        raise LimitError(f"string length bound {hi if hi is not None else lo} too large for one automaton: "
                         f"more than {MAX_DFA_STATES} DFA states")
    trans = np.full((n, 256), -1, np.int32)
    accept = n - 1
    acc = np.zeros(n, bool)
    acc[accept] = True
    trans[0, ord('"')] = 1
    for c in range(levels):
        off = 1 + c * k
        block = np.where(base >= 0, base + off, -1)
        nxt_level = c + 1 if c + 1 < levels else (c if hi is None else -1)
        ends = np.where(base == -2, (1 + nxt_level * k) if nxt_level >= 0 else -1, -1)
        trans[off : off + k] = np.where(base == -2, ends, block)
        if c >= lo:
            trans[off + idx[0], ord('"')] = accept
    return trim_and_minimize(trans, acc)


# ================================================================ Boolean algebra of lexeme languages
@dataclass(frozen=True)
class Lang:
    """A regular language of JSON lexemes: strings with their quotes (``kind="str"``) or numbers (``"num"``).

    ``op`` is ``top`` (every string / every JSON number), ``bottom`` (nothing), ``atom``, ``and``, ``or`` or
    ``not``. Atoms, all closed under "same decoded value":

    * str: ``("len", lo, hi)`` code points; ``("pattern", p)`` ECMA search; ``("format", name)``;
      ``("lits", frozenset of str)`` exactly these strings.
    * num: ``("int",)`` any integer; ``("range", lo, lo_incl, hi, hi_incl, integer)`` with Decimal or None
      bounds; ``("mult", q)``; ``("lits", frozenset of (Decimal, text))`` these values.

    Build them with :func:`land`, :func:`lor`, :func:`lnot`, which simplify (merge ranges and lengths,
    filter literal sets) so that common schemas stay plain regexes.
    """

    kind: str
    op: str
    args: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        """Also the sort key of ``and``/``or`` arguments (so computed once)."""
        r: str | None = self.__dict__.get("_repr")
        if r is None:
            if self.op == "atom":
                r = f"{self.kind}{self.args!r}"
            elif self.op in ("top", "bottom"):
                r = f"{self.kind}:{self.op}"
            else:
                r = f"{self.op}({', '.join(map(repr, self.args))})"
            object.__setattr__(self, "_repr", r)
        return r

    @property
    def is_top(self) -> bool:
        return self.op == "top"

    @property
    def is_bottom(self) -> bool:
        return self.op == "bottom"


Lang.__hash__ = cached_hash  # type: ignore[assignment]  # languages nest, and key the converter's interning

_TOP = {k: Lang(k, "top") for k in ("str", "num")}
_BOTTOM = {k: Lang(k, "bottom") for k in ("str", "num")}


def top(kind: str) -> Lang:
    return _TOP[kind]


def bottom(kind: str) -> Lang:
    return _BOTTOM[kind]


def atom(kind: str, *args: Any) -> Lang:
    if args[0] == "lits" and not args[1]:
        return bottom(kind)
    if args[0] == "range" and number_range(*args[1:]) is None:
        return bottom(kind)
    if args[0] == "len" and (args[2] is not None and args[2] < args[1]):
        return bottom(kind)
    if args[0] == "len" and args[1] == 0 and args[2] is None:
        return top(kind)
    return Lang(kind, "atom", tuple(args))


def _sorted(xs: list[Lang]) -> tuple[Lang, ...]:
    return tuple(sorted(dict.fromkeys(xs), key=repr))


def _tighter(a: tuple[Decimal | None, bool], b: tuple[Decimal | None, bool],
             lower: bool) -> tuple[Decimal | None, bool]:
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    if a[0] == b[0]:
        return a[0], a[1] and b[1]
    return a if (a[0] > b[0]) == lower else b


def land(kind: str, *xs: Lang) -> Lang:
    """Intersection (simplified)."""
    flat: list[Lang] = []
    for x in xs:
        if x.op == "and":
            flat.extend(x.args)
        elif x.op == "bottom":
            return bottom(kind)
        elif x.op != "top":
            flat.append(x)
    if len(flat) <= 1:  # nothing to simplify (most calls: an object's key language and one more)
        return flat[0] if flat else top(kind)
    if kind == "num":
        if any(x.op == "atom" and (x.args[0] == "int" or (x.args[0] == "range" and x.args[5])) for x in flat):
            # every integer is a multiple of 1/k
            flat = [x for x in flat if not (x.op == "atom" and x.args[0] == "mult"
                                            and (1 / Fraction(x.args[1])).denominator == 1)]
        ranges = [x for x in flat if x.op == "atom" and x.args[0] in ("range", "int")]
        if len(ranges) > 1 or (ranges and len(flat) > 1 and ranges[0].args[0] == "int"):
            lo: tuple[Decimal | None, bool] = (None, True)
            hi: tuple[Decimal | None, bool] = (None, True)
            integer = 0
            for r in ranges:
                if r.args[0] == "int":
                    integer = max(integer, 1)
                    continue
                lo = _tighter(lo, (r.args[1], r.args[2]), True)
                hi = _tighter(hi, (r.args[3], r.args[4]), False)
                integer = max(integer, r.args[5])
            merged = atom("num", "range", lo[0], lo[1], hi[0], hi[1], integer)
            if merged.is_bottom:
                return merged
            flat = [x for x in flat if x not in ranges] + [merged]
    if kind == "str":
        lens = [x for x in flat if x.op == "atom" and x.args[0] == "len"]
        if len(lens) > 1:
            lo_len = max(x.args[1] for x in lens)
            his = [x.args[2] for x in lens if x.args[2] is not None]
            merged = atom("str", "len", lo_len, min(his) if his else None)
            if merged.is_bottom:
                return merged
            flat = [x for x in flat if x not in lens] + ([merged] if not merged.is_top else [])
            lens = [merged] if not merged.is_top else []
        if lens and len(flat) > 1:
            want = (lens[0].args[1], lens[0].args[2])
            for x in flat:
                if x is not lens[0]:
                    got = char_length_range(x)
                    if got is None:
                        continue
                    if _within(got, want):
                        flat.remove(lens[0])
                        break
                    if _disjoint(got, want):
                        return bottom(kind)
    lits = [x for x in flat if x.op == "atom" and x.args[0] == "lits"]
    if lits:
        values = frozenset.intersection(*(x.args[1] for x in lits))
        rest = [x for x in flat if x not in lits]
        values = frozenset(v for v in values if all(contains(r, v) for r in rest))
        return atom(kind, "lits", values)
    uniq = _sorted(flat)
    if not uniq:
        return top(kind)
    return uniq[0] if len(uniq) == 1 else Lang(kind, "and", uniq)


def _within(got: tuple[int, int | None], want: tuple[int, int | None]) -> bool:
    return got[0] >= want[0] and (want[1] is None or (got[1] is not None and got[1] <= want[1]))


def _disjoint(got: tuple[int, int | None], want: tuple[int, int | None]) -> bool:
    return (want[1] is not None and got[0] > want[1]) or (got[1] is not None and got[1] < want[0])


def lor(kind: str, *xs: Lang) -> Lang:
    """Union (simplified)."""
    flat: list[Lang] = []
    for x in xs:
        if x.op == "or":
            flat.extend(x.args)
        elif x.op == "top":
            return top(kind)
        elif x.op != "bottom":
            flat.append(x)
    lits = [x for x in flat if x.op == "atom" and x.args[0] == "lits"]
    if len(lits) > 1:
        merged = atom(kind, "lits", frozenset().union(*(x.args[1] for x in lits)))
        flat = [x for x in flat if x not in lits] + [merged]
    uniq = _sorted(flat)
    if not uniq:
        return bottom(kind)
    return uniq[0] if len(uniq) == 1 else Lang(kind, "or", uniq)


def lnot(x: Lang) -> Lang:
    """Complement within the kind's universe (for numbers: exponent-free spellings, see module doc)."""
    if x.op == "not":
        return x.args[0]  # type: ignore[no-any-return]
    if x.op == "top":
        return bottom(x.kind)
    if x.op == "bottom":
        return Lang(x.kind, "not", (x,)) if x.kind == "num" else top(x.kind)
    return Lang(x.kind, "not", (x,))


def char_length_range(x: Lang) -> tuple[int, int | None] | None:
    """Code-point length bounds of the strings of a str Lang (None if unknown)."""
    if x.op != "atom":
        return None
    a = x.args
    if a[0] == "len":
        return a[1], a[2]
    if a[0] == "lits":
        lens = [len(s) for s in a[1]]
        return (min(lens), max(lens)) if lens else None
    if a[0] == "format":
        lo, hi = node_length(format_node(a[1]))
        cap = FORMAT_MAX_LENGTH.get(a[1])
        if cap is not None:
            hi = cap if hi is None else min(hi, cap)
        return lo, hi
    if a[0] == "pattern":
        return node_length(pattern_node(a[1]))
    return None


def contains(x: Lang, value: Any) -> bool:
    """Whether a decoded value (str, or (Decimal, text) for numbers) is in the language."""
    if x.op == "top":
        return True
    if x.op == "bottom":
        return False
    if x.op == "and":
        return all(contains(y, value) for y in x.args)
    if x.op == "or":
        return any(contains(y, value) for y in x.args)
    if x.op == "not":
        return not contains(x.args[0], value)
    a = x.args
    if a[0] == "lits":
        return value in a[1]
    if x.kind == "str":
        return atom_dfa(x).accepts(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    v = Fraction(value[0])
    if a[0] == "int":
        return v.denominator == 1
    if a[0] == "mult":
        return (v / Fraction(a[1])).denominator == 1
    if a[0] == "range":
        _, lo, lo_incl, hi, hi_incl, integer = a
        if integer and v.denominator != 1:
            return False
        if integer == 2 and value[1] is not None and not value[1].lstrip("-").isdigit():
            return False
        if lo is not None and (v < lo or (v == lo and not lo_incl)):
            return False
        return not (hi is not None and (v > hi or (v == hi and not hi_incl)))
    raise ValueError(x)


# ---------------------------------------------------------------- languages to regexes and DFAs
_STR_TOP = quoted(Repeat(ENC_CHAR, 0, None))


def atom_node(x: Lang) -> Node | None:
    """A regex tree for a top or atom language, or None where only a DFA can express it."""
    if x.op == "top":
        return _STR_TOP if x.kind == "str" else _parsed(NUMBER_RX)
    if x.op != "atom":
        return None
    a = x.args
    if x.kind == "str":
        if a[0] == "len":
            return string_length(a[1], a[2])
        if a[0] == "pattern":
            return quoted(encode(pattern_node(a[1])) or CharSet(()))
        if a[0] == "format":
            return None if a[1] in FORMAT_MAX_LENGTH else quoted(encode(format_node(a[1])))  # type: ignore[arg-type]
        if a[0] == "lits":
            return alt([string_literal(s) for s in sorted(a[1])])
    else:
        if a[0] == "int":
            return _parsed(INTEGER_RX)
        if a[0] == "range":
            return number_range(*a[1:])
        if a[0] == "lits":
            parts: list[Node] = []
            for v, text in sorted(a[1]):
                parts.append(number_range(v, True, v, True, False))  # type: ignore[arg-type]
                if text is not None:
                    parts.append(literal(text))
            return alt(parts)
    return None


def to_node(x: Lang) -> Node | None:
    """A regex tree for ``x`` if it needs no intersection or complement, else None."""
    if x.op == "or":
        nodes = [to_node(y) for y in x.args]
        return None if any(n is None for n in nodes) else Alt(tuple(nodes))  # type: ignore[arg-type]
    return atom_node(x)


@lru_cache(maxsize=4096)
def atom_dfa(x: Lang) -> ByteDFA:
    a = x.args
    if x.op == "atom" and x.kind == "str" and a[0] == "len" and (a[2] or a[1]) > 24:
        return string_length_dfa(a[1], a[2])
    if x.op == "atom" and x.kind == "str" and a[0] == "format" and a[1] in FORMAT_MAX_LENGTH:
        return compile_node(quoted(encode(format_node(a[1])))).intersect(  # type: ignore[arg-type]
            string_length_dfa(0, FORMAT_MAX_LENGTH[a[1]]))
    if x.op == "atom" and x.kind == "num" and a[0] == "mult":
        return compile_node(_plain()).intersect(multiple_of_dfa(a[1]))
    node = atom_node(x)
    assert node is not None, x
    return compile_node(node)


@lru_cache(maxsize=8)
def _parsed(rx: str) -> Node:
    from constrain.regex import parse

    return parse(rx)


def _plain() -> Node:
    return _parsed(PLAIN_NUMBER_RX)


@lru_cache(maxsize=4096)
def to_dfa(x: Lang) -> ByteDFA:
    """The byte DFA of a language (cached)."""
    if x.op in ("top", "atom"):
        return atom_dfa(x)
    if x.op == "bottom":
        return trim_and_minimize(np.zeros((0, 256), np.int32), np.zeros(0, bool))
    if x.op == "and":
        lens = [y for y in x.args if y.op == "atom" and y.kind == "str" and y.args[0] == "len"]
        rest = [y for y in x.args if y not in lens]
        if lens and rest:
            # a length bound past what the rest can reach is no bound, and characters need only the bytes
            # the rest uses: clip and restrict the counting automaton before the product
            others = to_dfa(land("str", *rest)) if len(rest) > 1 else to_dfa(rest[0])
            longest = _longest_bytes(others)
            used = np.flatnonzero((others.trans >= 0).any(axis=0)).astype(np.uint8).tobytes()
            out = others
            for y in lens:
                lo, hi = y.args[1], y.args[2]
                if longest is not None:
                    hi = longest if hi is None else min(hi, longest)
                if hi is not None and hi < lo:
                    return to_dfa(bottom("str"))
                out = out.intersect(string_length_dfa(lo, hi, used))
            return out
        dfas = sorted((to_dfa(y) for y in x.args), key=lambda d: d.n_states)
        out = dfas[0]
        for d in dfas[1:]:
            if out.is_empty:
                break
            out = out.intersect(d)
        return out
    if x.op == "or":
        node = to_node(x)
        if node is not None:
            return compile_node(node)
        dfas = [to_dfa(y) for y in x.args]
        out = dfas[0]
        for d in dfas[1:]:
            out = dfa_union(out, d)
        return out
    inner = x.args[0]
    if x.kind == "str" and inner.op == "atom" and inner.args[0] == "lits":  # strings but these (object keys)
        try:
            spelled = [json.dumps(v, ensure_ascii=False).encode("utf-8") for v in inner.args[1]]
        except UnicodeEncodeError:  # lone surrogates: no UTF-8 spelling, the general path below
            spelled = []
        if spelled:
            return except_strings(to_dfa(top("str")), spelled)
    universe = to_dfa(top("str")) if x.kind == "str" else compile_node(_plain())
    return universe.difference(to_dfa(inner))


def _longest_bytes(dfa: ByteDFA) -> int | None:
    """Length of the longest string ``dfa`` accepts (a trimmed DFA), None if unbounded (a cycle)."""
    n = dfa.n_states
    if n == 0:
        return 0
    succ = [sorted({int(t) for t in row if t >= 0}) for row in dfa.trans]
    depth = [-1] * n  # longest path from the state, once known
    on_path = [False] * n
    stack = [(0, 0)]
    on_path[0] = True
    while stack:
        v, i = stack.pop()
        if i < len(succ[v]):
            stack.append((v, i + 1))
            w = succ[v][i]
            if on_path[w]:
                return None
            if depth[w] < 0:
                on_path[w] = True
                stack.append((w, 0))
            continue
        on_path[v] = False
        depth[v] = max((depth[w] + 1 for w in succ[v]), default=0)
    return depth[0]


def is_empty(x: Lang) -> bool:
    if x.op == "bottom":
        return True
    if x.op == "top":
        return False
    if x.op == "atom" and x.args[0] != "pattern":
        return False  # atom() refuses empty literal sets, ranges and lengths
    return to_dfa(x).is_empty


def terminal_def(x: Lang) -> ByteDFA:
    """The grammar terminal for ``x``: its byte DFA, cached by language so that every schema using the same
    string or number constraint shares one terminal (and the engine's token masks for it)."""
    return to_dfa(x)

__all__ = [
    "ENC_CHAR",
    "FORMATS",
    "INTEGER_RX",
    "NUMBER_RX",
    "PLAIN_NUMBER_RX",
    "UNSUPPORTED_FORMATS",
    "Lang",
    "atom",
    "bottom",
    "contains",
    "dfa_union",
    "encode",
    "is_empty",
    "land",
    "lnot",
    "lor",
    "multiple_of_dfa",
    "number_range",
    "pattern_node",
    "quoted",
    "string_length",
    "string_literal",
    "terminal_def",
    "to_decimal",
    "to_dfa",
    "top",
    "uint_range",
]
