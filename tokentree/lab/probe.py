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
* ``pretrain_bits``: bits per token of held-out pre-training text (forgetting).

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

__all__ = ["ProbeResult", "BehaviourProbe"]


@dataclass(frozen=True)
class ProbeResult:
    """One checkpoint's behaviour (see the module docstring); nats unless a name says bits."""

    score: float
    unreadable: int
    log_odds_nats: float
    kl_to_base_nats: float
    pretrain_bits: float


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
        kl = float("nan")
        if self.kl:
            kl = kl_to_reference(model, self.base, self.both, batch_size=self.batch_size).mean_kl_nats
        return ProbeResult(score=score, unreadable=unreadable, log_odds_nats=self.log_odds(model), kl_to_base_nats=kl,
                           pretrain_bits=bits)
