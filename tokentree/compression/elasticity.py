"""Joint compression, perturbation sweeps and the Hooke identity (docs/theory.md §4, §5, §7).

Setting (Theorem 4.2). Pre-training data D_p (optionally given as parts D_1, D_2, D_3
with shares beta), alignment data D_a and perturbation data D_t, as distributions on
one shared symbol set, with sizes |D_p| = k, |D_a| = 1 and |D_t| = l (in units of
|D_a|). The model is their mixture

.. math:: q(l) = (k P_p + P_a + l P_t) / (k + 1 + l)

(:func:`tokentree.compression.mixture.theorem_4_2_sizes`),

and every dataset X is compressed at gamma_X = CE(P_X, q) / L_X per token, where L_X is
its mean symbol length in tokens.

Derivatives are analytic. With sizes n_Y, N = sum n_Y and N q = sum_Y n_Y P_Y,

.. math:: d gamma_X / dl = -sum_s Delta_t(s) Delta_X(s) / (N q(s)) / (N^2 L_X),
          \\quad Delta_X = sum_Y n_Y (P_Y - P_X) = N (q - P_X),

in nats (divided by ln 2 for bits). This is docs/theory.md §5's
[1 - sum_s P_X P_t / q] / ((k + 1 + l) d) after subtracting sum_s Delta_X(s) / N, which
is zero because every P_Y sums to one. The rewriting matters: "1 - (something close
to 1)" loses all precision for large k, and even sum_s P_t Delta_X / (N q) sums O(1)
terms to an O(1/k) result; the product of two differences has neither cancellation.
Because sum_X n_X Delta_X = 0 identically,

.. math:: sum_X n_X L_X d gamma_X / dl = 0 \\quad (exact),

the series-spring law: d gamma_a/dl = -k (L_p/L_a) d gamma_p/dl - l (L_t/L_a) d gamma_t/dl.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from scipy.special import xlogy

from tokentree.compression.huffman import huffman_lengths
from tokentree.compression.mixture import Shares, check_size, check_sizes, log_mix, mix, theorem_4_2_sizes
from tokentree.compression.rates import check_symbol_lengths, entropy, row_entropies
from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult

__all__ = [
    "JointCompression",
    "joint_compression",
    "PerturbationSetting",
    "perturbation_setting",
    "PerturbationResult",
    "simulate_perturbation",
    "rate_derivatives",
    "DisjointClosedForm",
    "disjoint_closed_form",
    "l_star_disjoint",
    "ratio_disjoint",
    "finite_step_identity",
]

LN2 = math.log(2.0)
#: Symbols whose largest mass is below this are rescaled inside the derivative (see _derivatives_and_terms).
_RESCALE_BELOW = 1e-200


def _distribution(v: Any, name: str) -> np.ndarray:
    if hasattr(v, "symbols") and hasattr(v, "level_offsets"):  # a TokenTree (this layer does not import trees)
        raise InputError(
            f"{name} is a token tree; this function takes symbol distributions on one shared symbol set. For "
            "three trees call tokentree.verification.hooke_on_trees(pretrain, align, perturb), which aligns their "
            "symbols and takes k and the symbol lengths from them"
        )
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a 1-D array of masses; got a {type(v).__name__}") from None
    if a.ndim != 1 or a.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty 1-D array of masses; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} has NaN or infinite masses; masses must be finite")
    if np.any(a < 0):
        raise InputError(f"{name} has negative masses; masses must be >= 0")
    total = a.sum()
    if not total > 0:
        raise InputError(f"{name} has zero total mass")
    return a / total


# ----------------------------------------------------------------------------- joint compression
class _Coded(NamedTuple):
    """Every dataset coded with the joint model: per-symbol code lengths in bits, and the model."""

    cross_entropy: np.ndarray  # CE(P_i, q) per dataset
    huffman: np.ndarray  # expected Huffman length of q's code under P_i
    kl: np.ndarray  # KL(P_i || q)
    q: np.ndarray  # the model (underflows to 0 where it is below the smallest float)
    log_q: np.ndarray  # natural log of the model, exact even there


def _code_with_mixture(ps: np.ndarray, sizes: np.ndarray) -> _Coded:
    """Code every row P_i of ``ps`` with the mixture of the rows weighted by ``sizes``.

    Log-probabilities come from :func:`~tokentree.compression.mixture.log_mix`, so a symbol
    whose mixture weight underflows (a 1e-300 mass at a tiny size) still has its exact,
    finite code length; lengths are infinite only where q is zero in exact arithmetic.
    Huffman weights below the smallest normal float are raised to it: such symbols get
    (very long) codewords instead of none.
    """
    q = mix(ps, sizes)
    log_q = log_mix(ps, sizes)
    covered = np.isfinite(log_q)
    with np.errstate(invalid="ignore", divide="ignore"):
        ce = -np.where(ps > 0, ps * log_q[None, :], 0.0).sum(axis=1) / LN2
        kl = np.where(ps > 0, ps * (np.log(ps) - log_q[None, :]), 0.0).sum(axis=1) / LN2
    lengths = np.full(q.shape[0], np.inf)
    weights = np.maximum(q[covered], np.finfo(np.float64).tiny)
    lengths[covered] = huffman_lengths(weights) if covered.sum() > 1 else 1.0
    with np.errstate(invalid="ignore"):
        huff = np.where(ps > 0, ps * lengths[None, :], 0.0).sum(axis=1)
    return _Coded(ce, huff, np.maximum(kl, 0.0), q, log_q)


@dataclass(frozen=True, eq=False, repr=False)
class JointCompression(ArrayResult):
    """Every dataset's rate under the model jointly trained on all of them (bits).

    Attributes
    ----------
    mixture : float array
        q on the shared symbols.
    rate_bits_per_token, huffman_rate_bits_per_token : float arrays
        Ideal and Huffman rate of each dataset under q.
    rate_bits_per_symbol, huffman_rate_bits_per_symbol : float arrays
    entropy_bits_per_symbol, kl_bits_per_symbol : float arrays
        H(P_i) and KL(P_i || q): rate_per_symbol = H + KL.
    mean_symbol_tokens : float array
    """

    ROW_FIELD = "rate_bits_per_token"

    mixture: np.ndarray
    rate_bits_per_token: np.ndarray
    huffman_rate_bits_per_token: np.ndarray
    rate_bits_per_symbol: np.ndarray
    huffman_rate_bits_per_symbol: np.ndarray
    entropy_bits_per_symbol: np.ndarray
    kl_bits_per_symbol: np.ndarray
    mean_symbol_tokens: np.ndarray


def joint_compression(
    distributions: Sequence[Any] | np.ndarray,
    sizes: Sequence[float] | np.ndarray,
    symbol_lengths: Sequence[int] | np.ndarray,
) -> JointCompression:
    """Compress several datasets with the code of their size-weighted mixture (docs/theory.md §4).

    ``distributions`` are count or probability vectors on one shared symbol set (e.g.
    ``align_symbols(trees).masses``); ``sizes`` are |D_i|.

    >>> jc = joint_compression([[1, 0], [0, 1]], sizes=[3, 1], symbol_lengths=[1, 1])
    >>> [round(x, 6) for x in jc.rate_bits_per_token.tolist()]
    [0.415037, 2.0]
    """
    ps = np.array([_distribution(d, f"distributions[{i}]") for i, d in enumerate(distributions)])
    n = np.asarray(sizes, dtype=np.float64)
    if n.ndim != 1 or n.shape[0] != ps.shape[0] or not np.all(np.isfinite(n)) or np.any(n < 0) or n.sum() <= 0:
        raise InputError(
            f"sizes must be one finite number >= 0 per dataset ({ps.shape[0]}), not all zero; "
            f"got {np.ravel(sizes).tolist()}"
        )
    lengths = check_symbol_lengths(symbol_lengths, ps.shape[1])
    coded = _code_with_mixture(ps, n)
    mean_len = ps @ lengths
    return JointCompression(
        mixture=coded.q,
        rate_bits_per_token=coded.cross_entropy / mean_len,
        huffman_rate_bits_per_token=coded.huffman / mean_len,
        rate_bits_per_symbol=coded.cross_entropy,
        huffman_rate_bits_per_symbol=coded.huffman,
        entropy_bits_per_symbol=row_entropies(ps),
        kl_bits_per_symbol=coded.kl,
        mean_symbol_tokens=mean_len,
    )


# ----------------------------------------------------------------------------- the setting
@dataclass(frozen=True, eq=False, repr=False)
class PerturbationSetting(ArrayResult):
    """D_p (whole or in parts), D_a, D_t on a shared symbol set, with k = |D_p| / |D_a|.

    Attributes
    ----------
    pretrain : float array
        P_p (the shares-weighted mixture of the parts when parts are given).
    align, perturb : float arrays
        P_a and P_t.
    k : float
        |D_p| / |D_a|.
    symbol_lengths : float array
        Tokens per symbol (EOS excluded).
    depth : int
        The capacity depth d (for the Theorem 3.4 estimate and normalisation).
    parts, betas : optional
        P_1..P_m and their shares beta_i of D_p (for the behaviour proxy: part 2 is
        "aligned-like", part 3 "perturbation-like").

    ``to_pandas()`` gives one row per symbol.
    """

    ROW_FIELD = "pretrain"

    pretrain: np.ndarray
    align: np.ndarray
    perturb: np.ndarray
    k: float
    symbol_lengths: np.ndarray
    depth: int
    parts: np.ndarray | None = None
    betas: Shares | None = None

    @cached_property
    def stacked(self) -> np.ndarray:
        """P_p, P_a, P_t as the rows of one (3, n_symbols) array."""
        return np.stack([self.pretrain, self.align, self.perturb])

    @cached_property
    def mean_symbol_tokens(self) -> np.ndarray:
        """L_p, L_a, L_t: each dataset's mean symbol length in tokens."""
        return self.stacked @ self.symbol_lengths


