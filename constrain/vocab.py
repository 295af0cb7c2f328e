"""The exact bytes each token id contributes to the output text.

Constraints are languages of byte strings; a tokenizer is a map from ids to byte strings. This module
knows tokenizers and nothing about grammars. It handles:

* byte-level BPE (GPT-2 style ``Ġ``/``Ċ`` pieces through the GPT-2 byte map: Llama 3, SmolLM2, Qwen, ...),
* SentencePiece-style pieces (``▁`` for a space, ``<0xNN>`` byte-fallback pieces: Llama 2, Mistral, ...),
* added tokens that are ordinary text (their content, UTF-8) and special tokens (never text),
* tokens whose bytes are not valid UTF-8 on their own (kept as raw bytes).

EOS ids come from the tokenizer and from the caller (a model's ``generation_config.eos_token_id`` may
name several). Ids between ``len(tokenizer)`` and ``vocab_size`` (models with wider logits) are never text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from constrain.errors import ConstraintError


def gpt2_byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's ``bytes_to_unicode``: printable stand-in character -> byte value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    byte_values = list(printable)
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            byte_values.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(byte_values, chars)}


_SP_SPACE = "\u2581"  # SentencePiece's visible space


@dataclass
class Vocabulary:
    """Token id -> bytes, plus which ids are EOS and which are never text.

    ``token_bytes[i]`` is ``b""`` for ids that are never text (special tokens, holes in the id space,
    ids past the tokenizer); those are excluded from every mask except EOS, which is allowed exactly
    when the text so far is complete.
    """

    token_bytes: list[bytes]
    eos_token_ids: tuple[int, ...]
    special_token_ids: frozenset[int] = frozenset()
    dummy_prefix_space: bool = False
    """True when the tokenizer prepends a space to text that does not start with one (SentencePiece)."""
    name: str = ""
    _index: dict[bytes, list[int]] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for e in self.eos_token_ids:
            if not 0 <= e < len(self.token_bytes):
                raise ConstraintError(f"EOS id {e} outside the vocabulary of {len(self.token_bytes)} ids")

    @property
    def size(self) -> int:
        """The vocabulary size masks are sized for (may exceed the tokenizer's own length)."""
        return len(self.token_bytes)

    @property
    def primary_eos(self) -> int:
        """The EOS id used when one id must stand for 'end of sequence' (-1 if there is none)."""
        return self.eos_token_ids[0] if self.eos_token_ids else -1

    @cached_property
    def text_token_ids(self) -> npt.NDArray[np.int64]:
        """Ids that contribute text (non-empty bytes)."""
        return np.array([i for i, b in enumerate(self.token_bytes) if b], dtype=np.int64)

    @cached_property
    def packed_bytes(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """Every token's bytes end to end, and offsets: token ``i`` is ``data[offsets[i]:offsets[i + 1]]``
        (the form numba code reads the vocabulary in)."""
        data = np.frombuffer(b"".join(self.token_bytes), dtype=np.uint8)
        offsets = np.zeros(len(self.token_bytes) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in self.token_bytes], out=offsets[1:])
        return data, offsets

    @cached_property
    def byte_alphabet(self) -> npt.NDArray[np.bool_]:
        """``byte_alphabet[b]``: some token contains byte ``b``. Other bytes can never be generated.

        Exact masks also need every such byte to be a token of its own (true for byte-level BPE and
        byte-fallback vocabularies); :attr:`spells_every_string` checks it.
        """
        seen = np.zeros(256, dtype=bool)
        for b in self.token_bytes:
            if b:
                seen[np.frombuffer(b, dtype=np.uint8)] = True
        return seen

    @cached_property
    def spells_every_string(self) -> bool:
        """Every byte string over :attr:`byte_alphabet` has a tokenization (each such byte is a token)."""
        singles = np.zeros(256, dtype=bool)
        for b in self.token_bytes:
            if len(b) == 1:
                singles[b[0]] = True
        return bool((singles == self.byte_alphabet).all())

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of ``ids``; EOS and special ids contribute nothing."""
        tb = self.token_bytes
        return b"".join(tb[i] for i in ids if 0 <= i < len(tb))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` (invalid UTF-8 at a cut point is replaced)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def ids_of_bytes(self, data: bytes) -> list[int]:
        """All token ids whose bytes are exactly ``data``."""
        if self._index is None:
            index: dict[bytes, list[int]] = {}
            for i, b in enumerate(self.token_bytes):
                if b:
                    index.setdefault(b, []).append(i)
            self._index = index
        return list(self._index.get(data, []))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_token_bytes(
        cls,
        token_bytes: Sequence[bytes],
        eos_token_ids: Sequence[int] = (),
        *,
        vocab_size: int | None = None,
        name: str = "custom",
    ) -> Vocabulary:
        """A vocabulary from explicit byte strings (tests, toy models). EOS ids must have empty bytes."""
        tb = [bytes(b) for b in token_bytes]
        size = max(vocab_size or 0, len(tb))
        tb += [b""] * (size - len(tb))
        eos = tuple(dict.fromkeys(int(e) for e in eos_token_ids))
        for e in eos:
            if e < len(tb):
                tb[e] = b""
        return cls(tb, eos, frozenset(eos), name=name)

    @classmethod
    def from_hf(
        cls,
        tokenizer: Any,
        *,
        vocab_size: int | None = None,
        eos_token_ids: Iterable[int] | int | None = None,
    ) -> Vocabulary:
        """Read a Hugging Face tokenizer (fast or slow).

        ``vocab_size``: the model's logit width, if larger than ``len(tokenizer)``.
        ``eos_token_ids``: extra EOS ids (e.g. the model's ``generation_config.eos_token_id``); the
        tokenizer's own ``eos_token_id`` is always included.
        """
        n = len(tokenizer)
        size = max(n, vocab_size or 0)
        special: set[int] = set(getattr(tokenizer, "all_special_ids", []) or [])
        added_text: dict[int, str] = {}
        for i, tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items():
            if getattr(tok, "special", False):
                special.add(int(i))
            else:
                added_text[int(i)] = str(getattr(tok, "content", tok))

        eos: list[int] = []
        tok_eos = getattr(tokenizer, "eos_token_id", None)
        if tok_eos is not None:
            eos.append(int(tok_eos))
        if eos_token_ids is not None:
            eos.extend([int(eos_token_ids)] if isinstance(eos_token_ids, int) else [int(e) for e in eos_token_ids])
        eos = list(dict.fromkeys(eos))
        special.update(eos)

        kind = _decoder_kind(tokenizer)
        pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
        byte_decoder = gpt2_byte_decoder()
        token_bytes: list[bytes] = []
        for i, piece in enumerate(pieces):
            if i in special or piece is None:
                token_bytes.append(b"")
            elif i in added_text:
                token_bytes.append(added_text[i].encode("utf-8"))
            elif kind == "byte_level":
                token_bytes.append(_byte_level_bytes(piece, byte_decoder))
            else:
                token_bytes.append(_sentencepiece_bytes(piece))
        token_bytes += [b""] * (size - n)

        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        vocab = cls(token_bytes, tuple(eos), frozenset(special), name=str(name))
        vocab.dummy_prefix_space = kind == "sentencepiece" and _adds_dummy_prefix(tokenizer, vocab)
        return vocab


def _decoder_kind(tokenizer: Any) -> str:
    """'byte_level' for GPT-2 style byte-level BPE, else 'sentencepiece' (``▁`` and ``<0xNN>`` pieces)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        decoder = json.loads(backend.to_str()).get("decoder") or {}
        kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders", []) or []}
        if "ByteLevel" in kinds:
            return "byte_level"
        if kinds & {"Metaspace", "ByteFallback", "Replace", "Strip", "Fuse"}:
            return "sentencepiece"
        if "WordPiece" in kinds:
            raise ConstraintError("WordPiece tokenizers (BERT style) are not generative and are not supported")
    vocab = tokenizer.get_vocab()
    if any(_SP_SPACE in p for p in list(vocab)[:5000]):
        return "sentencepiece"
    return "byte_level"


def _byte_level_bytes(piece: str, byte_decoder: dict[str, int]) -> bytes:
    try:
        return bytes(byte_decoder[ch] for ch in piece)
    except KeyError:  # a piece outside the byte map is literal text (some added vocabularies)
        return piece.encode("utf-8")


def _sentencepiece_bytes(piece: str) -> bytes:
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        try:
            return bytes([int(piece[3:5], 16)])
        except ValueError:
            pass
    return piece.replace(_SP_SPACE, " ").encode("utf-8")


def _adds_dummy_prefix(tokenizer: Any, vocab: Vocabulary) -> bool:
    ids = tokenizer.encode("a", add_special_tokens=False)
    return vocab.decode_bytes(ids) == b" a"
