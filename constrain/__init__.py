"""constrain: constraints (regex, grammars, JSON Schema) compiled to exact token-level automata.

The public surface is imported lazily so that ``import constrain`` (and the ``constrain`` CLI) stays
fast: numba, torch and transformers load only when the object that needs them is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Compiler": "constrain.compiler",
    "CompiledConstraint": "constrain.compiler",
    "ConstraintError": "constrain.errors",
    "RegexError": "constrain.errors",
    "GrammarError": "constrain.errors",
    "SchemaError": "constrain.errors",
    "Vocabulary": "constrain.vocab",
    "Matcher": "constrain.matcher",
    "allocate_bitmask": "constrain.bitmask",
    "bitmask_words": "constrain.bitmask",
    "generate": "constrain.generation",
    "ConstrainedLogitsProcessor": "constrain.generation",
    "load_default_model": "constrain.model",
    "load_default_tokenizer": "constrain.model",
    "generate_object": "constrain.structured",
}

__all__ = [
    "CompiledConstraint",
    "Compiler",
    "ConstrainedLogitsProcessor",
    "ConstraintError",
    "GrammarError",
    "Matcher",
    "RegexError",
    "SchemaError",
    "Vocabulary",
    "allocate_bitmask",
    "bitmask_words",
    "generate",
    "generate_object",
    "load_default_model",
    "load_default_tokenizer",
]

if TYPE_CHECKING:
    from constrain.bitmask import allocate_bitmask, bitmask_words
    from constrain.compiler import CompiledConstraint, Compiler
    from constrain.errors import ConstraintError, GrammarError, RegexError, SchemaError
    from constrain.generation import ConstrainedLogitsProcessor, generate
    from constrain.matcher import Matcher
    from constrain.model import load_default_model, load_default_tokenizer
    from constrain.structured import generate_object
    from constrain.vocab import Vocabulary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'constrain' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