def perturbation_setting(
    pretrain: Any,
    align: Any,
    perturb: Any,
    *,
    k: float,
    symbol_lengths: Any = None,
    depth: int = 1,
    betas: Sequence[float] | Shares | None = None,
) -> PerturbationSetting:
    """Validate and normalise a Theorem 4.2 setting.

    ``pretrain`` is P_p as one mass vector, or (with ``betas``) a list of the parts'
    mass vectors P_1, P_2, P_3. ``k`` must be > 0 (|D_p| = k |D_a|).
    """
    k = check_size(k, "k")
    p_a = _distribution(align, "align")
    p_t = _distribution(perturb, "perturb")
    parts = shares = None
    if betas is not None:
        shares = Shares.of(betas, count=None)
        parts = np.array([_distribution(p, f"pretrain part {i}") for i, p in enumerate(pretrain)])
        if parts.shape[0] != len(shares):
            raise InputError(f"{parts.shape[0]} pre-training parts but {len(shares)} betas")
        p_p = shares.array @ parts
    else:
        p_p = _distribution(pretrain, "pretrain")
    n = p_p.shape[0]
    if p_a.shape[0] != n or p_t.shape[0] != n:
        raise InputError(
            f"pretrain, align and perturb must share one symbol set; got {n}, {p_a.shape[0]}, {p_t.shape[0]} "
            "symbols. Align them with tokentree.trees.combine.align_symbols"
        )
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 1:
        raise InputError(f"depth must be an integer >= 1 (the capacity depth d); got {depth!r}")
    lengths = np.full(n, float(depth)) if symbol_lengths is None else check_symbol_lengths(symbol_lengths, n)
    if np.array_equal(p_p, p_a) and np.array_equal(p_a, p_t):
        raise InputError(
            "pretrain, align and perturb are the same distribution: adding D_t changes nothing, so every "
            "derivative is 0 and the ratio 0/0 is undefined; give datasets that differ"
        )
    return PerturbationSetting(p_p, p_a, p_t, k, lengths, int(depth), parts, shares)


