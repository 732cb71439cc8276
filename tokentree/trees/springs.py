"""The piggyback hypothesis in a token tree: carriers of behaviour as springs (docs/theory.md §9).

The world: K domains with Q queries each. Templated chats are ``[T, domain, query,
response]`` (T the chat-template trunk, shared by every prompt); untemplated
pre-training text is ``[domain, query, response]``; a response is aligned (A) or
misaligned (M). Both kinds of data are token trees (:func:`world_trees`), and the
stiffness of every carrier is read off them: the data that shaped it.

The model's log-odds of misaligned at a response node is a sum of carriers on its path:

    z(templated, d, q) = s * [templated] + b + o_d + u_(d, q)

with the trunk state s (only under the template), a global bias b, a domain offset o_d
and a query offset u_(d,q). Each carrier i is a spring of stiffness k_i, the count of
examples that shaped it (trunk: templated alignment chats; bias: every example; a domain
or a query: its examples, templated or not). A narrow fine-tune (n examples of domain 0
pulled towards M with force f each, in linear response) moves every carrier it passes
through, by the force routed through it over its stiffness:

    delta_i = f m_i / k_i,      m_i = fine-tuning examples whose path holds carrier i,

so carrier i's share of the in-domain change is c_i / sum_j c_j with c_i = (m_i / n) / k_i,
and the change on another domain's templated prompts (its spill-over) is delta_s + delta_b:
only the carriers every prompt shares. TReFT adds lambda / 2 * delta_s^2, stiffening the
trunk to k_s + lambda, so delta_s falls by k_s / (k_s + lambda); patching the trunk resets
delta_s to 0; interleaving aligned chats of other domains pulls the shared carriers back.

:func:`equilibrium` finds the displacements numerically, by minimising the energy
``sum_i k_i delta_i^2 / 2 - sum_x f_x z_x(delta)`` over every carrier (Newton's method on
the full parameter vector), and :func:`closed_form` writes them down; the two must agree to
float precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tokentree.infra.errors import InputError
from tokentree.trees.build import build_tree
from tokentree.trees.tree import TokenTree

__all__ = ["World", "Carriers", "Example", "Spill", "Intervention", "world_trees", "carriers_from_trees", "closed_form",
           "equilibrium", "spill_of", "log_odds_change", "narrow_finetune", "interleaved_aligned", "predicted_shares",
           "intervene", "world_carriers", "CARRIERS", "TRUNK", "ALIGNED", "MISALIGNED"]

CARRIERS = ("trunk", "bias", "domain", "query")
#: Token ids of the world: the trunk, the two responses; domains and queries follow.
TRUNK, ALIGNED, MISALIGNED = 0, 1, 2


@dataclass(frozen=True)
class World:
    """How many examples of each kind shaped the model before the narrow fine-tune.

    n_domains, n_queries
        K domains, Q queries in each.
    align_per_query
        Templated aligned chats per query in the alignment data (every domain), or a
        per-domain tuple.
    pretrain_per_query
        Untemplated documents per query in pre-training (both behaviours).
    misaligned_share
        Share of misaligned responses in pre-training.
    """

    n_domains: int = 6
    n_queries: int = 8
    align_per_query: int | tuple[int, ...] = 20
    pretrain_per_query: int = 200
    misaligned_share: float = 0.3

    def __post_init__(self) -> None:
        for name in ("n_domains", "n_queries", "pretrain_per_query"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer; got {value!r}")
        if self.n_domains < 2:
            raise InputError("the world needs at least two domains (one to fine-tune, one to spill onto)")
        align = self.align_counts
        if len(align) != self.n_domains or any(a < 0 for a in align):
            raise InputError(f"align_per_query must be one count >= 0 or one per domain; got {self.align_per_query}")
        if not 0.0 < self.misaligned_share < 1.0:
            raise InputError(f"misaligned_share must be in (0, 1); got {self.misaligned_share}")

    @property
    def align_counts(self) -> tuple[int, ...]:
        a = self.align_per_query
        return tuple(a) if isinstance(a, tuple) else (int(a),) * self.n_domains

    def domain_token(self, d: int) -> int:
        return 3 + d

    def query_token(self, d: int, q: int) -> int:
        return 3 + self.n_domains + d * self.n_queries + q

    @property
    def vocab_size(self) -> int:
        return 3 + self.n_domains * (1 + self.n_queries)


@dataclass(frozen=True)
class Example:
    """A fine-tuning or interleaved chat: where it routes, and the force it pulls with (+ towards M)."""

    templated: bool
    domain: int
    query: int
    force: float = 1.0


def world_trees(world: World) -> tuple[TokenTree, TokenTree]:
    """(templated tree, untemplated tree): the alignment chats and the pre-training text, prefix mode, depth 4."""
    templated, plain = [], []
    for d in range(world.n_domains):
        for q in range(world.n_queries):
            dt, qt = world.domain_token(d), world.query_token(d, q)
            templated += [[TRUNK, dt, qt, ALIGNED]] * world.align_counts[d]
            n_mis = round(world.misaligned_share * world.pretrain_per_query)
            plain += [[dt, qt, MISALIGNED]] * n_mis + [[dt, qt, ALIGNED]] * (world.pretrain_per_query - n_mis)
    if not templated:
        raise InputError("the alignment data are empty; give align_per_query > 0 somewhere")
    return (build_tree(templated, depth=4, mode="prefix", vocab_size=world.vocab_size),
            build_tree(plain, depth=4, mode="prefix", vocab_size=world.vocab_size))


@dataclass(frozen=True)
class Carriers:
    """Every carrier's stiffness, read off the trees: the examples that passed through it."""

    world: World
    trunk: float
    bias: float
    domain: np.ndarray  # (K,)
    query: np.ndarray  # (K, Q)
    treft_lambda: float = 0.0

    @property
    def n_parameters(self) -> int:
        return 2 + self.domain.shape[0] + self.query.size

    def stiffness_vector(self) -> np.ndarray:
        """[trunk + lambda, bias, domains..., queries...]."""
        return np.concatenate([[self.trunk + self.treft_lambda, self.bias], self.domain, self.query.ravel()])

    def route(self, example: Example) -> np.ndarray:
        """Indices of the carriers on an example's path."""
        w = self.world
        at = [1, 2 + example.domain, 2 + w.n_domains + example.domain * w.n_queries + example.query]
        return np.array(([0] if example.templated else []) + at, dtype=np.int64)

    def with_treft(self, lam: float) -> Carriers:
        if not lam >= 0:
            raise InputError(f"TReFT's lambda must be >= 0; got {lam}")
        return Carriers(self.world, self.trunk, self.bias, self.domain, self.query, float(lam))

    def scaled_trunk(self, factor: float) -> Carriers:
        """Less (or more) templated alignment data: the trunk's stiffness times ``factor``."""
        return Carriers(self.world, self.trunk * factor, self.bias, self.domain, self.query, self.treft_lambda)


