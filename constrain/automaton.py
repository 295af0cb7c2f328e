"""Token-level automata: integer states, a cached allowed-token mask per state, a step per token.

A :class:`TokenAutomaton` is what a compiled constraint is for a given vocabulary. States are ints,
immutable and shareable, so matchers fork in O(1) and roll back by popping a stack. Two kinds exist:

* :class:`DFAAutomaton` (regular constraints): states are the states of a byte DFA; every state's mask
  is computed up front when it fits the memory budget (a lookup per step), else on first use.
* ``grammar.GrammarAutomaton`` (context-free constraints): states are discovered lazily.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from constrain.bitmask import bitmask_words
from constrain.fsm import ByteDFA
from constrain.token_walk import state_masks
from constrain.trie import TokenTrie
from constrain.vocab import Vocabulary

U32 = npt.NDArray[np.uint32]

EAGER_MASK_BUDGET_BYTES = 64 << 20
"""Masks of all DFA states are built at compile time when they fit in this many bytes."""


class TokenAutomaton(ABC):
    """The token-level view of a constraint for one vocabulary."""

    def __init__(self, vocab: Vocabulary, trie: TokenTrie) -> None:
        self.vocab = vocab
        self.trie = trie
        self.vocab_size = vocab.size
        self.words = bitmask_words(vocab.size)
        self.eos_ids = vocab.eos_token_ids
        self.eos_set = frozenset(vocab.eos_token_ids)
        eos_row = np.zeros(self.words, np.uint32)
        for e in self.eos_ids:
            eos_row[e >> 5] |= np.uint32(1 << (e & 31))
        self.eos_row = eos_row
        self._lock = threading.Lock()

    initial_state: int

    @abstractmethod
    def mask(self, state: int) -> U32:
        """Allowed tokens in ``state`` as uint32 words, EOS bits set iff the state is accepting. Read-only."""

    @abstractmethod
    def step(self, state: int, token: int) -> int:
        """The state after text token ``token``, or -1 if it is not allowed."""

    def steps_allowed(self, state: int, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether each text token of ``tokens`` may follow ``state``, each checked by :meth:`step`
        (automata with a cheaper batch form override this)."""
        return np.fromiter((self.step(state, int(t)) >= 0 for t in tokens), np.bool_, len(tokens))

    @abstractmethod
    def is_accepting(self, state: int) -> bool:
        """The text that led to ``state`` is in the language."""

    def text_count(self, state: int) -> int:
        """Number of allowed text (non-EOS) tokens in ``state``."""
        m = self.mask(state)
        n = int(np.bitwise_count(m).sum())
        if self.is_accepting(state):
            n -= len(self.eos_set)
        return n

    def step_bytes(self, state: int, data: bytes) -> int:
        """The state after raw bytes (ignoring token boundaries), or -1. Used to check texts."""
        raise NotImplementedError


class DFAAutomaton(TokenAutomaton):
    """A byte DFA lifted to tokens: state ``s`` allows token ``t`` iff ``t``'s bytes keep the DFA live."""

    def __init__(self, dfa: ByteDFA, vocab: Vocabulary, trie: TokenTrie) -> None:
        super().__init__(vocab, trie)
        self.dfa = dfa
        self.initial_state = 0
        self._trans = dfa.trans
        self._accepting = dfa.accepting
        self._token_bytes = vocab.token_bytes
        n = dfa.n_states
        self._masks: dict[int, U32] = {}
        self._all: U32 | None = None
        if n * self.words * 4 <= EAGER_MASK_BUDGET_BYTES:
            all_masks = state_masks(dfa, trie, np.arange(n, dtype=np.int32), self.words)
            acc = np.flatnonzero(dfa.accepting)
            all_masks[acc] |= self.eos_row
            all_masks.setflags(write=False)
            self._all = all_masks
        self._step_cache: dict[tuple[int, int], int] = {}

    def mask(self, state: int) -> U32:
        if self._all is not None:
            return self._all[state]
        m = self._masks.get(state)
        if m is None:
            m = state_masks(self.dfa, self.trie, np.array([state], np.int32), self.words)[0]
            if self._accepting[state]:
                m |= self.eos_row
            m.setflags(write=False)
            with self._lock:
                self._masks[state] = m
        return m

    def step(self, state: int, token: int) -> int:
        key = (state, token)
        nxt = self._step_cache.get(key)
        if nxt is not None:
            return nxt
        if not 0 <= token < len(self._token_bytes):
            return -1
        data = self._token_bytes[token]
        if not data:
            return -1
        trans = self._trans
        s = state
        for b in data:
            s = int(trans[s, b])
            if s < 0:
                break
        if len(self._step_cache) < 1_000_000:
            self._step_cache[key] = s
        return s

    def step_bytes(self, state: int, data: bytes) -> int:
        return self.dfa.run(data, state)

    def is_accepting(self, state: int) -> bool:
        return bool(self._accepting[state])
