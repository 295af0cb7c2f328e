"""Compile constraints for one tokenizer.

The :class:`Compiler` does the vocabulary work once (token bytes, trie) and caches compiled
constraints, so compiling the same constraint twice is free and matchers are cheap to create.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from constrain.automaton import DFAAutomaton, TokenAutomaton
from constrain.bitmask import bitmask_words
from constrain.matcher import Matcher
from constrain.trie import TokenTrie
from constrain.vocab import Vocabulary


# Vocabulary work is done once per tokenizer object (and logit width, EOS ids): Compilers for the same
# tokenizer share the vocabulary, the trie and the per-terminal mask cache. A few tokenizers are kept.
@dataclass
class _TokenizerWork:
    tokenizer: Any
    vocab: Vocabulary
    trie: TokenTrie
    shared_masks: Any = None


_per_tokenizer: OrderedDict[tuple[Any, ...], _TokenizerWork] = OrderedDict()
_per_tokenizer_lock = threading.Lock()
_MAX_TOKENIZERS = 8


def _work_for(tokenizer: Any, vocab_size: int | None, eos: Any) -> _TokenizerWork:
    key = (id(tokenizer), vocab_size, tuple(eos) if isinstance(eos, (list, tuple)) else eos)
    with _per_tokenizer_lock:
        work = _per_tokenizer.get(key)
        if work is not None and work.tokenizer is tokenizer:
            _per_tokenizer.move_to_end(key)
            return work
    vocab = Vocabulary.from_hf(tokenizer, vocab_size=vocab_size, eos_token_ids=eos)
    work = _TokenizerWork(tokenizer, vocab, TokenTrie.build(vocab))
    with _per_tokenizer_lock:
        _per_tokenizer[key] = work
        while len(_per_tokenizer) > _MAX_TOKENIZERS:
            _per_tokenizer.popitem(last=False)
    return work


class CompiledConstraint:
    """A constraint compiled for one vocabulary; create a :class:`Matcher` per generation."""

    def __init__(self, automaton: TokenAutomaton, kind: str, source: Any) -> None:
        self.automaton = automaton
        self.kind = kind
        self.source = source

    @property
    def vocab_size(self) -> int:
        """Width of the bitmask in tokens (may exceed ``len(tokenizer)``; extra ids are never allowed)."""
        return self.automaton.vocab_size

    @property
    def vocab(self) -> Vocabulary:
        return self.automaton.vocab

    def matcher(self) -> Matcher:
        return Matcher(self.automaton)

    def __repr__(self) -> str:
        src = repr(self.source)
        return f"CompiledConstraint({self.kind}, {src[:60] + '...' if len(src) > 60 else src})"


GRAMMAR_PRECOMPUTE_S = 0.03
"""Default time a grammar's compile may spend on lexeme walks ahead of use (see :class:`Compiler`)."""
JSON_OBSERVE_AFTER = 256
"""New parser states whose masks a JSON-Schema automaton computes before it starts looking masks up by
replay (:mod:`constrain.observed_masks`). Schemas seldom reach a familiar place with new parser columns
except through recursion, and watching for it cost more than it found: on every 10th MaskBench schema
(Llama 3) the mask mean was 41-43 us without observing and 45-49 us with it. Recursive schemas walked long
enough still get it; Lark and GBNF grammars (nested SQL, expressions) observe from the start."""


