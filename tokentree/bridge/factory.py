"""One factory for a model scorer: a loaded or trained causal LM as a :class:`~tokentree.bridge.hf.HFScorer`.

Experiments that score a model build it here instead of by hand: :func:`model_scorer`
wraps a model (windows of its whole context by default, half of it as the stride),
:func:`start_token` is the id put in front of every sequence (the tokenizer's BOS, else
its EOS, else an error that says so) and :func:`load_scorer` loads a model by name or
path (:func:`~tokentree.bridge.hf.load_model`) and wraps it. Importing this module
imports torch (through :mod:`tokentree.bridge.hf`).
"""

from __future__ import annotations

from typing import Any

from tokentree.bridge.hf import HFScorer, load_model
from tokentree.infra.errors import InputError

__all__ = ["model_scorer", "start_token", "load_scorer"]


def start_token(tokenizer: Any, source: str) -> int:
    """The id that starts a sequence for ``tokenizer``: its BOS, else its EOS; ``source`` names it in the error."""
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise InputError(f"{source}: its tokenizer has neither a BOS nor an EOS token to start sequences with; "
                         "give a tokenizer that has one")
    return int(bos)


def model_scorer(
    model: Any, *, bos_token_id: int | None, max_context: int | None = None, stride: int | None = None,
    batch_size: int = 32, threads: int = 1, n_scored_tokens: int | None = None, show_progress: bool | None = None,
) -> HFScorer:
    """``model`` as a scorer: ``bos_token_id`` in front of every sequence (None: nothing, contexts start them);
    windows of ``max_context`` tokens (default the model's whole context) moving by ``stride`` (default half)."""
    context = int(model.config.max_position_embeddings) if max_context is None else max_context
    return HFScorer(model, bos_token_id=bos_token_id, max_context=context,
                    stride=max(1, context // 2) if stride is None else stride, batch_size=batch_size, threads=threads,
                    show_progress=show_progress, n_scored_tokens=n_scored_tokens)


def load_scorer(source: str, *, device: str = "auto", **options: Any) -> tuple[HFScorer, Any]:
    """(scorer, tokenizer) of the model ``source`` ("smollm2", a folder, a .gguf file or a hub name) on ``device``,
    its tokenizer's start token in front of every sequence; ``options`` go to :func:`model_scorer`."""
    model, tokenizer = load_model(source, device=device)
    return model_scorer(model, bos_token_id=start_token(tokenizer, source), **options), tokenizer
