"""The matcher: one generation's position in a compiled constraint.

A matcher is a pointer into a shared :class:`~constrain.automaton.TokenAutomaton` plus a persistent
(immutable, linked) history, so ``fork`` is O(1) and ``rollback(n)`` pops ``n`` entries. It never
imports torch: ``fill_bitmask`` writes into any int32 buffer (numpy array or CPU tensor).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from constrain.automaton import TokenAutomaton
from constrain.bitmask import as_rows

_MAX_FORCED = 4096


class _Buffers:
    """Remembers the numpy view of the last bitmask buffer, so a torch tensor is converted once, not per call."""

    __slots__ = ("ref", "view")

    def __init__(self) -> None:
        self.ref: Any = None
        self.view: npt.NDArray[np.int32] | None = None

    def rows(self, buffer: Any) -> npt.NDArray[np.int32]:
        pair = (self.ref, self.view)
        if pair[0] is not None and pair[0]() is buffer and pair[1] is not None:
            return pair[1]
        view = as_rows(buffer)
        with contextlib.suppress(TypeError):  # objects without weak references are converted every time
            self.ref, self.view = weakref.ref(buffer), view
        return view


_buffers = _Buffers()


class Matcher:
    """Follows one token sequence through a constraint.

    ``advance`` returns False and leaves the state unchanged when a token is not allowed. After an EOS
    token is accepted the matcher is ``finished``; it then allows only EOS again (handy for padding a
    batch) until rolled back.
    """

    __slots__ = ("_auto", "_eos_done", "_history", "_n", "_state")

    def __init__(self, automaton: TokenAutomaton) -> None:
        self._auto = automaton
        self._state = automaton.initial_state
        self._eos_done = False
        self._history: tuple[Any, ...] | None = None  # (state, eos_done, parent)
        self._n = 0

    # ------------------------------------------------------------------ queries
    @property
    def vocab_size(self) -> int:
        return self._auto.vocab_size

    @property
    def state(self) -> int:
        """The automaton state id (equal ids mean equal futures)."""
        return self._state

    @property
    def num_tokens(self) -> int:
        """Number of tokens advanced (EOS included) since the start."""
        return self._n

    @property
    def accepting(self) -> bool:
        """The text so far is in the language."""
        return self._eos_done or self._auto.is_accepting(self._state)

    @property
    def finished(self) -> bool:
        """EOS was accepted, or the text is complete and nothing else can follow."""
        if self._eos_done:
            return True
        return self._auto.is_accepting(self._state) and self._auto.text_count(self._state) == 0

    @property
    def is_dead(self) -> bool:
        """Nothing at all is allowed (cannot happen for matchers advanced only by allowed tokens)."""
        return not self.accepting and self._auto.text_count(self._state) == 0

    def mask_words(self) -> npt.NDArray[np.uint32]:
        """The allowed-token mask as read-only uint32 words (EOS included when accepting)."""
        if self._eos_done:
            return self._auto.eos_row
        return self._auto.mask(self._state)

    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        """Write the allowed next tokens into ``bitmask[row]`` (int32 words, bit i%32 of word i//32)."""
        rows = _buffers.rows(bitmask)
        src = self.mask_words().view(np.int32)
        width = rows.shape[1]
        if width == src.shape[0]:
            rows[row] = src
        elif width > src.shape[0]:
            rows[row, : src.shape[0]] = src
            rows[row, src.shape[0] :] = 0
        else:
            raise ValueError(f"bitmask has {width} words per row, the constraint needs {src.shape[0]}")

    def allowed_tokens(self) -> npt.NDArray[np.int64]:
        """Allowed next token ids, ascending (EOS ids included when the text is complete)."""
        words = np.ascontiguousarray(self.mask_words())
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[: self._auto.vocab_size]).astype(np.int64)

    def allows(self, token_id: int) -> bool:
        """Whether ``token_id`` is allowed next (one check, no mask: what rejection samplers use)."""
        if self._eos_done:
            return token_id in self._auto.eos_set
        if token_id in self._auto.eos_set:
            return self._auto.is_accepting(self._state)
        return self._auto.step(self._state, token_id) >= 0

    def allows_each(self, token_ids: Iterable[int] | None = None) -> npt.NDArray[np.bool_]:
        """:meth:`allows` for each of ``token_ids`` (None: every id of the vocabulary), checked by advancing
        each token, not read from the mask: the reference masks are tested against, batched where the
        automaton can (a grammar walks a whole vocabulary in one call)."""
        auto = self._auto
        ids = np.arange(auto.vocab_size, dtype=np.int64) if token_ids is None else \
            np.fromiter((int(t) for t in token_ids), np.int64)
        eos = np.isin(ids, np.fromiter(auto.eos_set, np.int64, len(auto.eos_set)))
        if self._eos_done:
            return eos
        out = np.zeros(len(ids), np.bool_)
        out[eos] = auto.is_accepting(self._state)
        out[~eos] = auto.steps_allowed(self._state, ids[~eos])
        return out

    # ------------------------------------------------------------------ moves
    def advance(self, token_id: int) -> bool:
        """Consume one token; False (state unchanged) if it is not allowed."""
        token_id = int(token_id)
        auto = self._auto
        if self._eos_done:
            if token_id not in auto.eos_set:
                return False
            nxt = self._state
        elif token_id in auto.eos_set:
            if not auto.is_accepting(self._state):
                return False
            nxt = self._state
        else:
            nxt = auto.step(self._state, token_id)
            if nxt < 0:
                return False
        self._history = (self._state, self._eos_done, self._history)
        self._state = nxt
        self._eos_done = self._eos_done or token_id in auto.eos_set
        self._n += 1
        return True

    def advance_many(self, token_ids: Iterable[int]) -> int:
        """Advance while tokens are allowed; return how many were accepted."""
        n = 0
        for t in token_ids:
            if not self.advance(t):
                break
            n += 1
        return n

    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` advances."""
        if n < 0 or n > self._n:
            raise ValueError(f"cannot roll back {n} tokens, {self._n} were advanced")
        for _ in range(n):
            assert self._history is not None
            self._state, self._eos_done, self._history = self._history
        self._n -= n

    def reset(self) -> None:
        """Back to the start of the constraint."""
        self.rollback(self._n)

    def fork(self) -> Matcher:
        """An independent matcher at the same position (O(1): the history is shared and immutable)."""
        m = Matcher.__new__(Matcher)
        m._auto = self._auto
        m._state = self._state
        m._eos_done = self._eos_done
        m._history = self._history
        m._n = self._n
        return m

    def forced_tokens(self) -> list[int]:
        """The tokens that are the only possible continuation from here, in order.

        Stops at the first position with a choice. If the text is complete and nothing but EOS can
        follow, the (first) EOS id ends the list.
        """
        if self._eos_done:
            return []
        auto = self._auto
        out: list[int] = []
        state = self._state
        for _ in range(_MAX_FORCED):
            n_text = auto.text_count(state)
            accepting = auto.is_accepting(state)
            if accepting and n_text == 0:
                if auto.eos_ids:
                    out.append(auto.eos_ids[0])
                break
            if accepting or n_text != 1:
                break
            words = np.ascontiguousarray(auto.mask(state))
            tok = int(np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little"))[0])
            out.append(tok)
            state = auto.step(state, tok)
        return out

    def accepts_text(self, text: str | bytes) -> bool:
        """Whether ``text`` (from the current position, ignoring tokenization) completes the constraint."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        s = self._auto.step_bytes(self._state, data)
        return s >= 0 and self._auto.is_accepting(s)
