"""Numba walks of the token trie through byte DFAs: the hot loops of DFA-backed constraints.

All functions take plain integer arrays (see ``trie.TokenTrie`` and ``fsm.ByteDFA``), run without the
GIL, and are compiled once and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from constrain.fsm import ByteDFA
from constrain.trie import TokenTrie

U32 = npt.NDArray[np.uint32]


@numba.njit(cache=True, nogil=True)
def _walk_states(trans, starts, node_byte, node_depth, subtree_end, token_start, node_tokens, max_depth, out):  # type: ignore[no-untyped-def]
    """For each start state, set in ``out[k]`` the bit of every token whose bytes stay live in the DFA."""
    n_nodes = node_byte.shape[0]
    stack = np.empty(max_depth + 1, np.int32)
    for k in range(starts.shape[0]):
        stack[0] = starts[k]
        row = out[k]
        i = 1
        while i < n_nodes:
            d = node_depth[i]
            s = trans[stack[d - 1], node_byte[i]]
            if s < 0:
                i = subtree_end[i]
                continue
            stack[d] = s
            for j in range(token_start[i], token_start[i + 1]):
                t = node_tokens[j]
                row[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            i += 1


def state_masks(dfa: ByteDFA, trie: TokenTrie, states: npt.NDArray[np.int32], words: int) -> U32:
    """Allowed-token bitmask rows (text tokens only, no EOS) for the given DFA states."""
    out = np.zeros((len(states), words), dtype=np.uint32)
    if dfa.n_states and len(states):
        _walk_states(
            dfa.trans, np.ascontiguousarray(states, dtype=np.int32), trie.node_byte, trie.node_depth,
            trie.subtree_end, trie.token_start, trie.node_tokens, trie.max_depth, out,
        )
    return out


@numba.njit(cache=True, nogil=True)
def run_bytes(trans, state, data):  # type: ignore[no-untyped-def]
    """The DFA state after ``data`` (uint8 array) from ``state``, or -1."""
    for b in data:
        state = trans[state, b]
        if state < 0:
            return -1
    return state
