"""Constrained generation with transformers models: a ``LogitsProcessor`` and ``generate``.

``generate`` runs its own decoding loop (KV cache, one forward pass per token) so that it controls
sampling exactly: the mask is applied to the model's logits after temperature, and the sampled token
always advances the matcher. ``ConstrainedLogitsProcessor`` plugs the same masking into
``model.generate`` for users who prefer transformers' loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from constrain.compiler import CompiledConstraint, Compiler
    from constrain.matcher import Matcher

_default: dict[Any, Any] = {}


def default_tokenizer() -> Any:
    """The embedded model's tokenizer, loaded once per process."""
    if "tokenizer" not in _default:
        from constrain.model import load_default_tokenizer

        _default["tokenizer"] = load_default_tokenizer()
    return _default["tokenizer"]


def default_model() -> tuple[Any, Any]:
    """The embedded model and its tokenizer, loaded once per process."""
    if "model" not in _default:
        from constrain.model import load_default_model

        _default["model"], _ = load_default_model(tokenizer=default_tokenizer())
    return _default["model"], default_tokenizer()


def default_compiler() -> Compiler:
    """The compiler for the embedded model (its logits are as wide as its tokenizer; EOS is <|im_end|>)."""
    return compiler_for(default_tokenizer())


def compiler_for(tokenizer: Any, model: Any = None) -> Compiler:
    """A :class:`Compiler` for ``tokenizer`` (sized to the model's logits), cached per tokenizer object."""
    from constrain.compiler import Compiler
    from constrain.model import generation_eos_ids

    key = ("compiler", id(tokenizer), id(model))
    hit = _default.get(key)
    if hit is None:
        vocab_size = None
        eos: list[int] = []
        if model is not None:
            vocab_size = int(getattr(model.config, "vocab_size", 0)) or None
            eos = generation_eos_ids(model)
        hit = Compiler(tokenizer, vocab_size=vocab_size, eos_token_ids=eos)
        _default[key] = hit
    return hit


def as_constraint(constraint: Any, compiler: Compiler) -> CompiledConstraint:
    """Accept a compiled constraint, a regex string, a JSON Schema dict, or a pydantic model class.

    Also accepted (for the samplers): predicate and product constraints from ``constrain.samplers``,
    and a plain callable ``prefix_ok(text) -> bool``, wrapped as a predicate constraint.
    """
    from constrain.compiler import CompiledConstraint

    if isinstance(constraint, CompiledConstraint):
        if constraint.vocab is not compiler.vocab and constraint.vocab.token_bytes != compiler.vocab.token_bytes:
            raise ValueError("the constraint was compiled for a different tokenizer than the model's")
        return constraint
    if isinstance(constraint, str):
        return compiler.regex(constraint)
    if isinstance(constraint, dict) or (isinstance(constraint, type) and hasattr(constraint, "model_json_schema")):
        return compiler.json_schema(constraint)  # type: ignore[attr-defined]
    if hasattr(constraint, "matcher") and hasattr(constraint, "vocab"):  # predicate and product constraints
        if constraint.vocab.token_bytes != compiler.vocab.token_bytes:
            raise ValueError("the constraint was built for a different tokenizer than the model's")
        return constraint  # type: ignore[no-any-return]
    if callable(constraint):  # a predicate on the text so far: True while the prefix can still be completed
        from constrain.samplers.predicate import PredicateConstraint

        return PredicateConstraint(constraint, compiler.vocab)  # type: ignore[return-value]
    raise TypeError(f"cannot use {type(constraint).__name__} as a constraint")


