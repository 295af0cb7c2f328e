"""Grammar constraints: engine semantics on small grammars, token-level soundness and completeness."""

from __future__ import annotations

import random
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from conftest import compiler
from helpers import assert_mask_equals_advance, lark_accepts, random_tokenization, walk, walk_checking_masks
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from constrain.bitmask import bitmask_to_ids, bitmask_words
from constrain.errors import GrammarError
from constrain.gbnf import gbnf_to_grammar
from constrain.grammar_ir import GrammarBuilder
from constrain.grammar_sampler import sample_strings
from constrain.lark_frontend import lark_to_grammar
from constrain.vocab import Vocabulary

TOY = [b"a", b"b", b"ab", b"ba", b"(", b")", b"()", b"((", b"))", b" ", b"", b"x", b"1", b"12", b"+", b"2"]
EOS = 10


@pytest.fixture(scope="module")
def toy() -> constrain.Compiler:
    return constrain.Compiler(vocab=Vocabulary.from_token_bytes(TOY, eos_token_ids=[EOS]))


def allowed(m: constrain.Matcher) -> set[bytes]:
    bm = np.zeros((1, bitmask_words(m.vocab_size)), np.int32)
    m.fill_bitmask(bm, 0)
    return {TOY[i] if i != EOS else b"<eos>" for i in bitmask_to_ids(bm[0], m.vocab_size).tolist()}


def test_ambiguous_and_left_recursive(toy: constrain.Compiler) -> None:
    c = toy.lark("start: s\ns: s s | \"a\" | \"(\" s \")\"")
    m = c.matcher()
    assert allowed(m) == {b"a", b"(", b"(("}
    assert m.advance(TOY.index(b"(")) and m.advance(TOY.index(b"a"))
    assert allowed(m) == {b"a", b"(", b")", b"(("}
    assert m.advance(TOY.index(b")")) and m.accepting
    assert b"<eos>" in allowed(m)


def test_nullable_start_and_empty_language(toy: constrain.Compiler) -> None:
    c = toy.gbnf('root ::= "(" root ")" | ""')
    m = c.matcher()
    assert m.accepting and allowed(m) == {b"(", b"()", b"((", b"<eos>"}
    with pytest.raises(GrammarError, match="empty"):
        toy.lark("start: a\na: \"(\" a")


def test_lexemes_may_split_anywhere(toy: constrain.Compiler) -> None:
    """No greedy commitment: 'ab' may be one NAME or two; tokens may span several lexemes."""
    c = toy.lark("start: NAME NAME\nNAME: /[ab]+/")
    m = c.matcher()
    assert m.advance(TOY.index(b"ab"))
    assert m.accepting  # "a" "b"
    assert m.advance(TOY.index(b"ba")) and m.accepting


def test_ignore_between_tokens(toy: constrain.Compiler) -> None:
    c = toy.lark('start: "a" "b"\n%ignore " "')
    m = c.matcher()
    assert m.advance(TOY.index(b" ")) and m.advance(TOY.index(b"a")) and m.advance(TOY.index(b" "))
    assert not m.accepting and m.advance(TOY.index(b"b")) and m.accepting
    assert m.advance(TOY.index(b" ")) and m.accepting


def test_priorities_and_terminal_names_do_not_change_the_language(toy: constrain.Compiler) -> None:
    c = toy.lark('start: KW | NAME\nKW.2: "ab"\nNAME: /[a-z]+/')
    m = c.matcher()
    assert m.advance(TOY.index(b"ab")) and m.accepting and m.advance(TOY.index(b"a"))


def test_errors_name_the_place(toy: constrain.Compiler) -> None:
    with pytest.raises(GrammarError) as e:
        toy.lark('start: "a"\nb: "c" (')
    assert e.value.line == 2
    with pytest.raises(GrammarError, match="undefined rule 'nope'") as e2:
        toy.gbnf('root ::= "a" nope')
    assert e2.value.line == 1 and e2.value.column == 14
    with pytest.raises(GrammarError, match="root"):
        toy.gbnf('start ::= "a"')
    with pytest.raises(GrammarError, match="lookahead"):
        toy.lark("start: /a(?=b)/")
    with pytest.raises(GrammarError, match="no pattern"):
        toy.lark("start: _NL\n%declare _NL")
    with pytest.raises(GrammarError, match="start rule"):
        toy.lark('x: "a"')
    assert toy.lark('start: "a"').matcher().accepts_text("a")  # the compiler stays healthy


def test_rollback_and_fork_match_replay(toy: constrain.Compiler) -> None:
    c = toy.lark("start: s\ns: s \"+\" t | t\nt: NUM | \"(\" s \")\"\nNUM: /[0-9]+/")
    rng = random.Random(1)
    m = c.matcher()
    seq: list[int] = []
    for _ in range(40):
        ids = [i for i in range(len(TOY)) if i != EOS and m.allows(i)]
        t = rng.choice(ids)
        assert m.advance(t)
        seq.append(t)
        if rng.random() < 0.3 and seq:
            k = rng.randint(1, len(seq))
            m.rollback(k)
            del seq[-k:]
        fresh = c.matcher()
        assert fresh.advance_many(seq) == len(seq)
        assert fresh.state == m.state and allowed(fresh) == allowed(m)
    f = m.fork()
    before = allowed(m)
    for i in range(len(TOY)):
        if i != EOS and f.advance(i):
            break
    assert allowed(m) == before


