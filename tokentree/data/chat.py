"""Training and evaluation data for causal LMs: text, prompt/response pairs and chats, with a loss mask.

Every example becomes the token sequence the model reads, with a mask saying which
tokens are training targets:

* plain text (pre-training): every token after the BOS;
* a chat (``{"messages": [...]}``, a list of ``{"role", "content"}`` turns, a
  ``{"prompt", "response"}`` pair with an optional ``system``, or a ``(prompt, response)``
  tuple): rendered with the tokenizer's own chat template, and only the assistant's
  tokens are targets (all assistant turns, or the last one), so the loss never counts
  the system prompt, the user's words or the template around them.

For measurement, :meth:`TokenizedExamples.split` cuts every sequence into a context (what
comes before the last response) and a continuation (the last response), so a response
is scored given its prompt.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.data.readers import ROLES, Example, as_messages, read_records
from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.infra.errors import InputError

__all__ = ["ROLES", "RESPONSE_TURNS", "as_messages", "read_chats", "TokenizedExamples", "tokenize_chats",
           "responses_in_context",
           "tokenize_texts", "from_sequences"]

#: Which assistant turns of a multi-turn chat are training targets.
RESPONSE_TURNS = ("all", "last")


def read_chats(path: str | os.PathLike[str]) -> list[tuple[dict[str, str], ...]]:
    """Chats from a file of any format :mod:`tokentree.data.readers` reads (JSONL, JSON, CSV, Parquet, ...).

    Each record holds ``messages`` (role/content turns) or ``prompt`` and ``response`` (and
    optionally ``system``). A bad record is reported as ``file:line`` with what is wrong;
    nothing is skipped silently.
    """
    chats = [as_messages(record, where) for where, record in read_records([path])]
    if not chats:
        raise InputError(f"{path} holds no examples")
    return chats


@dataclass(frozen=True, eq=False)
class TokenizedExamples:
    """Token sequences with a loss mask per token (True: a training target).

    Attributes
    ----------
    sequences : tuple of int64 arrays
        What the model reads, template and special tokens included.
    masks : tuple of bool arrays
        Training targets. The first token of a sequence is never one (nothing predicts it).
    """

    sequences: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.sequences) != len(self.masks):
            raise InputError(f"{len(self.sequences)} sequences but {len(self.masks)} masks")
        if not self.sequences:
            raise InputError("the dataset is empty: there is nothing to train on or measure")
        for i, (s, m) in enumerate(zip(self.sequences, self.masks, strict=True)):
            if s.shape != m.shape or s.ndim != 1:
                raise InputError(f"example {i}: its mask has shape {m.shape} for {s.shape} tokens")
            if not m[1:].any():
                raise InputError(f"example {i} has no target tokens (an empty response?); drop it")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def n_target_tokens(self) -> int:
        return int(sum(int(m[1:].sum()) for m in self.masks))

    def select(self, indices: Iterable[int]) -> TokenizedExamples:
        idx = list(indices)
        return TokenizedExamples(tuple(self.sequences[i] for i in idx), tuple(self.masks[i] for i in idx))

    def head(self, n: int) -> TokenizedExamples:
        return self.select(range(min(n, len(self))))

    @staticmethod
    def concatenate(parts: Sequence[TokenizedExamples]) -> TokenizedExamples:
        return TokenizedExamples(
            tuple(s for p in parts for s in p.sequences), tuple(m for p in parts for m in p.masks)
        )

    def padded(self, rows: Sequence[int], *, pad: int = 0) -> tuple[Any, Any, Any]:
        """(ids, attention, targets) of ``rows`` as torch tensors (rows, longest), right-padded with ``pad``."""
        from tokentree.infra.optional import torch_module

        torch = torch_module()
        width = max(self.sequences[i].shape[0] for i in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        targets = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, i in enumerate(rows):
            n = self.sequences[i].shape[0]
            ids[r, :n] = torch.from_numpy(self.sequences[i])
            attention[r, :n] = 1
            targets[r, :n] = torch.from_numpy(self.masks[i])
        return ids, attention, targets

    def split(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(contexts, continuations): each sequence cut where its last run of targets begins."""
        contexts, continuations = [], []
        for s, m in zip(self.sequences, self.masks, strict=True):
            targets = np.flatnonzero(m[1:]) + 1
            start = int(targets[-1])
            while start - 1 >= 1 and m[start - 1]:
                start -= 1
            contexts.append(s[:start])
            continuations.append(s[start:])
        return contexts, continuations


