"""The matcher contract: fill_bitmask, advance, rollback, fork, accepting, finished, forced_tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import constrain
from constrain.bitmask import bitmask_to_ids, bitmask_words, ids_to_bitmask
from constrain.vocab import Vocabulary

TOY = [b"a", b"b", b"ab", b"abc", b"c", b"", b"ba", b"x"]  # id 5 is EOS


@pytest.fixture()
def toy() -> constrain.Compiler:
    return constrain.Compiler(vocab=Vocabulary.from_token_bytes(TOY, eos_token_ids=[5]))


def allowed(m: constrain.Matcher) -> list[int]:
    bm = constrain.allocate_bitmask(1, m.vocab_size)
    m.fill_bitmask(bm, 0)
    return bitmask_to_ids(bm[0].numpy(), m.vocab_size).tolist()


def test_masks_advance_and_eos(toy: constrain.Compiler) -> None:
    c = toy.regex("(ab)+c")
    m = c.matcher()
    assert allowed(m) == [0, 2, 3]  # a, ab, abc
    assert not m.advance(1) and m.num_tokens == 0  # 'b' refused, state unchanged
    assert m.advance(2)
    assert allowed(m) == [0, 2, 3, 4]
    assert not m.accepting and not m.advance(5)
    assert m.advance(4)
    assert m.accepting and m.finished and allowed(m) == [5]
    assert m.advance(5) and m.finished
    assert allowed(m) == [5] and not m.advance(0)
    assert m.advance(5)  # finished rows keep accepting EOS (batch padding)


def test_rollback_restores_exact_state(toy: constrain.Compiler) -> None:
    c = toy.regex("(a|b)*c")
    m = c.matcher()
    seq = [0, 1, 6, 2, 4]
    states = [m.state]
    for t in seq:
        assert m.advance(t)
        states.append(m.state)
    for n in range(len(seq), 0, -1):
        m.rollback(1)
        assert m.state == states[n - 1]
    with pytest.raises(ValueError):
        m.rollback(1)
    assert m.advance_many(seq) == len(seq) and m.accepting
    m.rollback(5)
    assert m.num_tokens == 0 and allowed(m) == [0, 1, 2, 3, 4, 6]


def test_fork_is_independent(toy: constrain.Compiler) -> None:
    c = toy.regex("a(b|c)")
    m = c.matcher()
    assert m.advance(0)
    f = m.fork()
    assert f.advance(1) and f.accepting
    assert not m.accepting and m.advance(4) and m.accepting
    f.rollback(1)
    assert not f.accepting and f.num_tokens == 1


def test_forced_tokens(toy: constrain.Compiler) -> None:
    c = toy.regex("xxb?")
    m = c.matcher()
    assert m.forced_tokens() == [7, 7]  # then a choice: 'b' or EOS
    c2 = toy.regex("xx")
    assert c2.matcher().forced_tokens() == [7, 7, 5]
    assert toy.regex("a|b").matcher().forced_tokens() == []


def test_fill_numpy_rows_and_wider_buffers(toy: constrain.Compiler) -> None:
    c = toy.regex("c")
    m = c.matcher()
    buf = np.full((3, 2), -1, np.int32)  # wider than needed: extra words are cleared
    m.fill_bitmask(buf, 1)
    assert buf[1, 0] == 1 << 4 and buf[1, 1] == 0
    assert (buf[0] == -1).all() and (buf[2] == -1).all()
    with pytest.raises(ValueError):
        m.fill_bitmask(np.zeros((1, 0), np.int32), 0)
    with pytest.raises(TypeError):
        m.fill_bitmask(np.zeros((1, 1), np.int64), 0)


def test_extra_logit_ids_are_never_allowed() -> None:
    vocab = Vocabulary.from_token_bytes(TOY, eos_token_ids=[5], vocab_size=100)
    c = constrain.Compiler(vocab=vocab).regex(".*")
    assert c.vocab_size == 100
    assert max(allowed(c.matcher())) < len(TOY)


def test_allocate_bitmask_layout() -> None:
    bm = constrain.allocate_bitmask(2, 70)
    assert bm.dtype == torch.int32 and tuple(bm.shape) == (2, bitmask_words(70)) == (2, 3)
    row = ids_to_bitmask([0, 31, 32, 69], 70)
    assert row[0] == np.int32(-2147483647) and row[1] == 1 and row[2] == 1 << 5
    assert bitmask_to_ids(row, 70).tolist() == [0, 31, 32, 69]


def test_real_tokenizer_eos_and_compile_cache(smol_compiler: constrain.Compiler) -> None:
    c1 = smol_compiler.regex(r"\d+")
    assert smol_compiler.regex(r"\d+") is c1
    m = c1.matcher()
    assert 2 not in allowed(m)  # <|im_end|> only when complete
    tok = smol_compiler.vocab.ids_of_bytes(b"4")[0]
    assert m.advance(tok) and 2 in allowed(m)


def test_compile_errors_leave_the_compiler_healthy(smol_compiler: constrain.Compiler) -> None:
    with pytest.raises(constrain.RegexError):
        smol_compiler.regex(r"(a)\1")
    with pytest.raises(constrain.RegexError, match="matches nothing"):
        smol_compiler.regex(r"[^\s\S]")
    assert smol_compiler.regex("ok").matcher().accepts_text("ok")