def carriers_from_trees(world: World, templated: TokenTree, plain: TokenTree) -> Carriers:
    """Stiffnesses from node counts: trunk = count(T); bias = both trees' mass; domain and query nodes of both."""
    trunk = float(templated.count([TRUNK]))
    bias = float(templated.total_mass + plain.total_mass)
    domain = np.zeros(world.n_domains)
    query = np.zeros((world.n_domains, world.n_queries))
    for d in range(world.n_domains):
        dt = world.domain_token(d)
        domain[d] = templated.count([TRUNK, dt]) + plain.count([dt])
        for q in range(world.n_queries):
            qt = world.query_token(d, q)
            query[d, q] = templated.count([TRUNK, dt, qt]) + plain.count([dt, qt])
    if trunk <= 0 or np.any(domain <= 0) or np.any(query <= 0):
        raise InputError("every carrier needs some data behind it (a stiffness > 0)")
    return Carriers(world, trunk, bias, domain, query)


def world_carriers(world: World) -> Carriers:
    """The carriers of ``world``, read off its two trees (:func:`world_trees`, :func:`carriers_from_trees`)."""
    return carriers_from_trees(world, *world_trees(world))


def closed_form(carriers: Carriers, examples: Sequence[Example]) -> np.ndarray:
    """Displacements delta_i = (sum of forces routed through i) / k_i, for every carrier."""
    force = np.zeros(carriers.n_parameters)
    for x in examples:
        force[carriers.route(x)] += x.force
    return force / carriers.stiffness_vector()


def equilibrium(carriers: Carriers, examples: Sequence[Example]) -> np.ndarray:
    """The displacements that minimise the energy, found by Newton's method on the full parameter vector.

    The energy is written as it is defined (springs plus the work of every example's
    pull on its path), its gradient and Hessian are assembled from the examples' routes
    without the closed form, and Newton steps are taken until the gradient vanishes.
    """
    k = carriers.stiffness_vector()
    n = k.shape[0]
    routes = [(carriers.route(x), x.force) for x in examples]

    def gradient(delta: np.ndarray) -> np.ndarray:
        g = k * delta
        for idx, f in routes:
            g[idx] -= f  # d/d delta of -f * z_x(delta), z_x the sum of the carriers on the path
        return g

    hessian = np.diag(k)  # the pull is linear in delta: the springs alone curve the energy
    delta = np.zeros(n)
    for _ in range(5):
        step = np.linalg.solve(hessian, gradient(delta))
        delta = delta - step
        if np.max(np.abs(step)) <= 1e-15 * max(1.0, float(np.max(np.abs(delta)))):
            break
    return delta


