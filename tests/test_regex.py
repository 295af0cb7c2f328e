"""Regex -> byte DFA: errors name the construct and position; the DFA agrees with ``re.fullmatch``."""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from regex_corpus import all_regexes

from constrain.errors import ConstraintError, RegexError
from constrain.fsm import _Subsets, compile_regex, utf8_sequences
from constrain.regex import Node


@pytest.mark.parametrize(
    ("pattern", "construct", "position"),
    [
        (r"(a)\1", "group references", 3),
        (r"ab(?=c)", "lookahead", 2),
        (r"ab(?<!c)d", "lookbehind", 2),
        (r"a\bc", "word boundary", 1),
        (r"a^b", "'^'", None),
        (r"a$b", "'$'", None),
        (r"(?P<x>a)(?P=x)", "group references", None),
        (r"a\Z b", "anchor", 1),
        (r"\N{DIGIT ONE}", "named characters", 0),
        (r"(a", "invalid regex syntax", None),
        (r"[b-a]", "range", None),
    ],
)
def test_unsupported_constructs_are_named(pattern: str, construct: str, position: int | None) -> None:
    with pytest.raises(RegexError) as info:
        compile_regex(pattern)
    assert construct.lower() in str(info.value).lower()
    if position is not None:
        assert info.value.position == position
        assert f"at position {position}" in str(info.value)


def test_anchors_at_the_ends_are_no_ops() -> None:
    d = compile_regex(r"^ab+$")
    assert d.accepts(b"abbb") and not d.accepts(b"a")


