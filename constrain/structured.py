"""Typed generation: a pydantic model class in, a validated instance of it out.

The model's JSON Schema (``model_json_schema()``) is compiled exactly (:mod:`constrain.json_schema`), so
every text that ends by EOS is valid JSON for it; pydantic then parses it. The one way to get no
object is running out of tokens first, reported by :class:`IncompleteGenerationError`.
"""

from __future__ import annotations

from typing import Any, TypeVar

M = TypeVar("M")


class IncompleteGenerationError(RuntimeError):
    """The token limit ended the text before the constraint could: ``text`` is a valid prefix only."""

    def __init__(self, text: str, tokens: int) -> None:
        super().__init__(
            f"generation stopped at the token limit ({tokens} tokens) before the JSON was complete; "
            "raise max_new_tokens or add maxLength/maxItems to the schema"
        )
        self.text = text
        self.tokens = tokens


def generate_object(
    prompt: str,
    model_cls: type[M],
    *,
    model: Any = None,
    tokenizer: Any = None,
    schema_options: dict[str, Any] | None = None,
    **generate_kwargs: Any,
) -> M:
    """Generate JSON valid under ``model_cls``'s schema and return it parsed by ``model_cls``.

    ``schema_options`` go to :func:`constrain.json_schema.schema_to_grammar` (``whitespace``, ``indent``,
    ``any_order``, ``strict``, ...); ``generate_kwargs`` to :func:`constrain.generate` (``max_new_tokens``,
    ``temperature``, ``seed``, ``sampler``, ...). ``model``/``tokenizer`` default to the embedded model.

    Raises :class:`IncompleteGenerationError` when the token limit is hit first, and pydantic's
    ``ValidationError`` for what the schema cannot express (custom validators).
    """
    from constrain.generation import compiler_for, default_compiler, default_model, generate_result

    if not hasattr(model_cls, "model_json_schema") or not hasattr(model_cls, "model_validate_json"):
        raise TypeError(f"{model_cls!r} is not a pydantic model class")
    if model is None:
        model, tokenizer = default_model()
        compiler = default_compiler()
    elif tokenizer is None:
        raise ValueError("pass the model's tokenizer")
    else:
        compiler = compiler_for(tokenizer, model)
    constraint = compiler.json_schema(model_cls, **(schema_options or {}))
    result = generate_result(prompt, constraint, model, tokenizer, **generate_kwargs)
    if not result.stopped_by_eos:
        raise IncompleteGenerationError(result.text, len(result.token_ids))
    return model_cls.model_validate_json(result.text)  # type: ignore[attr-defined, no-any-return]


__all__ = ["IncompleteGenerationError", "generate_object"]
