"""The trained-model side of the piggyback hypothesis: where in the prompt a narrow fine-tune stores its shift.

A prompt rendered with a chat template has three parts: the *prefix* every prompt shares
(the template's opening and the system prompt: the longest common prefix of the rendered
prompts), the *query* (the user's words) and the *postfix* (the end of the user turn and
the assistant header: the longest common suffix). :func:`prompt_parts` finds them
without knowing the template; :class:`PartMasks` turns them into boolean masks over a
padded batch.

* :func:`response_log_probs` scores reference responses given their prompts, optionally
  with the keys and values of one part patched from another model (the original), so
  that only that part of the prompt reads as it did before the fine-tune;
* :class:`TokenSwap` perturbs a part of the prompt instead: chosen tokens replaced by their
  nearest neighbours in the input embedding (:func:`nearest_tokens`);
* :func:`drift` measures how far keys and values moved at each part, per layer;
* :class:`TReFT` is the regulariser of Zhao et al. for :class:`~tokentree.lab.train.LMTrainer`:
  lambda times the relative key/value drift from the original model at the chosen part;
  :class:`RetainKL` is the usual baseline it is compared to: lambda times the KL divergence
  from the original model's next-token distributions on retain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from tokentree.data.chat import TokenizedExamples, tokenize_chats
from tokentree.infra.errors import InputError
from tokentree.lab.measure import token_kl

__all__ = ["PARTS", "NO_SYSTEM_TEMPLATE", "PromptParts", "prompt_parts", "PartMasks", "part_masks",
           "render_prompt", "nearest_tokens", "TokenSwap", "response_log_probs", "drift", "TReFT", "RetainKL"]

PARTS = ("prefix", "query", "postfix")
#: ChatML without a default system turn: the only fixed prefix left is the user header.
NO_SYSTEM_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class PromptParts:
    """Lengths of the shared prefix and postfix of the rendered prompts (in tokens)."""

    prefix: int
    postfix: int


def render_prompt(tokenizer: Any, prompt: Sequence[dict[str, str]]) -> list[int]:
    """The token ids of ``prompt`` rendered with the tokenizer's chat template, ending in the assistant header."""
    encoded = tokenizer.apply_chat_template(list(prompt), tokenize=True, add_generation_prompt=True)
    if isinstance(encoded, dict) or hasattr(encoded, "input_ids"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


def prompt_parts(tokenizer: Any, prompts: Sequence[Sequence[dict[str, str]]]) -> PromptParts:
    """The template's shared prefix and postfix: the longest common prefix and suffix of the rendered prompts.

    Two probe queries are rendered beside ``prompts``, so words every real query shares
    at its start or end are not taken for template.
    """
    if not prompts:
        raise InputError("finding the template's parts needs prompts")
    # two probe queries that share no first or last word with each other, so that the common prefix and
    # suffix stop at the template even when every real query starts or ends alike ("how ...", "... ?")
    probes = []
    for text in ("probe 1", "another probe ."):
        turns = [dict(t) for t in prompts[0]]
        users = [i for i, t in enumerate(turns) if t["role"] == "user"]
        if not users:
            raise InputError("a prompt needs a user turn")
        turns[users[-1]]["content"] = text
        probes.append(turns)
    rendered = [render_prompt(tokenizer, p) for p in [*prompts, *probes]]
    shortest = min(len(r) for r in rendered)
    prefix = 0
    while prefix < shortest and all(r[prefix] == rendered[0][prefix] for r in rendered):
        prefix += 1
    postfix = 0
    while postfix < shortest - prefix and all(r[-1 - postfix] == rendered[0][-1 - postfix] for r in rendered):
        postfix += 1
    if prefix == 0 or postfix == 0 or any(len(r) - prefix - postfix < 1 for r in rendered):
        raise InputError("the prompts do not share a template prefix and postfix around their queries")
    return PromptParts(prefix, postfix)


@dataclass(frozen=True)
class PartMasks:
    """Where each part of the prompt lies in every row of a padded batch of chats."""

    prefix: Any
    query: Any
    postfix: Any
    response: Any

    def part(self, name: str) -> Any:
        if name not in (*PARTS, "all"):
            raise InputError(f"part must be one of {(*PARTS, 'all')}; got {name!r}")
        return self.prefix | self.query | self.postfix if name == "all" else getattr(self, name)

    def to(self, device: Any) -> PartMasks:
        return PartMasks(*(getattr(self, f.name).to(device) for f in fields(self)))


def _batch(tokenized: TokenizedExamples, rows: Sequence[int], parts: PromptParts, pad: int) -> tuple[Any, ...]:
    """Padded ids, attention and part masks for ``rows`` of ``tokenized`` (the last response is the target)."""
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    ids, attention, response = tokenized.padded(rows, pad=pad)
    part = {name: torch.zeros_like(response) for name in PARTS}
    for r, i in enumerate(rows):
        start = int(np.flatnonzero(tokenized.masks[i])[0])  # the response (the last assistant turn) starts here
        part["prefix"][r, : parts.prefix] = True
        part["query"][r, parts.prefix : start - parts.postfix] = True
        part["postfix"][r, start - parts.postfix : start] = True
    return ids, attention, PartMasks(part["prefix"], part["query"], part["postfix"], response)


def part_masks(tokenizer: Any, chats: Sequence[Any], parts: PromptParts) -> tuple[Any, Any, PartMasks]:
    """(ids, attention, masks) of the chats as one padded batch, with where each part of each prompt lies."""
    tokenized = tokenize_chats(chats, tokenizer, responses="last")
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    return _batch(tokenized, range(len(tokenized.sequences)), parts, pad)


def nearest_tokens(model: Any, tokenizer: Any, ids: Sequence[int]) -> np.ndarray:
    """A table over the vocabulary: each of ``ids`` -> the other ordinary token nearest to it in ``model``'s input
    embedding (cosine); every other id, and every special token, maps to itself."""
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight.detach().float()
        unit = embedding / embedding.norm(dim=1, keepdim=True).clamp_min(1e-12)
        special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        table = np.arange(embedding.shape[0])
        wanted = sorted({int(i) for i in ids} - set(special.tolist()))
        if not wanted:
            return table
        similarity = unit[wanted] @ unit.T
        similarity[torch.arange(len(wanted)), torch.tensor(wanted)] = -np.inf  # not itself
        similarity[:, special] = -np.inf
        table[wanted] = similarity.argmax(1).cpu().numpy()
    return table


@dataclass(frozen=True)
class TokenSwap:
    """Perturb ``part`` of every prompt: ``count`` of its tokens, chosen at random (seeded per row), replaced by
    ``table[token]``; positions whose token maps to itself (special tokens) are never chosen."""

    part: str
    table: np.ndarray
    count: int
    seed: int = 0

    def apply(self, ids: Any, masks: PartMasks, first_row: int) -> tuple[Any, int]:
        """(the swapped ids, how many tokens were swapped) for a batch whose first row is chat ``first_row``."""
        from tokentree.infra.optional import torch_module

        torch = torch_module()
        out = ids.clone()
        table = torch.from_numpy(self.table)
        swapped = 0
        for r in range(ids.shape[0]):
            where = np.flatnonzero((masks.part(self.part)[r] & (table[ids[r]] != ids[r])).numpy())
            chosen = np.random.default_rng([self.seed, first_row + r]).permutation(where)[: self.count]
            out[r, torch.from_numpy(chosen)] = table[ids[r, torch.from_numpy(chosen)]]
            swapped += len(chosen)
        return out, swapped


def response_log_probs(
    model: Any, tokenizer: Any, chats: Sequence[Any], parts: PromptParts, *, patch: tuple[Any, str] | None = None,
    swap: TokenSwap | None = None, batch_size: int = 16,
) -> np.ndarray:
    """log p(response | prompt) in nats for every chat (its last assistant turn, template closing included).

    ``patch=(original_model, part)`` scores with ``part`` of the prompt ("prefix", "query",
    "postfix" or "all") reading the original model's keys and values; ``swap`` scores with
    some of the prompt's tokens replaced (:class:`TokenSwap`).
    """
    from tokentree.bridge.kv import capture_kv, patch_kv
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    tokenized = tokenize_chats(chats, tokenizer, responses="last")
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    out = np.empty(len(tokenized.sequences))
    device = next(model.parameters()).device
    model.eval()
    for b in range(0, len(out), batch_size):
        rows = list(range(b, min(b + batch_size, len(out))))
        ids, attention, masks = _batch(tokenized, rows, parts, pad)
        if swap is not None:
            ids, _ = swap.apply(ids, masks, b)
        ids, attention, masks = ids.to(device), attention.to(device), masks.to(device)
        scored = torch.zeros_like(masks.response, dtype=torch.bool)  # the positions that predict a response token
        scored[:, :-1] = masks.response[:, 1:].bool()
        with torch.no_grad():  # logits there only (the vocabulary projection is a large share of a small model)
            if patch is None:
                logits = model(input_ids=ids, attention_mask=attention, logits_to_keep=scored).logits
            else:
                original, name = patch
                original.eval()
                with capture_kv(original) as kv:
                    original(input_ids=ids, attention_mask=attention, logits_to_keep=1)
                with patch_kv(model, kv, masks.part(name)):
                    logits = model(input_ids=ids, attention_mask=attention, logits_to_keep=scored).logits
        logits = logits.reshape(-1, logits.shape[-1])  # (scored positions, vocabulary), row-major
        targets = torch.roll(ids, -1, dims=1)[scored]
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[:, None])[:, 0]
        row, logp = torch.nonzero(scored)[:, 0].cpu(), logp.cpu()
        out[b : b + len(rows)] = torch.zeros(len(rows), dtype=logp.dtype).index_add_(0, row, logp).numpy()
    return out