def test_utf8_sequences_cover_exactly_the_range() -> None:
    rng = random.Random(0)
    for _ in range(200):
        lo = rng.choice([0, 0x70, 0x7F0, 0xD7F0, 0xFFF0, 0x10000, rng.randrange(0x110000)])
        hi = min(0x10FFFF, lo + rng.choice([0, 1, 15, 300, 70000]))
        seqs = utf8_sequences(lo, hi)
        for cp in {lo, hi, (lo + hi) // 2, rng.randint(lo, hi)}:
            if 0xD800 <= cp <= 0xDFFF:
                continue
            enc = chr(cp).encode()
            hits = [s for s in seqs if len(s) == len(enc) and all(a <= b <= z for (a, z), b in zip(s, enc))]
            assert len(hits) == 1, (hex(lo), hex(hi), hex(cp))
        total = sum(_count(s) for s in seqs)
        surrogates = max(0, min(hi, 0xDFFF) - max(lo, 0xD800) + 1)
        assert total == hi - lo + 1 - surrogates


def _count(seq: tuple[tuple[int, int], ...]) -> int:
    n = 1
    for a, b in seq:
        n *= b - a + 1
    return n


def test_unicode_classes_match_python() -> None:
    for pat in [r"\w", r"\d", r"\s", r"\W", r"\D", r"\S", r"(?i)k", r"(?i)[a-z]", r"(?i)ß", "."]:
        d = compile_regex(pat)
        for cp in [*range(0x3000), 0x1D7CE, 0x10FFFF, 0x212A, 0x17F, 0xFF21]:
            if 0xD800 <= cp <= 0xDFFF:
                continue
            ch = chr(cp)
            assert d.accepts(ch.encode()) == bool(re.fullmatch(pat, ch)), (pat, hex(cp))


SUPPORTED: list[str] = []
UNSUPPORTED: list[tuple[str, str]] = []
for _p in all_regexes():
    try:
        re.compile(_p)
        compile_regex(_p)
        SUPPORTED.append(_p)
    except ConstraintError as _e:
        UNSUPPORTED.append((_p, str(_e)))


def test_corpus_is_large_and_rejections_are_explained() -> None:
    assert len(SUPPORTED) >= 200
    for pattern, message in UNSUPPORTED:
        assert any(
            w in message for w in ("lookahead", "lookbehind", "references", "boundary", "'$'", "'^'", "too large")
        ), (
            pattern, message,
        )


class _Slow(Exception):
    pass


def _alarm(*_: object) -> None:
    raise _Slow


def re_fullmatch(pattern: str, text: str, seconds: int = 2) -> bool | None:
    """``re.fullmatch`` as the reference, or None when its backtracking takes too long to be one."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        return re.fullmatch(pattern, text) is not None
    except _Slow:
        return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def mutations(text: str, rng: random.Random) -> list[str]:
    """Small edits of a matching string: most are rejected by the regex, some are not."""
    alphabet = "ab0 9_-.é日😀\n\"\\"
    out = []
    for _ in range(4):
        i = rng.randint(0, len(text))
        c = rng.choice(alphabet)
        kind = rng.randrange(3)
        if kind == 0:
            out.append(text[:i] + c + text[i:])
        elif kind == 1 and text:
            out.append(text[: max(0, i - 1)] + text[i:])
        elif text:
            j = min(i, len(text) - 1)
            out.append(text[:j] + c + text[j + 1 :])
    return out


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
@pytest.mark.parametrize("pattern", SUPPORTED)
def test_dfa_agrees_with_re(pattern: str, data: st.DataObject) -> None:
    text = data.draw(st.from_regex(pattern, fullmatch=True), label="text")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return  # surrogates have no UTF-8 encoding; no model can emit them
    dfa = compile_regex(pattern)
    assert dfa.accepts(text.encode()), "complete: a string re accepts"
    rng = random.Random(text)
    for bad in mutations(text, rng):
        expected = re_fullmatch(pattern, bad)
        if expected is not None:
            assert dfa.accepts(bad.encode()) == expected, bad


def test_state_language_key_is_the_language() -> None:
    """Equal languages hash equal from any DFA and state (length-bounded strings share their tails);
    different languages differ."""
    from constrain.fsm import state_language_key

    def key(pattern: str, prefix: str) -> tuple[int, int]:
        dfa = compile_regex(pattern)
        s = dfa.run(prefix.encode())
        assert s >= 0
        h1, h2 = state_language_key(dfa.trans, dfa.accepting, s)
        return int(h1), int(h2)

    assert key('[a-z]{0,10}"', "abc") == key('[a-z]{0,7}"', "") == key('x[a-z]{0,8}"', "xa")
    assert key("(ab)*c", "ab") == key("(ab)*c", "") == key("c|ab(ab)*c", "ab")
    keys = {key('[a-z]{0,10}"', "a" * k) for k in range(11)}
    assert len(keys) == 11
    assert key("[a-z]+", "a") == key("[a-z]*", "") != key("[a-z]+", "")
    assert key("[0-9]+", "1") != key("[0-9a-f]+", "1")


def _cut_tree(dfa: object, state: int, depth: int, alphabet: bytes = b"abc") -> tuple[object, ...]:
    """What ``state`` does with every string over ``alphabet`` of at most ``depth`` bytes (live, accepted)."""
    out = []
    for n in range(depth + 1):
        for w in itertools.product(alphabet, repeat=n):
            s = state
            for b in w:
                s = int(dfa.trans[s, b]) if s >= 0 else -1  # type: ignore[attr-defined]
            out.append((bytes(w), s >= 0, s >= 0 and bool(dfa.accepting[s])))  # type: ignore[attr-defined]
    return tuple(out)


_ATOMS = ["a", "b", "c", "(a|b)", "[ab]", "[bc]", "a?", "b*", "(ab)*", "c+", "(a|bc)", "[abc]{0,3}", "(a|b){2}"]


def _small_dfas(count: int, seed: int) -> list[tuple[str, object]]:
    rng = random.Random(seed)
    return [(p, compile_regex(p)) for p in
            ("".join(rng.choice(_ATOMS) for _ in range(rng.randint(1, 4))) for _ in range(count))]


def test_state_prefix_key_is_the_cut_language() -> None:
    """Two states share a depth-``d`` key exactly when they agree on every string of at most ``d`` bytes
    (checked by brute force over random DFAs on three letters), so bounds past the trie's depth vanish."""
    from constrain.fsm import state_prefix_key

    def key(pattern: str, prefix: str, depth: int) -> tuple[int, int]:
        dfa = compile_regex(pattern)
        h1, h2, ok = state_prefix_key(dfa.trans, dfa.accepting, dfa.run(prefix.encode()), depth, 4096)
        assert ok
        return int(h1), int(h2)

    assert key('[a-z]{0,300}"', "a", 128) == key('[a-z]*"', "", 128) == key('x[a-z]*"', "x", 128)
    assert key('[a-z]{0,300}"', "a", 400) != key('[a-z]*"', "", 400)
    states = [(dfa, s) for _, dfa in _small_dfas(200, 1) for s in range(min(dfa.n_states, 4))]  # type: ignore[attr-defined]
    for depth in range(4):
        by_key: dict[tuple[int, int], set[object]] = {}
        by_tree: dict[object, set[tuple[int, int]]] = {}
        for dfa, s in states:
            h1, h2, ok = state_prefix_key(dfa.trans, dfa.accepting, s, depth, 4096)  # type: ignore[attr-defined]
            assert ok
            tree = _cut_tree(dfa, s, depth)
            by_key.setdefault((int(h1), int(h2)), set()).add(tree)
            by_tree.setdefault(tree, set()).add((int(h1), int(h2)))
        assert all(len(v) == 1 for v in by_key.values()), "one key, two cut languages"
        assert all(len(v) == 1 for v in by_tree.values()), "one cut language, two keys"
        assert len(by_tree) > (10 if depth > 1 else 1)
    dfa = compile_regex("[abc]*d")
    assert not state_prefix_key(dfa.trans, dfa.accepting, 0, 10, 5)[2], "past max_pairs: refused"


def test_length_classes_are_cut_languages() -> None:
    """Row ``r`` of ``length_classes`` puts two states of a DFA together exactly when they agree on every
    string of at most ``r`` bytes (brute force over random DFAs on three letters; rows past the last
    repeat it)."""
    from constrain.fsm import length_classes

    for _, dfa in _small_dfas(120, 4):
        n = dfa.n_states  # type: ignore[attr-defined]
        rows = length_classes(dfa.runs, dfa.accepting, 6)  # type: ignore[attr-defined]
        assert rows.shape[1] == n and 1 <= rows.shape[0] <= 7
        for r in range(4):
            row = rows[min(r, rows.shape[0] - 1)]
            trees = [_cut_tree(dfa, s, r) for s in range(n)]
            for a in range(n):
                for b in range(n):
                    assert (row[a] == row[b]) == (trees[a] == trees[b])


def test_joint_classes_are_languages() -> None:
    """Joint classes of two DFAs' states after enough rounds are their languages (whole-language keys as the
    oracle)."""
    from constrain.fsm import joint_classes, state_language_key

    dfas = [d for _, d in _small_dfas(60, 2)]
    dfas += [compile_regex(r'"([^"\\]|\\.)*"'), compile_regex(r'"([^"\\]|\\.){0,5}"')]
    rng = random.Random(3)
    merged = 0
    for _ in range(150):
        a, b = rng.choice(dfas), rng.choice(dfas)
        n = a.n_states + b.n_states  # type: ignore[attr-defined]
        cls = joint_classes(a.runs, a.accepting, b.runs, b.accepting, n)[-1]  # type: ignore[attr-defined]
        assert cls.shape[0] == n
        keys = [state_language_key(a.trans, a.accepting, s) for s in range(a.n_states)]  # type: ignore[attr-defined]
        keys += [state_language_key(b.trans, b.accepting, s) for s in range(b.n_states)]  # type: ignore[attr-defined]
        for i in range(len(keys)):
            for j in range(len(keys)):
                assert (cls[i] == cls[j]) == (keys[i] == keys[j])
        merged += len(set(cls.tolist())) < len(keys)
    assert merged > 50


def test_minimising_over_byte_classes_equals_over_bytes() -> None:
    """Minimisation over classes of bytes gives the byte-level result exactly, numbering included, on
    scrambled DFAs (duplicated states, unreachable and dead ones) of the regex corpus."""
    import numpy as np

    from constrain.fsm import _trim_minimize, _trim_minimize_bytes

    rng = np.random.default_rng(0)
    checked = 0
    for pattern in all_regexes()[::3]:
        try:
            dfa = compile_regex(pattern)
        except ConstraintError:  # unsupported constructs: not this test's business
            continue
        if dfa.n_states == 0:
            continue
        k = dfa.n_states
        dup = rng.integers(0, k, size=min(k, 10))
        trans = np.vstack([dfa.trans, dfa.trans[dup]])
        acc = np.concatenate([dfa.accepting, dfa.accepting[dup]])
        for i, s in enumerate(dup.tolist()):  # send one transition into each copy: same language
            rows, cols = np.nonzero(trans[:k] == s)
            if len(rows):
                trans[rows[0], cols[0]] = k + i
        junk = np.full((2, 256), -1, np.int32)
        junk[0, 7] = trans.shape[0] + 1
        trans = np.ascontiguousarray(np.vstack([trans, junk]), np.int32)
        acc = np.concatenate([acc, [False, True]])
        by_bytes = _trim_minimize(trans, acc)
        by_classes = _trim_minimize_bytes(trans, acc)
        assert np.array_equal(by_bytes[0], by_classes[0]) and np.array_equal(by_bytes[1], by_classes[1]), pattern
        assert np.array_equal(by_classes[0], dfa.trans), pattern
        checked += 1
    assert checked > 50


def test_literals_compile_to_the_same_dfa_as_the_general_path() -> None:
    """Literal terminals take a direct byte-chain construction; it must equal the general construction."""
    import constrain.fsm as fsm
    from constrain.regex import literal

    texts = ["", "a", '"name":', "Ünïcødé 字 😀", "x" * 40, "\n"]
    for text in texts:
        fast = compile_regex(re.escape(text)) if text else fsm.compile_node(literal(text))
        general = fsm.compile_node(fsm.Seq((literal(text), fsm.Seq(()))))  # not a plain literal: general path
        assert fsm._literal_text(literal(text)) == text
        assert fsm.compile_node(literal(text)).key == general.key, text
        assert fast.accepts(text.encode())


def test_literal_alternations_compile_to_the_same_dfa_as_the_general_path() -> None:
    """Alternations of literals (enums, property names) take a trie construction; it must give the same
    minimal DFA, state for state, as the general construction, including empty and multi-byte strings."""
    import constrain.fsm as fsm
    from constrain.regex import Alt, Repeat, literal

    rng = random.Random(7)
    alphabet = ["a", "b", '"', "é", "字", "😀", "\\", "\x00"]
    for trial in range(200):
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(0, 7))]
        items = tuple(literal(w) for w in words)
        if trial % 4 == 0 and len(items) > 2:
            items = (Alt(items[:2]), *items[2:])  # nested alternations are flattened
        node = Alt(items)
        assert fsm._literal_alternatives(node) is not None
        fast = fsm.compile_node(node)
        general = fsm.compile_node(Repeat(node, 1, 1))  # not an alternation: the general path
        assert fast.key == general.key, words
        assert all(fast.accepts(w.encode()) for w in words)


