"""Constraints that are not automata: a Python predicate on the text so far, and products of constraints.

``PredicateConstraint(prefix_ok, vocab)`` allows a token when ``prefix_ok(text + token's text)`` is True,
i.e. when the longer prefix can still be completed; EOS is allowed when ``complete(text)`` is True
(default: ``prefix_ok``). Nothing is precomputed, so a full mask costs one predicate call per
vocabulary entry per step; AWRS needs only a handful of calls per token, which is what makes such
constraints practical (algorithms.md §1.1). ``product(a, b, ...)`` allows what all of its parts allow:
e.g. a compiled JSON Schema and a predicate. Both expose the matcher interface the samplers use
(``allows``, ``advance``, ``fork``, ``rollback``, ``fill_bitmask``, ``accepting``, ``finished``...).

The predicate sees decoded text without a trailing incomplete UTF-8 character: a token that ends inside
a multi-byte character is allowed when the text before that character is, and the character is judged
once complete (so such a token can lead into a dead end, which costs a particle but never validity).
``complete`` is only asked about text that decodes fully.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from constrain.bitmask import as_rows, ids_to_bitmask
from constrain.vocab import Vocabulary

TextPredicate = Callable[[str], bool]


def _prefix_text(data: bytes) -> tuple[str | None, bool]:
    """(text of ``data`` without an incomplete trailing character, whether one was cut); None if ``data``
    is not UTF-8."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.end == len(data):
            try:
                return data[: e.start].decode("utf-8"), True
            except UnicodeDecodeError:
                return None, True
        return None, False


class PredicateConstraint:
    """A constraint given by Python predicates on the text so far (see the module doc).

    Predicate results are memoised per text (shared by all matchers of this constraint), and
    ``checks`` counts the actual predicate calls. ``partial_chars="reject"`` never lets the text end
    inside a multi-byte character: no dead ends, but characters that only byte tokens spell become
    unreachable (fine for ASCII formats such as JSON keys and numbers).
    """

    def __init__(
        self,
        prefix_ok: TextPredicate,
        vocab: Vocabulary,
        *,
        complete: TextPredicate | None = None,
        partial_chars: Literal["hold", "reject"] = "hold",
        cache_size: int = 1 << 20,
    ) -> None:
        if partial_chars not in ("hold", "reject"):
            raise ValueError("partial_chars is 'hold' or 'reject'")
        self.partial_chars = partial_chars
        self.prefix_ok = prefix_ok
        self.complete = complete or prefix_ok
        self.vocab = vocab
        self.checks = 0
        self._cache_size = cache_size
        self._prefix_cache: dict[str, bool] = {}
        self._complete_cache: dict[str, bool] = {}
        self._eos_set = frozenset(vocab.eos_token_ids)
        self._eos_row = ids_to_bitmask(list(vocab.eos_token_ids), vocab.size).view(np.uint32)

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def matcher(self) -> PredicateMatcher:
        return PredicateMatcher(self)

    def text_allowed(self, data: bytes) -> bool:
        text, partial = _prefix_text(data)
        if text is None or (partial and self.partial_chars == "reject"):
            return False
        return self._ask(self._prefix_cache, self.prefix_ok, text)

    def text_complete(self, data: bytes) -> bool:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return self._ask(self._complete_cache, self.complete, text)

    def _ask(self, cache: dict[str, bool], fn: TextPredicate, text: str) -> bool:
        hit = cache.get(text)
        if hit is None:
            self.checks += 1
            hit = bool(fn(text))
            if len(cache) >= self._cache_size:
                cache.clear()
            cache[text] = hit
        return hit

    def __repr__(self) -> str:
        return f"PredicateConstraint({getattr(self.prefix_ok, '__name__', self.prefix_ok)!r})"


