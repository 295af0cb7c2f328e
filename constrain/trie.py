"""The token trie: every text token's bytes as a path from the root, in flat integer arrays.

Nodes are numbered in depth-first preorder with children in byte order, so a subtree is the index
range ``[node, subtree_end[node])``. A walk that rejects a node skips its subtree with one jump; no
child lists are needed. Tokens that end at a node are ``node_tokens[token_start[node]:token_start[node+1]]``
(several ids may share the same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from constrain.vocab import Vocabulary

I32 = npt.NDArray[np.int32]


@dataclass(frozen=True)
class TokenTrie:
    node_byte: npt.NDArray[np.uint8]
    """Label of the edge into each node (0 for the root)."""
    node_depth: I32
    subtree_end: I32
    """One past the last node of each node's subtree (preorder)."""
    token_start: I32
    """CSR offsets into ``node_tokens``, length ``n_nodes + 1``."""
    node_tokens: I32
    token_node: I32
    """Node at which each token id ends (-1 for ids that are not text)."""
    max_depth: int
    vocab_size: int
    node_key: I32
    """``depth << 8 | byte`` of each node: one load in the hottest walks."""
    node_token: I32
    """The token ending at each node: -1 none, -2 several (then see ``node_tokens``)."""
    subtree_height: I32
    """How many bytes the longest token below each node has past it (0 at leaves)."""
    root_child: I32
    """The root's child by byte (-1 for none): a path down the trie starts there, without a scan of the
    root's children (about 90 of them before a letter with Llama 3)."""

    @property
    def n_nodes(self) -> int:
        return int(self.node_byte.shape[0])

    @classmethod
    def build(cls, vocab: Vocabulary) -> TokenTrie:
        ids = [i for i, b in enumerate(vocab.token_bytes) if b]
        ids.sort(key=lambda i: vocab.token_bytes[i])
        blobs = [vocab.token_bytes[i] for i in ids]
        lengths = np.array([len(b) for b in blobs], dtype=np.int32)
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.frombuffer(b"".join(blobs), dtype=np.uint8) if blobs else np.zeros(0, np.uint8)
        max_nodes = int(lengths.sum()) + 1
        node_byte, node_depth, subtree_end, tok_node_sorted, n = _build(data, offsets, max_nodes)
        node_byte, node_depth, subtree_end = node_byte[:n], node_depth[:n], subtree_end[:n]
        token_node = np.full(vocab.size, -1, dtype=np.int32)
        id_arr = np.array(ids, dtype=np.int32)
        token_node[id_arr] = tok_node_sorted
        # CSR: tokens ending at each node, ids ascending
        order = np.lexsort((id_arr, tok_node_sorted))
        counts = np.bincount(tok_node_sorted, minlength=n).astype(np.int32)
        token_start = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=token_start[1:])
        node_token = np.full(n, -1, dtype=np.int32)
        single = counts == 1
        node_token[single] = id_arr[order][token_start[:-1][single]]
        node_token[counts > 1] = -2
        root_child = np.full(256, -1, dtype=np.int32)
        first = np.flatnonzero(node_depth == 1).astype(np.int32)
        root_child[node_byte[first]] = first
        return cls(
            root_child=root_child,
            subtree_height=_heights(node_depth, subtree_end),
            node_key=(node_depth.astype(np.int32) << 8) | node_byte.astype(np.int32),
            node_token=node_token,
            node_byte=node_byte,
            node_depth=node_depth,
            subtree_end=subtree_end,
            token_start=token_start,
            node_tokens=id_arr[order].astype(np.int32),
            token_node=token_node,
            max_depth=int(lengths.max()) if len(lengths) else 0,
            vocab_size=vocab.size,
        )


@numba.njit(cache=True, nogil=True)
def _build(data, offsets, max_nodes):  # type: ignore[no-untyped-def]
    """Insert byte strings sorted ascending; nodes come out in preorder."""
    node_byte = np.zeros(max_nodes, np.uint8)
    node_depth = np.zeros(max_nodes, np.int32)
    subtree_end = np.zeros(max_nodes, np.int32)
    n_tok = offsets.shape[0] - 1
    tok_node = np.zeros(n_tok, np.int32)
    path = np.zeros(max_nodes, np.int32)  # node at each depth of the current path
    path_len = 1  # root only
    n = 1
    prev_start = 0
    prev_len = 0
    for t in range(n_tok):
        start = offsets[t]
        length = offsets[t + 1] - start
        # common prefix with the previous string
        common = 0
        lim = min(length, prev_len)
        while common < lim and data[start + common] == data[prev_start + common]:
            common += 1
        # close nodes deeper than the common prefix
        while path_len - 1 > common:
            subtree_end[path[path_len - 1]] = n
            path_len -= 1
        for k in range(common, length):
            node_byte[n] = data[start + k]
            node_depth[n] = k + 1
            path[path_len] = n
            path_len += 1
            n += 1
        tok_node[t] = path[length]
        prev_start = start
        prev_len = length
    while path_len > 0:
        subtree_end[path[path_len - 1]] = n
        path_len -= 1
    return node_byte, node_depth, subtree_end, tok_node, n


@numba.njit(cache=True, nogil=True)
def _heights(node_depth, subtree_end):  # type: ignore[no-untyped-def]
    """The deepest node of each subtree, relative to its root (preorder: a subtree is an index range)."""
    n = node_depth.shape[0]
    deepest = node_depth.copy()
    for i in range(n - 1, -1, -1):  # children come after their parent: fold each range back to its root
        j = i + 1
        while j < subtree_end[i]:
            if deepest[j] > deepest[i]:
                deepest[i] = deepest[j]
            j = subtree_end[j]
    return (deepest - node_depth).astype(np.int32)