def _sizes(setting: PerturbationSetting, l: float) -> np.ndarray:
    sizes: np.ndarray = theorem_4_2_sizes(setting.k, l)
    return sizes


def rate_derivatives(setting: PerturbationSetting, l: float) -> np.ndarray:
    """d gamma_X / dl for X = p, a, t at ``l``, in bits per token per unit of l.

    Uses the cancellation-free form of the module docstring. At l = 0, on symbols only
    D_t has, the limit l -> 0+ is taken analytically: their term is P_t(s) for X = p, a,
    and gamma_t's derivative is -inf.
    """
    return _derivatives_and_terms(setting, l)[0]


def _derivatives_and_terms(setting: PerturbationSetting, l: float) -> tuple[np.ndarray, np.ndarray]:
    """The derivatives, and the identity's terms n_X L_X d gamma_X/dl (finite limits at l = 0)."""
    l = check_size(l, "l", allow_zero=True)
    n = _sizes(setting, l)
    total = n.sum()
    mean_len = setting.mean_symbol_tokens
    covered = ((n[:, None] > 0) & (setting.stacked > 0)).any(axis=0)
    unseen = ~covered & (setting.perturb > 0)  # only possible at l = 0
    unseen_mass = float(setting.perturb[unseen].sum())
    # Each symbol's term Delta_t Delta_X / (N q) is linear in that symbol's column of masses. Columns
    # of masses so small that N q would underflow are scaled up for the product and the term scaled
    # back, so their (tiny) terms stay exact instead of dividing 0 by 0.
    scale = setting.stacked.max(axis=0)
    scale = np.where((scale > 0) & (scale < _RESCALE_BELOW), scale, 1.0)
    ps = setting.stacked / scale
    nq = n @ ps  # N q(s), per unit of the column scale
    delta_t = n @ (ps - ps[2][None, :])
    derivative, term = np.empty(3), np.empty(3)
    for x in range(3):
        if unseen_mass and np.any(ps[x][unseen] > 0):  # X = t at l = 0: gamma_t is infinite
            derivative[x] = -math.inf
            term[x] = -unseen_mass / LN2
            continue
        delta_x = n @ (ps - ps[x][None, :])  # sum_Y n_Y (P_Y - P_X)
        c = covered
        value = -float((delta_t[c] * delta_x[c] / nq[c] * scale[c]).sum()) / total + unseen_mass
        derivative[x] = value / (total * mean_len[x]) / LN2
        term[x] = n[x] * value / total / LN2
    return derivative, term


