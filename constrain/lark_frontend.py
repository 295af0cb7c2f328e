"""Lark grammars -> the grammar IR, with lark's own loader.

lark resolves everything about the grammar language: ``%import`` (lark's ``common`` library and our
``constrain.grammars`` folder), templates, aliases, ``?rule`` inlining, EBNF operators, string and regex
terminals with flags, ``%ignore``. We take its compiled rules and terminals.

Semantics: the language is the one lark's Earley parser with ``lexer="dynamic_complete"`` accepts:
every way of cutting the text into terminals counts. A terminal matches the strings its regex
full-matches, except that a regex with a lazy quantifier (a C comment ``/\\*.*?\\*/``) matches only
its shortest matches (no proper prefix matches too), which is how lark's regex-based lexer reads it.
Terminal priorities and rule priorities only pick among parse trees in lark; they do not change which
texts are in the language, so we accept and ignore them. Declared terminals without a pattern
(``%declare``, used with post-lexers such as Python's indentation) cannot be enforced and are rejected.
"""

from __future__ import annotations

import os
import re

from constrain.errors import GrammarError, LimitError, RegexError
from constrain.fsm import ByteDFA, compile_node
from constrain.grammar_ir import Grammar, N, Rule, T
from constrain.regex import Node, has_lazy_quantifier, parse

_FLAG_BITS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "u": 0}


def grammar_library_path() -> str:
    """The folder of ``constrain.grammars`` (``%import`` looks there)."""
    import constrain.grammars

    return os.path.dirname(constrain.grammars.__file__)


def lark_to_grammar(text: str, start: str = "start", import_paths: list[str] | None = None) -> Grammar:
    """Load Lark grammar ``text``; errors carry lark's line and column."""
    import lark
    from lark import load_grammar as lg
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.exceptions import UnexpectedInput

    paths = [*(import_paths or []), grammar_library_path()]
    try:
        g, _ = lg.load_grammar(text, "<grammar>", paths, False)
        terminals, rules, ignore = g.compile([start], set())
    except UnexpectedInput as e:
        raise GrammarError(f"invalid Lark grammar: {_first_line(str(e))}", e.line, e.column) from None
    except (LarkGrammarError, lark.exceptions.LarkError, KeyError) as e:
        msg = str(e).strip() or type(e).__name__
        line, col = _location(msg)
        raise GrammarError(f"invalid Lark grammar: {_first_line(msg)}", line, col) from None

    defined = {t.name for t in terminals}
    ir_terminals: dict[str, Node | ByteDFA] = {}
    for t in terminals:
        p = t.pattern
        flags = 0
        for f in p.flags:
            if f not in _FLAG_BITS:
                raise GrammarError(f"terminal {t.name}: regex flag {f!r} is not supported")
            flags |= _FLAG_BITS[f]
        regex = re.escape(p.value) if p.type == "str" else _rewrite_idioms(p.value, flags)
        try:
            node = parse(regex, flags)
            ir_terminals[t.name] = compile_node(node).shortest_matches() if has_lazy_quantifier(regex) else node
        except (RegexError, LimitError) as e:
            raise GrammarError(f"terminal {t.name}: {e}") from None
    ir_rules = []
    for r in rules:
        rhs: list[T | N] = []
        for s in r.expansion:
            if s.is_term:
                if s.name not in defined:
                    raise GrammarError(f"terminal {s.name} has no pattern (declared for a post-lexer?): not supported")
                rhs.append(T(s.name))
            else:
                rhs.append(N(s.name))
        ir_rules.append(Rule(r.origin.name, tuple(rhs)))
    if not any(r.lhs == start for r in ir_rules):
        raise GrammarError(f"start rule {start!r} is not defined")
    return Grammar(ir_terminals, ir_rules, start, list(ignore), source=text)


# lark's escaped-string idiom: a lazy run that ends at the first delimiter preceded by an even number of
# backslashes (lookbehind). As lark matches it (shortest match), it is the escape-aware string body.
_ESCAPED_RUN = re.compile(r"\.\*\?\(\?<!\\\\\)\(\\\\\\\\\)\*\?(\\?.)")


def _rewrite_idioms(regex: str, flags: int) -> str:
    """Replace lookaround idioms of lark's standard library by their lookaround-free equivalents."""

    def body(m: re.Match[str]) -> str:
        delim = m.group(1)
        d = delim[-1]
        esc = re.escape(d)
        any_char = r"[\s\S]" if flags & re.DOTALL else "."
        newline = "" if flags & re.DOTALL else r"\n"
        return rf"(?:[^{esc}\\{newline}]|\\{any_char})*{delim}"

    return _ESCAPED_RUN.sub(body, regex)


def _first_line(msg: str) -> str:
    return msg.strip().splitlines()[0] if msg.strip() else msg


def _location(msg: str) -> tuple[int | None, int | None]:
    m = re.search(r"line (\d+)(?:,? col(?:umn)? (\d+))?", msg, re.IGNORECASE)
    if m:
        return int(m.group(1)), int(m.group(2)) if m.group(2) else None
    m = re.search(r"at line (\d+) column (\d+)", msg)
    if m:
        return int(m.group(1)), int(m.group(2))
    return None, None
