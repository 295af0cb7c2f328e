"""Random strings from a grammar: for grammar test suites, fuzzing, and our own soundness tests.

Derivations are random with a depth budget: past ``max_depth`` every nonterminal takes its shortest
alternative, so sampling always terminates. Terminals are drawn by random walks over their byte DFAs
(preferring ASCII, stopping at accepting states with probability ``stop``, and taking the shortest way
to acceptance once ``max_lexeme`` bytes are spent), so every sample is valid UTF-8 and in the language.
Ignored terminals (whitespace) are sprinkled between lexemes with probability ``ignore_rate``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from constrain.fsm import ByteDFA
from constrain.grammar_ir import Grammar, N, T
from constrain.grammar_tables import terminal_dfa


@dataclass
class _Lexeme:
    dfa: ByteDFA
    to_accept: list[int]
    """Shortest number of bytes from each state to an accepting state."""


def _distances(dfa: ByteDFA) -> list[int]:
    n = dfa.n_states
    dist = [0 if a else 10**9 for a in dfa.accepting.tolist()]
    rows = dfa.trans.tolist()
    changed = True
    while changed:
        changed = False
        for s in range(n):
            best = dist[s]
            for t in set(rows[s]):
                if t >= 0 and dist[t] + 1 < best:
                    best = dist[t] + 1
            if best < dist[s]:
                dist[s] = best
                changed = True
    return dist


class GrammarSampler:
    """Draws random strings of a :class:`~constrain.grammar_ir.Grammar` (seeded, bounded)."""

    def __init__(self, grammar: Grammar, seed: int | None = None, max_depth: int = 12, max_lexeme: int = 12,
                 stop: float = 0.3, ignore_rate: float = 0.1, byte_alphabet: np.ndarray | None = None) -> None:
        grammar.check()
        self.byte_alphabet = byte_alphabet
        """If given, only bytes with ``byte_alphabet[b]`` are used (e.g. what a vocabulary can spell)."""
        self.g = grammar
        self.rng = random.Random(seed)
        self.max_depth = max_depth
        self.max_lexeme = max_lexeme
        self.stop = stop
        self.ignore_rate = ignore_rate
        self._lex: dict[str, _Lexeme] = {}
        self._alts = {nt: [r.rhs for r in grammar.rules if r.lhs == nt] for nt in grammar.nonterminals()}
        self._height = self._heights()
        missing = [nt for nt, h in self._height.items() if h >= 10**9]
        if self._height.get(grammar.start, 10**9) >= 10**9:
            raise ValueError(f"start rule {grammar.start!r} derives no finite string")
        self._dead = set(missing)

    def _lexeme(self, name: str) -> _Lexeme:
        lx = self._lex.get(name)
        if lx is None:
            dfa = terminal_dfa(self.g.terminals[name])
            if self.byte_alphabet is not None:
                dfa = dfa.restricted(self.byte_alphabet)
            lx = _Lexeme(dfa, _distances(dfa) if dfa.n_states else [])
            self._lex[name] = lx
        return lx

    def _heights(self) -> dict[str, int]:
        """Minimal derivation height per nonterminal (10**9 if it derives nothing)."""
        inf = 10**9
        h = dict.fromkeys(self._alts, inf)
        usable = {t for t in self.g.terminals if not self._lexeme(t).dfa.is_empty}
        changed = True
        while changed:
            changed = False
            for nt, alts in self._alts.items():
                for rhs in alts:
                    if any(isinstance(s, T) and s.name not in usable for s in rhs):
                        continue
                    v = 1 + max([h[s.name] for s in rhs if isinstance(s, N)], default=0)
                    if v < h[nt]:
                        h[nt] = v
                        changed = True
        return h

    def _alt_height(self, rhs: tuple[T | N, ...]) -> int:
        hs = [self._height[s.name] for s in rhs if isinstance(s, N)]
        return 1 + max(hs, default=0)

    def sample_bytes(self) -> bytes:
        out: list[bytes] = []
        self._expand(N(self.g.start), 0, out)
        return b"".join(out)

    def sample(self) -> str:
        """One random string of the language."""
        return self.sample_bytes().decode("utf-8")

    def _expand(self, sym: T | N, depth: int, out: list[bytes]) -> None:
        if isinstance(sym, T):
            self._maybe_ignore(out)
            out.append(self._terminal(sym.name))
            self._maybe_ignore(out)
            return
        alts = [a for a in self._alts[sym.name] if self._alt_height(a) < 10**9]
        if depth >= self.max_depth:
            best = min(self._alt_height(a) for a in alts)
            alts = [a for a in alts if self._alt_height(a) == best]
        rhs = self.rng.choice(alts)
        for s in rhs:
            self._expand(s, depth + 1, out)

    def _maybe_ignore(self, out: list[bytes]) -> None:
        ignore = [t for t in self.g.ignore if not self._lexeme(t).dfa.is_empty]
        if ignore and self.rng.random() < self.ignore_rate:
            out.append(self._terminal(self.rng.choice(ignore)))

    def _terminal(self, name: str) -> bytes:
        lx = self._lexeme(name)
        dfa, dist = lx.dfa, lx.to_accept
        state, data = 0, bytearray()
        while True:
            if dfa.accepting[state] and (self.rng.random() < self.stop or len(data) >= self.max_lexeme):
                return bytes(data)
            row = dfa.trans[state]
            live = np.flatnonzero(row >= 0)
            if len(data) >= self.max_lexeme:  # head for acceptance
                live = np.array([b for b in live if dist[row[b]] < dist[state]], dtype=np.int64)
            elif self.rng.random() < 0.8:
                ascii_live = live[live < 0x80]
                if len(ascii_live):
                    live = ascii_live
            if len(live) == 0:
                return bytes(data)
            b = int(live[self.rng.randrange(len(live))])
            data.append(b)
            state = int(row[b])


def sample_strings(grammar: Grammar, n: int, seed: int = 0, **options: float) -> list[str]:
    """``n`` random strings of ``grammar`` (see :class:`GrammarSampler` for the options)."""
    s = GrammarSampler(grammar, seed=seed, **options)  # type: ignore[arg-type]
    return [s.sample() for _ in range(n)]