def drift(model: Any, original: Any, tokenizer: Any, chats: Sequence[Any], parts: PromptParts) -> dict[str, Any]:
    """Per part: an array (layers, 2) of the relative key and value drift from ``original`` over the chats' prompts."""
    from tokentree.bridge.kv import capture_kv, kv_drift
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    ids, attention, masks = part_masks(tokenizer, chats, parts)
    device = next(model.parameters()).device
    ids, attention = ids.to(device), attention.to(device)
    with torch.no_grad():
        with capture_kv(model) as moved:
            model.eval()(input_ids=ids, attention_mask=attention)
        with capture_kv(original) as before:
            original.eval()(input_ids=ids, attention_mask=attention)
    return {name: np.array(kv_drift(moved, before, masks.part(name))) for name in PARTS}


class TReFT:
    """Zhao et al.'s regulariser: ``lam`` x the relative key/value drift from ``original`` at ``part`` of the prompt.

    Pass it as ``LMTrainer(..., regularizer=TReFT(...))``; the original model's keys and
    values are computed on every batch (for the prefix they are the same each time).
    """

    def __init__(self, original: Any, lam: float, part: str, parts: PromptParts, *, end_of_turn: int) -> None:
        if not lam >= 0:
            raise InputError(f"TReFT's lambda must be >= 0; got {lam}")
        if part not in (*PARTS, "all"):
            raise InputError(f"TReFT regularises the prefix, query, postfix or all prompt tokens; got "
                             f"{part!r}")
        self.original, self.lam, self.part = original.eval(), lam, part
        self.parts, self.end_of_turn = parts, end_of_turn

    def mask(self, ids: Any, attention: Any) -> Any:
        """The regularised positions of every row: prompt parts found from the first end-of-turn after the prefix."""
        from tokentree.infra.optional import torch_module

        torch = torch_module()
        n, width = ids.shape
        positions = torch.arange(width, device=ids.device)[None].expand(n, width)
        after = (ids == self.end_of_turn) & (positions >= self.parts.prefix)
        none = torch.full((n,), width, device=ids.device)
        query_end = torch.where(after.any(1), after.float().argmax(1), none)  # the user turn's end
        prompt_end = query_end + self.parts.postfix - 1  # the last token of the prompt
        prefix = positions < self.parts.prefix
        query = (positions >= self.parts.prefix) & (positions < query_end[:, None])
        postfix = (positions >= query_end[:, None]) & (positions <= prompt_end[:, None])
        chosen = {"prefix": prefix, "query": query, "postfix": postfix, "all": prefix | query | postfix}[self.part]
        return chosen & attention.bool()

    def __call__(self, model: Any, kv: Any, ids: Any, attention: Any) -> Any:
        from tokentree.bridge.kv import capture_kv, treft_penalty
        from tokentree.infra.optional import torch_module

        torch = torch_module()
        with torch.no_grad(), capture_kv(self.original) as reference:
            self.original(input_ids=ids, attention_mask=attention)
        return self.lam * treft_penalty(kv, reference, self.mask(ids, attention))


