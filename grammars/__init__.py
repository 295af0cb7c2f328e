"""A library of Lark grammars for constrained generation: ``json``, ``sql``, ``arithmetic``, ``c``, ``smiles``.

Each grammar is a ``.lark`` file in this package (its header comment says what it covers and what it
does not). The language of a grammar is the one lark's Earley parser with ``lexer="dynamic_complete"``
accepts, which is what :meth:`constrain.Compiler.lark` enforces::

    import constrain
    from constrain import grammars

    grammars.available()                  # ['arithmetic', 'c', 'json', 'smiles', 'sql']
    compiler = constrain.Compiler(tokenizer)
    sql = compiler.lark(grammars.load("sql"))
    matcher = sql.matcher()               # advance(token), fill_bitmask(...), accepting

    import lark
    lark.Lark(grammars.load("sql"), parser="earley", lexer="dynamic_complete").parse("SELECT 1")

Other grammars can import rules and terminals from these files. :meth:`constrain.Compiler.lark` looks in
this folder already; with lark itself, pass it as an import path (``%ignore`` is never imported, so
declare your own)::

    text = '''
    start: "answer:" _WS json__value
    %import json.value -> json__value
    %import common.WS
    _WS: " "
    %ignore WS
    '''
    lark.Lark(text, parser="earley", lexer="dynamic_complete", import_paths=[grammars.folder()])

Conventions for grammars added here (``tests/test_grammar_library.py`` checks them): a header comment that
says what is covered and what is not; keywords separated from neighbouring words by a required whitespace
terminal in the rules (with ``dynamic_complete``, every cut of the text into terminals counts, so with
whitespace only ``%ignore``-d, ``selectx`` would read as ``select x``); terminal regexes whose Python
match is always the longest one (longer alternatives first, no lazy quantifiers: lark's scanner considers
only the first match of a regex and its prefixes, the engine every match); no lookaround. Identifiers
that must not be keywords are written with :func:`identifier_terminal` (a lookaround-free regex for "a word
but not one of these"), from a reserved-word list kept next to it in the grammar.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "UnknownGrammarError",
    "available",
    "folder",
    "identifier_terminal",
    "load",
    "path",
    "words_except",
    "words_except_alternatives",
]

_SUFFIX = ".lark"


class UnknownGrammarError(KeyError):
    """No grammar of that name in the library (a ``KeyError`` whose message lists the available names)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def folder() -> Path:
    """The folder that holds the ``.lark`` files (an import path for lark's ``%import``)."""
    return Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the grammars in the library, sorted."""
    return sorted(p.stem for p in folder().glob(f"*{_SUFFIX}"))


def path(name: str) -> Path:
    """The file of grammar ``name`` (``"sql"``; a trailing ``.lark`` is allowed)."""
    stem = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name
    names = available()
    if stem not in names:
        raise UnknownGrammarError(f"no grammar named {name!r} in constrain.grammars; available: {', '.join(names)}")
    return folder() / f"{stem}{_SUFFIX}"


def load(name: str) -> str:
    """The text of grammar ``name``, for :meth:`constrain.Compiler.lark` or ``lark.Lark``."""
    return path(name).read_text(encoding="utf-8")


def _char_class(chars: set[str]) -> str:
    """A regex character class for ``chars`` (ASCII letters, digits and ``_``), with ranges."""
    codes = sorted(ord(c) for c in chars)
    parts: list[str] = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = chr(codes[i]), chr(codes[j])
        parts.append(lo if i == j else f"{lo}{hi}" if j == i + 1 else f"{lo}-{hi}")
        i = j + 1
    body = "".join(parts)
    return body if len(chars) == 1 and body.isalnum() else f"[{body}]"


def words_except(reserved: list[str], ignore_case: bool = False) -> str:
    """A regex (no lookaround) for identifiers ``[A-Za-z_][A-Za-z0-9_]*`` other than the ``reserved`` words.

    With ``ignore_case``, no spelling of a reserved word in any letter case is an identifier. The regex's
    first match is always its longest match (as lark's ``dynamic_complete`` scanner needs)."""
    return "|".join(words_except_alternatives(reserved, ignore_case))


def words_except_alternatives(reserved: list[str], ignore_case: bool = False) -> list[str]:
    """:func:`words_except` as alternatives with pairwise different first characters (one per line in a grammar)."""
    first = {chr(c) for c in range(128) if chr(c).isalpha() or chr(c) == "_"}
    rest = first | set("0123456789")
    trie: dict[str, dict] = {}
    for w in reserved:
        if not w or any(c not in rest for c in w) or w[0] not in first:
            raise ValueError(f"not an identifier: {w!r}")
        node = trie
        for c in w.lower() if ignore_case else w:
            node = node.setdefault(c, {})
        node["$"] = {}

    def variants(c: str) -> set[str]:
        return {c.lower(), c.upper()} if ignore_case else {c}

    def alternatives(node: dict, allowed: set[str]) -> list[str]:
        alts: list[str] = []
        taken: set[str] = set()
        for c in sorted(k for k in node if k != "$"):
            cs = variants(c) & allowed
            taken |= cs
            alts.append(_char_class(cs) + build(node[c]))
        other = allowed - taken
        if other:
            alts.append(_char_class(rest) + "+" if other == rest else _char_class(other) + _char_class(rest) + "*")
        return alts

    def build(node: dict) -> str:
        alts = alternatives(node, rest)
        group = "|".join(alts)
        if "$" in node:  # a reserved word ends here: something must follow
            return f"(?:{group})" if len(alts) > 1 else group
        return f"(?:{group})?"

    return alternatives(trie, first)


def identifier_terminal(name: str, reserved: list[str], ignore_case: bool = False) -> str:
    """A Lark terminal definition for :func:`words_except`, one alternative per line."""
    alts = words_except_alternatives(reserved, ignore_case)
    pad = " " * len(name)
    return f"{name}: " + f"\n{pad}| ".join(f"/{a}/" for a in alts) + "\n"