def apply_mask_(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """Set disallowed logits to -inf in place (``logits`` [batch, V], ``bitmask`` int32 [batch, words])."""
    import torch

    bitmask = bitmask.to(logits.device, non_blocking=True)
    width = logits.shape[-1]
    shifts = torch.arange(32, device=logits.device, dtype=torch.int32)
    bits = ((bitmask.unsqueeze(-1) >> shifts) & 1).flatten(-2)[..., :width].bool()
    logits.masked_fill_(~bits, -math.inf)


def prompt_ids(tokenizer: Any, prompt: str, chat: bool | None = None, system: str | None = None) -> list[int]:
    """Token ids of ``prompt``, through the chat template when the tokenizer has one (unless chat=False)."""
    use_chat = bool(getattr(tokenizer, "chat_template", None)) if chat is None else chat
    if use_chat:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    return [int(i) for i in tokenizer.encode(prompt)]


@dataclass
class GenerationResult:
    """What one constrained generation produced."""

    text: str
    token_ids: list[int]
    stopped_by_eos: bool
    """False when ``max_new_tokens`` ran out first (the text may then be an incomplete prefix)."""
    log_z: list[float] = field(default_factory=list)
    """Per step, log of the probability mass the mask kept (the LCD importance weight's factors); for
    AWRS the unbiased estimates Ẑ_t instead (log), for SMC those of the returned particle's lineage."""
    sampler: str = "lcd"
    log_ml: float | None = None
    """SMC only: log of the unbiased estimate of P(valid), the model's probability of valid text."""
    particles: list[Any] = field(default_factory=list)
    """SMC only: the weighted particles (``constrain.samplers.Particle``) the text was resampled from."""
    checks: int = 0
    """Constraint checks made one token at a time (AWRS); masks are not counted."""

    @property
    def log_weight(self) -> float:
        return float(sum(self.log_z))


def generate(
    prompt: str,
    constraint: Any,
    model: Any = None,
    tokenizer: Any = None,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    seed: int | None = None,
    chat: bool | None = None,
    system: str | None = None,
    progress: Any = None,
    sampler: str = "lcd",
    particles: int | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    **smc_options: Any,
) -> str:
    """Generate text from ``prompt`` that satisfies ``constraint``; returns the text.

    ``constraint``: a compiled constraint, a regex string, a JSON Schema dict, a pydantic model class,
    a predicate/product constraint from ``constrain.samplers``, or a callable ``prefix_ok(text)``.
    ``model``/``tokenizer`` default to the embedded SmolLM2-135M-Instruct. ``temperature=0`` is greedy;
    ``top_k``/``top_p`` truncate the model's distribution before the constraint is applied.

    ``sampler``: ``"lcd"`` (token masking, the default), ``"awrs"`` (adaptive rejection: same
    distribution as masking with a few checks per token; with ``particles > 1`` it runs AWRS-SMC) or
    ``"smc"`` (sequential Monte Carlo with ``particles``, default 8: samples the model conditioned on
    the constraint, correcting masking's bias). ``smc_options``: ``proposal``, ``ess_threshold``,
    ``resampling``, ``awrs_variant`` (see :func:`constrain.samplers.sample`).
    """
    return generate_result(
        prompt, constraint, model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature,
        seed=seed, chat=chat, system=system, progress=progress, sampler=sampler, particles=particles,
        top_k=top_k, top_p=top_p, **smc_options,
    ).text


def generate_result(
    prompt: str,
    constraint: Any,
    model: Any = None,
    tokenizer: Any = None,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    seed: int | None = None,
    chat: bool | None = None,
    system: str | None = None,
    progress: Any = None,
    sampler: str = "lcd",
    particles: int | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    **smc_options: Any,
) -> GenerationResult:
    """Like :func:`generate`, returning tokens, whether EOS ended the text, per-step log Z and, for
    SMC, the weighted particles and the estimate of log P(valid). ``progress`` is called once per step
    with the sampled token (-1 for SMC steps)."""
    from constrain.samplers import HFModel, Sampling, sample

    if model is None:
        model, tokenizer = default_model()
        compiler = default_compiler()
    elif tokenizer is None:
        raise ValueError("pass the model's tokenizer")
    else:
        compiler = compiler_for(tokenizer, model)
    compiled = as_constraint(constraint, compiler)
    ids = prompt_ids(tokenizer, prompt, chat, system)
    rng = np.random.default_rng(seed)

    def on_step(tokens: list[int]) -> None:
        if progress is not None:
            progress(tokens[0] if len(tokens) == 1 else -1)

    run = sample(
        HFModel(model), ids, compiled, sampler=sampler, particles=particles,
        sampling=Sampling(temperature, top_k, top_p), max_new_tokens=max_new_tokens, seed=rng,
        progress=on_step, **smc_options,
    )
    weighted = sampler == "smc" or (particles or 1) > 1
    chosen = run.sample(rng) if weighted else run.particles[0]
    if chosen.dead and not weighted:  # SMC instead returns a particle that ran out of budget
        raise RuntimeError(
            "no allowed token has positive probability" + (" within top_k/top_p" if top_k or top_p else "")
        )
    return GenerationResult(
        text=chosen.text, token_ids=chosen.token_ids, stopped_by_eos=chosen.eos, log_z=chosen.log_z,
        sampler=sampler, log_ml=run.log_ml if weighted else None, particles=run.particles if weighted else [],
        checks=run.checks,
    )


def _sample_masked(
    logits: torch.Tensor, bitmask: torch.Tensor, temperature: float, generator: Any, vocab_size: int
) -> tuple[int, float]:
    """Sample one token from softmax(logits / T) restricted to the mask; also return log Z (T-scaled)."""
    import torch

    width = logits.shape[-1]
    if width < vocab_size:  # the constraint is wider than the logits: pad (extra ids stay masked)
        logits = torch.nn.functional.pad(logits, (0, vocab_size - width), value=-math.inf)
    scaled = logits / temperature if temperature > 0 else logits.clone()
    log_total = torch.logsumexp(scaled, dim=-1)
    apply_mask_(scaled, bitmask)
    log_allowed = torch.logsumexp(scaled, dim=-1)
    if not torch.isfinite(log_allowed).all():
        raise RuntimeError("no allowed token has finite probability")
    if temperature <= 0:
        token = int(torch.argmax(scaled, dim=-1)[0])
    else:
        probs = torch.softmax(scaled, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=generator)[0, 0])
    return token, float(log_allowed[0] - log_total[0])