JSON_LARK = r"""
?start: value
?value: object | array | string | SIGNED_NUMBER | "true" | "false" | "null"
array  : "[" [value ("," value)*] "]"
object : "{" [pair ("," pair)*] "}"
pair   : string ":" value
string : ESCAPED_STRING
%import common.ESCAPED_STRING
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""


@pytest.mark.parametrize("name", ["smollm2", "llama3"])
def test_json_grammar_on_real_tokenizers(name: str) -> None:
    comp = compiler(name)
    c = comp.lark(JSON_LARK)
    strings = sample_strings(lark_to_grammar(JSON_LARK), 40, seed=3, byte_alphabet=comp.vocab.byte_alphabet)
    strings += ['{"a": [1, 2.5e-3, null], "b": {"c": "d\\"e"}}', "[]", ' {"x":true} ']
    tok = comp.tokenizer
    rng = random.Random(0)
    for s in strings:
        ok, k = walk(c, tok.encode(s, add_special_tokens=False))
        assert ok, (s, k)
        ok, k = walk(c, random_tokenization(comp.vocab, s.encode(), rng))
        assert ok, (s, k)
    for bad in ['{"a" 1}', "[1,]", '{"a": tru}', '"unterminated', "[1 2]"]:
        ok, _ = walk(c, tok.encode(bad, add_special_tokens=False))
        assert not ok, bad


def test_masks_match_advance_on_a_gbnf_grammar() -> None:
    comp = compiler("smollm2")
    text = 'root ::= item ("," item)*\nitem ::= [a-z]+ | "(" root ")"'
    c = comp.gbnf(text)
    rng = np.random.default_rng(0)
    bm = np.zeros((1, bitmask_words(c.vocab_size)), np.int32)
    for _ in range(5):
        m = c.matcher()
        for _ in range(25):
            m.fill_bitmask(bm, 0)
            ids = bitmask_to_ids(bm[0], c.vocab_size)
            assert ids.size
            # every allowed token advances, a sample of the others does not
            for t in rng.choice(ids, size=min(20, ids.size), replace=False).tolist():
                assert m.fork().advance(t)
            others = np.setdiff1d(np.arange(c.vocab_size), ids)
            for t in rng.choice(others, size=20, replace=False).tolist():
                assert not m.fork().advance(t)
            t = int(rng.choice(ids))
            if t in c.vocab.eos_token_ids:
                break
            assert m.advance(t)
        gbnf_to_grammar(text)


def test_builder_grammars_and_lark_export_agree() -> None:
    import lark

    b = GrammarBuilder()
    num = b.terminal(r"[0-9]+")
    item = b.alt(num, b.literal("x"))
    lst = b.separated(item, b.literal(","), lo=1)
    g = b.build(b.seq(b.literal("["), lst, b.literal("]")))
    ref = lark.Lark(g.to_lark(), parser="earley", lexer="dynamic_complete")
    c = compiler("smollm2").grammar(g)
    for s in ["[1,x,22]", "[x]", "[]", "[1,]", "[1x]", "[,1]"]:
        assert c.matcher().accepts_text(s) == lark_accepts(ref, s), s


def test_reused_masks_equal_fresh_ones() -> None:
    """Masks found by replaying a past computation's parser answers (``observed_masks``) are the masks a
    computation from scratch gives, on a grammar whose parser states keep history (nested SQL)."""
    from importlib.resources import files

    from constrain.grammar_automaton import GrammarAutomaton
    from constrain.grammar_tables import build_tables

    comp = compiler("smollm2")
    text = (files("constrain.grammars") / "sql.lark").read_text()
    ir = lark_to_grammar(text)
    tables = build_tables(ir, comp.vocab.byte_alphabet)
    reusing = GrammarAutomaton(tables, comp.vocab, comp.trie, comp.shared_masks)
    fresh = GrammarAutomaton(tables, comp.vocab, comp.trie, comp.shared_masks, reuse_masks=False)
    tok = comp.tokenizer
    checked = 0
    for s in sample_strings(ir, 6, seed=5, byte_alphabet=comp.vocab.byte_alphabet):
        a, b = reusing.initial_state, fresh.initial_state
        for t in tok.encode(s, add_special_tokens=False):
            assert np.array_equal(reusing.mask(a), fresh.mask(b)), (s, t)
            checked += 1
            a, b = reusing.step(a, t), fresh.step(b, t)
            assert a >= 0 and b >= 0
    assert reusing._observed.reused > 0 and fresh._observed.reused == 0
    assert checked > 100


def test_masks_filled_from_threads_equal_masks_filled_in_turn() -> None:
    """One compiled grammar, masks filled from four threads at once (the numba walks release the GIL; the
    threads that do not hold the parser's lock report missing steps, and the parser's tables grow while the
    others read them): every mask is the one a single thread computes on its own automaton. Nested SQL
    makes new parser columns at nearly every token; the threaded automaton starts with empty shared
    caches, so lexemes and crossings are computed concurrently too."""
    from concurrent.futures import ThreadPoolExecutor
    from importlib.resources import files

    from constrain.grammar_automaton import GrammarAutomaton, SharedMasks
    from constrain.grammar_tables import build_tables

    comp = compiler("smollm2")
    ir = lark_to_grammar((files("constrain.grammars") / "sql.lark").read_text())
    tables = build_tables(ir, comp.vocab.byte_alphabet)
    walks = [comp.tokenizer.encode(s, add_special_tokens=False)[:80]
             for s in sample_strings(ir, 6, seed=21, byte_alphabet=comp.vocab.byte_alphabet)]
    alone = GrammarAutomaton(tables, comp.vocab, comp.trie, comp.shared_masks, reuse_masks=False)
    shared = GrammarAutomaton(tables, comp.vocab, comp.trie, SharedMasks(comp.trie, bitmask_words(comp.vocab.size)))

    def masks(automaton: GrammarAutomaton, tokens: list[int]) -> list[bytes]:
        state, out = automaton.initial_state, []
        for t in tokens:
            out.append(automaton.mask(state).tobytes())
            state = automaton.step(state, t)
            assert state >= 0
        return out

    expected = [masks(alone, w) for w in walks]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda w: masks(shared, w), walks))
    assert got == expected
    assert sum(map(len, walks)) > 250


def test_observation_pauses_where_it_does_not_pay() -> None:
    """Observing pauses after a window of lookups that rarely found a mask, for longer after each such
    window in a row, and keeps going while lookups find masks."""
    import constrain.observed_masks as om

    def run(store: om.ObservedMasks, found: bool) -> int:
        """Lookups until observation pauses (one window), then the length of the pause."""
        for _ in range(om._WINDOW):
            assert store.observing()
            store.looked_up(found)
        skipped = 0
        while not store.observing():
            skipped += 1
        store.looked_up(found)  # the lookup that observing() let through
        return skipped

    store = om.ObservedMasks()
    assert run(store, False) == om._FIRST_PAUSE
    store._lookups = store._finds = 0
    assert run(store, False) == 2 * om._FIRST_PAUSE
    store._lookups = store._finds = 0
    for _ in range(3 * om._WINDOW):  # lookups that find masks: no pause, and the next pause is short again
        assert store.observing()
        store.looked_up(True)
    store._lookups = store._finds = 0
    assert run(store, False) == om._FIRST_PAUSE
    assert not om.ObservedMasks(max_bytes=0).observing()
    late = om.ObservedMasks(observe_after=5)  # the first lookups are skipped, then windows as above
    assert [late.observing() for _ in range(6)] == [False] * 5 + [True]


def test_json_schema_automata_observe_after_their_first_masks() -> None:
    """JSON-Schema automata compute their first :data:`JSON_OBSERVE_AFTER` new masks without looking them up
    (states seldom recur with new parser columns there); grammars look up from the first; equal masks kept
    by two observations share one array, unequal ones do not."""
    from constrain.compiler import JSON_OBSERVE_AFTER

    comp = compiler("smollm2")
    schema = {"type": "object", "properties": {"observed": {"type": "array", "items": {"type": "integer"}}}}
    automaton = comp.json_schema(schema).automaton
    assert [automaton._observed.observing() for _ in range(JSON_OBSERVE_AFTER + 1)] == (
        [False] * JSON_OBSERVE_AFTER + [True])
    assert comp.lark(JSON_LARK + "\n// a text of its own: not a cached automaton\n").automaton._observed.observing()
    store = automaton._observed
    mask = np.zeros(comp.shared_masks.words, np.uint32)
    mask[3] = 5
    key = ((0,), b"", (0,))
    store.add(key, np.zeros((0, 4), np.int64), np.zeros(1, np.int64), mask)
    store.add(key, np.zeros((1, 4), np.int64), np.zeros(1, np.int64), mask.copy())
    other = mask.copy()
    other[4] = 1
    store.add(key, np.zeros((2, 4), np.int64), np.zeros(1, np.int64), other)
    kept = [m for _, _, m in store.candidates(key)]
    assert kept[0] is kept[1] and np.array_equal(kept[2], other)


def test_bounded_caches_give_the_same_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared lexer-state and cross-mask caches that evict at once (a tiny byte budget, and at most one
    state key, alias, base or class table kept) still give exact masks: eviction costs recomputation only."""
    import constrain.grammar_automaton as ga
    from constrain.grammar_automaton import GrammarAutomaton, SharedMasks
    from constrain.grammar_tables import build_tables

    for name in ("_MAX_STATE_KEYS", "_MAX_BASES", "_MAX_CLASS_BYTES"):
        monkeypatch.setattr(ga, name, 1)

    comp = compiler("smollm2")
    ir = lark_to_grammar(JSON_LARK)
    tables = build_tables(ir, comp.vocab.byte_alphabet)
    small = SharedMasks(comp.trie, bitmask_words(comp.vocab.size), 1 << 12)
    tiny = GrammarAutomaton(tables, comp.vocab, comp.trie, small)
    tiny._observed = type(tiny._observed)(max_bytes=1 << 12)
    ref = GrammarAutomaton(tables, comp.vocab, comp.trie, comp.shared_masks, reuse_masks=False)
    for s in sample_strings(ir, 8, seed=11, byte_alphabet=comp.vocab.byte_alphabet):
        a, b = tiny.initial_state, ref.initial_state
        for t in comp.tokenizer.encode(s, add_special_tokens=False):
            assert np.array_equal(tiny.mask(a), ref.mask(b)), s
            a, b = tiny.step(a, t), ref.step(b, t)
    assert len(tiny.shared._lexemes) <= 2