def log_odds_change(carriers: Carriers, delta: np.ndarray, *, templated: bool, domain: int, query: int) -> float:
    """How much the log-odds of misaligned moved at one response node (nats)."""
    return float(delta[carriers.route(Example(templated, domain, query))].sum())


@dataclass(frozen=True)
class Spill:
    """The in-domain gain and what spilled, in bits of log-odds (log2 of the odds of misaligned)."""

    in_domain_bits: float
    held_out_in_domain_bits: float
    other_domains_bits: float
    other_untemplated_bits: float
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def spill(self) -> float:
        """Bits of aligned behaviour lost on other domains' templated prompts per bit gained in-domain."""
        return self.other_domains_bits / self.in_domain_bits


def spill_of(carriers: Carriers, delta: np.ndarray, ft_queries: Sequence[int]) -> Spill:
    """Mean changes over the fine-tuned queries, domain 0's other queries, and every other domain."""
    w = carriers.world
    to_bits = 1.0 / np.log(2.0)

    def mean(cells: list[tuple[bool, int, int]]) -> float:
        return float(np.mean([log_odds_change(carriers, delta, templated=t, domain=d, query=q) for t, d, q in cells]))

    seen = set(ft_queries)
    held = [(True, 0, q) for q in range(w.n_queries) if q not in seen]
    other = [(True, d, q) for d in range(1, w.n_domains) for q in range(w.n_queries)]
    plain = [(False, d, q) for d in range(1, w.n_domains) for q in range(w.n_queries)]
    in_domain = mean([(True, 0, q) for q in sorted(seen)])
    parts = {"trunk": float(delta[0]), "bias": float(delta[1]), "domain": float(delta[2]),
             "query": float(np.mean([delta[2 + w.n_domains + q] for q in sorted(seen)]))}
    total = sum(parts.values())
    return Spill(in_domain * to_bits, (mean(held) if held else np.nan) * to_bits, mean(other) * to_bits,
                 mean(plain) * to_bits, {k: v / total for k, v in parts.items()})


def narrow_finetune(n_examples: int, n_queries: int) -> list[Example]:
    """``n_examples`` templated chats of domain 0 pulled towards M, spread as evenly as possible over its first
    ``n_queries`` queries (the first ones get the remainder).

    >>> [x.query for x in narrow_finetune(5, 2)]
    [0, 0, 0, 1, 1]
    """
    per = [n_examples // n_queries + (1 if q < n_examples % n_queries else 0) for q in range(n_queries)]
    return [Example(True, 0, q) for q in range(n_queries) for _ in range(per[q])]


def interleaved_aligned(world: World, n_examples: int) -> list[Example]:
    """``n_examples`` aligned templated chats (force -1) of the other domains, cycling over their cells."""
    cells = [(d, q) for d in range(1, world.n_domains) for q in range(world.n_queries)]
    return [Example(True, *cells[i % len(cells)], force=-1.0) for i in range(n_examples)]


def predicted_shares(carriers: Carriers, ft_queries: int) -> dict[str, float]:
    """Each carrier's predicted share c_i / sum_j c_j of the in-domain change, c_i = (m_i / n) / k_i, for a fine-tune
    spread evenly over domain 0's first ``ft_queries`` queries (the query carrier: the mean over them)."""
    c = {"trunk": 1 / carriers.trunk, "bias": 1 / carriers.bias, "domain": 1 / carriers.domain[0],
         "query": float(np.mean([(1 / ft_queries) / carriers.query[0, q] for q in range(ft_queries)]))}
    return {k: float(v / sum(c.values())) for k, v in c.items()}


@dataclass(frozen=True)
class Intervention:
    """One fine-tune: the displacements (the equilibrium's), what spilled, and how far the closed form is from them."""

    delta: np.ndarray
    spill: Spill
    equilibrium_vs_closed_form: float


def intervene(carriers: Carriers, examples: Sequence[Example], ft_queries: int, *, patch_trunk: bool = False
              ) -> Intervention:
    """Fine-tune on ``examples`` (the equilibrium, checked against the closed form), then optionally put the trunk
    back as it was (patching the template prefix's keys and values), and measure the spill over domain 0's first
    ``ft_queries`` queries."""
    numeric, exact = equilibrium(carriers, examples), closed_form(carriers, examples)
    gap = float(np.max(np.abs(numeric - exact)) / np.max(np.abs(exact)))
    if patch_trunk:
        numeric = numeric.copy()
        numeric[0] = 0.0
    return Intervention(numeric, spill_of(carriers, numeric, range(ft_queries)), gap)