def test_tree_minimisation_equals_partition_refinement_on_any_dfa() -> None:
    """``fsm.except_strings`` and the trie of literal alternatives minimise bottom-up
    (``_minimize_tree_prefix``); against the general difference and partition refinement, state for state,
    beside DFAs other than JSON strings: strings outside the language (dead trie rows), trie rows whose
    language is one of the DFA's states (merged into it), the empty string."""
    import constrain.fsm as fsm

    rng = random.Random(5)
    patterns = ["(a|b)*c", "a*", "[ab]{0,3}", "(ab)*", "a(b|c)*a?", "c|ab*", "[abc]*b[abc]"]
    for trial in range(400):
        dfa = compile_regex(rng.choice(patterns))
        words = sorted({"".join(rng.choice("abc") for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(1, 7))})
        spelled = [w.encode() for w in words]
        trie, acc = fsm._trie_table(np.frombuffer(b"".join(spelled), np.uint8), np.cumsum([len(x) for x in spelled]))
        refined = fsm.trim_and_minimize(trie, acc)  # partition refinement
        assert fsm._trie_dfa(spelled).key == refined.key, words
        assert fsm.except_strings(dfa, spelled).key == dfa.difference(refined).key, (words, trial)


def test_strings_except_names_equal_the_general_difference() -> None:
    """JSON strings other than an object's property names are built by walking the names' trie beside the
    string DFA (``fsm.except_strings``); the result must be the minimal DFA of the general difference,
    state for state, with names that need escapes, multi-byte characters and the empty name."""
    import json

    import constrain.fsm as fsm
    from constrain.json_formats import atom, lnot, string_literal, to_dfa, top
    from constrain.regex import Alt

    strings = to_dfa(top("str"))
    rng = random.Random(11)
    alphabet = ["a", "b", "_", "é", '"', "\\", "\n", "€", "😀", "1", "\x7f"]
    for _ in range(300):
        names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(1, 9))}
        general = strings.difference(fsm.compile_node(Alt(tuple(string_literal(v) for v in sorted(names)))))
        fast = to_dfa(lnot(atom("str", "lits", frozenset(names))))
        assert fast.key == general.key, names
        assert not any(fast.accepts(json.dumps(v, ensure_ascii=False).encode()) for v in names)
        assert fast.accepts(json.dumps("".join(sorted(names)) + "Z", ensure_ascii=False).encode())  # no name