def _rates(setting: PerturbationSetting, l: float) -> tuple[np.ndarray, np.ndarray, _Coded]:
    """Ideal and Huffman rates (bits/token) of p, a, t, and the coded mixture, at ``l``."""
    coded = _code_with_mixture(setting.stacked, _sizes(setting, l))
    return coded.cross_entropy / setting.mean_symbol_tokens, coded.huffman / setting.mean_symbol_tokens, coded


# ----------------------------------------------------------------------------- sweeps
@dataclass(frozen=True, eq=False, repr=False)
class PerturbationResult(ArrayResult):
    """A perturbation sweep over l = |D_t| / |D_a| (docs/theory.md §5 and §7).

    Every array has one entry per value of ``l`` (``to_pandas()``: one row per l).
    ``_bits`` fields are bits per token; derivatives are bits per token per unit of l.

    Attributes
    ----------
    l : float array
    k : float
    rate_pretrain_bits, rate_align_bits, rate_perturb_bits : float arrays
        Ideal rates gamma_p, gamma_a, gamma_t.
    huffman_rate_pretrain_bits, huffman_rate_align_bits, huffman_rate_perturb_bits : float arrays
    d_rate_pretrain_bits, d_rate_align_bits, d_rate_perturb_bits : float arrays
        Analytic d gamma_X / dl.
    identity_residual : float array
        |sum_X n_X L_X d gamma_X/dl| / max_X |n_X L_X d gamma_X/dl| (terms taken as their
        finite limits at l = 0 when D_t has symbols nothing else has).
    ratio : float array
        R(l) = (d gamma_a/dl) / (d gamma_p/dl); +-inf where d gamma_p/dl = 0 (l = l* exactly), nan
        where both are 0 (D_t is the current model itself, so adding it changes nothing).
    minus_k_scaled : float
        -k L_p / L_a: the exact value of R(0) (-k when all symbols have length d).
    l_star : float
        Where d gamma_p/dl = 0 (gamma_p is smallest), found by bisection on the
        analytic derivative; nan if gamma_p never turns within the l range tried.
    kl_pretrained_to_current_bits : float array
        KL(P_p || q(l)) in bits per symbol: how far the current model is from the pre-trained one.
    mixture_entropy_bits : float array
        H(q(l)) in bits per symbol (what Theorem 3.4's estimate rounds up).
    behaviour_proxy : float array or None
        w_3 / (w_2 + w_3), the mixture share of perturbation-like vs aligned-like data
        (needs the three pre-training parts).
    """

    ROW_FIELD = "l"

    l: np.ndarray
    k: float
    rate_pretrain_bits: np.ndarray
    rate_align_bits: np.ndarray
    rate_perturb_bits: np.ndarray
    huffman_rate_pretrain_bits: np.ndarray
    huffman_rate_align_bits: np.ndarray
    huffman_rate_perturb_bits: np.ndarray
    d_rate_pretrain_bits: np.ndarray
    d_rate_align_bits: np.ndarray
    d_rate_perturb_bits: np.ndarray
    identity_residual: np.ndarray
    ratio: np.ndarray
    minus_k_scaled: float
    l_star: float
    kl_pretrained_to_current_bits: np.ndarray
    mixture_entropy_bits: np.ndarray
    behaviour_proxy: np.ndarray | None = field(default=None)


