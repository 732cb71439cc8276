"""The datasets of Theorem 4.2 for a trained model: D_1, D_2, D_3, and the largest D_a and D_t (docs/experiments.md
§E4h).

``real`` data take D_1 from Python's pydoc paragraphs and the chatterbot dialogues, D_2 from
positive tweets and D_3 from negative tweets (D_a and D_t drawn from D_2's and D_3's corpora,
disjoint from D_p), tokenized by a byte-level BPE trained on D_p or by a loaded model's own
tokenizer; ``synthetic`` data are the built-in Theorem 4.2 sources (Pareto leaves on disjoint
token ranges). Smaller D_a and D_t are prefixes of the largest (:func:`head`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.framework.config import Checked, bounded
from tokentree.infra.errors import InputError

__all__ = ["REAL_POOLS", "SyntheticSettings", "HookeData", "hooke_sizes", "real_hooke_data", "synthetic_hooke_data",
           "head"]

#: The corpora of D_1, D_2 and D_3 for real data.
REAL_POOLS = (("pydoc-paragraphs", "chatterbot"), ("tweets-positive",), ("tweets-negative",))


@dataclass(frozen=True)
class SyntheticSettings(Checked):
    """The synthetic sources: ``depth`` tokens per response, Pareto shape ``alpha``, ``n_leaves`` leaves and
    ``vocab_size`` token ids per component."""

    depth: int = bounded(4, minimum=1, maximum=64)
    alpha: float = bounded(2.0, minimum=1.0, exclusive=True)
    n_leaves: int = bounded(200, minimum=1)
    vocab_size: int = bounded(8, minimum=1, maximum=2**20)

    def validate(self) -> None:
        if self.vocab_size**self.depth < self.n_leaves:
            raise InputError(f"synthetic n_leaves = {self.n_leaves} distinct leaves do not fit in "
                             f"{self.vocab_size}^{self.depth} paths; raise synthetic.vocab_size or synthetic.depth")


@dataclass(frozen=True, eq=False)
class HookeData:
    """One seed's datasets: D_1, D_2, D_3, the largest D_a and D_t (smaller ones are their prefixes).

    ``vocab_size`` ids; ``bos`` is the id put in front of every sequence (one above the data
    ids for a model trained here, the tokenizer's own for a loaded model); ``scored`` limits the
    distributions to the data ids (None: the whole vocabulary).
    """

    parts: tuple[TokenSequences, TokenSequences, TokenSequences]
    align: TokenSequences
    perturb: TokenSequences
    vocab_size: int
    bos: int
    scored: int | None

    @property
    def pretrain(self) -> TokenSequences:
        return TokenSequences.concatenate(self.parts)


def head(seqs: TokenSequences, n: int) -> TokenSequences:
    """The first ``n`` sequences."""
    return seqs.select(np.arange(n))


def hooke_sizes(n_pretrain: int, betas: Sequence[float], k_values: Sequence[float], l_values: Sequence[float]
                ) -> tuple[list[int], int, int]:
    """(responses of D_1, D_2, D_3; of the largest D_a, at the smallest k; of the largest D_t, at the largest l)."""
    parts = [max(1, round(b * n_pretrain)) for b in betas]
    n_align = math.ceil(n_pretrain / min(k_values))
    return parts, n_align, math.ceil(max(l_values) * n_align)


def real_hooke_data(sizes: tuple[list[int], int, int], *, seed: int, bpe_vocab: int, tokenizer: Any | None = None,
                    source: str = "") -> HookeData:
    """Texts of the built-in corpora; tokenized by a BPE of ``bpe_vocab`` trained on D_p (``tokenizer`` None) or by
    ``tokenizer`` (the loaded model ``source``'s own)."""
    from tokentree.bridge.factory import start_token
    from tokentree.data.text import builtin_texts, encode_texts, train_bpe

    n_parts, n_align, n_perturb = sizes
    extra = (0, n_align, n_perturb)
    texts = []
    for i, corpora in enumerate(REAL_POOLS):
        pool = [t for name in corpora for t in builtin_texts(name)]
        need = n_parts[i] + extra[i]
        if len(pool) < need:
            raise InputError(f"{'+'.join(corpora)} has {len(pool)} texts; this config needs {need}")
        order = np.random.default_rng([seed, i]).permutation(len(pool))[:need]
        texts.append([pool[j] for j in order])
    if tokenizer is None:
        bpe = train_bpe([t for i, group in enumerate(texts) for t in group[: n_parts[i]]], bpe_vocab)
        vocab = bpe.get_vocab_size()

        def encode(group: list[str]) -> TokenSequences:
            return encode_texts(group, bpe)

        bos, scored = vocab, vocab  # one id above the data for the start token, never predicted
        vocab += 1
    else:
        vocab, bos, scored = len(tokenizer), start_token(tokenizer, source), None

        def encode(group: list[str]) -> TokenSequences:
            return as_token_sequences([tokenizer(t, add_special_tokens=False)["input_ids"] for t in group])

    parts = tuple(encode(group[: n_parts[i]]) for i, group in enumerate(texts))
    align = encode(texts[1][n_parts[1] :])
    perturb = encode(texts[2][n_parts[2] :])
    return HookeData(parts, align, perturb, vocab, bos, scored)  # type: ignore[arg-type]


def synthetic_hooke_data(sizes: tuple[list[int], int, int], settings: SyntheticSettings, *, seed: int,
                         n_pretrain: int, betas: Sequence[float]) -> HookeData:
    """A sample of the built-in Theorem 4.2 sources; the start token is one id above the data."""
    from tokentree.data.scenario import sample_scenario, scenario_sources

    sources = scenario_sources(betas=tuple(betas), depth=settings.depth, alpha=settings.alpha,
                               n_leaves=settings.n_leaves, vocab_size=settings.vocab_size, rng=seed)
    _, n_align, n_perturb = sizes
    sample = sample_scenario(sources, n_pretrain=n_pretrain, n_align=n_align, n_perturb=n_perturb,
                             rng=np.random.default_rng([seed, 1]))
    vocab = sources.vocab_size
    return HookeData(sample.parts, sample.align, sample.perturb, vocab + 1, vocab, vocab)