@given(st.text(min_size=1, max_size=12))
@settings(max_examples=60, deadline=None)
def test_literal_chain_equals_the_compiled_literal(text: str) -> None:
    """``literal_dfa`` (JSON keys and punctuation) is the same minimal DFA the regex compiler builds."""
    from constrain.fsm import compile_node, literal_dfa
    from constrain.regex import literal

    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 spelling
        return
    chain, compiled = literal_dfa(data), compile_node(literal(text))
    assert np.array_equal(chain.trans, compiled.trans)
    assert np.array_equal(chain.accepting, compiled.accepting)
    assert chain.accepts(data) and not chain.accepts(data[:-1]) and not chain.accepts(data + b"x")


# ---------------------------------------------------------------- simulation-pruned subset construction
TIMEZONES = ["Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian",
             "Pacific"]
"""A real schema's ``pattern`` (MaskBench Github_easy---o47657): a search whose plain subset construction
passes 50,000 sets from seven alternatives on, for a minimal DFA of about 60 states."""


def _timezones(k: int) -> str:
    return "UTC|" + "|".join(f"({a}/[A-Za-z]+)" for a in TIMEZONES[:k])


JSON_PATTERNS = [
    *(_timezones(k) for k in range(1, 7)),
    r"([\w\-]+)", r"(\w+)", r"[:|;].*", r"^[a-z]+$", r"ab", r"a.b", r"(ab|cd)+x", r"^(foo|bar)", r"(baz|qux)$",
    r"[0-9]{3}-[0-9]{4}", r"^\d+$", r"^[A-Z]{2}\d", r"(x+y|xy+)z", r"(a|ab)(c|bcd)", r"\\\\", r"\"q\"",
    r"^https?://", r"\.(png|jpe?g|gif)$", r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun)day", r"é+|日本", r"[^a]b[^c]",
    r"(red|green|blue)-(\d+|x)", r"^v\d+\.\d+(\.\d+)?$", r"(a/[a-z]+)|(b/[0-9]+)|(c/[A-Z]+)", r"[\w.+-]+@[\w-]+\.\w+",
    r"(\w+)/(\w+)", r"^$", r"a{2,3}b{0,2}", r"(ab|cd){2}", r"\u00e9|\n|\t",
]
"""JSON-Schema ``pattern`` shapes (searches over JSON string bodies, quoted), the pruning's target."""