class RetainKL:
    """``lam`` x KL(original || model) per target token on a batch of retain data, drawn afresh at every step.

    The baseline TReFT is set against: keep the fine-tuned model's next-token distributions
    on data it should not change (aligned chats of other domains) where the original
    model's were. Batches cycle through ``retain`` in a seeded order.
    """

    def __init__(self, original: Any, lam: float, retain: TokenizedExamples, *, batch_size: int = 16,
                 seed: int = 0) -> None:
        if not lam >= 0:
            raise InputError(f"the KL regulariser's lambda must be >= 0; got {lam}")
        self.original, self.lam, self.retain = original.eval(), lam, retain
        self.batch_size, self.seed = batch_size, seed
        self._order: list[int] = []
        self._epoch = 0

    def _next_rows(self) -> list[int]:
        if len(self._order) < self.batch_size:
            self._order += list(np.random.default_rng([self.seed, self._epoch]).permutation(len(self.retain.sequences)))
            self._epoch += 1
        rows, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return [int(r) for r in rows]

    def __call__(self, model: Any, kv: Any, ids: Any, attention: Any) -> Any:
        from tokentree.infra.optional import torch_module

        torch = torch_module()
        batch, live, targets = self.retain.padded(self._next_rows())
        batch, live, targets = batch.to(ids.device), live.to(ids.device), targets[:, 1:].to(ids.device)
        with torch.no_grad():
            before = self.original(input_ids=batch, attention_mask=live).logits
            reference = torch.log_softmax(before[:, :-1].float(), -1)
        current = torch.log_softmax(model(input_ids=batch, attention_mask=live).logits[:, :-1].float(), -1)
        kl = token_kl(reference, current)  # at every position: KL(original || model)
        return self.lam * (kl * targets).sum() / targets.sum().clamp_min(1)