class ConstrainedLogitsProcessor:
    """A transformers ``LogitsProcessor``: masks each row's logits to the tokens its matcher allows.

    One matcher per batch row (``num_return_sequences``/beams expand rows in order). The processor
    advances each matcher by the token appended since its previous call, so pass it a fresh instance
    per ``generate`` call.
    """

    def __init__(self, constraint: CompiledConstraint, batch_size: int = 1) -> None:
        self.constraint = constraint
        self.matchers: list[Matcher] = [constraint.matcher() for _ in range(batch_size)]
        self._prompt_len: int | None = None
        self._bitmask: Any = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        from constrain.bitmask import allocate_bitmask

        batch = input_ids.shape[0]
        while len(self.matchers) < batch:
            self.matchers.append(self.constraint.matcher())
        if self._prompt_len is None:
            self._prompt_len = input_ids.shape[1]
        else:
            last = input_ids[:, -1].tolist()
            for row, tok in enumerate(last):
                m = self.matchers[row]
                if not m.finished and not m.advance(int(tok)):
                    raise RuntimeError(f"row {row}: token {tok} is not allowed by the constraint")
        if self._bitmask is None or self._bitmask.shape[0] != batch:
            self._bitmask = allocate_bitmask(batch, self.constraint.vocab_size)
        for row in range(batch):
            self.matchers[row].fill_bitmask(self._bitmask, row)
        scores = scores.clone()
        width = scores.shape[-1]
        if width > self.constraint.vocab_size:
            scores[:, self.constraint.vocab_size :] = -math.inf
        apply_mask_(scores, self._bitmask)
        return scores


def bitmask_allows(bitmask_row: Any, token: int) -> bool:
    """Whether bit ``token`` is set in one bitmask row (a tiny helper for tests and debugging)."""
    row = np.asarray(bitmask_row)
    return bool((int(row[token >> 5]) >> (token & 31)) & 1)