def test_lexemes_walked_from_others_equal_whole_walks() -> None:
    """A lexeme walked from a known one's result (``lexeme_diff_walk``, skipping the trie below states that
    agree there) is the whole walk's: same inside mask, same boundaries. Within one DFA and across two,
    with classes by length (states that agree on strings as long as the longest token below a trie node
    read that subtree alike: a bounded string from the same string with a few more characters to go, or
    from any string); and the walks meant to be cheap are."""
    from constrain.fsm import compile_regex, joint_classes, length_classes
    from constrain.grammar_automaton import _lexeme
    from constrain.grammar_walk import lexeme_diff_walk

    comp = compiler("smollm2")
    trie, words = comp.trie, bitmask_words(comp.vocab.size)
    patterns = [r'"[^"\\]*"', r'"([^"\\$][^"\\]*|\$([^"\\s][^"\\]*)?)?"', r'"[^"\\]{0,3}"', r'"[^"\\]{0,5}"',
                r'"[a-z]*"', r"[0-9]+(\.[0-9]+)?", r'"(name|type)"', r'"[^"\\]{0,120}"', r'"[^"\\]{0,300}"',
                r'"[^"\\]{0,24}"']
    dfas = [compile_regex(p) for p in patterns]
    states = {i: set(range(min(d.n_states, 12))) for i, d in enumerate(dfas)}
    far, near = dfas[7].run(b'"' + b"a" * 8), dfas[7].run(b'"' + b"a" * 4)  # 112 and 116 more characters
    states[7] |= {far, near}
    whole = {(i, s): _lexeme(dfas[i].trans, dfas[i].accepting, s, trie, words) for i in states for s in states[i]}
    by_length = {i: length_classes(d.runs, d.accepting, trie.max_depth) for i, d in enumerate(dfas)}
    cheap = checked = 0
    added, removed = np.empty(1 << 16, np.int32), np.empty(1 << 16, np.int32)
    for (i, s), lex in whole.items():
        for (j, r), base in whole.items():
            if base.boundaries is None or lex.boundaries is None:
                continue
            a, b = dfas[i], dfas[j]
            if i == j:
                classes, offset = by_length[i], 0
                assert classes.shape[1] == a.n_states
            else:
                classes = joint_classes(a.runs, a.accepting, b.runs, b.accepting, trie.max_depth)
                offset = a.n_states
            args = (s, a.trans, a.accepting, r, b.trans, b.accepting, classes.astype(np.int32), offset,
                    trie.node_key, trie.node_token, trie.subtree_end, trie.subtree_height, trie.token_start,
                    trie.node_tokens, trie.max_depth)
            inside = base.inside.copy()
            n_add, n_rem = lexeme_diff_walk(*args, inside, added, removed, 1 << 30)
            assert n_add >= 0
            assert np.array_equal(inside, lex.inside), (patterns[i], s, patterns[j], r)
            got = np.union1d(np.setdiff1d(base.boundaries, removed[:n_rem]), added[:n_add])
            assert np.array_equal(got, lex.boundaries), (patterns[i], s, patterns[j], r)
            checked += 1
            # "not starting with $s" from "any string", "at most 112 more characters" from "at most 116",
            # and "at most 24 characters" from "any string": only a few paths of the trie differ
            if (i, j, s, r) in ((1, 0, 1, 1), (7, 7, far, near), (8, 0, 0, 0), (9, 0, 1, 1)):
                small = lexeme_diff_walk(*args, base.inside.copy(), added, removed, lex.visited // 20)
                cheap += small[0] >= 0
    assert checked > 200 and cheap == 4
    # the 300-character string and any string differ on longer strings: classes past the trie's depth
    # tell them apart; so do the 24-character string's and any string's from 25 bytes on
    a, b = dfas[8], dfas[0]
    n = a.n_states + b.n_states
    full, cut = (joint_classes(a.runs, a.accepting, b.runs, b.accepting, k)[-1] for k in (n, trie.max_depth))
    assert full[0] != full[a.n_states] and cut[0] == cut[a.n_states]
    a = dfas[9]
    rows = joint_classes(a.runs, a.accepting, b.runs, b.accepting, trie.max_depth)
    one, any_one = a.run(b'"'), b.run(b'"') + a.n_states
    assert rows[24, one] == rows[24, any_one] and rows[25, one] != rows[25, any_one]


def _moore_by_numpy(trans: npt.NDArray[np.int32], accepting: npt.NDArray[np.bool_], max_length: int) -> list[list[int]]:
    """Moore's rounds the plain way (every state, every byte, every round), each row's classes numbered by
    first appearance; until a round changes nothing or ``max_length`` rounds."""
    def canonical(cls: npt.NDArray[np.int64]) -> list[int]:
        first: dict[int, int] = {}
        return [first.setdefault(c, len(first)) for c in cls.tolist()]

    cls = accepting.astype(np.int64)
    rows = [canonical(cls)]
    for _ in range(max_length):
        succ = np.where(trans >= 0, cls[np.maximum(trans, 0)], -1)
        new = np.unique(np.concatenate([cls[:, None], succ], axis=1), axis=0, return_inverse=True)[1].reshape(-1)
        rows.append(canonical(new))
        if len(set(rows[-1])) == len(set(rows[-2])):
            break
        cls = new
    return rows


def test_language_classes_equal_moore_rounds_over_every_state() -> None:
    """Classes by length (one DFA) and joint classes (two DFAs, capped or not) from rounds that revisit only
    the predecessors of states that changed class give, round for round, the partitions of plain Moore
    rounds: on the regex corpus's DFAs, bounded strings (one state split off per round) and pairs of them."""
    from regex_corpus import all_regexes

    from constrain.fsm import ByteDFA, compile_regex, joint_classes, length_classes

    def canonical(row: npt.NDArray[np.int32]) -> list[int]:
        first: dict[int, int] = {}
        return [first.setdefault(c, len(first)) for c in row.tolist()]

    from constrain.errors import RegexError

    dfas = []
    for pattern in all_regexes()[:60]:
        try:
            dfas.append(compile_regex(pattern))
        except RegexError:  # lookarounds and anchors: not regular here
            continue
    bounded = (r'"[^"\\]{0,40}"', r'"[a-z]{3,60}"', r"(ab|a){0,30}c?", r"[0-9]{2,9}(\.[0-9]{0,12})?")
    dfas += [compile_regex(p) for p in bounded]
    checked = 0
    for d in dfas:
        want = _moore_by_numpy(d.trans, d.accepting, 64)  # round r's partition does not depend on the cap
        for depth in (0, 1, 5, 64):
            got = length_classes(d.runs, d.accepting, depth)
            for r in range(depth + 1):
                assert canonical(got[min(r, len(got) - 1)]) == want[min(r, len(want) - 1)], (d.n_states, depth, r)
            checked += 1
    for a, b in zip(dfas, dfas[1:] + dfas[:1]):
        stacked = np.concatenate([a.trans, np.where(b.trans >= 0, b.trans + a.n_states, -1).astype(np.int32)])
        want = _moore_by_numpy(stacked, np.concatenate([a.accepting, b.accepting]), 10_000)
        for cap in (0, 3, 40, a.n_states + b.n_states):
            got = joint_classes(a.runs, a.accepting, b.runs, b.accepting, cap)
            for r in range(min(cap, max(len(got), len(want)) - 1) + 1):  # later rows repeat the last ones
                assert canonical(got[min(r, len(got) - 1)]) == want[min(r, len(want) - 1)], (cap, r)
            checked += 1
    assert isinstance(dfas[0], ByteDFA) and checked > 300


def test_merged_boundaries_equal_set_operations() -> None:
    """A lexeme walked from a known one takes the base's boundaries without those it lost and with those it
    gained (all ascending) in one pass; the result equals numpy's sorting set operations."""
    from constrain.grammar_walk import merged_boundaries

    rng = np.random.default_rng(0)
    for k in range(600):
        size = 300 if k % 10 else 20_000  # and longer lists, where the runs between changes are long
        base = np.unique(rng.integers(0, size, rng.integers(0, size // 3))).astype(np.int32)
        removed = np.sort(rng.choice(base, rng.integers(0, min(len(base), 200) + 1), replace=False)).astype(np.int32)
        added = np.sort(rng.choice(np.setdiff1d(np.arange(size), base), rng.integers(0, 50), replace=False))
        if k % 5 == 0:  # beyond the contract (lexeme_diff_walk lists removed ones of base, added ones not in it)
            removed = np.unique(np.concatenate([removed, rng.integers(0, size, 10)])).astype(np.int32)
            added = np.unique(np.concatenate([added, rng.choice(base, min(len(base), 10))])) if len(base) else added
        expected = np.union1d(np.setdiff1d(base, removed, assume_unique=True), added)
        got = merged_boundaries(base, removed, added.astype(np.int32))
        assert got.dtype == np.int32 and got.tolist() == expected.tolist()


def test_exits_of_a_lexeme_walked_from_a_known_one_equal_listing_them_again() -> None:
    """A lexeme walked from a known one lists its exits (the children of its boundaries, by byte) from the known
    one's: less those of the boundaries it lost, plus those of the ones it gained. Per byte they are the
    exits that ``boundary_exits`` lists from its boundaries (in another order, which the cross walks do not
    depend on)."""
    from constrain.fsm import compile_regex
    from constrain.grammar_automaton import _lexeme, _node_marks
    from constrain.grammar_walk import boundary_exits, derived_exits, merged_boundaries

    comp = compiler("smollm2")
    trie = comp.trie
    lex = _lexeme(*(lambda d: (d.trans, d.accepting))(compile_regex(r"[a-zA-Z_][a-zA-Z0-9_]*")), 0, trie,
                  bitmask_words(comp.vocab.size))
    base = lex.boundaries
    assert base is not None and len(base) > 10_000
    base_start, base_node = boundary_exits(base, trie.node_byte, trie.subtree_end)
    rng = np.random.default_rng(1)
    others = np.setdiff1d(np.arange(1, len(trie.node_byte), dtype=np.int32), base)
    marks = _node_marks(len(trie.node_byte))
    for n_rem, n_add in [(0, 0), (1, 0), (0, 1), (40, 25), (500, 300)]:
        removed = np.sort(rng.choice(base, n_rem, replace=False)).astype(np.int32)
        added = np.sort(rng.choice(others, n_add, replace=False)).astype(np.int32)
        start, node = derived_exits(base_start, base_node, removed, added, trie.node_byte, trie.subtree_end, marks)
        want_start, want_node = boundary_exits(merged_boundaries(base, removed, added), trie.node_byte,
                                               trie.subtree_end)
        assert start.tolist() == want_start.tolist()
        for b in range(256):
            assert sorted(node[start[b] : start[b + 1]].tolist()) == sorted(want_node[start[b] : start[b + 1]].tolist())
        assert not marks.any()


def test_lexeme_walks_equal_a_plain_trie_walk() -> None:
    """The lexeme walk (numba, packed keys, one token per node unless several) gives the inside mask and
    boundaries of a plain node-by-node walk of the trie, written out here in Python."""
    from constrain.fsm import compile_regex
    from constrain.grammar_automaton import _lexeme

    comp = compiler("smollm2")
    trie, words = comp.trie, bitmask_words(comp.vocab.size)
    for pattern in [r'"([^"\\]|\\.)*"', r'"[^"\\]{0,4}"', r"[a-z ]+", r"( |\t|\n)*", r"[0-9]+(\.[0-9]+)?"]:
        dfa = compile_regex(pattern)
        for state in range(min(dfa.n_states, 4)):
            lex = _lexeme(dfa.trans, dfa.accepting, state, trie, words)
            inside = np.zeros(words, np.uint32)
            bounds = []
            at = np.full(trie.max_depth + 1, -1, np.int64)
            at[0] = state
            i = 1
            while i < trie.n_nodes:
                d = int(trie.node_depth[i])
                s = int(dfa.trans[at[d - 1], trie.node_byte[i]]) if at[d - 1] >= 0 else -1
                if s < 0:
                    i = int(trie.subtree_end[i])
                    continue
                at[d] = s
                for t in trie.node_tokens[trie.token_start[i]:trie.token_start[i + 1]]:
                    inside[t >> 5] |= np.uint32(1 << (int(t) & 31))
                if dfa.accepting[s] and trie.subtree_end[i] > i + 1:
                    bounds.append(i)
                i += 1
            assert np.array_equal(inside, lex.inside), (pattern, state)
            assert lex.boundaries is not None and lex.boundaries.tolist() == bounds, (pattern, state)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcXY"), max_size=6), min_size=1, max_size=12))
def test_factored_alternatives_spell_the_same_sequences(alternatives: list[list[str]]) -> None:
    """The factored rules of a nonterminal, its new nonterminals expanded, spell exactly its alternatives."""
    from constrain.grammar_factor import factor_alternatives
    from constrain.grammar_ir import N, Rule, T

    def sym(x: str) -> T | N:
        return N(x) if x.isupper() else T(x)

    original = {tuple(sym(x) for x in alt) for alt in alternatives}
    rules = factor_alternatives([Rule("s", tuple(sym(x) for x in alt)) for alt in alternatives], {"s", "X", "Y"})
    by_lhs: dict[str, list[tuple[T | N, ...]]] = {}
    for r in rules:
        by_lhs.setdefault(r.lhs, []).append(r.rhs)
    assert set(by_lhs) <= {"s"} | {n for n in by_lhs if n.startswith("s#")}

    def spell(name: str) -> set[tuple[T | N, ...]]:
        out: set[tuple[T | N, ...]] = set()
        for rhs in by_lhs[name]:
            heads: set[tuple[T | N, ...]] = {()}
            for s in rhs:
                tails = spell(s.name) if isinstance(s, N) and s.name in by_lhs and s.name != "s" else {(s,)}
                heads = {h + t for h in heads for t in tails}
            out |= heads
        return out

    assert spell("s") == original


def test_whitespace_runs_do_not_grow_the_parser() -> None:
    """A separator that is also ignored whitespace (SQL's ``_SP`` beside ``%ignore WS``) may start at any
    byte of a run; the walks keep the ignored lexemes' columns apart instead of merging them at every
    byte, so a longer run makes no new parser columns."""
    comp = compiler("smollm2")
    c = comp.lark('start: "a" (_SP "b")*\n_SP: /[ \\t]+/\nWS: /[ \\t]+/\n%ignore WS\n')
    tok = comp.tokenizer
    bm = constrain.allocate_bitmask(1, c.vocab_size)
    columns = []
    for run in (4, 16, 64):
        m = c.matcher()
        for t in tok.encode("a" + " \t" * run + "b a", add_special_tokens=False)[:-2]:
            m.fill_bitmask(bm, 0)
            assert m.advance(t)
        columns.append(int(c.automaton.parser.cnt[0]))
    assert columns[2] == columns[1], columns


@pytest.mark.parametrize("text", [
    'root ::= "[" ws "]"\nws ::= ([ \\t] ws)?',  # right recursion through helper rules
    'root ::= a\na ::= "x" b | "y"\nb ::= "z" a | "w" a | ""',  # two rules calling each other at their ends
    'root ::= l "]"\nl ::= l "x" | l m | "["\nm ::= "y" | "zz"',  # left recursion
    'root ::= "(" r ")" r\nr ::= "a" r | ("b" | "c") s\ns ::= "d" s | "e"',  # a group used twice
    'root ::= p\np ::= "(" p ")" | "x"',  # not linear: stays a rule
    'root ::= c+ (" " c*)*\nc ::= [xy] | "a"',  # a start rule regular once c is: one terminal
    'root ::= "(" p ")" "a" p\np ::= "(" p ")" | "x" "y"?',  # regular runs beside a rule that is not
])
def test_linear_recursive_rules_become_terminals_with_the_same_language(text: str) -> None:
    """Right- and left-linear groups of rules are solved into regexes (Arden's rule); the inlined grammar
    accepts exactly the strings the grammar as written does, up to length 6 (every string over the
    grammar's characters, byte by byte from both start states: a prefix both reject is not extended, as
    every string below it is rejected by both)."""
    from constrain.gbnf import _Converter, _Parser, inline_regular_rules

    parser = _Parser(text)
    raw = _Converter(parser.grammar(), parser).convert()
    inlined = inline_regular_rules(raw)
    assert len(inlined.rules) < len(raw.rules) or "p ::=" in text
    comp = compiler("smollm2")
    a, b = comp.grammar(raw), comp.grammar(inlined)
    alphabet = sorted({ch.encode() for ch in text.split("::=", 1)[1] if ch in "[]() \txyzwabcde"})
    ua, ub = a.automaton, b.automaton
    checked = 0
    todo = [(b"", ua.initial_state, ub.initial_state)]
    while todo:
        s, sa, sb = todo.pop()
        expected = sa >= 0 and ua.is_accepting(sa)
        assert (sb >= 0 and ub.is_accepting(sb)) == expected, s
        checked += expected
        if len(s) < 6:
            for ch in alphabet:
                na = ua.step_bytes(sa, ch) if sa >= 0 else -1
                nb = ub.step_bytes(sb, ch) if sb >= 0 else -1
                if na >= 0 or nb >= 0:
                    todo.append((s + ch, na, nb))
    assert checked >= 3


def test_adjacent_regular_symbols_become_one_lexeme() -> None:
    """A regular alternative of a rule that stays a rule (the start rule, or one that recurses in another
    alternative) is one terminal: a character-level grammar such as ``english.gbnf`` is then one lexeme,
    whose masks are its lexer states' precomputed ones, not walks across a lexeme boundary at every byte.
    Alternatives that name a rule keep their terminals apart."""
    from constrain.gbnf import gbnf_to_grammar

    text = 'root ::= en+ ([ \\t] en+)*\nen ::= [a-z] | [0-9] | "."'
    whole = gbnf_to_grammar(text)
    assert [len(r.rhs) for r in whole.rules] == [1]
    # nothing follows its one lexeme: each mask is that lexeme's (no walk into a next one), and exact
    comp = compiler("smollm2")
    c = comp.gbnf(text)
    m = c.matcher()
    bm = np.zeros((1, bitmask_words(c.vocab_size)), np.int32)
    for piece in ("ab", " c9", "\t."):
        for t in comp.tokenizer.encode(piece, add_special_tokens=False):
            assert m.advance(t)
        m.fill_bitmask(bm, 0)
        allowed = set(bitmask_to_ids(bm[0], c.vocab_size).tolist())
        advancing = set(np.flatnonzero(m.allows_each()).tolist())
        assert allowed == advancing
    nested = gbnf_to_grammar('root ::= "(" p ")" | w "!"\nw ::= [a-z]+\np ::= "(" p ")" | w')
    shapes = sorted(tuple(type(x).__name__ for x in r.rhs) for r in nested.rules)
    assert shapes == [("T",), ("T",), ("T", "N", "T"), ("T", "N", "T")], shapes


def test_a_repetition_of_rules_reuses_its_columns() -> None:
    """Completed items leave the kernel once their completions are in: a list of rules with nothing
    between them (``item*``) reaches the same parser column after each item, so a longer list makes no
    new columns (each item's completed item names its own origin, which made every column new)."""
    comp = compiler("smollm2")
    c = comp.lark('start: item*\nitem: "ab" | "c" item2\nitem2: "d"\n')
    columns = []
    for n in (8, 32):
        m = c.matcher()
        assert m.accepts_text("abcd" * n)
        columns.append(int(c.automaton.parser.cnt[0]))
    assert columns[1] == columns[0], columns


def test_ambiguous_repetitions_parse_with_finitely_many_columns() -> None:
    """Items whose origins give them the same future share one origin (see ``earley._rep``): in
    ``molecule+``, where a new molecule may start after any atom, the origins would otherwise be every
    earlier position, making a new parser column at every byte. Longer text makes no new columns, and the
    language is unchanged (checked against lark)."""
    import lark

    text = ('start: molecule+\nmolecule: atom (bond? atom | branch)*\nbranch: "(" bond? molecule+ ")"\n'
            'atom: "C" | "O" | "Cl" | "c"\nbond: "=" | "-"\n')
    comp = compiler("smollm2")
    c = comp.lark(text)
    columns = []
    for n in (8, 32):
        assert c.matcher().accepts_text("CC(=O)Cl-c" * n)
        columns.append(int(c.automaton.parser.cnt[0]))
    assert columns[1] == columns[0], columns
    reference = lark.Lark(text, parser="earley")
    rng = random.Random(0)
    for _ in range(300):
        s = "".join(rng.choice(["C", "O", "Cl", "c", "=", "-", "(", ")"]) for _ in range(rng.randrange(1, 12)))
        assert c.matcher().accepts_text(s) == lark_accepts(reference, s), s


_SYMS = ["a", "b", "c", "A", "B", "C"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.lists(st.sampled_from(_SYMS), max_size=3), min_size=1, max_size=3),
                min_size=3, max_size=3))
def test_origin_representatives_do_not_change_the_parse(bodies: list[list[list[str]]]) -> None:
    """The parser with origin representatives (``earley._rep``) accepts and expects exactly what it does
    with raw origins, on every terminal string up to length 5 of random (ambiguous, left-recursive,
    nullable) grammars."""
    import itertools
    from unittest import mock

    import constrain.earley as earley
    from constrain.grammar_ir import Grammar, N, Rule, T
    from constrain.grammar_tables import build_tables
    from constrain.regex import literal

    rules = [Rule("S", (N("A"),))]
    for lhs, alts in zip("ABC", bodies):
        rules += [Rule(lhs, tuple(N(x) if x.isupper() else T(x) for x in alt)) for alt in alts]
    grammar = Grammar({t: literal(t) for t in "abc"}, rules, "S")
    try:
        tables = build_tables(grammar)
    except GrammarError:
        return  # e.g. an empty language
    canonical = earley.EarleyParser(tables)
    with mock.patch.object(earley, "MAX_CANON_NONTERMINALS", 0):
        raw = earley.EarleyParser(tables)
    assert canonical._reach.shape[0] > 0 and raw._reach.shape[0] == 0
    terms = [tables.term_names.index(t) for t in "abc" if t in tables.term_names]
    for n in range(6):
        for seq in itertools.product(terms, repeat=n):
            a, b = canonical.initial, raw.initial
            for t in seq:
                a, b = canonical.advance(a, t), raw.advance(b, t)
                assert (a < 0) == (b < 0), seq
                if a < 0:
                    break
                assert canonical.expected(a) == raw.expected(b), seq
            else:
                assert canonical.accepting(a) == raw.accepting(b), seq


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.lists(st.sampled_from(_SYMS), max_size=3), min_size=1, max_size=3),
                min_size=3, max_size=3))
