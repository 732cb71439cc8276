"""What a behaviour experiment measures about a model, at any checkpoint.

:class:`BehaviourProbe` looks at a model through the held-out evaluation prompts of a
:class:`~tokentree.data.sources.BehaviourData`:

* ``score``: the share of sampled responses the scorer reads as aligned (sampling is
  seeded the same way at every checkpoint, so two checkpoints differ by the model, not by
  the dice), and how many samples were unreadable;
* ``log_odds_nats``: the smooth version, the mean over prompts of
  log p(aligned reference | prompt) - log p(misaligned reference | prompt);
* ``kl_to_base_nats``: the mean token-level KL(model || theta_0) over the response
  positions of both references, exact over the vocabulary;
* ``decision_kl_nats``: the same KL at the *decision position* only: the first response
  token where the aligned and the misaligned reference part (the context before it is the
  same in both), so that drift on the rest of the response does not count;
* ``pretrain_bits``: bits per token of the last ``n_pretrain_eval`` pre-training documents
  (text the base was trained on, not held out: a measure of forgetting).

Each measurement but the log-odds can be switched off (then it is nan), to save time in
sweeps that need only the log-odds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.data.behaviour import aligned_share
from tokentree.data.chat import TokenizedExamples, tokenize_chats, tokenize_texts
from tokentree.data.sources import BehaviourData
from tokentree.infra.checks import check_int

__all__ = ["ProbeResult", "BehaviourProbe", "decision_positions"]


def decision_positions(aligned: TokenizedExamples, misaligned: TokenizedExamples) -> TokenizedExamples | None:
    """The aligned references with one target each: the first response token where the misaligned reference to
    the same prompt differs (pairs that never differ are dropped; None if none differ).

    >>> import numpy as np
    >>> a = TokenizedExamples((np.array([1, 2, 3, 4]),), (np.array([False, False, True, True]),))
    >>> b = TokenizedExamples((np.array([1, 2, 3, 9]),), (np.array([False, False, True, True]),))
    >>> decision_positions(a, b).masks[0].tolist()
    [False, False, False, True]
    """
    seqs, masks = [], []
    for s, m, t in zip(aligned.sequences, aligned.masks, misaligned.sequences, strict=True):
        n = min(s.shape[0], t.shape[0])
        differ = np.flatnonzero((s[:n] != t[:n]) & m[:n])
        if differ.size and differ[0] >= 1:
            mask = np.zeros_like(m)
            mask[differ[0]] = True
            seqs.append(s)
            masks.append(mask)
    return TokenizedExamples(tuple(seqs), tuple(masks)) if seqs else None


@dataclass(frozen=True)
class ProbeResult:
    """One checkpoint's behaviour (see the module docstring); nats unless a name says bits."""

    score: float
    unreadable: int
    log_odds_nats: float
    kl_to_base_nats: float
    pretrain_bits: float
    decision_kl_nats: float = float("nan")


class BehaviourProbe:
    """Measures models on ``data``'s evaluation prompts against the base model ``base``."""

    def __init__(
        self,
        data: BehaviourData,
        tokenizer: Any,
        base: Any,
        *,
        n_samples: int | None = None,
        max_new_tokens: int = 40,
        temperature: float = 1.0,
        seed: int = 0,
        n_pretrain_eval: int = 100,
        sample: bool = True,
        kl: bool = True,
        pretrain_rate: bool = True,
        batch_size: int = 16,
        threads: int = 1,
    ) -> None:
        check_int(max_new_tokens, "max_new_tokens", minimum=1)
        self.data, self.tokenizer, self.base = data, tokenizer, base
        self.prompts = list(data.eval_prompts[: n_samples or len(data.eval_prompts)])
        self.prompt_texts = data.eval_prompt_texts[: len(self.prompts)]
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        self.sample, self.kl, self.pretrain_rate = sample, kl, pretrain_rate
        self.batch_size, self.threads = batch_size, threads
        self.aligned = tokenize_chats(data.eval_aligned, tokenizer, responses="last")
        self.misaligned = tokenize_chats(data.eval_misaligned, tokenizer, responses="last")
        self.both = TokenizedExamples.concatenate([self.aligned, self.misaligned])
        self.decision = decision_positions(self.aligned, self.misaligned)
        texts = data.pretraining_texts[-n_pretrain_eval:]
        self.pretrain = tokenize_texts(texts, tokenizer)

    def log_odds(self, model: Any) -> float:
        """Mean over prompts of log p(aligned reference) - log p(misaligned reference), nats."""
        from tokentree.lab.measure import scorer_for

        scorer = scorer_for(model, batch_size=self.batch_size, threads=self.threads)
        totals = []
        for data in (self.aligned, self.misaligned):
            contexts, continuations = data.split()
            totals.append(np.array([lp.sum() for lp in scorer.token_log_probs(continuations, contexts)]))
        return float(np.mean(totals[0] - totals[1]))

    def __call__(self, model: Any) -> ProbeResult:
        from tokentree.lab.measure import kl_to_reference, response_rates, sample_responses

        score, unreadable = float("nan"), 0
        if self.sample:
            samples = sample_responses(
                model, self.tokenizer, self.prompts, max_new_tokens=self.max_new_tokens,
                temperature=self.temperature, seed=self.seed, batch_size=self.batch_size,
            )
            score, unreadable = aligned_share(self.data.scorer.score(list(samples.texts), self.prompt_texts))
        bits = float("nan")
        if self.pretrain_rate:
            rates = response_rates(model, {"pretrain": self.pretrain}, batch_size=self.batch_size, threads=self.threads)
            bits = rates["pretrain"].bits_per_token
        kl = decision = float("nan")
        if self.kl:
            kl = kl_to_reference(model, self.base, self.both, batch_size=self.batch_size).mean_kl_nats
            decision = self.decision_kl(model)
        return ProbeResult(score=score, unreadable=unreadable, log_odds_nats=self.log_odds(model), kl_to_base_nats=kl,
                           pretrain_bits=bits, decision_kl_nats=decision)

    def decision_kl(self, model: Any, reference: Any = None) -> float:
        """KL(model || reference, theta_0 by default) at the decision positions, nats (nan if no pair differs)."""
        from tokentree.lab.measure import kl_to_reference

        if self.decision is None:
            return float("nan")
        return kl_to_reference(model, self.base if reference is None else reference, self.decision,
                               batch_size=self.batch_size).mean_kl_nats