class Compiler:
    """Compiles constraints for one tokenizer.

    ``tokenizer``: a Hugging Face tokenizer (or pass ``vocab=`` directly). ``vocab_size``: the model's
    logit width if it is larger than the tokenizer. ``eos_token_ids``: extra end-of-sequence ids (e.g.
    ``model.generation_config.eos_token_id``). ``precompute_s``: seconds a Lark or GBNF grammar's compile
    may spend walking its lexer states ahead of first use (:data:`GRAMMAR_PRECOMPUTE_S` by default; 0 walks
    each on first use); with a budget, the compile also makes the start state's mask, which every generation
    needs first. JSON schemas share theirs across schemas and always walk on first use.
    """

    def __init__(
        self,
        tokenizer: Any = None,
        *,
        vocab: Vocabulary | None = None,
        vocab_size: int | None = None,
        eos_token_ids: Any = None,
        cache_size: int = 256,
        precompute_s: float | None = None,
    ) -> None:
        if vocab is None:
            if tokenizer is None:
                raise ValueError("Compiler needs a tokenizer or a Vocabulary")
            self._work = _work_for(tokenizer, vocab_size, eos_token_ids)
        else:
            self._work = _TokenizerWork(tokenizer, vocab, TokenTrie.build(vocab))
        vocab = self._work.vocab
        self.vocab = vocab
        self.tokenizer = tokenizer
        if not vocab.spells_every_string:
            warnings.warn(
                "some bytes occur in this vocabulary only inside longer tokens; masks can then allow a token "
                "after which the constraint cannot be completed",
                stacklevel=2,
            )
        self.trie = self._work.trie
        self._cache: OrderedDict[Hashable, CompiledConstraint] = OrderedDict()
        self._cache_size = cache_size
        self.precompute_s = GRAMMAR_PRECOMPUTE_S if precompute_s is None else precompute_s
        self._lock = threading.Lock()

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def _cached(self, key: Hashable, build: Callable[[], CompiledConstraint]) -> CompiledConstraint:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        compiled = build()
        with self._lock:
            self._cache[key] = compiled
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return compiled

    def regex(self, pattern: str, flags: int = 0) -> CompiledConstraint:
        """Text that ``re.fullmatch(pattern, text, flags)`` accepts (``re.IGNORECASE``, ``re.DOTALL``)."""
        from constrain.errors import RegexError
        from constrain.fsm import compile_regex

        allowed = re.IGNORECASE | re.DOTALL | re.MULTILINE | re.UNICODE
        if flags & ~allowed:
            raise RegexError(f"unsupported regex flags {flags & ~allowed:#x}", pattern)

        def build() -> CompiledConstraint:
            dfa = compile_regex(pattern, flags)
            if dfa.is_empty:
                raise RegexError("the regex matches nothing", pattern)
            dfa = dfa.restricted(self.vocab.byte_alphabet)
            if dfa.is_empty:
                raise RegexError("the regex matches nothing this tokenizer can spell", pattern)
            return CompiledConstraint(DFAAutomaton(dfa, self.vocab, self.trie), "regex", pattern)

        return self._cached(("regex", pattern, flags), build)

    def grammar(self, grammar: Any, kind: str = "grammar") -> CompiledConstraint:
        """Text in the language of a :class:`~constrain.grammar_ir.Grammar` (the IR every front end builds)."""
        from constrain.grammar_automaton import GrammarAutomaton
        from constrain.grammar_tables import build_tables

        # JSON-Schema grammars have no combinatorial alternatives to factor (on MaskBench 14 of 1,184
        # candidates shrank, for 5% of compile time); Lark's expansion of optional parts does
        tables = build_tables(grammar, self.vocab.byte_alphabet, factor=kind != "json_schema")
        observe_after = JSON_OBSERVE_AFTER if kind == "json_schema" else 0
        automaton = GrammarAutomaton(tables, self.vocab, self.trie, self.shared_masks, observe_after=observe_after)
        if kind != "json_schema" and self.precompute_s > 0:
            automaton.precompute_lexemes(self.precompute_s)
            automaton.mask(automaton.initial_state)  # every generation's first mask: made here, once
        return CompiledConstraint(automaton, kind, grammar)

    @property
    def shared_masks(self) -> Any:
        """Token masks per terminal DFA state, shared by every grammar compiled for this tokenizer."""
        work = self._work
        if work.shared_masks is None:
            from constrain.grammar_automaton import SharedMasks

            with _per_tokenizer_lock:
                if work.shared_masks is None:
                    work.shared_masks = SharedMasks(self.trie, bitmask_words(self.vocab.size))
        return work.shared_masks

    def lark(self, text: str, start: str = "start") -> CompiledConstraint:
        """Text in the language of a Lark grammar (read by lark's own loader; see ``constrain.lark_frontend``)."""
        from constrain.lark_frontend import lark_to_grammar

        return self._cached(("lark", text, start), lambda: self.grammar(lark_to_grammar(text, start), kind="lark"))

    def gbnf(self, text: str) -> CompiledConstraint:
        """Text in the language of a llama.cpp GBNF grammar (rule ``root``)."""
        from constrain.gbnf import gbnf_to_grammar

        return self._cached(("gbnf", text), lambda: self.grammar(gbnf_to_grammar(text), kind="gbnf"))

    def json_schema(self, schema: Any, **options: Any) -> CompiledConstraint:
        """JSON text valid under ``schema`` (a dict, a JSON string, or a pydantic model class).

        Options are documented in :func:`constrain.json_schema.schema_to_grammar`.
        """
        import json

        from constrain.json_schema import schema_to_grammar

        if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
            schema = schema.model_json_schema()
        elif isinstance(schema, (str, bytes)):
            schema = json.loads(schema)
        key = ("json", _json_key(schema), _json_key(options))
        return self._cached(key, lambda: self.grammar(schema_to_grammar(schema, **options), kind="json_schema"))


def _json_key(v: Any) -> Any:
    """A cache key for a JSON-like value: its sorted JSON text (C code, about 8x faster than
    :func:`_canonical`), or ``_canonical``'s when it has keys or values JSON cannot write."""
    import json

    try:
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return _canonical(v)


def _canonical(v: Any) -> Any:
    """A hashable cache key for a JSON-like value that keeps types apart (1, 1.0, True, "1", Decimal)."""
    if isinstance(v, dict):
        return ("dict", tuple(sorted((str(k), _canonical(x)) for k, x in v.items())))
    if isinstance(v, (list, tuple)):
        return ("list", tuple(_canonical(x) for x in v))
    if isinstance(v, (str, int, float, bool, type(None))) or hasattr(v, "as_tuple"):
        return (type(v).__name__, v)
    return (type(v).__name__, repr(v))