@contextlib.contextmanager
def _construction(pruned: bool) -> Iterator[list[_Subsets]]:
    """Compile with the subset construction pruned from the first set on (``pruned``) or never; yields
    the subset constructions made meanwhile."""
    import constrain.fsm as fsm

    made: list[_Subsets] = []

    class Recorded(_Subsets):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    saved = fsm.PRUNE_AFTER, fsm.PRUNE_AFTER_PER_KERNEL_STATE, fsm._Subsets
    fsm.PRUNE_AFTER, fsm.PRUNE_AFTER_PER_KERNEL_STATE = (0, 0) if pruned else (fsm.MAX_DFA_STATES, 1)
    fsm._Subsets = Recorded  # type: ignore[assignment, misc]
    try:
        yield made
    finally:
        fsm.PRUNE_AFTER, fsm.PRUNE_AFTER_PER_KERNEL_STATE, fsm._Subsets = saved  # type: ignore[misc]


def _keys(nodes: list[Node], pruned: bool) -> tuple[list[str], list[int]]:
    """Each node's DFA key (or 'limit') and the number of sets its construction made; a pruned compile
    must start over after the first set (the first construction stops, the second finishes)."""
    import constrain.fsm as fsm
    from constrain.errors import LimitError

    keys: list[str] = []
    sets: list[int] = []
    with _construction(pruned) as made:
        for node in nodes:
            made.clear()
            try:
                keys.append(fsm.compile_node(node).key)
            except LimitError:
                keys.append("limit")
            assert len(made) == (2 if pruned else 1) and made[-1].done, node
            sets.append(len(made[-1].order))
    return keys, sets


