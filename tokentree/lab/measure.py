"""Measuring a model at any checkpoint: rates of named datasets, KL to a reference model, and samples.

* :func:`response_rates`: bits per token of each dataset's responses, each given its
  context (the prompt and template before it), through the scorer protocol.
* :func:`kl_to_reference`: the mean token-level KL(model || reference) over the response
  positions of held-out examples, computed exactly over the whole vocabulary (the
  papers' "KL to the base model"), in nats.
* :func:`sample_responses`: seeded, batched sampling with temperature and top-p, using
  the KV cache; the same seed gives the same responses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.bridge.scoring import MeasuredRate, measure_rate
from tokentree.data.chat import TokenizedExamples, as_messages
from tokentree.infra.checks import check_float, check_int
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress

__all__ = ["scorer_for", "response_rates", "KLToReference", "kl_to_reference", "token_kl", "Samples",
           "sample_responses"]


def scorer_for(model: Any, *, batch_size: int = 16, threads: int = 1, n_scored_tokens: int | None = None) -> Any:
    """The model as a scorer of :class:`TokenizedExamples` continuations: nothing put in front of
    a sequence (its context starts it), windows of the model's whole context."""
    from tokentree.bridge.hf import HFScorer

    context = int(model.config.max_position_embeddings)
    return HFScorer(
        model, bos_token_id=None, max_context=context, stride=max(1, context // 2), batch_size=batch_size,
        threads=threads, show_progress=False, n_scored_tokens=n_scored_tokens,
    )


def response_rates(
    model: Any, datasets: Mapping[str, TokenizedExamples], *, batch_size: int = 16, threads: int = 1,
    n_scored_tokens: int | None = None,
) -> dict[str, MeasuredRate]:
    """Bits per token of every dataset's continuations (last responses) given their contexts."""
    scorer = scorer_for(model, batch_size=batch_size, threads=threads, n_scored_tokens=n_scored_tokens)
    out = {}
    for name, data in datasets.items():
        contexts, continuations = data.split()
        out[name] = measure_rate(scorer, continuations, contexts=contexts)
    return out


@dataclass(frozen=True)
class KLToReference:
    """Mean KL(model || reference) per response token, exact over the vocabulary (nats), and its spread."""

    mean_kl_nats: float
    max_kl_nats: float
    n_positions: int


def kl_to_reference(model: Any, reference: Any, data: TokenizedExamples, *, batch_size: int = 8) -> KLToReference:
    """KL(model || reference) averaged over every target position of ``data`` (all targets, not just the last run).

    Both models see the same tokens; at each target position the two next-token
    distributions are compared over the whole vocabulary in float64.
    """
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    if model.config.vocab_size != reference.config.vocab_size:
        raise InputError(
            f"the models have different vocabularies ({model.config.vocab_size} and {reference.config.vocab_size}); "
            "KL needs the same tokenizer"
        )
    check_int(batch_size, "batch_size", minimum=1)
    total, worst, count = 0.0, 0.0, 0
    order = sorted(range(len(data)), key=lambda i: -data.sequences[i].shape[0])
    for b in range(0, len(order), batch_size):
        ids, attention, targets = data.padded(order[b : b + batch_size])
        with torch.inference_mode():
            log_p = _log_probs(model, ids, attention)
            log_r = _log_probs(reference, ids, attention)
        positions = targets[:, 1:]  # the distribution at t predicts token t + 1
        kl = token_kl(log_p, log_r)[positions]
        total += float(kl.sum())
        worst = max(worst, float(kl.max())) if kl.numel() else worst
        count += int(positions.sum())
    return KLToReference(mean_kl_nats=total / count, max_kl_nats=worst, n_positions=count)


def token_kl(log_p: Any, log_q: Any) -> Any:
    """KL(p || q) at every position, from log-probabilities over the vocabulary (the last axis)."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _log_probs(model: Any, ids: Any, attention: Any) -> Any:
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    model.eval()
    device = next(model.parameters()).device
    logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits[:, :-1].cpu()
    return torch.log_softmax(logits.double(), dim=-1)


@dataclass(frozen=True)
class Samples:
    """Sampled responses: their text and token ids, one per prompt (in the prompts' order)."""

    texts: tuple[str, ...]
    token_ids: tuple[np.ndarray, ...]


def sample_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    use_cache: bool = True,
    show_progress: bool | None = None,
) -> Samples:
    """One sampled response per prompt (a chat without its last answer, or a user message as text).

    Prompts are rendered with the chat template and a generation prompt, batched with
    left padding, and sampled with ``temperature`` and nucleus ``top_p``; every batch is
    seeded from ``(seed, batch index)``, so results do not depend on what ran before.
    """
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    check_int(max_new_tokens, "max_new_tokens", minimum=1)
    check_float(temperature, "temperature", minimum=0.0, exclusive=True)
    check_float(top_p, "top_p", minimum=0.0, maximum=1.0, exclusive=True)
    check_int(seed, "seed", minimum=0)
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("sampling renders prompts with a chat template, and this tokenizer has none")
    rendered = []
    for n, prompt in enumerate(prompts):
        turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if turns and turns[-1].get("role") == "assistant":
            turns = turns[:-1]
        as_messages([*turns, {"role": "assistant", "content": "x"}], f"prompt {n}")  # validates the turns
        ids = tokenizer.apply_chat_template(turns, tokenize=True, add_generation_prompt=True)
        rendered.append([int(t) for t in (ids["input_ids"] if hasattr(ids, "keys") else ids)])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = _stop_ids(tokenizer)
    device = next(model.parameters()).device
    model.eval()
    texts: list[str] = []
    token_ids: list[np.ndarray] = []
    batches = [list(range(b, min(b + batch_size, len(rendered)))) for b in range(0, len(rendered), batch_size)]
    for index, batch in enumerate(progress(batches, desc="sampling", show=show_progress)):
        width = max(len(rendered[i]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for r, i in enumerate(batch):
            ids[r, width - len(rendered[i]) :] = torch.tensor(rendered[i])
            attention[r, width - len(rendered[i]) :] = 1
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))
            out = model.generate(
                input_ids=ids.to(device), attention_mask=attention.to(device), do_sample=True,
                temperature=temperature, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens, use_cache=use_cache,
                pad_token_id=pad, eos_token_id=eos,
            )
        for row in out[:, width:].cpu().numpy():
            stop = next((j for j, t in enumerate(row.tolist()) if t in eos), row.shape[0])
            token_ids.append(row[:stop].astype(np.int64))
            texts.append(tokenizer.decode(row[:stop], skip_special_tokens=True))
    return Samples(tuple(texts), tuple(token_ids))


def _stop_ids(tokenizer: Any) -> list[int]:
    """Tokens that end a response: EOS and the chat template's end-of-turn marker when it has one."""
    stops = {tokenizer.eos_token_id}
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id >= 0:
            stops.add(token_id)
    stops.discard(None)
    if not stops:
        raise InputError("the tokenizer has no EOS token, so a response cannot end")
    return sorted(int(s) for s in stops)

