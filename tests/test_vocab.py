"""Token vocabulary: exact bytes per token, checked by round trip on real tokenizers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TOKENIZERS, compiler, tokenizer

from constrain.trie import TokenTrie
from constrain.vocab import Vocabulary, gpt2_byte_decoder

TEXTS = [
    "Hello, world!",
    "plain ascii text with punctuation: (a+b)*c = d; e[0] -> {f}",
    "naïve café résumé São Paulo Ærøskøbing ñandú",
    "日本語のテキストと中文字符和한국어",
    "emoji 😀🎉 family 👩‍👩‍👧 flags 🇫🇷 skin 👍🏽",
    "def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n",
    '{"key": [1, 2.5e-3, null, true], "nested": {"a": "b\\n"}}',
    "   three leading spaces",
    "trailing spaces   ",
    "tabs\t\tand\r\nwindows newlines\r\n",
    "\u00a0non-breaking\u2009thin\u200bzero-width",
    "Ελληνικά русский العربية עברית हिन्दी ไทย",
    "x" * 40 + " " + "y" * 3,
    "mixed   \n\n   whitespace \t runs\n",
    "math ∀x∈ℝ: x² ≥ 0 ∑∫√∞",
    "<html><body class='a'>&amp;</body></html>",
    "SELECT * FROM users WHERE id = 42;",
    "1234567890 3.14159 -0.5e+10",
    "\x00\x01 control \x7f chars",
    "a",
    " ",
    "\n",
]


def expected_bytes(vocab: Vocabulary, text: str) -> bytes:
    data = text.encode("utf-8")
    # SentencePiece tokenizers add one space in front of text that does not start with one
    if vocab.dummy_prefix_space and not text.startswith(" "):
        data = b" " + data
    return data


@pytest.mark.parametrize("name", TOKENIZERS)
def test_round_trip(name: str) -> None:
    tok = tokenizer(name)
    vocab = compiler(name).vocab
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False)
        assert vocab.decode_bytes(ids) == expected_bytes(vocab, text), (name, text, ids)


@pytest.mark.parametrize("name", TOKENIZERS)
def test_every_spellable_byte_is_a_token(name: str) -> None:
    """Exact masks need every byte string over the vocabulary's bytes to be spellable."""
    vocab = compiler(name).vocab
    assert vocab.spells_every_string
    # the bytes a tokenizer cannot emit at all (SmolLM2 lacks a few control bytes) are few
    assert vocab.byte_alphabet.sum() >= 230


def test_unspellable_bytes_are_never_allowed() -> None:
    """SmolLM2 has no token containing byte 0x04: a regex that needs it is cut to what can be spelt."""
    c = compiler("smollm2")
    assert not c.vocab.byte_alphabet[4]
    m = c.regex("(a\x04|ab)").matcher()
    a = c.vocab.ids_of_bytes(b"a")[0]
    assert m.advance(a) and not m.accepting
    assert m.allowed_tokens().tolist() == c.vocab.ids_of_bytes(b"b")
    with pytest.raises(ValueError, match="can spell"):
        c.regex("\x04")


@pytest.mark.parametrize("name", TOKENIZERS)
def test_special_tokens_are_never_text(name: str) -> None:
    tok = tokenizer(name)
    vocab = compiler(name).vocab
    for i in tok.all_special_ids:
        assert vocab.token_bytes[i] == b""
    assert vocab.eos_token_ids and all(vocab.token_bytes[e] == b"" for e in vocab.eos_token_ids)


def test_smollm2_specifics() -> None:
    vocab = compiler("smollm2").vocab
    assert vocab.size == 49152
    assert vocab.eos_token_ids[0] == 2  # <|im_end|>
    tok = tokenizer("smollm2")
    ids = tok.encode(" é", add_special_tokens=False)  # 'Ġ' + a token that is half a UTF-8 character
    assert vocab.token_bytes[ids[0]].startswith(b" ")
    partial = [b for b in vocab.token_bytes if b and not _is_utf8(b)]
    assert len(partial) > 100  # byte-level BPE has many tokens that are not valid UTF-8 alone


def test_sentencepiece_specifics() -> None:
    vocab = compiler("mistral").vocab
    assert vocab.dummy_prefix_space
    tok = tokenizer("mistral")
    byte_nl = tok.convert_tokens_to_ids("<0x0A>")
    assert vocab.token_bytes[byte_nl] == b"\n"
    assert vocab.token_bytes[tok.convert_tokens_to_ids("▁the")] == b" the"


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_wider_logits_and_extra_eos() -> None:
    tok = tokenizer("smollm2")
    vocab = Vocabulary.from_hf(tok, vocab_size=49152 + 64, eos_token_ids=[0])
    assert vocab.size == 49216
    assert vocab.token_bytes[49152:] == [b""] * 64
    assert set(vocab.eos_token_ids) == {2, 0}


def test_gpt2_byte_map_is_a_bijection() -> None:
    m = gpt2_byte_decoder()
    assert sorted(m.values()) == list(range(256))
    assert m["Ġ"] == 32 and m["Ċ"] == 10


def test_trie_layout() -> None:
    vocab = Vocabulary.from_token_bytes([b"a", b"ab", b"abc", b"b", b"ab", b"", b"ba"], eos_token_ids=[5])
    trie = TokenTrie.build(vocab)
    # root, a, ab, abc, b, ba
    assert trie.n_nodes == 6
    assert list(trie.node_byte[1:]) == [ord("a"), ord("b"), ord("c"), ord("b"), ord("a")]
    assert list(trie.subtree_end) == [6, 4, 4, 4, 6, 6]
    assert trie.root_child[ord("a")] == 1 and trie.root_child[ord("b")] == 4
    assert (np.delete(trie.root_child, [ord("a"), ord("b")]) == -1).all()
    node_ab = trie.token_node[1]
    assert trie.token_node[4] == node_ab
    toks = trie.node_tokens[trie.token_start[node_ab] : trie.token_start[node_ab + 1]]
    assert sorted(toks.tolist()) == [1, 4]
    assert trie.token_node[5] == -1