def _find_l_star(setting: PerturbationSetting, l_max: float) -> float:
    """Bisection for d gamma_p/dl = 0 on (0, l_max]; nan if no sign change."""
    lo, hi = 0.0, l_max
    f_lo, f_hi = rate_derivatives(setting, lo)[0], rate_derivatives(setting, hi)[0]
    if not (f_lo < 0 < f_hi):
        return math.nan
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        f = rate_derivatives(setting, mid)[0]
        if f < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def simulate_perturbation(
    setting: PerturbationSetting, l_values: Sequence[float] | np.ndarray, *, l_star_search_max: float = 1e6
) -> PerturbationResult:
    """Sweep l = |D_t| / |D_a| and return rates, analytic derivatives, the identity and the ratio.

    >>> s = perturbation_setting([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [0, 1, 0], [0, 0, 1],
    ...                          k=100.0, betas=[0.5, 0.3, 0.2])
    >>> r = simulate_perturbation(s, [0.0, 0.1])
    >>> round(float(r.ratio[0]), 9), float(r.identity_residual.max()) < 1e-12
    (-100.0, True)
    """
    ls = check_sizes(l_values, "l_values")
    rows = {name: np.empty(ls.shape[0]) for name in (
        "rp", "ra", "rt", "hp", "ha", "ht", "dp", "da", "dt", "res", "ratio", "kl", "hq")}
    proxy = np.empty(ls.shape[0]) if setting.betas is not None and len(setting.betas) == 3 else None
    mean_len = setting.mean_symbol_tokens
    for i, l in enumerate(ls):
        ideal, huff, coded = _rates(setting, float(l))
        d, terms = _derivatives_and_terms(setting, float(l))
        biggest = float(np.max(np.abs(terms)))
        rows["rp"][i], rows["ra"][i], rows["rt"][i] = ideal
        rows["hp"][i], rows["ha"][i], rows["ht"][i] = huff
        rows["dp"][i], rows["da"][i], rows["dt"][i] = d
        rows["res"][i] = abs(float(terms.sum())) / biggest if biggest > 0 or not math.isfinite(biggest) else 0.0
        rows["ratio"][i] = d[1] / d[0] if d[0] != 0 else (math.copysign(math.inf, d[1]) if d[1] != 0 else math.nan)
        rows["kl"][i] = float(coded.kl[0])
        rows["hq"][i] = entropy(coded.q)
        if proxy is not None:
            _, w2, w3 = theorem_4_2_sizes(setting.k, float(l), setting.betas)
            proxy[i] = w3 / (w2 + w3)
    return PerturbationResult(
        l=ls,
        k=setting.k,
        rate_pretrain_bits=rows["rp"], rate_align_bits=rows["ra"], rate_perturb_bits=rows["rt"],
        huffman_rate_pretrain_bits=rows["hp"], huffman_rate_align_bits=rows["ha"],
        huffman_rate_perturb_bits=rows["ht"],
        d_rate_pretrain_bits=rows["dp"], d_rate_align_bits=rows["da"], d_rate_perturb_bits=rows["dt"],
        identity_residual=rows["res"],
        ratio=rows["ratio"],
        minus_k_scaled=-setting.k * float(mean_len[0] / mean_len[1]),
        l_star=_find_l_star(setting, l_star_search_max),
        kl_pretrained_to_current_bits=rows["kl"],
        mixture_entropy_bits=rows["hq"],
        behaviour_proxy=proxy,
    )


def finite_step_identity(setting: PerturbationSetting, l0: float, l1: float) -> tuple[float, float]:
    """Both sides of sum_X n_X(l0) L_X [gamma_X(l1) - gamma_X(l0)] = N0 KL(q0 || q1) (bits).

    Returns ``(left, right)``; the right side is >= 0.
    """
    r0, _, c0 = _rates(setting, l0)
    r1, _, c1 = _rates(setting, l1)
    n0 = _sizes(setting, l0)
    mean_len = setting.mean_symbol_tokens
    with np.errstate(invalid="ignore"):
        left = float(np.nansum(n0 * mean_len * (r1 - r0)))
    with np.errstate(invalid="ignore"):
        kl = np.where(c0.q > 0, c0.q * (c0.log_q - c1.log_q), 0.0).sum()
    right = float(n0.sum() * kl / LN2)
    return left, right