def _ids(encoded: Any) -> list[int]:
    """Token ids from what ``apply_chat_template(tokenize=True)`` returns (a list or a BatchEncoding)."""
    if isinstance(encoded, Mapping) or hasattr(encoded, "input_ids"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


def tokenize_chats(examples: Iterable[Any], tokenizer: Any, *, responses: str = "all") -> TokenizedExamples:
    """Chats rendered with the tokenizer's chat template; assistant tokens (``responses``: all or last) are targets."""
    if responses not in RESPONSE_TURNS:
        raise InputError(f"responses must be one of {RESPONSE_TURNS}; got {responses!r}")
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(
            "this tokenizer has no chat template, so chats cannot be rendered; use a chat model's tokenizer, "
            "set tokenizer.chat_template, or train one with tokentree.bridge.tiny.train_tiny_tokenizer"
        )
    sequences, masks = [], []
    for n, example in enumerate(examples):
        messages = as_messages(example, f"example {n}")
        full = _ids(tokenizer.apply_chat_template(list(messages), tokenize=True))
        mask = np.zeros(len(full), dtype=bool)
        turns = [j for j, t in enumerate(messages) if t["role"] == "assistant"]
        for j in turns if responses == "all" else turns[-1:]:
            before = _ids(tokenizer.apply_chat_template(list(messages[:j]), tokenize=True, add_generation_prompt=True))
            through = _ids(tokenizer.apply_chat_template(list(messages[: j + 1]), tokenize=True))
            if full[: len(through)] != through or through[: len(before)] != before:
                raise InputError(
                    f"example {n}: the chat template does not render a conversation's beginning as a prefix of "
                    "the whole, so the response tokens cannot be located; use a template without that"
                )
            mask[len(before) : len(through)] = True
        sequences.append(np.asarray(full, dtype=np.int64))
        masks.append(mask)
    return TokenizedExamples(tuple(sequences), tuple(masks))


def _end_of_turn(tokenizer: Any) -> int:
    """How many template tokens close an assistant turn (``<|im_end|>`` and a newline in ChatML).

    Found as the common tail of probe answers whose last characters differ (so their last
    content tokens differ in any tokenizer), so no template is assumed.
    """
    spans = []
    for answer in ("probe 1", "probe 2", "other probe 3"):
        probe = tokenize_chats([({"role": "user", "content": "q"}, {"role": "assistant", "content": answer})],
                               tokenizer, responses="last")
        spans.append(probe.sequences[0][probe.masks[0]].tolist())
    n = 0
    while n < min(map(len, spans)) and all(span[-1 - n] == spans[0][-1 - n] for span in spans):
        n += 1
    return n


def responses_in_context(examples: Iterable[Example], tokenizer: Any) -> tuple[TokenSequences, TokenSequences]:
    """Each response as the tokens it is *in its conversation*, and the tokens before it.

    The conversation (the example's context, then the response as an assistant turn) is
    rendered with ``tokenizer``'s chat template; the response's tokens are those the
    template puts between the assistant header and the end-of-turn marker, so a tree of
    them counts only response tokens, tokenized as the model sees them, and a scorer
    scores them given their contexts (template, system prompt, earlier turns, header).
    """
    chats = []
    for n, e in enumerate(examples):
        if not e.context:
            raise InputError(f"response {n} has no turn before it; a template renders a response after a prompt "
                             "(read conversations with --chat, or drop --template)")
        chats.append((*e.context, {"role": "assistant", "content": e.response}))
    if not chats:
        raise InputError("no responses to tokenize")
    tokenized = tokenize_chats(chats, tokenizer, responses="last")
    closing = _end_of_turn(tokenizer)
    contexts, continuations = tokenized.split()
    responses = [c[: len(c) - closing] if closing and len(c) > closing else c for c in continuations]
    empty = [i for i, r in enumerate(responses) if len(r) == 0]
    if empty:
        raise InputError(f"response {empty[0]} has no tokens of its own in the template; give non-empty responses")
    vocab = len(tokenizer)
    return (as_token_sequences(responses).with_vocab_size(vocab), as_token_sequences(contexts).with_vocab_size(vocab))


def tokenize_texts(texts: Iterable[str], tokenizer: Any, *, add_eos: bool = True) -> TokenizedExamples:
    """Plain text for pre-training: BOS, the text's tokens and EOS; every token after the BOS is a target."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None:
        raise InputError("the tokenizer has no BOS token to start plain text with; set tokenizer.bos_token")
    seqs = []
    for n, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"text {n} is empty or not a string; drop empty texts first")
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        seqs.append(np.asarray([bos, *ids, *([eos] if add_eos and eos is not None else [])], dtype=np.int64))
    return from_sequences(seqs, prepend=None)


def from_sequences(sequences: Iterable[Sequence[int] | np.ndarray], *, prepend: int | None) -> TokenizedExamples:
    """Token-id data (no tokenizer): ``prepend`` (a BOS id) in front of each sequence, every other token a target."""
    seqs = []
    for s in sequences:
        arr = np.asarray(s, dtype=np.int64)
        seqs.append(arr if prepend is None else np.concatenate([[prepend], arr]))
    masks = []
    for s in seqs:
        m = np.ones(s.shape[0], dtype=bool)
        m[0] = False
        masks.append(m)
    return TokenizedExamples(tuple(seqs), tuple(masks))
