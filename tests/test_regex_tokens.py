"""Regex constraints at token level: complete under canonical and random tokenizations, sound under
mutations and under random walks through the masks, on real tokenizers."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import compiler, tokenizer
from helpers import assert_mask_equals_advance, random_tokenization, walk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_regex import SUPPORTED, mutations, re_fullmatch

from constrain.bitmask import bitmask_to_ids, bitmask_words
from constrain.vocab import Vocabulary


def encode(name: str, text: str) -> list[int]:
    """The tokenizer's own tokenization of ``text`` as generated output (no BOS, no dummy prefix space)."""
    tok = tokenizer(name)
    vocab = compiler(name).vocab
    if vocab.dummy_prefix_space:
        ids = tok.encode("\n" + text, add_special_tokens=False)
        # drop the tokens of the leading "\n" (and its dummy space), keep the rest if it spells text
        for k in range(len(ids) + 1):
            if vocab.decode_bytes(ids[k:]) == text.encode():
                return list(ids[k:])
        return random_tokenization(vocab, text.encode(), random.Random(0))
    return list(tok.encode(text, add_special_tokens=False))


def spellable(vocab: Vocabulary, text: str) -> bool:
    """Every byte of ``text`` occurs in some token of the vocabulary."""
    return bool(vocab.byte_alphabet[np.frombuffer(text.encode(), np.uint8)].all())


def draw_text(name: str, pattern: str, data: st.DataObject) -> str:
    """A string matching ``pattern`` that the tokenizer can spell (some tokenizers lack bytes, e.g. 0xF1)."""
    vocab = compiler(name).vocab
    return data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda t: spellable(vocab, t)))


def check_text(name: str, pattern: str, text: str) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return
    c = compiler(name).regex(pattern)
    vocab = c.vocab
    if not spellable(vocab, text):
        return  # e.g. SmolLM2 has no token containing byte 0xF1 (U+40000..U+7FFFF): no model can write it
    ok, k = walk(c, encode(name, text))
    assert ok, f"canonical tokenization of {text!r} rejected at token {k}"
    rng = random.Random(hash((pattern, text)) & 0xFFFF)
    ids = random_tokenization(vocab, text.encode(), rng)
    ok, k = walk(c, ids)
    assert ok, f"random tokenization {[vocab.token_bytes[i] for i in ids]} rejected at {k}"
    for bad in mutations(text, rng):
        if re_fullmatch(pattern, bad) is not False or any(0xD800 <= ord(ch) <= 0xDFFF for ch in bad):
            continue
        if not spellable(vocab, bad):
            continue
        ok, _ = walk(c, random_tokenization(vocab, bad.encode(), rng))
        assert not ok, f"sound: {bad!r} does not match but was accepted"


_SETTINGS = settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("pattern", SUPPORTED)
def test_smollm2(pattern: str, data: st.DataObject) -> None:
    check_text("smollm2", pattern, draw_text("smollm2", pattern, data))


@_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("pattern", SUPPORTED[::4])
def test_llama3(pattern: str, data: st.DataObject) -> None:
    check_text("llama3", pattern, draw_text("llama3", pattern, data))


@_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("pattern", SUPPORTED[1::4])
def test_mistral(pattern: str, data: st.DataObject) -> None:
    check_text("mistral", pattern, draw_text("mistral", pattern, data))


@pytest.mark.parametrize("name", ["smollm2", "mistral"])
@pytest.mark.parametrize("pattern", SUPPORTED[::3])
def test_random_walks_end_in_the_language(name: str, pattern: str) -> None:
    """Sound: any path through the masks stays completable, and every text ended by EOS matches. Exact: on
    the first path, the first and third masks allow exactly the tokens that advance."""
    c = compiler(name).regex(pattern)
    eos = c.vocab.eos_token_ids[0]
    rng = np.random.default_rng(abs(hash(pattern)) % 2**32)
    bm = np.zeros((1, bitmask_words(c.vocab_size)), np.int32)
    for path in range(5):
        m = c.matcher()
        ids: list[int] = []
        for step in range(40):
            m.fill_bitmask(bm, 0)
            if path == 0 and step in (0, 2):
                assert_mask_equals_advance(c, m, bm, f"{pattern!r} after {c.vocab.decode_bytes(ids)!r}")
            allowed = bitmask_to_ids(bm[0], c.vocab_size)
            assert allowed.size, f"dead end after {c.vocab.decode_bytes(ids)!r}"
            if eos in allowed and (rng.random() < 0.3 or allowed.size == 1):
                break
            tok = int(rng.choice(allowed[allowed != eos]))
            assert m.advance(tok)
            ids.append(tok)
        else:
            continue
        text = c.vocab.decode_bytes(ids).decode("utf-8")  # strict: EOS only after whole characters
        assert re_fullmatch(pattern, text) is not False, (pattern, text)