def test_prediction_closures_match_their_definition(bodies: list[list[list[str]]]) -> None:
    """``earley._closure_tables`` (word bitsets, a fixpoint in numba) against the definition, with sets:
    a nonterminal predicts its rules' starts advanced over nullable symbols, and whatever the
    nonterminals after those dots predict; sorted by (symbol after the dot, item). Random grammars have
    prediction cycles, nullable chains and self-loops."""
    import constrain.earley as earley
    from constrain.grammar_ir import Grammar, N, Rule, T
    from constrain.grammar_tables import build_tables
    from constrain.regex import literal

    rules = [Rule("S", (N("A"),))]
    for lhs, alts in zip("ABC", bodies):
        rules += [Rule(lhs, tuple(N(x) if x.isupper() else T(x) for x in alt)) for alt in alts]
    try:
        tables = build_tables(Grammar({t: literal(t) for t in "abc"}, rules, "S"))
    except GrammarError:
        return
    parser = earley.EarleyParser(tables)
    nt0, n_nt = tables.n_terms, len(tables.nonterm_names)
    dnext = tables.dotted_next.tolist()
    direct: list[set[int]] = [set() for _ in range(n_nt)]
    for r, lhs in enumerate(tables.rule_lhs.tolist()):
        d = int(tables.rule_start[r])
        direct[lhs - nt0].add(d)
        while dnext[d] >= nt0 and tables.nullable[dnext[d] - nt0]:
            d += 1
            direct[lhs - nt0].add(d)
    reach = [{i} for i in range(n_nt)]
    changed = True
    while changed:
        changed = False
        for i in range(n_nt):
            for d in list(direct[i]):
                if dnext[d] >= nt0 and not reach[dnext[d] - nt0] <= reach[i]:
                    reach[i] |= reach[dnext[d] - nt0]
                    changed = True
            grown = set().union(*(direct[j] for j in reach[i]))
            if grown != direct[i]:
                direct[i] = grown
                changed = True
    for i in range(n_nt):
        items = sorted(direct[i], key=lambda d: (dnext[d], d))
        assert parser._cl_item[parser._cl_start[i] : parser._cl_start[i + 1]].tolist() == items
        terms = sorted({dnext[d] for d in items if 0 <= dnext[d] < nt0})
        assert parser._ce_terms[parser._ce_start[i] : parser._ce_start[i + 1]].tolist() == terms
        row = parser._reach[i]
        assert {j for j in range(n_nt) if int(row[j >> 6]) >> (j & 63) & 1} == reach[i]


class _LockNeverFree:
    """A parser lock that a non-blocking acquire never gets: walks then report the parser steps they lack
    (the path taken while another thread holds the lock) instead of computing them."""

    def __init__(self) -> None:
        self._inner = threading.RLock()

    def acquire(self, blocking: bool = True) -> bool:
        return self._inner.acquire() if blocking else False

    def release(self) -> None:
        self._inner.release()

    def __enter__(self) -> _LockNeverFree:
        self._inner.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.release()