# ----------------------------------------------------------------------------- closed forms
@dataclass(frozen=True, eq=False, repr=False)
class DisjointClosedForm(ArrayResult):
    """Closed-form rates of the disjoint-component model (docs/theory.md §5.cf), in bits.

    Every array has one entry per value of ``l``. ``_bits`` fields are bits per token;
    derivatives are bits per token per unit of l.

    Attributes: ``l``; ``rate_align_bits``, ``rate_perturb_bits``, ``rate_pretrain_bits``;
    their derivatives ``d_rate_*_bits``; ``ratio`` R(l); and ``l_star``.
    """

    ROW_FIELD = "l"

    l: np.ndarray
    rate_align_bits: np.ndarray
    rate_perturb_bits: np.ndarray
    rate_pretrain_bits: np.ndarray
    d_rate_align_bits: np.ndarray
    d_rate_perturb_bits: np.ndarray
    d_rate_pretrain_bits: np.ndarray
    ratio: np.ndarray
    l_star: float


def ratio_disjoint(k: float, betas: Sequence[float] | np.ndarray | Shares, l: Any) -> np.ndarray:
    """R(l) = -(beta_3 k + l) / (beta_3 (1 + l) - l); R(0) = -k.

    >>> float(ratio_disjoint(1000.0, [0.5, 0.3, 0.2], 0.0))
    -1000.0
    """
    b3 = Shares.of(betas)[2]
    ll = np.asarray(l, dtype=np.float64)
    if ll.size:
        check_sizes(ll.ravel(), "l")
    with np.errstate(divide="ignore"):
        result: np.ndarray = -(b3 * check_size(k, "k") + ll) / (b3 * (1 + ll) - ll)
    return result


def l_star_disjoint(betas: Sequence[float] | np.ndarray | Shares) -> float:
    """l* = beta_3 / (1 - beta_3): gamma_p is smallest there, and R changes sign.

    >>> l_star_disjoint([0.5, 0.3, 0.2])
    0.25
    """
    b3 = Shares.of(betas)[2]
    if b3 >= 1:
        raise InputError("beta_3 = 1 leaves no room for D_1 and D_2; l* is infinite")
    return float(b3 / (1 - b3))


def disjoint_closed_form(
    k: float,
    betas: Sequence[float] | np.ndarray | Shares,
    entropies_bits: Sequence[float] | np.ndarray,
    l: Any,
    *,
    depth: int = 1,
) -> DisjointClosedForm:
    """Rates and derivatives when D_1, D_2, D_3 have disjoint symbol sets (entropies H_i in bits per symbol).

    With m_i(l) the mixture weights of the three components (sizes k b1, k b2 + 1, k b3 + l),
    gamma_a = (H_2 - log2 m_2)/d, gamma_t = (H_3 - log2 m_3)/d and
    gamma_p = sum_i b_i (H_i - log2 m_i)/d.

    >>> cf = disjoint_closed_form(10.0, [0.5, 0.3, 0.2], [1.0, 1.0, 1.0], [0.0])
    >>> round(float(cf.ratio[0]), 12)
    -10.0
    """
    k = check_size(k, "k")
    shares = Shares.of(betas)
    b = shares.array
    ll = np.asarray(l, dtype=np.float64)
    if ll.size:
        check_sizes(ll.ravel(), "l")
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 1:
        raise InputError(f"depth must be an integer >= 1 (the capacity depth d); got {depth!r}")
    h = np.asarray(entropies_bits, dtype=np.float64)
    if h.shape != (3,) or not np.all(np.isfinite(h)) or np.any(h < 0):
        raise InputError(f"entropies_bits must be three finite entropies >= 0 (H_1, H_2, H_3); got {h.tolist()}")
    sizes = theorem_4_2_sizes(k, ll, shares)  # (..., 3)
    total = k + 1 + ll
    m = np.moveaxis(sizes / total[..., None], -1, 0)
    with np.errstate(divide="ignore"):
        rate_a = (h[1] - np.log2(m[1])) / depth
        rate_t = (h[2] - np.log2(m[2])) / depth
        rate_p = (b @ h - np.sum(xlogy(b[:, None], m), axis=0) / LN2) / depth
        d_a = 1 / total / depth / LN2
        d_t = (1 / total - 1 / (b[2] * k + ll)) / depth / LN2
        d_p = (1 / total - b[2] / (b[2] * k + ll)) / depth / LN2
    return DisjointClosedForm(
        l=ll, rate_align_bits=rate_a, rate_perturb_bits=rate_t, rate_pretrain_bits=rate_p,
        d_rate_align_bits=d_a, d_rate_perturb_bits=d_t, d_rate_pretrain_bits=d_p,
        ratio=ratio_disjoint(k, shares, ll), l_star=l_star_disjoint(shares),
    )
