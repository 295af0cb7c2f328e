"""Context-free constraints as lazily built token automata.

A state is an interned set of lexer threads (parser column, lexer state), at most one per lexer state
of a parsed terminal (threads that differ only in their column share the union of the columns: see
:meth:`GrammarAutomaton._merged`); see :mod:`grammar_walk`. The allowed tokens of a state are the
union, over its threads, of

* ``inside[g]``: tokens that stay inside the current lexeme (they depend on the lexer state only, and
  only on what it does with strings no longer than the longest token: they are computed once per such
  language and shared by every grammar compiled for the vocabulary: JSON strings, numbers and
  whitespace are computed once for all schemas, and "at most 300 more characters" once with "any");
* ``cross[g, E]``: tokens that end the lexeme inside them and go on inside one next lexeme, where
  ``E`` is the set of terminals the parser expects after it (cached per pair; the part of an
  identifier-like terminal of ``E`` is kept on its own and shared by every set that holds it);
* the rare tokens that cross two or more lexeme boundaries, walked through the trie with the parser
  (skipping the subtrees whose tokens a thread's lexeme already keeps inside).

Masks are cached per state, so repeated structure (the tenth element of a list) costs a lookup.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from constrain.automaton import TokenAutomaton
from constrain.earley import UNKNOWN, EarleyParser, _grown
from constrain.errors import LimitError
from constrain.fsm import (
    ByteDFA,
    bounded_language_key,
    joint_classes,
    length_classes,
    literal_dfa,
    literal_of,
    state_prefix_key,
)
from constrain.grammar_tables import GrammarTables, follow_bytes
from constrain.grammar_walk import (
    MAX_MISSES,
    REFRESH,
    boundary_exits,
    covers_after_ignored,
    cross_exits,
    cross_walk,
    dead_roots,
    derived_exits,
    lexeme_diff_walk,
    lexeme_digest,
    lexeme_walk,
    literal_lexeme,
    merged_boundaries,
    spawn_lists,
    walk_buffer_size,
    walk_bytes,
    walk_jobs,
    walk_tokens_ok,
)
from constrain.observed_masks import LOG_CAPACITY, MATCH, MISS, ObservedMasks, observation, replay
from constrain.trie import TokenTrie
from constrain.vocab import Vocabulary

U32 = npt.NDArray[np.uint32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

MAX_THREADS = 4096
"""Lexer threads one state may hold (ambiguous grammars); walks start with room for ``_CAP0`` per byte."""
_CAP0 = 32
_MAX_RESUMES = 512
_MAX_ADVANCED = 1 << 20
"""Parser answers a grammar keeps in a Python dict (the parser's own memo is a numba table: slower to ask)."""
_MAX_SECOND_LEVEL_NODES = 30_000
"""Past this many trie nodes below second lexeme boundaries, a thread's tokens are walked exactly instead."""
MASK_CACHE_BYTES = 256 << 20
_MIN_SPLIT_VISITED = 10_000
"""Next terminals whose lexemes, from their start, visit at least this many trie nodes (identifiers) are
crossed into on their own, the crossing kept by content and reused by every expected set that holds them
(see :meth:`GrammarAutomaton._split_cross`)."""
_MAX_COVER_PAIRS = 4096
"""State pairs one check of :meth:`GrammarAutomaton._drop_covered` may explore before it keeps the thread."""
_MAX_BOUNDARIES = 1 << 16
"""Past this many lexeme boundaries in the trie, a lexer state's cross masks come from one whole walk."""
_MAX_PREFIX_PAIRS = 2048
"""Past this many (state, depth) pairs, a lexer state is keyed by its whole language instead."""
_WHOLE_KEY_STATES = 512
"""Lexer states that reach at most this many states are keyed by their whole language (see ``lex_key``)."""
_MAX_STATE_KEYS = 1 << 20
_MAX_DIFF_STATES = 1024
"""Terminal DFAs up to this size have their lexemes walked from a known one's where they can."""
_BASES_PER_SIGNATURE = 2
_MAX_BASES = 4096
"""First-byte signatures kept with their recent lexemes (see ``SharedMasks._walk``)."""
_MAX_UNHASHED_DFAS = 4096
"""DFAs remembered as too large to hash their states' cut languages (see ``SharedMasks.state_key``)."""
_DIFF_BUDGET = 1 << 15
"""Trie nodes a walk from a known lexeme may visit before it gives up for a whole walk."""
_MAX_DIFF_FAILURES = 2
"""Walks from one DFA's lexemes to another's are no longer tried after this many gave up."""
_MIN_DIFF_VISITED = 20_000
"""Lexemes whose whole walk visits fewer trie nodes are walked whole (comparing languages costs more)."""
_MIN_SKIP_VISITED = 20_000
"""Exact walks skip the subtrees that their largest lexeme covers (:func:`grammar_walk.dead_roots`) when
its walk visited at least this many trie nodes (a comment, a string, an identifier); smaller ones cover
too little to pay for their list."""
_MAX_DEAD_ROOTS = 1 << 18
_MAX_CLASS_BYTES = 64 << 20
_MAX_LENGTH_CLASS_STATES = 8192
"""DFAs up to this size have their lexemes walked from each other's (classes by length: one row of
``max_depth`` per state)."""


LexKey = tuple[int, int, int]
"""A lexer state by content: ``(depth, h1, h2)``, the hash of its language cut to strings of at most
``depth`` bytes, the trie's depth (:func:`fsm.state_prefix_key`), or ``depth == 0`` and the hash of the
whole language (:func:`fsm.bounded_language_key`) where its minimal DFA is small (hashing the cut would
cost more than it could share), ``(-1, DFA content hash, state)`` where both would be too large to
hash (then for every state of that DFA: see :meth:`SharedMasks.state_key`), or ``(-2, hash, length)`` of
the rest of a literal (see :func:`lex_key`)."""
_DFA_STATE_KEY = -1
_LITERAL_KEY = -2
CrossKey = tuple[LexKey, tuple[tuple[str, bool], ...]]
"""A lexer state by content and the next lexemes' terminals by content (DFA hash, ignored?), in a
canonical order."""


class SharedCross(NamedTuple):
    """A cross mask by content (see :data:`CrossKey`): the tokens that end the lexeme inside them and go on
    inside one next lexeme, with the lexeme's inside mask (None: too many overlapping lexemes to cache, walk
    the thread exactly); the terminals (positions in the :data:`CrossKey`'s list) whose lexemes may end
    inside a token with more bytes to come; and for each trie node where one does, its terminal (an index
    into ``term_pos``) and the walk of the tokens below it (the node's depth, first and end node)."""

    mask: U32 | None
    term_pos: I64
    term_of_node: I64
    node_depth: I64
    first: I64
    end: I64


class _Crossing(NamedTuple):
    """A crossing as walked (see :class:`SharedCross`): its mask (None: walk the thread exactly), the trie
    nodes of its second boundaries and their terminals, and its two costs."""

    mask: U32 | None
    nodes: I64
    terms: I64
    walked: int
    below: int


class _CrossEntry(NamedTuple):
    """A :class:`SharedCross` in one grammar's numbering: ``terms`` are its terminals."""

    shared: SharedCross
    terms: list[int]


class _SpawnSet(NamedTuple):
    """The next lexemes a cross mask starts: spawn lists ``start[set_id * 256 + b]`` into ``gs`` (see
    :mod:`grammar_walk`), the terminals in canonical order (``order``, ``position``) and by content."""

    start: I64
    gs: I64
    set_id: int
    order: I64
    position: dict[int, int]
    content: tuple[tuple[str, bool], ...]


class Lexeme(NamedTuple):
    """What a lexer state gives every grammar: the tokens that stay inside its lexeme, the trie nodes
    where the lexeme may end with more bytes to come (``None``: too many to list), and the trie nodes
    its walk visited; for a lexeme walked from a known one, that one's key and the boundaries it lost and
    gained (its exits are the known one's, changed there: see :meth:`SharedMasks.exits`)."""

    inside: U32
    boundaries: I32 | None
    visited: int
    origin: tuple[LexKey, I32, I32] | None = None


class SharedMasks:
    """Per-vocabulary caches shared by every grammar: lexer states keyed by their language (:data:`LexKey`),
    and cross masks keyed by content (:data:`CrossKey`): JSON schemas all end a string with the same
    quote and go on with the same commas and braces. Both are bounded in bytes (oldest entries go first).

    States whose lexemes walk the trie alike share one entry even when their languages differ (a
    property-name string that must not be ``"$schema"`` walks like any string: no token spells that
    name and its quote): each new lexeme's result is hashed and its key aliased to the first key with
    that result, so cross masks keyed by it are shared too. A new lexeme is walked from a known one with
    the same first bytes (:func:`grammar_walk.lexeme_diff_walk`) where that is cheaper."""

    def __init__(self, trie: TokenTrie, words: int, max_bytes: int = 512 << 20) -> None:
        self.trie = trie
        self.words = words
        self._lexemes: OrderedDict[LexKey, Lexeme] = OrderedDict()
        self._cross: OrderedDict[CrossKey, SharedCross] = OrderedDict()
        self._parts: OrderedDict[Any, _Crossing] = OrderedDict()  # see GrammarAutomaton._split_cross
        self._dead: OrderedDict[LexKey, tuple[I32 | None]] = OrderedDict()  # see dead()
        self._exits: OrderedDict[LexKey, tuple[I64, I32]] = OrderedDict()  # see exits()
        self._state_keys: OrderedDict[tuple[str, int], LexKey] = OrderedDict()  # (terminal DFA, state)
        self._unhashed_dfas: set[str] = set()  # DFAs whose states are keyed by the DFA and the state
        self._alias: dict[LexKey, LexKey] = {}  # key -> the first key whose lexeme had the same result
        self._by_result: dict[tuple[int, int, bool], LexKey] = {}
        self._bases: dict[bytes, list[tuple[ByteDFA, int, LexKey]]] = {}  # first bytes -> recent lexemes
        # classes for walks from one DFA's lexemes to another's (see _classes_for)
        self._classes: OrderedDict[tuple[str, str], tuple[I32, int, list[int]]] = OrderedDict()
        self._class_bytes = 0
        self._last_of_dfa: dict[str, tuple[int, LexKey]] = {}  # DFA -> its last lexeme walked
        # lexemes (by key) whose crossings did not pay in one form: see GrammarAutomaton._cross_mask and
        # _compute_cross (a guess, never a result: either form gives the same tokens)
        self.all_follow_failed: set[LexKey] = set()
        self.exits_gave_up: set[LexKey] = set()
        self._bytes = [0, 0, 0]  # held by lexemes, by cross masks, by their parts
        self._max_bytes = [max_bytes // 2, max_bytes // 2, max_bytes // 16]  # parts: a few per lexer state
        self._lock = threading.Lock()

    def state_key(self, dfa: ByteDFA, state: int) -> LexKey:
        """The :data:`LexKey` of ``state`` of a terminal's DFA, computed once per DFA content and state."""
        cache_key = (dfa.key, state)
        key = self._state_keys.get(cache_key)
        if key is None:
            key = lex_key(dfa, state, self.trie.max_depth, dfa.key not in self._unhashed_dfas)
            with self._lock:
                if key[0] == _DFA_STATE_KEY:
                    # its other states' cut languages are not hashed either: each attempt cost about 0.3 ms,
                    # and on every 20th MaskBench schema every attempt after a first failure on a DFA failed
                    if len(self._unhashed_dfas) > _MAX_UNHASHED_DFAS:
                        self._unhashed_dfas.clear()
                    self._unhashed_dfas.add(dfa.key)
                self._state_keys[cache_key] = key
                if len(self._state_keys) > _MAX_STATE_KEYS:
                    self._state_keys.popitem(last=False)
        return key

    def lexeme(self, key: LexKey, dfa: ByteDFA, state: int) -> tuple[LexKey, Lexeme]:
        """The lexeme of ``state`` of a terminal's DFA (whose :meth:`state_key` is ``key``), and the key it
        is kept under (the same for every state whose walk gives the same result)."""
        canon = self._alias.get(key, key)
        lex = self._lexemes.get(canon)
        if lex is not None:
            return canon, lex
        literal = literal_of(dfa) if key[0] == _LITERAL_KEY else None
        signature: bytes | None = None
        if literal is not None:  # a path down the trie, never a base for others (it visits too few nodes)
            lex, result = _literal_lexeme(literal[state:], self.trie, self.words)
        else:
            signature = _first_bytes(dfa, state) if dfa.n_states <= _MAX_DIFF_STATES else None
            lex = self._walk(dfa, state, signature)
            result = _result_hash(lex)
        with self._lock:
            if len(self._alias) > _MAX_STATE_KEYS or len(self._bases) > _MAX_BASES:
                # aliases, bases and guesses only save work: forget them all (bases hold their DFAs' tables)
                self.all_follow_failed.clear()
                self.exits_gave_up.clear()
                self._alias.clear()
                self._by_result.clear()
                self._bases.clear()
                self._last_of_dfa.clear()
            canon = self._by_result.setdefault(result, key)
            self._alias[key] = canon
        self._put(self._lexemes, 0, canon, lex)
        if lex.boundaries is not None and literal is None:
            self._last_of_dfa[dfa.key] = (state, canon)
        if lex.boundaries is not None and signature is not None:
            with self._lock:
                bases = self._bases.setdefault(signature, [])
                bases.insert(0, (dfa, state, canon))
                del bases[_BASES_PER_SIGNATURE:]
        return canon, lex

    def _walk(self, dfa: ByteDFA, state: int, signature: bytes | None) -> Lexeme:
        """A new lexeme's walk: from a known lexeme of the same DFA (a string with a few more or fewer
        characters to go) or with the same first bytes (``signature``, None for DFAs too large to compare),
        where that is cheap; else whole."""
        same = self._last_of_dfa.get(dfa.key)
        if same is not None and dfa.n_states <= _MAX_LENGTH_CLASS_STATES:
            base = self._lexemes.get(same[1])
            if base is not None and base.boundaries is not None and base.visited >= _MIN_DIFF_VISITED:
                lex = self._diff_walk(dfa, state, dfa, same[0], base, same[1])
                if lex is not None:
                    return lex
        if signature is not None:
            for base_dfa, base_state, base_key in list(self._bases.get(signature, ())):
                base = self._lexemes.get(base_key)
                if base is None or base.boundaries is None or base.visited < _MIN_DIFF_VISITED or base_dfa is dfa:
                    continue
                lex = self._diff_walk(dfa, state, base_dfa, base_state, base, base_key)
                if lex is not None:
                    return lex
        return _lexeme(dfa.trans, dfa.accepting, state, self.trie, self.words)

    def _classes_for(self, dfa: ByteDFA, base_dfa: ByteDFA) -> tuple[I32, int, list[int]]:
        """Classes by length for :func:`grammar_walk.lexeme_diff_walk` (of one DFA's states, or of two DFAs'
        together), the offset of the base DFA's states in them, and how many walks with them gave up."""
        pair = (dfa.key, base_dfa.key)
        known = self._classes.get(pair)
        if known is None:
            if dfa.key == base_dfa.key:
                classes = length_classes(dfa.runs, dfa.accepting, self.trie.max_depth)
                known = (classes, 0, [0])
            else:
                classes = joint_classes(dfa.runs, dfa.accepting, base_dfa.runs, base_dfa.accepting,
                                        self.trie.max_depth)
                known = (classes, dfa.n_states, [0])
            with self._lock:
                self._classes[pair] = known
                self._class_bytes += known[0].nbytes
                while self._class_bytes > _MAX_CLASS_BYTES and len(self._classes) > 1:
                    self._class_bytes -= self._classes.popitem(last=False)[1][0].nbytes
        return known

    def _diff_walk(self, dfa: ByteDFA, state: int, base_dfa: ByteDFA, base_state: int, base: Lexeme,
                   base_key: LexKey) -> Lexeme | None:
        classes, offset, failures = self._classes_for(dfa, base_dfa)
        if classes.size == 0 or failures[0] >= _MAX_DIFF_FAILURES:  # empty: a DFA without states
            return None
        assert base.boundaries is not None
        trie = self.trie
        inside = base.inside.copy()
        added = np.empty(4096, np.int32)
        removed = np.empty(4096, np.int32)
        n_add, n_rem = lexeme_diff_walk(state, dfa.trans, dfa.accepting, base_state, base_dfa.trans,
                                        base_dfa.accepting, classes, offset, trie.node_key, trie.node_token,
                                        trie.subtree_end, trie.subtree_height, trie.token_start, trie.node_tokens,
                                        trie.max_depth, inside, added, removed, min(base.visited // 8, _DIFF_BUDGET))
        if n_add < 0:  # the two differ too much (say, strings of at most 7 and at most 90 more characters)
            if dfa.key != base_dfa.key:  # within one DFA the next base is closer: keep trying
                failures[0] += 1
            return None
        boundaries = base.boundaries
        if n_rem or n_add:
            boundaries = merged_boundaries(boundaries, removed[:n_rem], added[:n_add])
        inside.setflags(write=False)
        if len(boundaries) > _MAX_BOUNDARIES:
            return Lexeme(inside, None, base.visited)
        return Lexeme(inside, boundaries, base.visited, (base_key, removed[:n_rem].copy(), added[:n_add].copy()))

    def dead(self, key: LexKey, dfa: ByteDFA, state: int) -> I32 | None:
        """:func:`grammar_walk.dead_roots` of a lexer state whose lexeme is kept under ``key`` (a function of
        its inside mask, so shared like it), or None when there are too many to list."""
        hit = self._dead.get(key)
        if hit is not None:
            return hit[0]
        out = np.empty(_MAX_DEAD_ROOTS, np.int32)
        trie = self.trie
        n = dead_roots(state, dfa.trans, trie.node_key, trie.subtree_end, trie.max_depth, out)
        roots = out[:n].copy() if n >= 0 else None
        if roots is not None:
            roots.setflags(write=False)
        self._put(self._dead, 0, key, (roots,))
        return roots

    def exits(self, key: LexKey, lex: Lexeme) -> tuple[I64, I32]:
        """:func:`grammar_walk.boundary_exits` of the lexeme kept under ``key`` (which has boundaries): listed
        at its first crossing, which goes through them, and kept for the next ones."""
        hit = self._exits.get(key)
        if hit is not None:
            return hit
        assert lex.boundaries is not None
        trie = self.trie
        value: tuple[I64, I32] | None = None
        if lex.origin is not None:  # the known lexeme's exits, less those of lost boundaries, plus the gained
            base_key, removed, added = lex.origin
            base = self._lexemes.get(base_key)
            if base is not None and base.boundaries is not None:
                start, node = self.exits(base_key, base)
                value = derived_exits(start, node, removed, added, trie.node_byte, trie.subtree_end,
                                      _node_marks(len(trie.node_byte)))
        if value is None:
            value = boundary_exits(lex.boundaries, trie.node_byte, trie.subtree_end)
        self._put(self._exits, 0, key, value)
        return value

    def cross(self, key: CrossKey) -> SharedCross | None:
        return self._cross.get(key)

    def put_cross(self, key: CrossKey, value: SharedCross) -> None:
        self._put(self._cross, 1, key, value)

    def part(self, key: Any) -> _Crossing | None:
        """A crossing into one terminal, a part of others (see :meth:`GrammarAutomaton._split_cross`)."""
        return self._parts.get(key)

    def put_part(self, key: Any, value: _Crossing) -> None:
        self._put(self._parts, 2, key, value)

    def _put(self, cache: OrderedDict[Any, Any], which: int, key: Any, value: tuple[Any, ...]) -> None:
        with self._lock:
            if key in cache:
                return
            cache[key] = value
            self._bytes[which] += _nbytes(value)
            while self._bytes[which] > self._max_bytes[which] and len(cache) > 1:
                _, old = cache.popitem(last=False)
                self._bytes[which] -= _nbytes(old)


def _first_bytes(dfa: ByteDFA, state: int) -> bytes:
    """What a lexer state does with one byte (which bytes go on, and whether it accepts): states alike in
    this are tried as each other's bases for :func:`grammar_walk.lexeme_diff_walk`."""
    return bytes([bool(dfa.accepting[state])]) + np.packbits(dfa.trans[state] >= 0).tobytes()


def _result_hash(lex: Lexeme) -> tuple[int, int, bool]:
    """A content hash of a lexeme walk's result (:func:`grammar_walk.lexeme_digest`; whether the
    boundaries are listed at all is part of the result)."""
    listed = lex.boundaries is not None
    h1, h2 = lexeme_digest(lex.inside, lex.boundaries if lex.boundaries is not None else _NO_BOUNDARIES)
    return int(h1), int(h2), listed


_NO_BOUNDARIES = np.zeros(0, np.int32)


def lex_key(dfa: ByteDFA, state: int, depth: int, cut: bool = True) -> LexKey:
    """See :data:`LexKey`. Terminal DFAs are minimal, so how many states ``state`` reaches is a property of
    its language: languages of up to ``_WHOLE_KEY_STATES`` states take the whole-language hash (cheaper
    than the cut one unless the automaton is a long counter), the same from any DFA; larger ones the hash
    of the language cut at ``depth`` (unless ``cut`` is false), and where that is too large too, the DFA's
    content key and the state. A state of a literal's chain (every property name of a schema) is keyed by
    the rest of the literal, without a walk of its DFA.
    (Hashing the whole language there cost 0.7 ms at the median over MaskBench, 10 ms for a 34,000-state
    pattern DFA, on top of 0.35 ms for the two attempts before it, and more than most walks it keys: such
    DFAs are a schema's own patterns and formats, the same table wherever they recur.)"""
    literal = literal_of(dfa)
    if literal is not None:  # a literal's chain: the rest of the literal is the language
        rest = literal[state:]
        return (_LITERAL_KEY, _digest64(rest), len(rest))
    trans, accepting = dfa.trans, dfa.accepting
    h1, h2, n = bounded_language_key(trans, accepting, state, _WHOLE_KEY_STATES)
    if n <= _WHOLE_KEY_STATES:
        return (0, int(h1), int(h2))
    if cut:
        h1, h2, ok = state_prefix_key(trans, accepting, state, depth, _MAX_PREFIX_PAIRS)
        if ok:
            return (depth, int(h1), int(h2))
    return (_DFA_STATE_KEY, _digest64(dfa.key.encode()), state)


def _digest64(data: bytes) -> int:
    """A 64-bit digest of ``data``, the same in every process (``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _joined(parts: list[I64]) -> I64:
    """The parts end to end (the one part itself, uncopied, when there is one: most masks have one)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _nbytes(value: tuple[Any, ...]) -> int:
    return sum(int(x.nbytes) for x in value if isinstance(x, np.ndarray)) + 64


def _lexeme(gtrans: I32, gacc: npt.NDArray[np.bool_], g: int, trie: TokenTrie, words: int) -> Lexeme:
    """The lexeme of global lexer state ``g``, walked whole, once: with room for every boundary that is kept
    (uninitialised memory costs nothing to get; an identifier's ~46,000 boundaries took three walks while
    the room grew by fours from 4,096)."""
    inside = np.zeros(words, np.uint32)
    boundaries = np.empty(_MAX_BOUNDARIES, np.int32)
    visited = np.zeros(1, np.int64)
    n = lexeme_walk(g, gtrans, gacc, trie.node_key, trie.node_token, trie.subtree_end, trie.token_start,
                    trie.node_tokens, trie.max_depth, inside, boundaries, visited)
    inside.setflags(write=False)
    return Lexeme(inside, boundaries[:n].copy() if n >= 0 else None, int(visited[0]))


def _literal_lexeme(rest: bytes, trie: TokenTrie, words: int) -> tuple[Lexeme, tuple[int, int, bool]]:
    """The lexeme of a literal's state with ``rest`` to read (:func:`grammar_walk.literal_lexeme`), and its
    result's key for :meth:`SharedMasks.lexeme`: the path's last node and the boundary count determine the
    result, so they stand for it without hashing the mask (negative, apart from every digest)."""
    inside = np.zeros(words, np.uint32)
    boundaries = np.empty(1, np.int32)
    nb, visited, node = 0, 0, 0
    if rest:
        nb, visited, node = literal_lexeme(np.frombuffer(rest, np.uint8), trie.root_child, trie.node_key,
                                           trie.node_token, trie.subtree_end, trie.token_start, trie.node_tokens,
                                           inside, boundaries)
    inside.setflags(write=False)
    return Lexeme(inside, boundaries[:nb].copy(), int(visited)), (-1 - int(node), int(nb), True)


_EPS_DFA = ByteDFA(np.full((1, 256), -1, np.int32), np.ones(1, np.bool_))
"""The empty lexeme's one state (a grammar's ``eps_state``)."""


class GrammarAutomaton(TokenAutomaton):
    """Token-level automaton of a grammar (see the module docstring)."""

    def __init__(self, tables: GrammarTables, vocab: Vocabulary, trie: TokenTrie, shared: SharedMasks,
                 reuse_masks: bool = True, observe_after: int = 0) -> None:
        """``reuse_masks``: look new states' masks up by replaying past computations (:mod:`observed_masks`);
        ``observe_after``: fresh masks computed before the first lookup (where states seldom recur with new
        parser columns, as in most JSON schemas, observing the first ones costs more than it finds)."""
        super().__init__(vocab, trie)
        self.tables = tables
        self.parser = EarleyParser(tables)
        self.shared = shared
        self._gtrans = tables.global_trans
        self._gacc = tables.global_accept
        self._gterm = tables.global_term.astype(np.int64)
        self._tignore = tables.term_ignore
        self._tignore_list: list[bool] = self._tignore.tolist()
        self._gterm_list: list[int] = self._gterm.tolist()
        self._gacc_list: list[bool] = self._gacc.tolist()
        self._advanced: dict[int, int] = {}  # column * n_terms1 + terminal -> the parser's answer
        self._n_terms1 = tables.n_terms + 1
        self._term_start = tables.term_offset[:-1].astype(np.int64)
        self._ignore_set = {t for t in range(tables.n_terms) if tables.term_ignore[t]}
        self._ignore_start_set = {int(self._term_start[t]) for t in self._ignore_set}
        self._ignore_starts = np.array(sorted(self._ignore_start_set), np.int64)
        # spawn lists per (expected-set id, first byte), grown as the parser interns new expected sets
        self._eid_sets: list[npt.NDArray[np.int64]] = []
        self._eid_content: list[tuple[tuple[str, bool], ...]] = []  # the terminals of each set, by content
        self._eid_terms: list[dict[int, int]] = []  # terminal -> its position in that content list
        self._eid_order: list[I64] = []  # position -> terminal
        self._eid_start_buf = np.zeros(1 + 256 * 16, np.int64)
        self._eid_gs_buf = np.zeros(1024, np.int64)
        self._eid_start = self._eid_start_buf[:1]  # see grammar_walk
        self._eid_gs = self._eid_gs_buf[:0]
        self._term_start_list: list[int] = self._term_start.tolist()
        self._term_content = [(dfa.key, bool(ign)) for dfa, ign in zip(tables.term_dfas, self._tignore.tolist())]
        self._write = threading.RLock()
        # states
        self._states: list[tuple[I64, I64]] = []
        self._state_ids: dict[bytes, int] = {}
        self._accepting: list[bool] = []
        self._masks: OrderedDict[int, U32] = OrderedDict()
        self._mask_cap = max(64, MASK_CACHE_BYTES // (4 * self.words))
        self._cross: dict[tuple[int, int, frozenset[int]], _CrossEntry] = {}
        self._covers: dict[tuple[int, int, int], bool] = {}  # see _drop_covered
        self._cover_sets: dict[tuple[int, int, tuple[int, ...]], tuple[frozenset[int], bool]] = {}
        self._all_follow = np.ones((tables.n_terms + 1, 256), np.bool_)  # no follow check (see _cross_mask)
        self._follow: npt.NDArray[np.bool_] | None = None
        self._follow_key: list[bytes] = []
        self._lexeme_of: dict[int, tuple[LexKey, Lexeme]] = {}  # global lexer state -> see _lexeme
        self._is_big: dict[int, bool] = {}  # terminal -> see _big_terms
        self._steps: dict[int, int] = {}  # state * n_tokens + token (ints: nothing for the GC to track)
        self._observed = ObservedMasks(max_bytes=(64 << 20) if reuse_masks else 0, observe_after=observe_after)
        self._cap = _CAP0  # threads per byte the walks start with: what this grammar's walks needed so far
        self._sync_eids()
        _load_mask_kernels(self)
        init = self._intern(np.array([self.parser.initial], np.int64), np.array([tables.eps_state], np.int64))
        self.initial_state = init

    def precompute_lexemes(self, budget_s: float) -> int:
        """Walk the lexemes of this grammar's lexer states now, nearest a terminal's start first, until
        ``budget_s`` seconds are spent; return how many states have theirs. They depend on no parse
        context, so a mask that meets a state later finds its lexeme done (most of a small grammar's
        first masks was these walks: a character-level lexer state costs a walk of the whole trie).
        States past the budget are walked on first use, as before."""
        deadline = time.perf_counter() + budget_s
        done = 0
        for g in self._states_by_depth().tolist():
            if time.perf_counter() > deadline:
                break
            self._lexeme(g)
            done += 1
        return done

    def _states_by_depth(self) -> I64:
        """Every global lexer state but the empty lexeme's, in order of its distance from a terminal's
        start state (breadth first, all terminals at once)."""
        trans = self._gtrans
        seen = np.zeros(trans.shape[0], np.bool_)
        seen[self.tables.eps_state] = True
        frontier = np.unique(self._term_start)
        frontier = frontier[frontier != self.tables.eps_state]
        order: list[I64] = []
        while len(frontier):
            seen[frontier] = True
            order.append(frontier)
            nxt = np.unique(trans[frontier])
            nxt = nxt[nxt >= 0]
            frontier = nxt[~seen[nxt]].astype(np.int64)
        return np.concatenate(order) if order else _NO_NODES

    def _lexeme(self, g: int) -> tuple[LexKey, Lexeme]:
        """The shared lexeme of global lexer state ``g`` and the key it is kept under (kept here too: a
        grammar's lexer states are few, and their lexemes shared with every other grammar)."""
        hit = self._lexeme_of.get(g)
        if hit is not None:
            return hit
        t = int(self._gterm[g])
        dfa, state = _EPS_DFA, 0
        if t < self.tables.n_terms:
            dfa, state = self.tables.term_dfas[t], g - int(self._term_start[t])
        key, lex = self.shared.lexeme(self.shared.state_key(dfa, state), dfa, state)
        self._lexeme_of[g] = (key, lex)
        return key, lex

    def _dead_roots(self, g: int) -> I32 | None:
        """:meth:`SharedMasks.dead` of global lexer state ``g``."""
        t = int(self._gterm[g])
        if t >= self.tables.n_terms:
            return None
        key = self._lexeme(g)[0]
        return self.shared.dead(key, self.tables.term_dfas[t], g - int(self._term_start[t]))

    # ------------------------------------------------------------------ parser mirror
    def _sync_eids(self) -> None:
        """Spawn lists for the parser's new expected-terminal sets (what a lexeme boundary starts)."""
        if self.parser.n_eids <= len(self._eid_sets):
            return
        with self._write:
            while len(self._eid_sets) < self.parser.n_eids:
                self._add_eid(self.parser.expected_of_eid(len(self._eid_sets)))

    def _add_eid(self, expected: tuple[int, ...]) -> None:
        starts = np.array(sorted({self._term_start_list[t] for t in expected} | self._ignore_start_set), np.int64)
        gs = np.empty(256 * len(starts), np.int64)
        e = len(self._eid_sets)
        n_gs = int(self._eid_start[-1])
        # appended in place past the published views (walks read those), into new buffers when full
        if (e + 1) * 256 + 1 > len(self._eid_start_buf):
            self._eid_start_buf = _grown(self._eid_start_buf, 2 * ((e + 1) * 256 + 1))
        n = spawn_lists(self._gtrans, starts, n_gs, self._eid_start_buf[e * 256 + 1 : (e + 1) * 256 + 1], gs)
        if n_gs + n > len(self._eid_gs_buf):
            self._eid_gs_buf = _grown(self._eid_gs_buf, 2 * (n_gs + n))
        self._eid_gs_buf[n_gs : n_gs + n] = gs[:n]
        terms = sorted(set(expected) | self._ignore_set, key=self._term_content.__getitem__)
        self._eid_content.append(tuple(self._term_content[t] for t in terms))
        self._eid_terms.append({t: i for i, t in enumerate(terms)})
        self._eid_order.append(np.array(terms, np.int64))
        self._eid_gs = self._eid_gs_buf[: n_gs + n]
        # published last: walks check their eid against its length
        self._eid_start = self._eid_start_buf[: (e + 1) * 256 + 1]
        self._eid_sets.append(starts)

    def _col_eid(self, column: int) -> int:
        e = self.parser.eid(column)
        if e >= len(self._eid_sets):
            self._sync_eids()
        return e

    def _advance(self, column: int, term: int) -> int:
        """Parser column after ``term`` completes at ``column`` (see :meth:`_answers`)."""
        return self._answers([(column, term)], None)[0]

    # ------------------------------------------------------------------ states
    def _intern(self, cols: I64, gs: I64) -> int:
        order = np.lexsort((gs, cols))
        cols, gs = cols[order], gs[order]
        key = cols.tobytes() + b"|" + gs.tobytes()
        sid = self._state_ids.get(key)
        if sid is not None:
            return sid
        if self._mergeable(gs):
            sid = self._intern(*self._merged(cols, gs))
            with self._write:
                self._state_ids[key] = sid
            return sid
        if len(cols) > MAX_THREADS:
            raise LimitError(f"grammar too ambiguous: more than {MAX_THREADS} lexer threads in one state")
        with self._write:
            sid = self._state_ids.get(key)
            if sid is not None:
                return sid
            accepting = False
            for c, g in zip(cols.tolist(), gs.tolist()):
                if self._gacc[g]:
                    c2 = self._advance(c, int(self._gterm[g]))
                    if c2 >= 0 and self.parser.accepting(c2):
                        accepting = True
                        break
            sid = len(self._states)
            self._states.append((cols, gs))
            self._accepting.append(accepting)
            self._state_ids[key] = sid
        return sid

    def _merged(self, cols: I64, gs: I64) -> tuple[I64, I64]:
        """One thread per lexer state: the parser columns of the threads reading a lexeme in the same lexer
        state are merged into one column, their union. The lexer cannot tell those threads apart, and the
        parser's answers distribute over a union (an Earley column is a set of items, each with its origin),
        so the language is the same; the walks then carry one thread where they carried one per place the
        lexeme could have started. Under every-cut lexing an identifier may have started at each of its
        letters (Go's ``var x int``): masks there walked the trie with up to 77 such threads."""
        by_state: dict[int, int] = {}
        kept: list[tuple[int, int]] = []
        for c, g in zip(cols.tolist(), gs.tolist()):
            if self._tignore_list[self._gterm_list[g]]:
                kept.append((c, g))  # ignored lexemes stay apart (see grammar_walk._walk_range)
                continue
            prev = by_state.get(g)
            by_state[g] = c if prev is None else self.parser.union(prev, c)
        self._sync_eids()
        kept.extend((c, g) for g, c in by_state.items())
        return np.array([c for c, _ in kept], np.int64), np.array([g for _, g in kept], np.int64)

    def _mergeable(self, gs: I64) -> bool:
        """Whether two threads share the lexer state of a parsed (not ignored) terminal."""
        seen: set[int] = set()
        for g in gs.tolist():
            if g in seen and not self._tignore_list[self._gterm_list[g]]:
                return True
            seen.add(g)
        return False

    def is_accepting(self, state: int) -> bool:
        return self._accepting[state]

    def threads(self, state: int) -> list[tuple[int, int]]:
        cols, gs = self._states[state]
        return list(zip(cols.tolist(), gs.tolist()))

    def _walk_args(self, write: bool) -> tuple[Any, ...]:
        """Arguments of the numba walks. With ``write`` (the caller holds the parser's lock) the walk
        computes missing parser steps itself; else it reports them as misses."""
        p = self.parser
        pkeys, pvals = p.pkeys, p.pvals  # first: columns in this memo table are in the arrays read after it
        state = p.state()
        eid_start, eid_gs = self._eid_start, self._eid_gs
        return (self._gtrans, self._gacc, self._gterm, self._tignore, self._n_terms1, pkeys, pvals,
                state[21], eid_start, eid_gs, self._term_start, self._ignore_starts, state, write)

    def _fill_misses(self, misses: I64, nmiss: I64) -> bool:
        """Compute the parser steps a walk lacked; True if there were any (the walk must run again)."""
        n = int(nmiss[0])
        nmiss[0] = 0
        if n == 0:
            return False
        req = misses[:n]
        steps = req[:, 1] != REFRESH
        if steps.any():
            self.parser.steps(np.ascontiguousarray(req[steps, 0]), np.ascontiguousarray(req[steps, 1]))
        self._sync_eids()
        return True

    @staticmethod
    def _grow(cap: int) -> int:
        if cap >= MAX_THREADS:
            raise LimitError(f"grammar too ambiguous: more than {MAX_THREADS} lexer threads")
        return cap * 4

    def step(self, state: int, token: int) -> int:
        n = len(self.vocab.token_bytes)
        if not 0 <= token < n or not self.vocab.token_bytes[token]:
            return -1
        key = state * n + token
        hit = self._steps.get(key)
        if hit is not None:
            return hit
        nxt = self.step_bytes(state, self.vocab.token_bytes[token])
        if len(self._steps) < 2_000_000:
            self._steps[key] = nxt
        return nxt

    def _byte_walk(self, n_threads: int, walk: Callable[[tuple[Any, ...], int, I64, I64], Any]) -> Any:
        """``walk(walk_args, cap, misses, nmiss)`` (a :func:`walk_bytes`-like call from ``n_threads``
        threads) run until it neither lacked parser steps (computed here between runs) nor room (``cap``
        grown); its last result."""
        cap = max(self._cap, 2 * n_threads)
        misses, nmiss = np.empty((MAX_MISSES, 2), np.int64), np.zeros(1, np.int64)
        write = self.parser.lock.acquire(blocking=False)
        try:
            while True:
                out = walk(self._walk_args(write), cap, misses, nmiss)
                if nmiss[0] < 0:
                    nmiss[0] = 0
                    cap = self._grow(cap)
                elif not self._fill_misses(misses, nmiss):
                    return out
        finally:
            if write:
                self.parser.lock.release()

    def step_bytes(self, state: int, data: bytes) -> int:
        cols, gs = self._states[state]
        arr = np.frombuffer(data, dtype=np.uint8)
        out_c, out_g = self._byte_walk(len(cols), lambda args, cap, misses, nmiss: walk_bytes(  # type: ignore[call-arg]
            cols, gs, arr, *args, cap, misses, nmiss))
        if out_c.shape[0] == 0:
            return -1
        return self._intern(out_c, out_g)

    def steps_allowed(self, state: int, tokens: I64) -> npt.NDArray[np.bool_]:
        """Whether each token may follow ``state``, each by walking its bytes as :meth:`step` does, in one
        numba call for all of them (no state is interned: nothing is kept)."""
        tokens = np.asarray(tokens, np.int64)
        ok = np.zeros(len(tokens), np.bool_)
        inside = (tokens >= 0) & (tokens < len(self.vocab.token_bytes))
        todo = np.ascontiguousarray(tokens[inside])
        got = np.zeros(len(todo), np.bool_)
        data, offsets = self.vocab.packed_bytes
        cols, gs = self._states[state]
        k = 0  # tokens decided so far: a run that stopped at a token resumes there

        def walk(args: tuple[Any, ...], cap: int, misses: I64, nmiss: I64) -> None:
            nonlocal k
            k = int(walk_tokens_ok(cols, gs, todo, data, offsets, k, *args, cap, misses, nmiss, got))  # type: ignore[call-arg]

        self._byte_walk(len(cols), walk)
        ok[inside] = got
        return ok

    # ------------------------------------------------------------------ masks
    def mask(self, state: int) -> U32:
        m = self._masks.get(state)
        if m is not None:
            return m
        m = self._reused_mask(state)
        if self._accepting[state]:
            m = m | self.eos_row
        m.setflags(write=False)
        with self._write:
            self._masks[state] = m
            if len(self._masks) > self._mask_cap:
                self._masks.popitem(last=False)
        return m

    def _reused_mask(self, state: int) -> U32:
        """The mask without end of sequence: a past computation's if the parser answers this state as it
        answered that one (:mod:`observed_masks`), else computed and kept with its observation."""
        if not self._observed.observing():
            m = self._compute_mask(state, _NO_LOG)  # a log without room: the walks record nothing
            m.setflags(write=False)
            return m
        cols, gs = self._states[state]
        key, roots = ObservedMasks.key(cols, gs, self.parser.col_eid)
        for i, (ops, eids, m) in enumerate(self._observed.candidates(key)):
            if self._replay(roots, ops, eids):
                self._observed.matched(key, i)
                self._observed.looked_up(True)
                return m
        self._observed.looked_up(False)
        log = _thread_log()
        m = self._compute_mask(state, log)
        m.setflags(write=False)
        if not log.overflow:
            ops, eids, ok = observation(roots, log.keys, log.vals, log.n[0], self._n_terms1, self.parser.col_eid)
            if ok[0]:
                with self._write:
                    self._observed.add(key, ops, eids, m)
        return m

    def _replay(self, roots: I64, ops: I64, eids: I64) -> bool:
        misses, nmiss = _walk_scratch()[:2]
        nmiss[0] = 0
        write = self.parser.lock.acquire(blocking=False)
        try:
            while True:
                p = self.parser
                pkeys, pvals = p.pkeys, p.pvals
                r = replay(roots, ops, eids, pkeys, pvals, self._n_terms1, p.state(), write, misses, nmiss)
                if r != MISS:
                    return bool(r == MATCH)
                self._fill_misses(misses, nmiss)
        finally:
            if write:
                self.parser.lock.release()

    def _answers(self, questions: list[tuple[int, int]], log: _Log | None) -> list[int]:
        """The parser column after each ``(column, terminal)`` (the column itself for ignored terminals,
        -1 for none), each logged if ``log``; those this grammar has not asked before (a dict here: the
        parser's own memo is a numba table, slower to ask) go to the parser in one call."""
        n1 = self._n_terms1
        out: list[int] = []
        missing: list[int] = []
        for c, t in questions:
            v = c if self._tignore_list[t] else self._advanced.get(c * n1 + t)
            if v is None:
                missing.append(len(out))
                v = UNKNOWN
            out.append(v)
        if missing:
            got = self.parser.steps(np.array([questions[i][0] for i in missing], np.int64),
                                    np.array([questions[i][1] for i in missing], np.int64))
            self._sync_eids()
            for i, v in zip(missing, got.tolist()):
                out[i] = v
                if len(self._advanced) < _MAX_ADVANCED:
                    c, t = questions[i]
                    self._advanced[c * n1 + t] = v
        if log is not None and log.capacity:  # (not _NO_LOG: it has no room)
            for (c, t), v in zip(questions, out):
                if not self._tignore_list[t]:
                    log.put(c * n1 + t, v)
        return out

    def _compute_mask(self, state: int, log: _Log) -> U32:
        cols, gs = self._states[state]
        gterm = self._gterm_list
        eps_state = self.tables.eps_state
        # eager lexeme boundary at the start of the token: add the threads the parser spawns there
        threads: dict[tuple[int, int], None] = dict.fromkeys(zip(cols.tolist(), gs.tolist()))
        ended = [(c, g) for c, g in threads if self._gacc_list[g]]
        for c2 in self._answers([(c, gterm[g]) for c, g in ended], log):
            if c2 >= 0:
                for s in self._eid_sets[self._col_eid(c2)].tolist():
                    threads[(c2, s)] = None
        live = [(c, g) for c, g in threads if g != eps_state]
        # each thread's lexeme ending here, asked only where a token may go on past that end: a lexeme that
        # no token crosses (most states of a property name) gives its inside mask whatever follows it (as
        # for no column at all, -1); an object of 150 optional properties asked 47 new parser steps a mask
        crossed = [i for i, (_, g) in enumerate(live) if self._crossable(g)]
        after = [-1] * len(live)
        for i, c2 in zip(crossed, self._answers([(live[i][0], gterm[live[i][1]]) for i in crossed], log)):
            after[i] = c2
        without: dict[tuple[int, int], frozenset[int]] = {}
        if self._ignore_set and len(live) > 1:
            live, after, without = self._drop_covered(live, after)
        parts: list[U32] = []  # cached masks (read-only) whose union is the mask, walks aside
        exact_c: list[int] = []
        exact_g: list[int] = []
        crossing: list[tuple[int, _CrossEntry]] = []
        for (c, g), c2 in zip(live, after):
            if c2 < 0:
                parts.append(self._inside(g))
                continue
            entry = self._cross_mask(g, self._col_eid(c2), without.get((c, g), frozenset()))
            if entry.shared.mask is None:  # too many overlapping lexemes to cache: walk this thread exactly (below)
                parts.append(self._inside(g))
                exact_c.append(c)
                exact_g.append(g)
                continue
            parts.append(entry.shared.mask)
            if entry.terms:
                crossing.append((c2, entry))
        if len(parts) == 1 and not crossing and not exact_c:
            return parts[0]  # one cached mask as it is (most states of a JSON schema: one thread, no walk)
        if len(parts) > 1:
            words = parts[0] | parts[1]
            for part in parts[2:]:
                words |= part
        else:  # walks write into it: a copy
            words = parts[0].copy() if parts else np.zeros(self.words, np.uint32)
        if crossing:
            # second boundaries: the parser column after each next-lexeme terminal, for one batched walk
            nexts = iter(self._answers([(c2, t) for c2, entry in crossing for t in entry.terms], log))
            jobs = [(np.array([next(nexts) for _ in entry.terms], np.int64), entry) for _, entry in crossing]
            self._walk_boundaries(jobs, words, log)
        if exact_c:  # one walk for all of them: the trie is traversed once
            # the subtrees the largest of their lexemes covers are in ``words`` already: not walked again
            big = max(exact_g, key=lambda g: self._lexeme(g)[1].visited)
            dead = self._dead_roots(big) if self._lexeme(big)[1].visited >= _MIN_SKIP_VISITED else None
            self._walk(np.array(exact_c, np.int64), np.array(exact_g, np.int64), 0, words, log, dead)
        return words

    def _drop_covered(self, live: list[tuple[int, int]], after: list[int]
                      ) -> tuple[list[tuple[int, int]], list[int], dict[tuple[int, int], frozenset[int]]]:
        """``live`` and ``after`` without the ignored-lexeme threads whose tokens other threads of the state
        all give, and for the other ignored-lexeme threads, the next terminals whose tokens others give.

        An ignored lexeme (whitespace) in thread ``(c, a)`` leaves the parser at ``c``: its tokens either
        stay inside ignored lexemes or go on in a lexeme of a terminal ``U`` that ``c`` expects. If the
        state has a thread ``(c, h)`` of ``U`` that reads whatever that fresh ``U`` lexeme could
        (:func:`grammar_walk.covers_after_ignored`), the ``U`` lexemes after the ignored one add no token:
        the thread's cross mask is taken without them; with none left, the thread adds no token at all.
        SQL's required space ``_SP`` beside ``%ignore WS`` (both ``/[ \\t\\n]+/``) is the case: without
        this, the ``WS`` thread's next lexeme ``_SP`` ends at every byte of a whitespace run, so the thread
        was walked exactly through the whole trie (2-3 ms with Llama 3) for tokens the ``_SP`` thread gives."""
        gterm = self._gterm_list
        tignore = self._tignore_list
        parsed_at: dict[int, dict[int, list[int]]] = {}
        for c, g in live:
            if not tignore[gterm[g]]:
                parsed_at.setdefault(c, {}).setdefault(gterm[g], []).append(g)
        drop: set[int] = set()
        without: dict[tuple[int, int], frozenset[int]] = {}
        for i, ((c, a), c2) in enumerate(zip(live, after)):
            if c2 != c or not tignore[gterm[a]] or c not in parsed_at:
                continue
            threads_of = parsed_at[c]
            e = self._col_eid(c)
            key = (a, e, tuple(sorted(g for gs in threads_of.values() for g in gs)))
            hit = self._cover_sets.get(key)
            if hit is None:
                expected = [u for u in self._eid_order[e].tolist() if not tignore[u]]
                covered = frozenset(u for u in expected
                                    if any(self._covered(a, h, u) for h in threads_of.get(u, ())))
                hit = (covered, bool(covered) and len(covered) == len(expected))
                with self._write:
                    self._cover_sets[key] = hit
            if hit[1]:
                drop.add(i)
            elif hit[0]:
                without[(c, a)] = hit[0]
        if not drop:
            return live, after, without
        keep = [i for i in range(len(live)) if i not in drop]
        return [live[i] for i in keep], [after[i] for i in keep], without

    def _covered(self, a: int, h: int, u: int) -> bool:
        key = (a, h, u)
        hit = self._covers.get(key)
        if hit is None:
            hit = bool(covers_after_ignored(self._gtrans, self._gacc, self._ignore_starts, a, h,
                                            self._term_start_list[u], _MAX_COVER_PAIRS))
            with self._write:
                self._covers[key] = hit
        return hit

    def _inside(self, g: int) -> U32:
        return self._lexeme(g)[1].inside

    def _crossable(self, g: int) -> bool:
        """Whether a token may go on past the end of lexer state ``g``'s lexeme (into what follows it).
        Where none may, the lexeme gives its inside mask whatever follows: no column is asked for it, no cross
        entry made, and :meth:`_drop_covered` leaves an ignored one's thread as it is."""
        boundaries = self._lexeme(g)[1].boundaries
        return boundaries is None or len(boundaries) > 0

    def _walk(self, cols: I64, gs: I64, node: int, words: U32, log: _Log, dead: I32 | None = None) -> None:
        """Exact walk of the trie below ``node`` from threads ``(cols, gs)``, OR-ing accepted tokens into
        ``words``; subtrees without ``dead`` roots are skipped (see :func:`grammar_walk.dead_roots`)."""
        trie = self.trie
        one = np.ones(1, np.int64)
        self._run_jobs(cols, gs, np.array([0, len(cols)], np.int64), trie.node_depth[node] * one, (node + 1) * one,
                       trie.subtree_end[node] * one, words, log, dead)

    def _walk_boundaries(self, jobs: list[tuple[I64, _CrossEntry]], words: U32, log: _Log) -> None:
        """Lexeme boundaries inside tokens, one walk of the tokens below each: for each thread, the parser
        columns after its next lexeme's terminals (``entry.terms``) and its cross entry's trie nodes."""
        cols: list[I64] = []
        depth: list[I64] = []
        first: list[I64] = []
        end: list[I64] = []
        for col_of_term, entry in jobs:
            x = entry.shared
            cols3 = col_of_term[x.term_of_node]
            if (col_of_term >= 0).all():
                cols.append(cols3)
                depth.append(x.node_depth)
                first.append(x.first)
                end.append(x.end)
            else:
                keep = cols3 >= 0
                cols.append(cols3[keep])
                depth.append(x.node_depth[keep])
                first.append(x.first[keep])
                end.append(x.end[keep])
        job_c = _joined(cols)
        n = len(job_c)
        self._run_jobs(job_c, np.full(n, self.tables.eps_state, np.int64), np.arange(n + 1, dtype=np.int64),
                       _joined(depth), _joined(first), _joined(end), words, log)

    def _run_jobs(self, job_c: I64, job_g: I64, job_off: I64, depth: I64, first: I64, end: I64, words: U32,
                  log: _Log, dead: I32 | None = None) -> None:
        """Run walks ``k``: threads ``job_*[job_off[k]:job_off[k+1]]`` at trie depth ``depth[k]`` over nodes
        ``first[k]..end[k]``; where one lacked a parser step, compute it and resume at that trie node."""
        trie = self.trie
        misses, nmiss, res_node, res_off, res_c, res_g, nres = _walk_scratch()
        nmiss[0] = 0
        cap = self._cap  # an overflow costs the walk so far: start where this grammar's walks got to
        write = self.parser.lock.acquire(blocking=False)
        try:
            while len(first):
                nres[:] = 0
                buf_c, buf_g, buf_a = _thread_buffers(walk_buffer_size(cap, trie.max_depth, len(job_c)))
                ok = walk_jobs(  # type: ignore[call-arg]
                    job_c, job_g, job_off, depth, first, end, trie.node_byte, trie.node_depth, trie.subtree_end,
                    trie.token_start, trie.node_tokens, *self._walk_args(write), words, cap, trie.max_depth,
                    misses, nmiss, res_node, res_off, res_c, res_g, nres, log.set, log.keys, log.vals, log.n,
                    buf_c, buf_g, buf_a, _NO_DEAD if dead is None else dead, dead is not None)
                if not ok:
                    cap = self._grow(cap)
                    self._cap = max(self._cap, cap)
                    nmiss[0] = 0
                    continue
                resumable = nres[0] >= 0
                if not self._fill_misses(misses, nmiss):
                    return
                if resumable:  # else everything again
                    n = int(nres[0])
                    job_off = res_off[: n + 1].copy()
                    job_c, job_g = res_c[: job_off[-1]].copy(), res_g[: job_off[-1]].copy()
                    first = res_node[:n].copy()
                    depth = trie.node_depth[first].astype(np.int64) - 1
                    end = trie.subtree_end[first].astype(np.int64)
        finally:
            if write:
                self.parser.lock.release()

    def _cross_mask(self, g: int, e: int, without: frozenset[int] = frozenset()) -> _CrossEntry:
        """Cross entry of lexer state ``g`` (:meth:`_crossable`) before expected set ``e``, less the next
        terminals ``without`` (those another thread of the state gives: see :meth:`_drop_covered`)."""
        key = (g, e, without)
        hit = self._cross.get(key)
        if hit is not None:
            return hit
        lex_key = self._lexeme(g)[0]
        spawn = self._spawn_set(e, without)
        shared_key: Any = (lex_key, spawn.content)
        shared = self.shared.cross(shared_key)
        big = self._big_terms(spawn.order)
        if shared is None and lex_key not in self.shared.all_follow_failed and not big:
            shared = self._shared_cross(g, spawn, self._all_follow, big)
            self.shared.put_cross(shared_key, shared)
            if shared.mask is None:
                self.shared.all_follow_failed.add(lex_key)
        if shared is None or shared.mask is None:
            # second boundaries everywhere (an identifier may end at any letter): keep only those below which
            # a byte may start a lexeme after the terminal (in this grammar: the key says what may follow).
            # Taken directly where a next terminal is crossed into in parts (which only pays with the check) or
            # where the crossing without it did not pay from this lexeme before: walking one only to drop it
            # cost as much as this one (a guess: both forms allow the same tokens)
            follow = self._follow_ok()
            shared_key = (shared_key, tuple(self._follow_key[t] for t in spawn.order.tolist()))
            filtered = self.shared.cross(shared_key)
            if filtered is None:
                filtered = self._shared_cross(g, spawn, follow, big)
                self.shared.put_cross(shared_key, filtered)
            shared = filtered
        return self._keep_cross(key, _CrossEntry(shared, spawn.order[shared.term_pos].tolist()))

    def _keep_cross(self, key: tuple[int, int, frozenset[int]], entry: _CrossEntry) -> _CrossEntry:
        with self._write:
            self._cross[key] = entry
        return entry

    def _spawn_set(self, e: int, without: frozenset[int]) -> _SpawnSet:
        """Expected set ``e`` as a :class:`_SpawnSet`; less ``without``, spawn lists of its own."""
        if not without:
            return _SpawnSet(self._eid_start, self._eid_gs, e, self._eid_order[e], self._eid_terms[e],
                             self._eid_content[e])
        terms = [t for t in self._eid_order[e].tolist() if t not in without]  # canonical order kept (ignored too)
        start, gs = self._spawn_arrays([terms])
        return _SpawnSet(start, gs, 0, np.array(terms, np.int64), {t: i for i, t in enumerate(terms)},
                         tuple(self._term_content[t] for t in terms))

    def _follow_ok(self) -> npt.NDArray[np.bool_]:
        """:func:`grammar_tables.follow_bytes`, computed on first need, and each terminal's row as bytes."""
        if self._follow is None:
            follow = follow_bytes(self.tables)
            self._follow_key = [row.tobytes() for row in np.packbits(follow, axis=1)]  # (one packbits: the first mask)
            self._follow = follow
        return self._follow

    def _shared_cross(self, g: int, spawn: _SpawnSet, follow_ok: npt.NDArray[np.bool_],
                      big: list[int]) -> SharedCross:
        """The crossing of ``g`` into ``spawn``, in parts where ``big`` (:meth:`_big_terms`) has terminals."""
        if not len(spawn.order):  # nothing may follow the lexeme (the text's end): no token crosses it
            return SharedCross(self._inside(g), _NO_NODES, _NO_NODES, _NO_NODES, _NO_NODES, _NO_NODES)
        if big:
            crossing = self._split_cross(g, spawn, follow_ok, big)
        else:
            crossing = self._compute_cross(g, spawn, follow_ok)
        mask = crossing.mask
        if mask is not None:
            mask = mask | self._inside(g)
            mask.setflags(write=False)
        pos = [spawn.position[t] for t in crossing.terms.tolist()]
        distinct = sorted(set(pos))  # a few terminals: in Python, not np.unique
        index = {p: i for i, p in enumerate(distinct)}
        trie = self.trie
        nodes = crossing.nodes
        return SharedCross(mask, np.array(distinct, np.int64), np.array([index[p] for p in pos], np.int64),
                           trie.node_depth[nodes].astype(np.int64), nodes + 1, trie.subtree_end[nodes].astype(np.int64))

    def _split_cross(self, g: int, spawn: _SpawnSet, follow_ok: npt.NDArray[np.bool_], big: list[int]) -> _Crossing:
        """The crossing of lexer state ``g`` into ``spawn``'s terminals computed in parts, ``big`` alone (only
        with the follow check: a big lexeme, an identifier, ends at nearly every one of its nodes, and its
        second boundaries are only worth keeping where a byte may start what follows it).

        A token crosses into one first next lexeme, so the crossing is the union of the crossings into each
        of its terminals, except after an ignored lexeme, where every expected terminal may follow. The
        terminals whose lexemes are big (an identifier's, about 70,000 trie nodes with Llama 3) are crossed
        into alone, each part kept by content like any crossing; the others and the ignored ones in one walk
        that spawns the whole set after an ignored lexeme ends. Whitespace crossed into each new set of
        expected terminals took a whole walk of the identifiers below it (2 ms with Llama 3: the slowest
        masks of C grammars); now the identifiers' part is walked once and each new set costs its rest."""
        order = spawn.order.tolist()
        key = self._lexeme(g)[0]
        parts: list[_Crossing] = []
        for t in big:
            content = (self._term_content[t],)
            part_key = (key, content, self._follow_key[t])
            part = self.shared.part(part_key)
            if part is None:
                start, gs = self._spawn_arrays([[t]])
                part = self._compute_cross(g, _SpawnSet(start, gs, 0, np.array([t], np.int64), {}, ()), follow_ok,
                                           judged=False)
                self.shared.put_part(part_key, part)
            if part.mask is None:  # its second boundaries alone are too many: so are the whole set's
                return part
            # kept by content: its terminal (the only one its records can have) numbered as in this grammar
            parts.append(part._replace(terms=np.full(len(part.nodes), t, np.int64)))
        rest = [t for t in order if t not in big]
        if rest:
            start, gs = self._spawn_arrays([rest, order])  # set 1: spawned after an ignored lexeme
            part = self._compute_cross(g, _SpawnSet(start, gs, 0, np.array(rest, np.int64), {}, ()), follow_ok,
                                       again=1, judged=False)
            if part.mask is None:
                return part
            parts.append(part)
        walked = sum(part.walked for part in parts)
        below = sum(part.below for part in parts)
        if below > _MAX_SECOND_LEVEL_NODES or below > walked:  # as _compute_cross judges one walk
            return _Crossing(None, _NO_NODES, _NO_NODES, walked, below)
        masks = [part.mask for part in parts if part.mask is not None]  # (all of them)
        mask = masks[0] | masks[-1]  # a new array
        for more in masks[1:-1]:
            mask |= more
        nodes, terms = _joined([part.nodes for part in parts]), _joined([part.terms for part in parts])
        if len(parts) > 1 and len(nodes):
            width = np.int64(self.tables.n_terms + 1)
            pairs = np.unique(nodes * width + terms)
            nodes, terms = pairs // width, pairs % width
        return _Crossing(mask, nodes, terms, walked, below)

    def _big_terms(self, order: I64) -> list[int]:
        """The terminals of a spawn set (``order``) crossed into in parts (see :meth:`_split_cross`): with
        another one beside them, parsed, and a start lexeme that visits at least ``_MIN_SPLIT_VISITED`` trie
        nodes, if this grammar has walked it (walking it only to decide costs more than a crossing does;
        most grammars walk their start states when compiled, see :meth:`precompute_lexemes`)."""
        if len(order) < 2:
            return []
        big = self._is_big
        out = []
        for t in order.tolist():
            known = big.get(t)
            if known is None:
                if self._tignore_list[t]:
                    known = big[t] = False
                else:
                    hit = self._lexeme_of.get(self._term_start_list[t])
                    if hit is None:
                        continue  # not walked yet: not big for now
                    known = big[t] = hit[1].visited >= _MIN_SPLIT_VISITED
            if known:
                out.append(t)
        return out

    def _spawn_arrays(self, sets: list[list[int]]) -> tuple[I64, I64]:
        """Spawn lists (see :mod:`grammar_walk`) for sets of terminals, set ``k`` at ``start[k * 256:]``."""
        start = np.zeros(256 * len(sets) + 1, np.int64)
        parts: list[I64] = []
        n = 0
        for k, terms in enumerate(sets):
            starts = np.array(sorted({self._term_start_list[t] for t in terms}), np.int64)
            gs = np.empty(256 * len(starts), np.int64)
            w = spawn_lists(self._gtrans, starts, n, start[k * 256 + 1 : (k + 1) * 256 + 1], gs)
            parts.append(gs[:w])
            n += w
        return start, np.concatenate(parts)

    def _compute_cross(self, g: int, spawn: _SpawnSet, follow_ok: npt.NDArray[np.bool_], again: int | None = None,
                       judged: bool = True) -> _Crossing:
        """The crossing's walk (its mask without ``g``'s inside); ``again``: the set spawned after an ignored
        next lexeme ends (by default ``spawn``'s own); ``judged``: without a mask where walking below its
        second boundaries costs more than the walk itself (a part of a crossing is judged with the others)."""
        trie = self.trie
        out = np.zeros(self.words, np.uint32)
        nodes, states = _cross_scratch()
        visited = np.zeros(2, np.int64)  # trie nodes walked, cost of the walks below the records
        key, lex = self._lexeme(g)
        e = spawn.set_id
        e_again = e if again is None else again
        n = -2
        # walk below the lexeme's boundaries only, unless that gave up for this lexeme before (whitespace: its
        # boundaries are most of its nodes, and walking below them one by one cost more than the whole walk)
        if lex.boundaries is not None and key not in self.shared.exits_gave_up:
            exit_start, exit_node = self.shared.exits(key, lex)
            n = cross_exits(exit_start, exit_node, e, e_again, spawn.start, spawn.gs, trie.node_byte, trie.node_depth,
                            trie.subtree_end, trie.token_start, trie.node_tokens, self._gtrans, self._gacc,
                            self._gterm, self._tignore, follow_ok, trie.max_depth, 2 * lex.visited + 1000,
                            _MAX_SECOND_LEVEL_NODES, out, nodes, states, visited)
            visited[0] += lex.visited
            if n == -2:
                self.shared.exits_gave_up.add(key)
        if n == -2:
            out[:] = 0
            visited[:] = 0
            n = cross_walk(g, e, e_again, spawn.start, spawn.gs, trie.node_byte, trie.node_depth, trie.subtree_end,
                           trie.token_start, trie.node_tokens, self._gtrans, self._gacc, self._gterm, self._tignore,
                           follow_ok, trie.max_depth, _MAX_SECOND_LEVEL_NODES, out, nodes, states, visited)
        walked, below = int(visited[0]), int(visited[1])
        if n < 0 or (judged and below > walked):
            # second boundaries everywhere (e.g. runs of whitespace lexemes, character-level grammars): walking
            # below each costs more than one exact walk of the thread (the walks return -1 themselves once
            # that cost passes _MAX_SECOND_LEVEL_NODES)
            return _Crossing(None, _NO_NODES, _NO_NODES, walked, below)
        out.setflags(write=False)
        terms = self._gterm[states[:n]]
        if n > 1:  # nested boundaries may record a node twice: one sort of (node, terminal) keys
            width = np.int64(self.tables.n_terms + 1)
            pairs = np.unique(nodes[:n] * width + terms)
            return _Crossing(out, pairs // width, pairs % width, walked, below)
        return _Crossing(out, nodes[:n].copy(), terms, walked, below)


_mask_kernels_loaded = False


def _load_mask_kernels(a: GrammarAutomaton) -> None:
    """Load the walks that masks may need from numba's cache now, with the first grammar of a process, on
    inputs that give each the types of its real calls and return at once. Loading one takes 3-5 ms, which
    the first mask of a process to need it paid mid-generation (in the grammar benchmark, 10-15 ms spread
    over a few masks of the first C and arithmetic grammars); the first compile pays it instead.
    ``tests/test_grammar.py`` checks that no call here adds a signature the real calls lack."""
    global _mask_kernels_loaded
    if _mask_kernels_loaded:
        return
    trie = a.trie
    one, two = literal_dfa(b"\x00"), literal_dfa(b"\x00\x00")
    inside = np.zeros(a.words, np.uint32)
    added, removed = np.empty(1, np.int32), np.empty(1, np.int32)
    for base, classes, offset in ((one, length_classes(one.runs, one.accepting, trie.max_depth), 0),
                                  (two, joint_classes(one.runs, one.accepting, two.runs, two.accepting,
                                                      trie.max_depth), one.n_states)):
        lexeme_diff_walk(0, one.trans, one.accepting, 0, base.trans, base.accepting, classes, offset, trie.node_key,
                         trie.node_token, trie.subtree_end, trie.subtree_height, trie.token_start, trie.node_tokens,
                         trie.max_depth, inside, added, removed, 0)
    merged_boundaries(np.zeros(1, np.int32), removed[:0], added[:0])
    _literal_lexeme(b"\x00", trie, a.words)
    dead_roots(0, one.trans, trie.node_key, trie.subtree_end, trie.max_depth, np.empty(1, np.int32))
    exit_start, exit_node = boundary_exits(np.zeros(0, np.int32), trie.node_byte, trie.subtree_end)
    derived_exits(exit_start, exit_node, removed[:0].copy(), added[:0].copy(), trie.node_byte, trie.subtree_end,
                  _node_marks(len(trie.node_byte)))
    nodes, states = _cross_scratch()
    eps = a.tables.eps_state  # a lexeme that ends at once and starts nothing: the walks stop at the root's children
    for walk_exits in (True, False):
        out = np.zeros(a.words, np.uint32)
        visited = np.zeros(2, np.int64)
        common = (a._eid_start, a._eid_gs, trie.node_byte, trie.node_depth, trie.subtree_end, trie.token_start,
                  trie.node_tokens, a._gtrans, a._gacc, a._gterm, a._tignore, a._all_follow, trie.max_depth)
        if walk_exits:
            cross_exits(exit_start, exit_node, 0, 0, *common, 0, _MAX_SECOND_LEVEL_NODES, out, nodes, states, visited)
        else:
            cross_walk(eps, 0, 0, *common, _MAX_SECOND_LEVEL_NODES, out, nodes, states, visited)
    covers_after_ignored(a._gtrans, a._gacc, a._ignore_starts, eps, eps, eps, 1)
    a._follow_ok()  # this grammar's follow bytes, with the kernel crossings into identifiers need (6-7 ms to load)
    # the exact trie walk (18-21 ms to load: our C grammar's first exact walk paid it in a mask), a mask looked
    # up by replay (15-30 ms, a first lookup in a process), a whole lexeme walk and its keys (a JSON schema's
    # first mask paid them), the lexer key of a state of more than _WHOLE_KEY_STATES (7.8 ms, in a MaskBench
    # mask): on inputs that return at once or walk no further than the root's children
    _result_hash(_lexeme(_EPS_DFA.trans, _EPS_DFA.accepting, 0, trie, a.words))
    bounded_language_key(one.trans, one.accepting, 0, _WHOLE_KEY_STATES)
    no_jobs = np.zeros(0, np.int64)
    misses, nmiss, res_node, res_off, res_c, res_g, nres = _walk_scratch()
    buf_c, buf_g, buf_a = _thread_buffers(walk_buffer_size(a._cap, trie.max_depth, 0))
    walk_jobs(no_jobs, no_jobs, np.zeros(1, np.int64), no_jobs, no_jobs, no_jobs, trie.node_byte,  # type: ignore[call-arg]
              trie.node_depth, trie.subtree_end, trie.token_start, trie.node_tokens, *a._walk_args(False), inside,
              a._cap, trie.max_depth, misses, nmiss, res_node, res_off, res_c, res_g, nres, _NO_LOG.set,
              _NO_LOG.keys, _NO_LOG.vals, _NO_LOG.n, buf_c, buf_g, buf_a, _NO_DEAD, False)
    a._replay(np.zeros(0, np.int64), np.zeros((0, 4), np.int32), np.zeros(0, np.int64))  # the stored op tables' int32
    state_prefix_key(one.trans, one.accepting, 0, trie.max_depth, 1)  # returns at its first pair
    _mask_kernels_loaded = True


_scratch = threading.local()


def _walk_scratch() -> tuple[I64, I64, I64, I64, I64, I64, I64]:
    """This thread's buffers for a walk's misses and resume points (read before the next walk; a walk
    is never started inside another on one thread)."""
    bufs: tuple[I64, I64, I64, I64, I64, I64, I64] | None = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = (np.empty((MAX_MISSES, 2), np.int64), np.zeros(1, np.int64), np.empty(_MAX_RESUMES, np.int64),
                np.zeros(_MAX_RESUMES + 1, np.int64), np.empty(_MAX_RESUMES * 16, np.int64),
                np.empty(_MAX_RESUMES * 16, np.int64), np.zeros(2, np.int64))
        _scratch.bufs = bufs
    return bufs


def _node_marks(n_nodes: int) -> npt.NDArray[np.bool_]:
    """This thread's all-False flags over trie nodes (:func:`grammar_walk.derived_exits` clears what it sets)."""
    marks: npt.NDArray[np.bool_] | None = getattr(_scratch, "marks", None)
    if marks is None or len(marks) != n_nodes:
        marks = _scratch.marks = np.zeros(n_nodes, np.bool_)
    return marks


def _cross_scratch() -> tuple[I64, I64]:
    """This thread's buffers for a cross walk's second-boundary records (copied out before the next walk;
    half a megabyte each, which numpy would map and unmap at every allocation)."""
    bufs: tuple[I64, I64] | None = getattr(_scratch, "cross", None)
    if bufs is None:
        bufs = _scratch.cross = (np.empty(1 << 16, np.int64), np.empty(1 << 16, np.int64))
    return bufs


_NO_NODES = np.zeros(0, np.int64)
_NO_NODES.setflags(write=False)
_NO_DEAD = np.zeros(0, np.int32)
_NO_DEAD.setflags(write=False)  # as dead-root lists are: one numba signature of walk_jobs, not two


def _thread_buffers(size: int) -> tuple[I64, I64, I64]:
    """This thread's walk thread buffers, at least ``size`` entries each (grown by doubling, kept)."""
    bufs: tuple[I64, I64, I64] | None = getattr(_scratch, "threads", None)
    if bufs is None or bufs[0].shape[0] < size:
        n = max(size, 2 * bufs[0].shape[0]) if bufs is not None else size
        bufs = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64))
        _scratch.threads = bufs
    return bufs


def _thread_log() -> _Log:
    """This thread's log, emptied (a mask computation's log is read before the next one starts)."""
    log: _Log | None = getattr(_scratch, "log", None)
    if log is None:
        log = _scratch.log = _Log()
    else:
        log.clear()
    return log


class _Log:
    """The parser facts one mask computation reads, in order (memo key, value; see :mod:`observed_masks`)."""

    def __init__(self, capacity: int = LOG_CAPACITY) -> None:
        self.capacity = capacity
        self.set = np.full(2 * capacity, -1, np.int64)  # the walks' dedup set (open addressing; none: no log)
        self.keys = np.empty(capacity, np.int64)
        self.vals = np.empty(capacity, np.int64)
        self.n = np.zeros(2, np.int64)  # entries, overflow flag

    def clear(self) -> None:
        self.set.fill(-1)
        self.n[:] = 0

    @property
    def overflow(self) -> bool:
        return bool(self.n[1])

    def put(self, key: int, value: int) -> None:
        n = int(self.n[0])
        if n < self.capacity:
            self.keys[n] = key
            self.vals[n] = value
            self.n[0] = n + 1
        else:
            self.n[1] = 1


_NO_LOG = _Log(0)
"""The log of computations that record nothing (no room: walks and :meth:`_Log.put` skip it)."""