class PredicateMatcher:
    """Position in a :class:`PredicateConstraint`: the bytes generated so far (persistent history)."""

    __slots__ = ("_c", "_data", "_eos_done", "_history", "_n")

    def __init__(self, constraint: PredicateConstraint) -> None:
        self._c = constraint
        self._data = b""
        self._eos_done = False
        self._history: tuple[Any, ...] | None = None
        self._n = 0

    @property
    def vocab_size(self) -> int:
        return self._c.vocab_size

    @property
    def num_tokens(self) -> int:
        return self._n

    @property
    def state(self) -> int:
        return hash((self._data, self._eos_done))

    @property
    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")

    @property
    def accepting(self) -> bool:
        return self._eos_done or self._c.text_complete(self._data)

    @property
    def finished(self) -> bool:
        """EOS was accepted (a predicate cannot tell that nothing else may follow)."""
        return self._eos_done

    @property
    def is_dead(self) -> bool:
        return not self.accepting and len(self.allowed_tokens()) == 0

    def allows(self, token_id: int) -> bool:
        token_id = int(token_id)
        if token_id in self._c._eos_set:
            return self.accepting
        if self._eos_done:
            return False
        piece = self._c.vocab.token_bytes[token_id] if 0 <= token_id < self._c.vocab_size else b""
        return bool(piece) and self._c.text_allowed(self._data + piece)

    def advance(self, token_id: int) -> bool:
        token_id = int(token_id)
        if not self.allows(token_id):
            return False
        self._history = (self._data, self._eos_done, self._history)
        if token_id in self._c._eos_set:
            self._eos_done = True
        else:
            self._data += self._c.vocab.token_bytes[token_id]
        self._n += 1
        return True

    def advance_many(self, token_ids: Sequence[int]) -> int:
        n = 0
        for t in token_ids:
            if not self.advance(t):
                break
            n += 1
        return n

    def rollback(self, n: int = 1) -> None:
        if n < 0 or n > self._n:
            raise ValueError(f"cannot roll back {n} tokens, {self._n} were advanced")
        for _ in range(n):
            assert self._history is not None
            self._data, self._eos_done, self._history = self._history
        self._n -= n

    def reset(self) -> None:
        self.rollback(self._n)

    def fork(self) -> PredicateMatcher:
        m = PredicateMatcher.__new__(PredicateMatcher)
        m._c, m._data, m._eos_done, m._history, m._n = self._c, self._data, self._eos_done, self._history, self._n
        return m

    def allowed_among(self, candidates: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The candidates this matcher allows (one predicate call per new text)."""
        return np.array([t for t in candidates.tolist() if self.allows(t)], dtype=np.int64)

    def allowed_tokens(self) -> npt.NDArray[np.int64]:
        return self.allowed_among(np.arange(self.vocab_size, dtype=np.int64))

    def mask_words(self) -> npt.NDArray[np.uint32]:
        return ids_to_bitmask(self.allowed_tokens(), self.vocab_size).view(np.uint32)

    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        _write_row(bitmask, row, self.mask_words())

    def forced_tokens(self) -> list[int]:
        return []


class ProductConstraint:
    """Allows a token when every part does. Parts with precomputed masks are consulted first, so a
    predicate is only asked about tokens the other parts already allow."""

    def __init__(self, parts: Sequence[Any]) -> None:
        if not parts:
            raise ValueError("a product needs at least one constraint")
        sizes = {int(p.vocab_size) for p in parts}
        if len(sizes) != 1:
            raise ValueError(f"the constraints have different vocabulary sizes {sorted(sizes)}")
        # masks first (cheap), predicates last (paid per token)
        self.parts = sorted(parts, key=lambda p: isinstance(p, PredicateConstraint))
        self.vocab = self.parts[0].vocab

    @property
    def vocab_size(self) -> int:
        return int(self.parts[0].vocab_size)

    @property
    def checks(self) -> int:
        return sum(int(getattr(p, "checks", 0)) for p in self.parts)

    def matcher(self) -> ProductMatcher:
        return ProductMatcher([p.matcher() for p in self.parts])

    def __repr__(self) -> str:
        return f"ProductConstraint({self.parts!r})"


class ProductMatcher:
    __slots__ = ("_parts",)

    def __init__(self, parts: list[Any]) -> None:
        self._parts = parts

    @property
    def vocab_size(self) -> int:
        return int(self._parts[0].vocab_size)

    @property
    def num_tokens(self) -> int:
        return int(self._parts[0].num_tokens)

    @property
    def state(self) -> int:
        return hash(tuple(p.state for p in self._parts))

    @property
    def accepting(self) -> bool:
        return all(p.accepting for p in self._parts)

    @property
    def finished(self) -> bool:
        """EOS accepted, or complete and some part allows nothing but EOS."""
        if all(p.finished for p in self._parts):
            return True
        return self.accepting and any(p.finished for p in self._parts)

    @property
    def is_dead(self) -> bool:
        return not self.accepting and len(self.allowed_tokens()) == 0

    def allows(self, token_id: int) -> bool:
        return all(p.allows(token_id) for p in self._parts)

    def advance(self, token_id: int) -> bool:
        if not self.allows(token_id):
            return False
        for p in self._parts:
            if not p.advance(token_id):
                raise RuntimeError(f"token {token_id} was allowed but not accepted by {p!r}")
        return True

    def advance_many(self, token_ids: Sequence[int]) -> int:
        n = 0
        for t in token_ids:
            if not self.advance(t):
                break
            n += 1
        return n

    def rollback(self, n: int = 1) -> None:
        for p in self._parts:
            p.rollback(n)

    def reset(self) -> None:
        self.rollback(self.num_tokens)

    def fork(self) -> ProductMatcher:
        return ProductMatcher([p.fork() for p in self._parts])

    def allowed_tokens(self) -> npt.NDArray[np.int64]:
        ids = np.asarray(self._parts[0].allowed_tokens(), dtype=np.int64)
        for p in self._parts[1:]:
            if isinstance(p, PredicateMatcher):
                ids = p.allowed_among(ids)
            else:
                ids = np.intersect1d(ids, np.asarray(p.allowed_tokens(), dtype=np.int64))
        return ids

    def mask_words(self) -> npt.NDArray[np.uint32]:
        return ids_to_bitmask(self.allowed_tokens(), self.vocab_size).view(np.uint32)

    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        _write_row(bitmask, row, self.mask_words())

    def forced_tokens(self) -> list[int]:
        return []


def _write_row(bitmask: Any, row: int, words: npt.NDArray[np.uint32]) -> None:
    rows = as_rows(bitmask)
    src = words.view(np.int32)
    if rows.shape[1] < src.shape[0]:
        raise ValueError(f"bitmask has {rows.shape[1]} words per row, the constraint needs {src.shape[0]}")
    rows[row, : src.shape[0]] = src
    rows[row, src.shape[0] :] = 0


def predicate(
    prefix_ok: TextPredicate,
    vocab: Any,
    *,
    complete: TextPredicate | None = None,
    partial_chars: Literal["hold", "reject"] = "hold",
) -> PredicateConstraint:
    """A predicate constraint over ``vocab`` (a Vocabulary, a Compiler, or a compiled constraint)."""
    return PredicateConstraint(prefix_ok, _vocabulary(vocab), complete=complete, partial_chars=partial_chars)


def product(*constraints: Any) -> ProductConstraint:
    """The constraint that allows what all of ``constraints`` allow.

    Plain callables are wrapped as predicate constraints over the vocabulary of the first non-callable.
    """
    vocab = next((c.vocab for c in constraints if hasattr(c, "matcher")), None)
    parts: list[Any] = []
    for c in constraints:
        if hasattr(c, "matcher"):
            parts.append(c)
        elif callable(c):
            if vocab is None:
                raise ValueError("a product of plain callables needs a compiled constraint for the vocabulary")
            parts.append(PredicateConstraint(c, vocab))
        else:
            raise TypeError(f"cannot use {type(c).__name__} in a product")
    return ProductConstraint(parts)


def _vocabulary(obj: Any) -> Vocabulary:
    if isinstance(obj, Vocabulary):
        return obj
    vocab = getattr(obj, "vocab", None)
    if isinstance(vocab, Vocabulary):
        return vocab
    raise TypeError(f"need a Vocabulary, a Compiler or a compiled constraint, got {type(obj).__name__}")


__all__ = [
    "PredicateConstraint",
    "PredicateMatcher",
    "ProductConstraint",
    "ProductMatcher",
    "predicate",
    "product",
]