def _general_nodes() -> list[Node]:
    """The corpus regexes and the JSON-Schema pattern shapes, as trees that take the general construction
    (not the literal or literal-alternation shortcuts)."""
    import constrain.fsm as fsm
    from constrain.json_formats import encode, pattern_node, quoted
    from constrain.regex import parse

    nodes: list[Node] = [parse(p) for p in SUPPORTED]
    for p in JSON_PATTERNS:
        body = encode(pattern_node(p))
        assert body is not None, p
        nodes.append(quoted(body))
    return [x for x in nodes if fsm._literal_text(x) is None and fsm._literal_alternatives(x) is None]


def test_pruned_subsets_give_the_same_minimal_dfa() -> None:
    """Sets pruned by the simulation preorder keep each DFA state's language, so the minimal DFA is the
    plain construction's, state for state (keys are canonical), over the regex corpus and JSON-Schema
    pattern searches; and the pruning does work: many constructions make fewer sets."""
    nodes = _general_nodes()
    plain, plain_sets = _keys(nodes, pruned=False)
    pruned, pruned_sets = _keys(nodes, pruned=True)
    assert plain.count("limit") == 0
    assert pruned == plain
    fewer = sum(a < b for a, b in zip(pruned_sets, plain_sets, strict=True))
    assert fewer >= 40, fewer


def _small_trees() -> st.SearchStrategy[Node]:
    from constrain.regex import Alt, CharSet, Repeat, Seq

    ranges = [((97, 97),), ((98, 98),), ((97, 99),), ((99, 100),), ((233, 233),), ((97, 98), (26085, 26085)),
              ((0, 0x10FFFF),)]
    chars = st.sampled_from(ranges).map(CharSet)

    def grow(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: Seq(tuple(xs))),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: Alt(tuple(xs))),
            st.tuples(inner, st.integers(0, 2), st.sampled_from([None, 0, 1, 2])).map(
                lambda t: Repeat(t[0], t[1], None if t[2] is None else t[1] + t[2])),
        )

    return st.recursive(chars, grow, max_leaves=8)


@given(tree=_small_trees(), search=st.booleans())
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_pruned_subsets_equal_plain_on_random_trees(tree: Node, search: bool) -> None:
    """Random small regex trees (alone, or as searches ``.*tree.*`` like JSON-Schema patterns): pruned and
    plain constructions give the same minimal DFA."""
    from constrain.regex import CharSet, Repeat, Seq

    anything = Repeat(CharSet(((0, 0x10FFFF),)), 0, None)
    tree = Seq((anything, tree, anything)) if search else Repeat(tree, 1, 1)
    assert _keys([tree], pruned=True)[0] == _keys([tree], pruned=False)[0]


def test_pattern_searches_past_the_plain_limit_compile() -> None:
    """The timezone pattern compiles for every k: to the plain construction's DFA where that finishes
    (k <= 6), and for all k to the union of its alternatives' searches (each compiled on its own, joined by
    the product construction: another route to the same canonical DFA). Likewise a patternProperties key
    of Github_hard---o83132, whose plain construction passed 50,000 sets."""
    import constrain.fsm as fsm
    from constrain.json_formats import alt, encode, pattern_node, quoted

    def search(patterns: list[str]) -> Node:
        body = alt([x for x in (encode(pattern_node(p)) for p in patterns) if x is not None])
        assert body is not None
        return quoted(body)

    counts = []
    for k in range(1, 11):
        dfa = fsm.compile_node(search([_timezones(k)]))
        union = fsm.compile_node(search(["UTC"]))
        for a in TIMEZONES[:k]:
            union = union.union(fsm.compile_node(search([f"({a}/[A-Za-z]+)"])))
        assert dfa.key == union.key, k
        if k <= 6:
            assert dfa.key == _keys([search([_timezones(k)])], pruned=False)[0][0], k
        assert dfa.accepts(b'"in Africa/Cairo now"') and dfa.accepts(b'"UTC"')
        assert not dfa.accepts(b'"Africa/"') and not dfa.accepts(b'"Africa/1"')
        counts.append(dfa.n_states)
    assert counts == sorted(counts) and counts[-1] < 100, counts
    levels = ["trace", "debug5", "debug4", "debug3", "debug2", "debug", "info", "stats", "notice", "warning", "error",
              "critical", "fatal"]
    dfa = fsm.compile_node(search([f"({'|'.join(levels)})"]))
    union = fsm.compile_node(search(levels[:1]))
    for p in levels[1:]:
        union = union.union(fsm.compile_node(search([p])))
    assert dfa.key == union.key and dfa.accepts(b'"x-debug3"') and not dfa.accepts(b'"debu"')
