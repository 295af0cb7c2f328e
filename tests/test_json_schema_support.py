"""Shared helpers for the JSON Schema tests: a reference recogniser for grammar IRs, exact JSON I/O.

``Recognizer`` is a deliberately simple scannerless Earley recogniser over the IR (terminals as byte
DFAs, any cut into terminal matches): slow, but independent of the token-level engine, so the
converter can be checked at the string level and the engine against it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from constrain.fsm import ByteDFA, compile_node
from constrain.grammar_ir import Grammar, N


class Recognizer:
    def __init__(self, g: Grammar) -> None:
        self.g = g
        self.dfas: dict[str, ByteDFA] = {
            name: (d if isinstance(d, ByteDFA) else compile_node(d)) for name, d in g.terminals.items()
        }
        self.rules = [(r.lhs, r.rhs) for r in g.rules]
        self.by_lhs: dict[str, list[int]] = {}
        for i, (lhs, _) in enumerate(self.rules):
            self.by_lhs.setdefault(lhs, []).append(i)
        self.nullable: set[str] = set()
        changed = True
        while changed:
            changed = False
            for lhs, rhs in self.rules:
                if lhs not in self.nullable and all(isinstance(s, N) and s.name in self.nullable for s in rhs):
                    self.nullable.add(lhs)
                    changed = True

    def accepts(self, text: str | bytes) -> bool:
        data = text.encode("utf-8") if isinstance(text, str) else text
        n = len(data)
        cols: list[set[tuple[int, int, int]]] = [set() for _ in range(n + 1)]
        start = self.g.start
        for r in self.by_lhs.get(start, []):
            cols[0].add((r, 0, 0))
        for i in range(n + 1):
            agenda = list(cols[i])
            seen = set(cols[i])
            while agenda:
                item = agenda.pop()
                r, dot, origin = item
                lhs, rhs = self.rules[r]
                new: list[tuple[int, int, tuple[int, int, int]]] = []
                if dot == len(rhs):  # complete
                    for (r2, d2, o2) in list(cols[origin]):
                        rhs2 = self.rules[r2][1]
                        if d2 < len(rhs2) and isinstance(rhs2[d2], N) and rhs2[d2].name == lhs:
                            new.append((i, 0, (r2, d2 + 1, o2)))
                    # items added later to cols[origin] == cols[i] are handled by the nullable shortcut
                else:
                    sym = rhs[dot]
                    if isinstance(sym, N):
                        for r2 in self.by_lhs.get(sym.name, []):
                            new.append((i, 0, (r2, 0, i)))
                        if sym.name in self.nullable:
                            new.append((i, 0, (r, dot + 1, origin)))
                    else:
                        d = self.dfas[sym.name]
                        if d.n_states == 0:
                            continue
                        s = 0
                        if d.accepting[0]:
                            new.append((i, 0, (r, dot + 1, origin)))
                        for j in range(i, n):
                            s = int(d.trans[s, data[j]])
                            if s < 0:
                                break
                            if d.accepting[s]:
                                new.append((j + 1, 0, (r, dot + 1, origin)))
                for col, _, it in new:
                    if col == i:
                        if it not in seen:
                            seen.add(it)
                            cols[i].add(it)
                            agenda.append(it)
                    else:
                        cols[col].add(it)
        return any(r in self.by_lhs.get(start, []) and dot == len(self.rules[r][1]) and o == 0
                   for (r, dot, o) in cols[n])


class RawNumber(str):
    """A JSON number kept as its source text (so big or precise numbers survive a round trip)."""


def loads_exact(text: str) -> Any:
    return json.loads(text, parse_float=RawNumber, parse_int=RawNumber)


def to_python(v: Any) -> Any:
    """Values for the ``jsonschema`` validator (numbers as int or Decimal-exact float)."""
    if isinstance(v, RawNumber):
        return int(v) if v.lstrip("-").isdigit() else Decimal(v)
    if isinstance(v, list):
        return [to_python(x) for x in v]
    if isinstance(v, dict):
        return {k: to_python(x) for k, x in v.items()}
    return v


def dumps_compact(v: Any) -> str:
    """``json.dumps(v, separators=(",", ":"), ensure_ascii=False)`` keeping raw numbers' text."""
    if isinstance(v, RawNumber):
        return str(v)
    if isinstance(v, list):
        return "[" + ",".join(dumps_compact(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps_compact(x) for k, x in v.items()) + "}"
    return json.dumps(v, ensure_ascii=False)
