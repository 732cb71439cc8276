"""The Theorem 4.2 scenario as seeded synthetic data (docs/theory.md §5).

Pre-training data D_p = D_1 u D_2 u D_3 with shares beta; alignment data D_a drawn like
D_2; perturbation data D_t drawn like D_3. Each component is a
:class:`~tokentree.data.synthetic.PrefixTreeSource` (distinct responses of ``depth`` tokens
with Pareto(alpha) masses); with ``disjoint=True`` the three use disjoint token ranges,
so their symbol sets are disjoint (the closed-form case), otherwise they share one
alphabet and overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokentree.compression.mixture import Shares
from tokentree.data.sequences import TokenSequences
from tokentree.data.synthetic import PrefixTreeSource, as_generator, pareto_tree_source
from tokentree.infra.errors import InputError

__all__ = [
    "ScenarioSources",
    "scenario_sources",
    "ScenarioSample",
    "sample_scenario",
    "PoolSample",
    "sample_from_pools",
]


@dataclass(frozen=True, eq=False)
class ScenarioSources:
    """The three component sources, the shares of D_p, and the Pareto shape of the leaf masses."""

    components: tuple[PrefixTreeSource, PrefixTreeSource, PrefixTreeSource]
    betas: Shares
    depth: int
    vocab_size: int
    alpha: float


def scenario_sources(
    *,
    betas: tuple[float, ...] | Shares = (0.5, 0.3, 0.2),
    depth: int = 4,
    alpha: float = 2.0,
    n_leaves: int = 200,
    vocab_size: int = 8,
    disjoint: bool = True,
    rng: int | np.random.Generator | None = None,
) -> ScenarioSources:
    """Three Pareto leaf sources for D_1, D_2, D_3 (token ranges disjoint if ``disjoint``).

    >>> s = scenario_sources(depth=3, n_leaves=20, rng=0)
    >>> [c.paths.n_sequences for c in s.components], s.vocab_size
    ([20, 20, 20], 24)
    """
    shares = Shares.of(betas)
    gen = as_generator(rng)
    comps = tuple(
        pareto_tree_source(
            n_leaves,
            depth=depth,
            vocab_size=vocab_size,
            alpha=alpha,
            token_offset=i * vocab_size if disjoint else 0,
            rng=gen,
        )
        for i in range(3)
    )
    return ScenarioSources(comps, shares, depth, vocab_size * (3 if disjoint else 1), float(alpha))  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class ScenarioSample:
    """Finite datasets drawn from a scenario: the parts of D_p, D_a and D_t."""

    parts: tuple[TokenSequences, TokenSequences, TokenSequences]
    align: TokenSequences
    perturb: TokenSequences

    @property
    def pretrain(self) -> TokenSequences:
        return TokenSequences.concatenate(self.parts)


def sample_scenario(
    sources: ScenarioSources,
    *,
    n_pretrain: int,
    n_align: int,
    n_perturb: int,
    rng: int | np.random.Generator | None = None,
) -> ScenarioSample:
    """Draw D_1, D_2, D_3 (sizes beta_i n_pretrain), D_a like D_2 and D_t like D_3."""
    if min(n_pretrain, n_align, n_perturb) < 1:
        raise InputError("every dataset needs at least one response")
    gen = as_generator(rng)
    sizes = np.maximum(np.round(sources.betas.array * n_pretrain).astype(np.int64), 1)
    parts = tuple(c.sample(int(n), rng=gen) for c, n in zip(sources.components, sizes, strict=False))
    align = sources.components[1].sample(n_align, rng=gen)
    perturb = sources.components[2].sample(n_perturb, rng=gen)
    return ScenarioSample(parts, align, perturb)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class PoolSample:
    """D_a drawn from the D_2 pool, D_t from the D_3 pool, and a second draw from D_2
    (the perturbation of the overlap control)."""

    align: TokenSequences
    perturb: TokenSequences
    perturb_like_align: TokenSequences


def sample_from_pools(
    pools: tuple[TokenSequences, ...] | list[TokenSequences],
    *,
    n_align: int,
    n_perturb: int,
    rng: int | np.random.Generator | None = None,
) -> PoolSample:
    """Draw D_a, D_t and the overlap control's perturbation with replacement from pools D_2 and D_3.

    >>> from tokentree import as_token_sequences
    >>> pools = [as_token_sequences([[1]]), as_token_sequences([[2], [3]]), as_token_sequences([[4]])]
    >>> s = sample_from_pools(pools, n_align=2, n_perturb=1, rng=0)
    >>> s.align.n_sequences, s.perturb.tokens.tolist()
    (2, [4])
    """
    if len(pools) != 3 or min(p.n_sequences for p in pools) < 1:
        raise InputError("need three non-empty pools: D_1, D_2 and D_3")
    gen = as_generator(rng)
    align = pools[1].select(gen.integers(0, pools[1].n_sequences, size=n_align))
    perturb = pools[2].select(gen.integers(0, pools[2].n_sequences, size=n_perturb))
    like_align = pools[1].select(gen.integers(0, pools[1].n_sequences, size=n_perturb))
    return PoolSample(align, perturb, like_align)
