"""Token-walk checks shared by the constraint tests (sound and complete, checked token by token)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from constrain.bitmask import bitmask_to_ids, bitmask_words
from constrain.vocab import Vocabulary


def random_tokenization(vocab: Vocabulary, data: bytes, rng: random.Random) -> list[int]:
    """A random segmentation of ``data`` into token ids (not the tokenizer's canonical one)."""
    max_len = max(len(b) for b in vocab.token_bytes)
    out: list[int] = []
    i = 0
    while i < len(data):
        cands: list[int] = []
        for n in range(1, min(max_len, len(data) - i) + 1):
            cands.extend(vocab.ids_of_bytes(data[i : i + n]))
        assert cands, f"no token covers byte {data[i]:#x}"
        # prefer shorter pieces half of the time so that the walk crosses many boundaries
        tok = rng.choice(cands) if rng.random() < 0.5 else min(cands, key=lambda t: (len(vocab.token_bytes[t]), t))
        out.append(tok)
        i += len(vocab.token_bytes[tok])
    return out


def mask_allows(matcher: Any, token: int) -> bool:
    bm = np.zeros((1, bitmask_words(matcher.vocab_size)), dtype=np.int32)
    matcher.fill_bitmask(bm, 0)
    return bool((int(bm[0, token >> 5]) >> (token & 31)) & 1)


def walk(compiled: Any, ids: list[int]) -> tuple[bool, int]:
    """Walk ``ids`` then EOS; check at every step that the mask bit agrees with ``advance``.

    Returns (accepted, index of the first rejected token or len(ids) for a rejected end)."""
    m = compiled.matcher()
    for k, t in enumerate(ids):
        allowed = mask_allows(m, t)
        ok = m.advance(t)
        assert allowed == ok, f"mask says {allowed} but advance says {ok} for token {t} at step {k}"
        if not ok:
            return False, k
    eos = compiled.vocab.eos_token_ids
    if eos:
        assert mask_allows(m, eos[0]) == m.accepting, "EOS bit must be set exactly when accepting"
    return m.accepting, len(ids)


def lark_accepts(parser: Any, text: str) -> bool:
    """Whether a ``lark.Lark`` parser parses ``text`` (the reference the engine is checked against)."""
    import lark

    try:
        parser.parse(text)
    except lark.exceptions.LarkError:
        return False
    return True


def assert_mask_equals_advance(c: Any, m: Any, bm: np.ndarray, where: str) -> None:
    """The mask just filled into ``bm`` allows exactly the tokens ``m`` can advance by (end of sequence aside)."""
    eos = set(c.vocab.eos_token_ids)
    allowed = set(bitmask_to_ids(bm[0], c.vocab_size).tolist()) - eos
    assert allowed == set(np.flatnonzero(m.allows_each()).tolist()) - eos, where


def walk_checking_masks(c: Any, tok: Any, ids: list[int],
                        at: tuple[int, ...] | None = None) -> Any:
    """Walk ``ids``, filling the mask before each token; at the positions ``at`` (every one before a token if
    None; ``len(ids)``, after the last token, only if listed) the mask must equal advancing. Returns the
    matcher after the last token."""
    bm = np.zeros((1, bitmask_words(c.vocab_size)), np.int32)
    m = c.matcher()
    for k, t in enumerate(ids):
        m.fill_bitmask(bm, 0)
        if at is None or k in at:
            assert_mask_equals_advance(c, m, bm, tok.decode(ids[:k]))
        assert m.advance(t)
    if at is not None and len(ids) in at:
        m.fill_bitmask(bm, 0)
        assert_mask_equals_advance(c, m, bm, tok.decode(ids))
    return m