@pytest.mark.parametrize("lock_free", [True, False])
def test_allows_each_equals_advancing_each_token(lock_free: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Matcher.allows_each`` (one batched walk, the reference the mask tests use) answers as advancing
    each token does, on a fresh SQL grammar (parser steps computed on the way, or reported as missing
    and computed between calls), for the tokens the mask allows, random others, EOS and ids outside the
    vocabulary; after EOS only EOS; and on a regex, through the per-token default."""
    from constrain import grammars

    comp = compiler("smollm2")
    tok = comp.tokenizer
    c = constrain.Compiler(vocab=comp.vocab).lark(grammars.load("sql"))
    if not lock_free:
        monkeypatch.setattr(c.automaton.parser, "lock", _LockNeverFree())
    rng = random.Random(7)
    eos = list(c.vocab.eos_token_ids)
    m = c.matcher()
    ids = tok.encode("SELECT name , count(*) FROM singer WHERE age > 20", add_special_tokens=False)
    for k, t in enumerate(ids):
        if k % 3 == 0:
            sample = sorted(set(m.allowed_tokens().tolist()) | set(rng.sample(range(c.vocab_size), 1500)))
            sample += [*eos, -1, c.vocab_size]
            got = m.allows_each(sample).tolist()  # first: the parser steps it needs are not known yet
            assert got == [m.fork().advance(u) for u in sample], tok.decode(ids[:k])
        assert m.advance(t)
    assert m.accepting
    every = m.allows_each()
    assert every.shape == (c.vocab_size,) and all(every[e] for e in eos)
    assert m.advance(eos[0])
    assert np.flatnonzero(m.allows_each()).tolist() == sorted(eos)
    r = comp.regex(r"[0-9]{2,3}").matcher()
    assert r.advance(tok.encode("4", add_special_tokens=False)[0])
    sample = list(range(0, c.vocab_size, 7)) + eos
    assert r.allows_each(sample).tolist() == [r.fork().advance(u) for u in sample]


def _follow_by_sweeps(tables: Any) -> npt.NDArray[np.bool_]:
    """``grammar_tables.follow_bytes`` the textbook way: FIRST, then FOLLOW, of first bytes (Python ints), each
    by sweeping every rule until a sweep changes nothing."""
    n_terms = tables.n_terms
    rs, dn, dl = tables.rule_start.tolist(), tables.dotted_next.tolist(), tables.dotted_lhs.tolist()
    nullable = tables.nullable.tolist()
    starts = tables.global_trans[tables.term_offset[:n_terms].astype(np.int64)] >= 0
    tfirst = [sum(1 << b for b in np.flatnonzero(row).tolist()) for row in starts]
    ignored = 0
    for t in range(n_terms):
        if tables.term_ignore[t]:
            ignored |= tfirst[t]
    rules = [(dl[rs[r]] - n_terms, dn[rs[r] : rs[r + 1] - 1]) for r in range(len(rs) - 1)]
    first = [0] * len(nullable)
    changed = True
    while changed:
        changed = False
        for a, syms in rules:
            v = first[a]
            for x in syms:
                v |= tfirst[x] if x < n_terms else first[x - n_terms]
                if x < n_terms or not nullable[x - n_terms]:
                    break
            changed |= v != first[a]
            first[a] = v
    follow_nt, follow_t = [0] * len(nullable), [0] * n_terms
    changed = True
    while changed:
        changed = False
        for a, syms in rules:
            trailer = follow_nt[a]
            for x in reversed(syms):
                if x < n_terms:
                    follow_t[x] |= trailer
                    trailer = tfirst[x]
                    continue
                x -= n_terms
                changed |= follow_nt[x] | trailer != follow_nt[x]
                follow_nt[x] |= trailer
                trailer = (trailer | first[x]) if nullable[x] else first[x]
    out = np.ones((n_terms + 1, 256), np.bool_)
    for t in range(n_terms):
        out[t] = [(follow_t[t] | ignored) >> b & 1 for b in range(256)]
    return out


def test_follow_bytes_equal_the_textbook_fixpoint() -> None:
    """The worklist FIRST/FOLLOW of ``follow_bytes`` equals sweeping every rule to a fixpoint, on the library's
    grammars, GBNF C and JSON-Schema grammars (nullable chains, left and right recursion, ignored terminals)."""
    from importlib.resources import files

    from constrain.grammar_tables import build_tables, follow_bytes

    comp = compiler("smollm2")
    irs = [lark_to_grammar((files("constrain.grammars") / f"{name}.lark").read_text())
           for name in ("sql", "c", "json", "arithmetic", "smiles")]
    irs.append(gbnf_to_grammar('root ::= item ("," ws item)* ws\nitem ::= [a-z]+ | "(" root? ")" | ws\nws ::= [ ]*\n'))
    tables = [build_tables(ir, comp.vocab.byte_alphabet) for ir in irs]
    for schema in ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}},
                                                     "b": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
                   {"type": "array", "items": {"$ref": "#"}}):
        tables.append(comp.json_schema(schema, whitespace="flexible").automaton.tables)
    for tb in tables:
        assert np.array_equal(follow_bytes(tb), _follow_by_sweeps(tb))


def test_crossings_kept_only_where_a_lexeme_may_follow_give_exact_masks() -> None:
    """Where a lexeme ends inside tokens at nearly every trie node (our SQL grammar: after the space of
    ``" name"``, the identifier may end at any letter), the crossing masks keep only the nodes below which a
    byte may start a lexeme that can follow that terminal (``grammar_tables.follow_bytes``) instead of
    walking those threads exactly. The masks equal advancing every token of the vocabulary."""
    from constrain import grammars

    comp = compiler("smollm2")
    c = comp.lark(grammars.load("sql"))
    tok = comp.tokenizer
    ids = tok.encode("SELECT name , count(*) FROM  singer WHERE age > 20 ORDER BY name", add_special_tokens=False)
    bm = np.zeros((1, bitmask_words(c.vocab_size)), np.int32)
    m = c.matcher()
    checked = 0
    for k, t in enumerate(ids):
        if k in (1, 4, 9, 12):  # after "SELECT", inside the select list, after "FROM", after "WHERE age"
            m.fill_bitmask(bm, 0)
            assert_mask_equals_advance(c, m, bm, tok.decode(ids[:k]))
            checked += 1
        assert m.advance(t)
    assert checked == 4
    assert c.automaton._follow is not None  # the filtered crossings were used


def test_crossings_count_only_the_children_a_next_lexeme_may_take(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whitespace terminal the parser reads (syncode's invariants grammar), then an identifier that only
    whitespace may follow. With Llama 3 the identifier ends at every node below ``" "`` and a second lexeme may
    start below about a hundred of them (``" foo"``, where ``" foo\\n"`` is a token). A walk below such a
    node meets each child but goes on only under whitespace, so the crossing is kept with those records
    (``grammar_walk._second_cost``); counting whole subtrees there made it an exact walk of every ``" ..."``
    token at every such state. The masks equal advancing."""
    from constrain import grammar_automaton as ga

    grammar = r"""start: "loop" WS "invariant" WS expr ";"
expr: IDENTIFIER | IDENTIFIER WS "(" WS expr WS ")" | expr WS "+" WS expr | INTEGER
WS: /\s+/
IDENTIFIER: /[a-zA-Z_][a-zA-Z0-9_]*/
INTEGER: /[0-9]+/
"""
    compute = ga.GrammarAutomaton._compute_cross
    kept: list[tuple[str, bool, int]] = []

    def spy(self: ga.GrammarAutomaton, g: int, spawn: Any, follow_ok: np.ndarray, **kw: Any) -> Any:
        result = compute(self, g, spawn, follow_ok, **kw)
        kept.append((self.tables.term_names[int(self._gterm[g])], result[0] is not None, len(result[1])))
        return result

    monkeypatch.setattr(ga.GrammarAutomaton, "_compute_cross", spy)
    comp = compiler("llama3")
    c = constrain.Compiler(vocab=comp.vocab).lark(grammar)  # fresh caches: every crossing computed
    tok = comp.tokenizer
    ids = tok.encode("loop invariant  foo ( bar + 12 );", add_special_tokens=False)
    walk_checking_masks(c, tok, ids, at=(3, 5))  # the whitespace before the expression, then inside it
    assert any(name == "WS" and cached and records > 20 for name, cached, records in kept), kept


def test_walks_spawn_from_expected_sets_made_during_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A comment that may end before any byte (Go's ``EOS``: ``//`` then anything, and the next statement
    may follow at once) makes the exact walk of the whole trie end a lexeme at every node, and the parser
    columns it reaches there have expected sets it never had. The walk spawns those from the parser's own
    sets (it used to stop and walk the trie again). A fresh grammar, so every set is new: the masks equal
    advancing every token of the vocabulary, and sets were indeed made during the mask computations."""
    from constrain import grammar_automaton as ga

    refreshes = []
    fill_misses = ga.GrammarAutomaton._fill_misses

    def recording(self: ga.GrammarAutomaton, misses: np.ndarray, nmiss: np.ndarray) -> bool:
        refreshes.append(int((misses[: int(nmiss[0]), 1] == ga.REFRESH).sum()))
        return fill_misses(self, misses, nmiss)

    monkeypatch.setattr(ga.GrammarAutomaton, "_fill_misses", recording)
    comp = compiler("smollm2")
    grammar = ('start: stmt+\nstmt: NAME "=" value eos\nvalue: NAME | NUMBER | NAME "(" value ")"\n'
               'eos: ";" | EOS\nEOS: /((\\n[\\t ]*)|(\\/\\/[^\\n]*))+/\nNAME: /[a-z_]+/\nNUMBER: /[0-9]+/\n'
               '%ignore " "\n')
    c = comp.lark(grammar)
    tok = comp.tokenizer
    ids = tok.encode("a = b // the note\nc = f(d);e = 12 // x = y\n", add_special_tokens=False)
    bm = np.zeros((1, bitmask_words(c.vocab_size)), np.int32)
    m = c.matcher()
    parser = c.automaton.parser
    made = 0
    for k, t in enumerate(ids):
        before = parser.n_eids
        m.fill_bitmask(bm, 0)
        made += parser.n_eids > before
        if k in (3, 5, 12, len(ids) - 2):  # after "//", inside the comment, in a call, in the last comment
            assert_mask_equals_advance(c, m, bm, tok.decode(ids[:k]))
        assert m.advance(t)
    assert made > 0 and refreshes and sum(refreshes) == 0


def test_lexemes_walked_at_compile_time_give_the_same_masks() -> None:
    """A Lark/GBNF compile walks its lexer states' lexemes ahead of use (start states first) within its
    time budget, and makes the start state's mask; masks then equal those of a compiler that walks each on
    first use (separate caches)."""
    vocab = compiler("smollm2").vocab
    text = 'root ::= (expr "=" ws term "\\n")+\nexpr ::= term ([-+*/] term)*\n' \
           'term ::= [a-z] [a-z0-9_]* ws | [0-9]+ ws | "(" ws expr ")" ws\nws ::= [ \\t\\n]*'
    eager = constrain.Compiler(vocab=vocab, precompute_s=60.0).gbnf(text)
    lazy = constrain.Compiler(vocab=vocab, precompute_s=0).gbnf(text)
    a = eager.automaton
    states = a._states_by_depth().tolist()
    assert sorted(states) == [g for g in range(a.tables.n_global_states) if g != a.tables.eps_state]
    starts = set(a._term_start.tolist()) - {a.tables.eps_state}
    assert set(states[: len(starts)]) == starts  # nearest a terminal's start first
    assert set(a._lexeme_of) == set(states)
    assert not lazy.automaton._lexeme_of  # nothing walked before the first mask
    assert a.initial_state in a._masks and not lazy.automaton._masks
    assert lazy.automaton.precompute_lexemes(0.0) == 0 and not lazy.automaton._lexeme_of
    bm_e = np.zeros((1, bitmask_words(eager.vocab_size)), np.int32)
    bm_l = bm_e.copy()
    tokenizer = compiler("smollm2").tokenizer
    for s in sample_strings(gbnf_to_grammar(text), 8, seed=1, byte_alphabet=vocab.byte_alphabet):
        me, ml = eager.matcher(), lazy.matcher()
        for t in tokenizer.encode(s, add_special_tokens=False):
            me.fill_bitmask(bm_e, 0)
            ml.fill_bitmask(bm_l, 0)
            assert np.array_equal(bm_e, bm_l)
            assert me.advance(t) and ml.advance(t)
        assert me.accepting and ml.accepting


def test_exact_walks_skip_what_a_lexeme_covers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact walks skip the subtrees whose tokens all stay inside their largest lexeme (a comment that may
    end before any byte covers nearly the whole trie: walking it again below every byte cost Go masks tens
    of ms). The dead roots are those of a plain walk of the lexeme's DFA, and the masks equal those of walks
    that skip nothing, and advancing every token of the vocabulary."""
    from constrain import grammar_automaton as ga

    comp = compiler("smollm2")
    # names side by side (Go's ``var x int``) may split anywhere: crossings out of a name are walked exactly
    grammar = ('start: stmt+\nstmt: NAME+ "=" value eos\nvalue: NAME | NUMBER | NAME "(" value ")"\n'
               'eos: ";" | EOS\nEOS: /((\\n[\\t ]*)|(\\/\\/[^\\n]*))+/\nNAME: /[a-z_]+/\nNUMBER: /[0-9]+/\n'
               '%ignore " "\n')
    text = "a = b // the note\nc = f(d);e = 12 // x = y\nzz = q\n"
    tok = comp.tokenizer
    ids = tok.encode(text, add_special_tokens=False)
    used = []
    dead = ga.SharedMasks.dead

    def recording(self: ga.SharedMasks, key: Any, dfa: Any, state: int) -> Any:
        roots = dead(self, key, dfa, state)
        trie = self.trie
        # brute force: the nodes where the DFA dies, below a node where it lives (or the root)
        at_depth = [state] + [-1] * (trie.max_depth + 1)  # the DFA state at the current path's nodes
        expect = []
        for i, key in enumerate(trie.node_key.tolist()[1:], start=1):
            parent = at_depth[(key >> 8) - 1]
            s = int(dfa.trans[parent, key & 255]) if parent >= 0 else -1
            if parent >= 0 and s < 0:
                expect.append(i)
            at_depth[key >> 8] = s
        assert roots is not None and roots.tolist() == expect
        used.append(len(roots))
        return roots

    monkeypatch.setattr(ga.SharedMasks, "dead", recording)
    skipping = comp.lark(grammar)
    plain = constrain.Compiler(vocab=comp.vocab).lark(grammar + "\n")  # its own automaton and masks
    bm = np.zeros((1, bitmask_words(skipping.vocab_size)), np.int32)
    bm_plain = bm.copy()
    m, mp = skipping.matcher(), plain.matcher()
    for k, t in enumerate(ids):
        m.fill_bitmask(bm, 0)
        with monkeypatch.context() as ctx:
            ctx.setattr(ga, "_MIN_SKIP_VISITED", 1 << 62)
            mp.fill_bitmask(bm_plain, 0)
        assert np.array_equal(bm, bm_plain), tok.decode(ids[:k])
        if k in (4, 5, 13, len(ids) - 4):
            assert_mask_equals_advance(skipping, m, bm, tok.decode(ids[:k]))
        assert m.advance(t) and mp.advance(t)
    assert used  # a comment's lexeme was big enough to skip with


def test_crossings_from_exits_equal_those_from_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lexeme with many boundaries (an identifier may end at nearly every node) crosses into the next
    lexemes from its exits grouped by byte (``grammar_walk.cross_exits``), visiting only the children whose
    byte starts a lexeme of the expected set; every such crossing equals the one walked from the trie's root
    with the lexeme itself (``cross_walk``): the same mask and second-boundary records. The masks also equal
    advancing."""
    from constrain import grammar_automaton as ga
    from constrain import grammars

    compute = ga.GrammarAutomaton._compute_cross
    compared = []

    def both(self: ga.GrammarAutomaton, g: int, spawn: Any, follow_ok: np.ndarray, again: int | None = None,
             judged: bool = True) -> Any:
        from_exits = compute(self, g, spawn, follow_ok, again, judged)
        key, lex = self._lexeme(g)
        if lex.boundaries is None or len(lex.boundaries) < 4096:
            return from_exits
        assert key in self.shared._exits  # listed at the first crossing, kept for the next
        trie = self.trie
        out = np.zeros(self.words, np.uint32)
        nodes, states = np.empty(1 << 16, np.int64), np.empty(1 << 16, np.int64)
        e = spawn.set_id
        n = ga.cross_walk(g, e, e if again is None else again, spawn.start, spawn.gs, trie.node_byte,
                          trie.node_depth, trie.subtree_end, trie.token_start, trie.node_tokens, self._gtrans,
                          self._gacc, self._gterm, self._tignore, follow_ok, trie.max_depth,
                          ga._MAX_SECOND_LEVEL_NODES, out, nodes, states, np.zeros(2, np.int64))
        if from_exits.mask is not None and n >= 0:  # (None: a cost estimate, which may differ)
            assert np.array_equal(from_exits.mask, out)
            records = sorted(set(zip(nodes[:n].tolist(), self._gterm[states[:n]].tolist())))
            assert list(zip(from_exits.nodes.tolist(), from_exits.terms.tolist())) == records
            compared.append(len(records))
        return from_exits

    monkeypatch.setattr(ga.GrammarAutomaton, "_compute_cross", both)
    comp = compiler("smollm2")
    c = constrain.Compiler(vocab=comp.vocab).lark(grammars.load("sql"))  # fresh caches: every crossing computed
    tok = comp.tokenizer
    text = "SELECT name , count(*) FROM singer WHERE age > 20 AND country = 'France' ORDER BY name"
    ids = tok.encode(text, add_special_tokens=False)
    walk_checking_masks(c, tok, ids, at=(2, 9))  # inside the select list, after "WHERE age"
    assert len(compared) >= 3 and any(compared)  # with second-boundary records too


def test_threads_in_one_lexer_state_share_a_merged_column() -> None:
    """Names side by side may split anywhere, so after ``abcd`` a name may have started at each letter. The
    state keeps one thread per lexer state, its parser column the union of theirs; the language is the
    same (lark agrees on every string tried) and the masks equal advancing every token."""
    import lark

    comp = compiler("smollm2")
    grammar = 'start: item+\nitem: NAME+ ";" | NAME "(" NAME ")" ";"\nNAME: /[a-z]+/\n%ignore " "\n'
    c = comp.lark(grammar)
    ref = lark.Lark(grammar, parser="earley", lexer="dynamic_complete")
    a = c.automaton
    state = a.step_bytes(a.initial_state, b"ab cdef")
    threads = a.threads(state)
    assert len(threads) == len({g for _, g in threads})
    columns = {col for col, g in threads if g != a.tables.eps_state}
    assert columns and all(a.parser.kernel(col) for col in columns)
    for text in ["ab cdef;", "abc(de);", "a(b);cd;", "abc(de;", "abc", "ab cd(ef);x;", "(a);", "ab;(c);"]:
        assert (a.step_bytes(a.initial_state, text.encode()) >= 0 and
                a.is_accepting(a.step_bytes(a.initial_state, text.encode()))) == lark_accepts(ref, text), text
    tok = comp.tokenizer
    ids = tok.encode("ab cdef;ghij(kl);", add_special_tokens=False)
    assert walk_checking_masks(c, tok, ids).accepting


@pytest.mark.parametrize("comments", [False, True])
def test_ignored_threads_that_a_parsed_thread_covers_are_left_out(monkeypatch: pytest.MonkeyPatch,
                                                                   comments: bool) -> None:
    """A required space terminal beside ``%ignore WS`` of the same language (our SQL grammar's ``_SP``):
    after ``"select "`` the state has both threads on one column, and every token of the ``WS`` thread is
    one of the ``_SP`` thread's (what follows an ignored lexeme there is an ``_SP`` lexeme, which the
    ``_SP`` thread reads on): the ``WS`` thread is left out of the mask computation
    (``grammar_walk.covers_after_ignored``). After ``"select foo "`` a comma may follow the whitespace too:
    the ``WS`` thread stays, its cross mask taken without ``_SP`` lexemes. With comments also ignored
    neither happens (``--`` may follow the whitespace, where no ``_SP`` lexeme goes on). The masks equal
    advancing every time."""
    from constrain import grammar_automaton as ga

    grammar = r"""start: "select" _SP NAME ("," NAME)* (_SP "from" _SP NAME)?
_SP: /[ \t\n]+/
WS: /[ \t\n]+/
NAME: /[a-z]+/
%ignore WS
""" + ('COMMENT: /--[^\\n]*\\n/\n%ignore COMMENT\n' if comments else "")
    drop = ga.GrammarAutomaton._drop_covered
    dropped: set[str] = set()
    partly: set[tuple[str, ...]] = set()

    def spy(self: ga.GrammarAutomaton, live: list[tuple[int, int]], after: list[int]) -> Any:
        kept = drop(self, live, after)
        names = self.tables.term_names
        dropped.update(names[self._gterm_list[g]] for c, g in live if (c, g) not in kept[0])
        partly.update(tuple(sorted(names[t] for t in terms)) for terms in kept[2].values())
        return kept

    monkeypatch.setattr(ga.GrammarAutomaton, "_drop_covered", spy)
    comp = compiler("smollm2")
    c = constrain.Compiler(vocab=comp.vocab).lark(grammar)
    tok = comp.tokenizer
    ids = tok.encode("select  \n foo  ,bar \t from baz", add_special_tokens=False)
    walk_checking_masks(c, tok, ids)
    assert dropped == (set() if comments else {"WS%ignore"})
    assert partly == (set() if comments else {("_SP",)})


_PARTS_GRAMMAR = r"""start: stmt+
stmt: "let" NAME "=" expr ";" | "print" expr ";" | NAME "(" [expr ("," expr)*] ")" ";"
?expr: NAME | NUMBER | expr "+" expr | "(" expr ")"
NAME: /[a-z_][a-z0-9_]*/
NUMBER: /[0-9]+/
COMMENT: /#[^\n]*\n/
%ignore /[ \t\n]+/
%ignore COMMENT
"""


def test_crossings_into_identifiers_are_computed_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whitespace crossed into each new set of expected terminals that holds an identifier: the crossing into
    the identifier is walked once, kept by content, and each set's other terminals walked on their own
    (``GrammarAutomaton._split_cross``); after an ignored lexeme (a comment in the same token as the
    whitespace) every expected terminal may follow, the identifier too. A second grammar that numbers its
    terminals otherwise reuses the identifier's parts. Every mask that computed or looked up a part equals
    advancing every token of the vocabulary (the other positions' masks are other tests' business: checking
    them all took 89 s of CI)."""
    from constrain import grammar_automaton as ga

    split = ga.GrammarAutomaton._split_cross
    part = ga.SharedMasks.part
    done: list[tuple[str, ...]] = []
    reused: list[bool] = []

    def spy_split(self: ga.GrammarAutomaton, g: int, spawn: Any, follow_ok: np.ndarray, big: list[int]) -> Any:
        result = split(self, g, spawn, follow_ok, big)
        if result is not None and result.mask is not None:
            done.append(tuple(self.tables.term_names[t] for t in spawn.order.tolist()))
        return result

    def spy_part(self: ga.SharedMasks, key: Any) -> Any:
        hit = part(self, key)
        reused.append(hit is not None)
        return hit

    monkeypatch.setattr(ga.GrammarAutomaton, "_split_cross", spy_split)
    monkeypatch.setattr(ga.SharedMasks, "part", spy_part)
    comp = compiler("smollm2")
    fresh = constrain.Compiler(vocab=comp.vocab)  # fresh shared caches: every crossing computed here
    tok = comp.tokenizer
    checked = [0]

    def walk_parts(c: constrain.CompiledConstraint, text: str) -> None:
        ids = tok.encode(text, add_special_tokens=False)
        bm = np.zeros((1, bitmask_words(c.vocab_size)), np.int32)
        m = c.matcher()
        for k, t in enumerate(ids):
            before = (len(done), len(reused))
            m.fill_bitmask(bm, 0)
            if (len(done), len(reused)) != before:
                assert_mask_equals_advance(c, m, bm, tok.decode(ids[:k]))
                checked[0] += 1
            assert m.advance(t)

    first = fresh.lark(_PARTS_GRAMMAR)
    for text in ["let x = foo + 12; print  bar ;", "f(1, y); #c\nprint (zz)+ n;\n"]:
        walk_parts(first, text)
    assert len({names for names in done if "NAME" in names}) >= 2  # sets with the identifier, in parts
    assert not all(reused) and any(reused)
    # the same identifier and whitespace among other terminals: numbered otherwise, its parts reused
    other = fresh.lark(_PARTS_GRAMMAR.replace('stmt: "let"', 'stmt: "var" ("*" | NAME) "=" NUMBER ";" | "let"'))
    names_first, names_other = first.automaton.tables.term_names, other.automaton.tables.term_names
    assert names_first.index("NAME") != names_other.index("NAME")
    reused.clear()
    for text in ["var  x = 1; print  bar ;", "var * = 2; f(1, y); #c\nprint (zz)+ n;\n"]:
        walk_parts(other, text)
    assert any(reused) and checked[0] >= 10, checked


_OPERATORS_GRAMMAR = r"""start: stmt+
stmt: NAME "=" expr ";" | "if" "(" expr ")" stmt | "{" stmt* "}"
?expr: NAME | NUMBER | expr OP expr | "(" expr ")" | "-" expr
OP: "+" | "-" | "*" | "/" | "<" | ">" | "<=" | ">=" | "==" | "!=" | "&&" | "||"
NAME: /[a-z_][a-z0-9_]*/
NUMBER: /[0-9]+/
%ignore /[ \t\n]+/
"""


def test_crossings_skip_the_forms_that_did_not_pay_for_their_lexeme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whitespace before operators: most tokens after a run of spaces cross into an operator and end it
    inside (``" +="``...), so the crossing without the follow check does not pay, and walking below the
    whitespace lexeme's boundaries one by one gives up for a whole walk. Both are remembered per lexeme
    (``SharedMasks.all_follow_failed``, ``exits_gave_up``) and later crossings from it take the other form
    at once. A guess, never a result: the masks equal advancing every token at every position, and the
    second grammar, which meets the guesses made for the first, computes its crossings both ways."""
    from constrain import grammar_automaton as ga

    shared_cross = ga.GrammarAutomaton._shared_cross
    forms: list[tuple[Any, bool]] = []  # per crossing computed: its lexeme's key, and with the follow check?

    def spy(self: ga.GrammarAutomaton, g: int, spawn: Any, follow_ok: np.ndarray, big: list[int]) -> Any:
        forms.append((self._lexeme(g)[0], follow_ok is not self._all_follow))
        return shared_cross(self, g, spawn, follow_ok, big)

    monkeypatch.setattr(ga.GrammarAutomaton, "_shared_cross", spy)
    comp = compiler("llama3")  # (SmolLM2 has too few tokens of spaces and operators for a crossing not to pay)
    fresh = constrain.Compiler(vocab=comp.vocab)  # fresh shared caches and guesses
    tok = comp.tokenizer

    def walk(c: constrain.CompiledConstraint, text: str) -> None:
        """Masks checked against advancing where whitespace was last read (each check advances 128,256
        tokens: a few per text)."""
        ids = tok.encode(text, add_special_tokens=False)
        after_space = [k for k in range(1, len(ids)) if tok.decode(ids[:k])[-1] in " \n"]
        walk_checking_masks(c, tok, ids, at=tuple(after_space[1::2][:3]))

    first = fresh.lark(_OPERATORS_GRAMMAR)
    for text in ["x = a  +  b  *  c ;  if ( x  <=  y )  { z = -x ; }", "a = (b  ==  c)  &&  d  ||  e ;\n  y = 1 ;"]:
        walk(first, text)
    shared = fresh.shared_masks
    assert shared.all_follow_failed and shared.exits_gave_up
    # the same lexemes before other expected sets: the guesses made for the first grammar hold from the start
    failed = set(shared.all_follow_failed)
    forms.clear()
    other = fresh.lark(_OPERATORS_GRAMMAR.replace('| "-" expr', '| "-" expr | "!" expr | expr "?" expr ":" expr'))
    for text in ["q = !a  ?  b  :  c ;", "x = a  +  b  *  c ;"]:
        walk(other, text)
    assert any(key in failed for key, _ in forms) and any(key not in failed for key, _ in forms)
    assert all(checked for key, checked in forms if key in failed)


def test_crossings_in_parts_go_on_after_ignored_lexemes_with_every_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crossing computed in parts walks the ignored next lexemes with the terminals that are not parts, and
    after one ends every expected terminal may follow, the parts' too: tokens that end a lexeme, hold a whole
    comment and go on with an identifier (``"; #c\\nfoo"``). Real vocabularies hardly have such tokens, so
    a made-up one, with every terminal crossed into as a part: the masks equal advancing every token at every
    position (they did not when the rest's walk spawned only its own terminals after an ignored lexeme)."""
    from constrain import grammar_automaton as ga

    monkeypatch.setattr(ga, "_MIN_SPLIT_VISITED", 1)
    words = ["let", "print", "x", "foo", "ab", "12", "1", ""]
    pieces = [" ", "  ", "\t", "\n", "#c\n", "#\n", ";", "=", "+", "(", ")", ",", ""]
    spelled = {chr(b) for b in range(32, 127)} | {"\t", "\n"}
    spelled |= {a + b + w for a in pieces for b in pieces for w in words}
    tokens = [t.encode() for t in sorted(spelled - {""})] + [b""]
    comp = constrain.Compiler(vocab=Vocabulary.from_token_bytes(tokens, eos_token_ids=[len(tokens) - 1]))
    split = ga.GrammarAutomaton._split_cross
    done: list[int] = []

    def spy(self: ga.GrammarAutomaton, g: int, spawn: Any, follow_ok: np.ndarray, big: list[int]) -> Any:
        result = split(self, g, spawn, follow_ok, big)
        done.append(result is not None and result.mask is not None)
        return result

    monkeypatch.setattr(ga.GrammarAutomaton, "_split_cross", spy)
    c = comp.lark(_PARTS_GRAMMAR)
    longest = max(len(t) for t in tokens)
    texts = ["let x = foo + 12; #c\nprint  ab ;", "foo(1, x);#\n#c\n\tprint (x)+ 12;\n", "let ab=x;  #c\n  x( 1 ,foo);"]
    for text in texts:
        data, ids = text.encode(), []
        while data:  # longest tokens first: many cross a comment
            size = next(n for n in range(longest, 0, -1) if comp.vocab.ids_of_bytes(data[:n]))
            ids.append(comp.vocab.ids_of_bytes(data[:size])[0])
            data = data[size:]
        walk_checking_masks(c, comp.vocab, ids)
    assert sum(done) >= 5


def test_mask_kernels_loaded_up_front_have_the_types_of_their_real_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first grammar of a process loads the walks masks may need (``grammar_automaton._load_mask_kernels``)
    on made-up inputs: each must take the types of its real calls, or numba compiles it a second time and
    the real call still loads its own. After real calls of every one (a SQL walk whose masks are looked up
    by replay, JSON strings whose lexemes are walked from known ones or keyed by a cut of a long counter's
    language, words that may split anywhere), each has one compiled signature; so
    has the trie walk, which exact walks call with read-only dead-root lists (a writable empty list as the
    default once made it load a second signature, 28 ms, in a mask)."""
    from constrain import earley, grammar_tables, grammars
    from constrain import grammar_automaton as ga

    monkeypatch.setattr(ga, "_mask_kernels_loaded", False)
    monkeypatch.setattr(earley, "_step_kernel_loaded", False)
    comp = compiler("smollm2")
    fresh = constrain.Compiler(vocab=comp.vocab)  # fresh shared caches: every lexeme and crossing computed
    fresh.lark('start: "x"')  # loads them (again, on these inputs)
    names = ["cross_walk", "cross_exits", "boundary_exits", "derived_exits", "lexeme_diff_walk", "merged_boundaries",
             "dead_roots", "covers_after_ignored", "length_classes", "joint_classes", "walk_jobs", "literal_lexeme",
             "replay", "state_prefix_key", "lexeme_walk", "lexeme_digest", "bounded_language_key"]
    calls = dict.fromkeys(names, 0)

    def counted(name: str) -> Any:
        kernel = getattr(ga, name)

        def call(*args: Any) -> Any:
            calls[name] += 1
            return kernel(*args)
        return call

    kernels = {name: getattr(ga, name) for name in names}
    for name in names:
        monkeypatch.setattr(ga, name, counted(name))
    tok = comp.tokenizer
    sql = fresh.lark(grammars.load("sql"))
    walk(sql, tok.encode("SELECT name , count(*) FROM singer WHERE age > 20 ORDER BY name", add_special_tokens=False))
    words = fresh.lark('start: WORD+\nWORD: /[a-z]+/\n%ignore " "')  # a word may split anywhere: exact walks
    walk(words, tok.encode("ab cd efg", add_special_tokens=False))
    props = {f"p{k}": {"type": "string", "maxLength": 40 + 7 * k} for k in range(6)}
    props["long"] = {"type": "string", "maxLength": 700}  # more states than a whole-language key takes
    schema = {"type": "object", "properties": props, "propertyNames": {"not": {"const": "$schema"}}}
    c = fresh.json_schema(schema)
    walk(c, tok.encode('{"p0":"' + "ab " * 12 + '","p1":"x","p3":"' + "cd" * 20 + '","long":"ef gh"}',
                       add_special_tokens=False))
    assert all(calls.values()), calls  # each had a real call
    signatures = {name: len(kernel.signatures) for name, kernel in kernels.items()}
    signatures["_follow_words"] = len(grammar_tables._follow_words.signatures)  # (called through follow_bytes)
    signatures["_steps"] = len(earley._steps.signatures)  # (loaded with the first parser, called by its steps)
    assert set(signatures.values()) == {1}, signatures


@pytest.mark.parametrize("required, ignored", [
    (r"[ \t]+", r"[ \t]+"),  # the same language: the ignored thread is covered
    (r" +", r"[ \t]+"),  # the ignored one reads tabs the required one cannot: not covered after a tab
    (r"[ \t]+", r" +"),  # the required one reads more: covered
    (r" ", r"[ \t]+"),  # exactly one space required: its thread ends at once
    (r"[ \t]+", r"\t"),  # ignored single tabs, one lexeme each
])
def test_masks_with_required_and_ignored_whitespace_equal_advancing(required: str, ignored: str) -> None:
    """Required whitespace terminals beside ignored ones of other languages, where an ignored thread may be
    left out or its crossing taken without some next terminals (``GrammarAutomaton._drop_covered``) only
    when another thread gives its tokens: at every position of sampled texts, the mask equals advancing
    each token of the vocabulary."""
    grammar = rf"""start: "select" _SP NAME ("," NAME)* (_SP "from" _SP NAME)? ";"?
_SP: /{required}/
WS: /{ignored}/
NAME: /[a-z]+/
%ignore WS
"""
    comp = compiler("smollm2")
    c = constrain.Compiler(vocab=comp.vocab).lark(grammar)
    tok = comp.tokenizer
    texts = sample_strings(lark_to_grammar(grammar), 1, seed=3, byte_alphabet=comp.vocab.byte_alphabet)
    texts.append("select \t a,b\t \tfrom  c;")  # in each of these languages
    for text in texts:
        walk_checking_masks(c, tok, tok.encode(text, add_special_tokens=False))


def test_lexer_states_keyed_without_hashing_their_language() -> None:
    """A lexer state that reaches more than ``_WHOLE_KEY_STATES`` states and whose language cut at the
    trie's depth is too large to hash (the start of a hostname string) is keyed by its DFA's content and
    its number, not by hashing its whole language: equal tables give equal keys, other states other keys,
    and the masks of a schema with it equal advancing each token at every position. A literal's states
    are keyed by the rest of the literal."""
    from constrain.fsm import ByteDFA
    from constrain.grammar_automaton import lex_key

    comp = compiler("smollm2")
    c = constrain.Compiler(vocab=comp.vocab).json_schema({"type": "string", "format": "hostname"})
    dfa = max(c.automaton.tables.term_dfas, key=lambda d: d.n_states)
    depth = c.automaton.trie.max_depth
    key = lex_key(dfa, 0, depth)
    assert key[0] == -1, (dfa.n_states, key)
    assert lex_key(ByteDFA(dfa.trans.copy(), dfa.accepting.copy()), 0, depth) == key
    assert len({lex_key(dfa, s, depth) for s in range(0, dfa.n_states, 97)}) == len(range(0, dfa.n_states, 97))
    tok = comp.tokenizer
    walk_checking_masks(c, tok, tok.encode('"api.example-1.com"', add_special_tokens=False))
    # a literal's states are keyed by the rest of the literal: equal rests of two literals, equal keys
    from constrain.fsm import literal_dfa

    name, time = literal_dfa(b'"name":'), literal_dfa(b'"time":')
    assert lex_key(name, 3, depth) == lex_key(time, 3, depth) == lex_key(literal_dfa(b'me":'), 0, depth)
    assert len({lex_key(name, k, depth) for k in range(8)} | {lex_key(time, 1, depth)}) == 9


@pytest.mark.parametrize("name", ["smollm2", "llama3"])
def test_literal_lexemes_equal_whole_walks(name: str) -> None:
    """A literal's lexer states (every property name of a schema) get their lexemes from the path of the
    rest of the literal down the trie, not from a walk of the DFA below the root: the same inside mask,
    boundaries and visited count as the whole walk, for every state of property names from MaskBench-like
    schemas, random byte strings over a small alphabet (paths that leave the trie early), multi-byte
    UTF-8, and literals that are whole tokens with longer tokens below them. The result key it comes
    with stands for one result."""
    from constrain.fsm import literal_dfa
    from constrain.grammar_automaton import _lexeme, _literal_lexeme

    comp = compiler(name)
    a = constrain.Compiler(vocab=comp.vocab).json_schema({"type": "object", "properties": {"a": {"type": "string"}}})
    trie = a.automaton.trie
    words = a.automaton.words
    rng = random.Random(7)
    results: dict[tuple[int, int, bool], set[tuple[bytes, tuple[int, ...]]]] = {}
    texts = ['"name"', '"description"', '"$schema"', '"été"', '"日本"', '""', '":', ",", "{", "\n", " the", "ing"]
    texts += ["".join(rng.choice('ab"_ eé0Zx:{}\\') for _ in range(rng.randint(1, 14))) for _ in range(60)]
    checked = 0
    for text in texts:
        data = text.encode()
        dfa = literal_dfa(data)
        for state in range(dfa.n_states):
            whole = _lexeme(dfa.trans, dfa.accepting, state, trie, words)
            path, result = _literal_lexeme(data[state:], trie, words)
            assert np.array_equal(path.inside, whole.inside), (text, state)
            assert whole.boundaries is not None and path.boundaries is not None
            assert path.boundaries.tolist() == whole.boundaries.tolist(), (text, state)
            assert path.visited == whole.visited, (text, state)
            results.setdefault(result, set()).add((path.inside.tobytes(), tuple(path.boundaries.tolist())))
            checked += 1
    assert checked > 400
    # the result key (the path's last node, the boundary count) stands for one result, and rests that
    # leave the trie at the same place share it
    assert all(len(r) == 1 for r in results.values()) and len(results) < checked / 2


def test_lexemes_no_token_goes_past_cross_nothing() -> None:
    """A lexeme with no boundary (no token goes on past its end: most states of a property name, whose rest
    and closing quote no token spells) gives its inside mask whatever follows it: the parser is not asked
    what follows, and no cross entry is made for it. Masks equal advancing each token at every position of
    instances, tokenized as the tokenizer does and at random, whose walks land inside long property names
    and at their ends."""
    comp = compiler("smollm2")
    schema = {"type": "object", "properties": {"description_of_the_thing": {"type": "string"},
                                               "n": {"type": "integer"}, "été_à_côté": {"type": "boolean"}},
              "required": ["description_of_the_thing"]}
    c = constrain.Compiler(vocab=comp.vocab).json_schema(schema)
    texts = ['{"description_of_the_thing":"x","n":12,"été_à_côté":true}', '{"description_of_the_thing":""}']
    rng = random.Random(11)
    for text in texts:
        walk_checking_masks(c, comp.tokenizer, comp.tokenizer.encode(text, add_special_tokens=False))
    walk_checking_masks(c, comp.tokenizer, random_tokenization(comp.vocab, texts[0].encode(), rng))
    a = c.automaton
    sealed = {g for g, (_, lex) in a._lexeme_of.items() if lex.boundaries is not None and not len(lex.boundaries)}
    assert sealed, "no state without boundaries was met"
    assert not any(a._crossable(g) for g in sealed)
    assert not [g for g, _, _ in a._cross if g in sealed], "a state without boundaries was crossed"
