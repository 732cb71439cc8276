# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 Elasticity: Theorem 4.2 step by step
#
# **What it shows.** Why alignment is fragile in the compression model. Pre-training data
# D_p = D_1 u D_2 u D_3, alignment data D_a drawn like D_2, perturbation data D_t drawn like
# D_3. The model is their size-weighted mixture q(l); k = |D_p|/|D_a|, l = |D_t|/|D_a|.
# When l grows from 0, the alignment set's compression rate gamma_a gets worse k times
# faster than the pre-training rate gamma_p gets better: two springs in series, the soft
# one (little data) stretches most. We build the mixture, sweep l, check the exact identity
# behind the theorem, the ratio against k, R(l) and l*, draw the series-spring picture, run
# the two controls where elasticity must fail, and check the Pareto lemma with sympy.
#
# **Change the parameters in the next cell and rerun.** About 15 seconds on a 2-core
# laptop. Figures go to `$TOKENTREE_FIGURES` (default
# `~/.cache/tokentree/figures/notebooks/`, never the source tree).

# %%
K = 1000.0  # |D_p| / |D_a|
BETAS = (0.5, 0.3, 0.2)  # shares of D_1, D_2, D_3 in D_p
ALPHA = 2.0  # Pareto shape of the leaf masses
DEPTH = 4  # capacity depth d
N_LEAVES = 200  # leaves per component
SEED = 0

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from tokentree.compression import (
    Shares,
    disjoint_closed_form,
    entropy,
    l_star_disjoint,
    ratio_disjoint,
    simulate_perturbation,
    theorem_4_2_sizes,
)
from tokentree.compression.symbolic import derive_identity, derive_pareto_entropy
from tokentree.plots import figure_folder
from tokentree.data.scenario import scenario_sources
from tokentree.data.synthetic import pareto_masses
from tokentree.verification import inputs_from_sources, novel_control, overlap_control

FIGURES = figure_folder()

# %% [markdown]
# ## 1. The data and the mixture
#
# Three synthetic sources with Pareto(alpha) leaf masses on disjoint token ranges (so the
# closed form of docs/theory.md §5 applies exactly). The model trained on D_p, D_a and
# D_t is q(l) = (k P_p + P_a + l P_t) / (k + 1 + l): the weights of the three components
# move with l.

# %%
sources = scenario_sources(betas=BETAS, depth=DEPTH, alpha=ALPHA, n_leaves=N_LEAVES, rng=SEED)
inputs = inputs_from_sources(sources)
setting = inputs.setting(K, BETAS)
L_STAR = l_star_disjoint(BETAS)
ls = np.linspace(0, 4 * L_STAR, 81)
weights = (theorem_4_2_sizes(K, ls, Shares.of(BETAS)) / (K + 1 + ls)[:, None]).T  # one row per component
fig, ax = plt.subplots(figsize=(6.4, 3.8), constrained_layout=True)
ax.stackplot(ls, weights, labels=["D_1 (generic)", "D_2 + D_a (aligned-like)", "D_3 + D_t (perturbation-like)"],
             alpha=0.8)
ax.axvline(L_STAR, color="k", ls="--", lw=1, label=f"l* = {L_STAR:.3g}")
ax.set_xlabel("l = |D_t| / |D_a|")
ax.set_ylabel("share of the mixture q(l)")
ax.set_ylim(0, 1)
ax.set_title(f"Mixture weights, k = {K:g}, betas = {BETAS}")
ax.legend(fontsize=8, loc="lower left")
fig.savefig(FIGURES / "03_mixture.png", dpi=110)
plt.show()

# %% [markdown]
# ## 2. Rates against l
#
# gamma_X = CE(P_X, q)/d bits per token. gamma_p falls until l* (the model moves toward
# the perturbation-like part of pre-training) and then rises; gamma_a rises all along.

# %%
sweep = simulate_perturbation(setting, ls)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
for ax, (name, rate) in zip(axes, [("gamma_a (alignment)", sweep.rate_align_bits),
                                    ("gamma_p (pre-training)", sweep.rate_pretrain_bits),
                                    ("gamma_t (perturbation)", sweep.rate_perturb_bits)]):
    ax.plot(ls, rate, "-")
    ax.axvline(L_STAR, color="k", ls="--", lw=1)
    ax.set_title(name)
    ax.set_xlabel("l")
    ax.set_ylabel("bits per token")
    ax.ticklabel_format(axis="y", useOffset=True)
    ax.grid(alpha=0.3)
fig.savefig(FIGURES / "03_rates.png", dpi=110)
plt.show()
print(f"l* by bisection on the analytic derivative: {sweep.l_star:.12f}; closed form: {L_STAR:.12f}")

# %% [markdown]
# ## 3. The identity behind the theorem
#
# Every gamma_X depends on l only through q, and q stays normalised, so
# sum_X |D_X| L_X d gamma_X/dl = 0 exactly: k d gamma_p/dl + d gamma_a/dl + l d gamma_t/dl = 0
# (all symbols have d tokens here). At l = 0 the last term vanishes and the ratio is -k.
# Sympy confirms the identity for a generic mixture.

# %%
terms = np.stack([K * sweep.d_rate_pretrain_bits, sweep.d_rate_align_bits, ls * sweep.d_rate_perturb_bits])
print("symbolic sum_X n_X dCE_X/dl for a generic mixture:", derive_identity(3).expression)
print(f"max relative residual over the sweep: {sweep.identity_residual.max():.2e}")
print(f"R(0) = {sweep.ratio[0]:.12f}  (-k = {-K:g})")

# %% [markdown]
# ## 4. The ratio against k, and R(l) against the closed form

# %%
ks = np.geomspace(10, 1e6, 11)
r0 = np.array([simulate_perturbation(inputs.setting(k, BETAS), [0.0], l_star_search_max=0.0).ratio[0] for k in ks])
slope = np.polyfit(np.log(ks), np.log(-r0), 1)[0]
fig, (a, c) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
a.loglog(ks, -r0, "o", mfc="none", label="measured -R(0)")
a.loglog(ks, ks, "-", color="0.3", lw=1, label="y = k")
a.set_xlabel("k = |D_p| / |D_a|")
a.set_ylabel("-R(0)")
a.set_title(f"log-log slope {slope:.12f}")
a.legend()
below, above = ls[ls < L_STAR - 1e-3], ls[ls > L_STAR + 1e-3]
for part in (below, above):
    c.plot(part, ratio_disjoint(K, BETAS, part), "-", color="0.3", lw=1)
c.plot(ls, sweep.ratio, "o", ms=3, mfc="none", label="measured R(l)")
c.plot([], [], "-", color="0.3", label="closed form -(b3 k + l)/(b3(1+l) - l)")
c.axvline(L_STAR, color="k", ls="--", lw=1, label="l*")
c.set_yscale("symlog", linthresh=1)
c.set_xlabel("l")
c.set_ylabel("R(l)")
c.legend(fontsize=8)
for ax in (a, c):
    ax.grid(alpha=0.3, which="both")
fig.savefig(FIGURES / "03_ratio.png", dpi=110)
plt.show()
closed = disjoint_closed_form(K, BETAS, inputs.entropies_bits, ls, depth=DEPTH)
err_closed = float(np.max(np.abs(sweep.rate_align_bits - closed.rate_align_bits) / sweep.rate_align_bits))
print(f"gamma_a against the closed form: max relative error {err_closed:.1e}")

# %% [markdown]
# ## 5. Hooke's law: two springs in series
#
# The same "force" (the perturbation) acts on both springs; each stretches in inverse
# proportion to its stiffness, the amount of data that shaped it. The drawing uses this
# run's numbers at a small l: the change of gamma_a is k times the change of gamma_p.

# %%
l_small = 0.01 * L_STAR
small = simulate_perturbation(setting, [0.0, l_small], l_star_search_max=0.0)
stretch_p = -(small.rate_pretrain_bits[1] - small.rate_pretrain_bits[0])
stretch_a = small.rate_align_bits[1] - small.rate_align_bits[0]


def spring(ax, x0, x1, y, coils, colour, width=0.18):
    xs = np.linspace(x0, x1, 2 * coils + 1)
    ys = y + width * np.array([0] + [(-1) ** i for i in range(2 * coils - 1)] + [0])
    ax.plot(xs, ys, "-", color=colour, lw=2)


fig, ax = plt.subplots(figsize=(10, 3.2), constrained_layout=True)
ax.add_patch(Rectangle((-0.3, -0.6), 0.3, 1.2, color="0.6"))
rest_p, rest_a = 3.0, 3.0
scale = 2.0 / stretch_a  # draw gamma_a's change as 2 units
xp = rest_p + stretch_p * scale
spring(ax, 0, xp, 0, 30, "#1f77b4")
ax.add_patch(Rectangle((xp, -0.25), 0.25, 0.5, color="0.3"))
xa = xp + 0.25 + rest_a + stretch_a * scale
spring(ax, xp + 0.25, xa, 0, 8, "#d62728")
ax.annotate("", xy=(xa + 1.2, 0), xytext=(xa, 0), arrowprops={"arrowstyle": "->", "lw": 2})
ax.text(xa + 0.1, 0.3, "perturbation D_t", fontsize=10)
ax.text(xp / 2, 0.45, f"pre-training spring: stiffness |D_p| = {K:g} |D_a|\nstretch {stretch_p:.3e} bits/token",
        ha="center", fontsize=9, color="#1f77b4")
ax.text((xp + xa) / 2, -0.75, f"alignment spring: stiffness |D_a|\nstretch {stretch_a:.3e} bits/token "
        f"({stretch_a / stretch_p:,.0f}x)", ha="center", fontsize=9, color="#d62728")
ax.set_xlim(-0.5, xa + 2)
ax.set_ylim(-1.2, 1.1)
ax.axis("off")
ax.set_title(f"Springs in series (l = {l_small:.2g}): the soft alignment spring stretches k times more")
fig.savefig(FIGURES / "03_springs.png", dpi=110)
plt.show()
print(f"stretch ratio {stretch_a / stretch_p:.2f} (k = {K:g}, finite step, so slightly above k)")

# %% [markdown]
# ## 6. Where elasticity must fail
#
# * Novel perturbation (content D_p never had): both rates get worse at the same pace,
#   R(0) = +1.
# * Perturbation like the alignment data: D_t reinforces D_a, whose rate now improves:
#   d gamma_a/dl < 0.

# %%
novel = novel_control(inputs, k=K, betas=BETAS)
overlap = overlap_control(inputs, k=K, betas=BETAS)
print(f"novel D_t: R(0) = {novel.ratio_l0:.12f}")
print(f"D_t like D_2: d gamma_a/dl(0) = {overlap.d_rate_align_l0_bits:.6e} bits/token (closed form "
      f"{overlap.d_rate_align_l0_closed_form_bits:.6e})")

# %% [markdown]
# ## 7. The Pareto lemma, symbolically and numerically
#
# With i.i.d. Pareto(alpha) leaf masses, H - ln M -> ln(alpha/(alpha-1)) - 1/(alpha-1):
# the normalised rate does not depend on the size of the tree (paper Appendix A.7).

# %%
lemma = derive_pareto_entropy()
print("H(M, alpha) =", lemma.expression)
sizes = [100, 1000, 10_000, 100_000]
measured = [np.mean([entropy(pareto_masses(m, ALPHA, rng=s), base=math.e) - np.log(m) for s in range(5)])
            for m in sizes]
predicted = float(lemma.function(1000, ALPHA) - np.log(1000))
for m, h in zip(sizes, measured):
    print(f"M = {m:>7,}: H - ln M = {h:+.4f} nats; lemma {predicted:+.4f}")

# %% [markdown]
# ## Checks

# %%
assert abs(sweep.ratio[0] / -K - 1) < 1e-9
assert sweep.identity_residual.max() < 1e-12
assert abs(sweep.l_star - L_STAR) < 1e-9 * L_STAR
assert abs(slope - 1) < 1e-9
assert np.allclose(sweep.ratio[np.abs(ls - L_STAR) > 1e-3], ratio_disjoint(K, BETAS, ls[np.abs(ls - L_STAR) > 1e-3]),
                   rtol=1e-9)
assert err_closed < 1e-12
assert np.all(np.diff(sweep.rate_align_bits) > 0)
assert np.all(np.diff(sweep.rate_pretrain_bits[ls < L_STAR]) < 0)
assert K < stretch_a / stretch_p < 1.01 * K
assert abs(novel.ratio_l0 - 1) < 1e-12 and overlap.d_rate_align_l0_bits < 0
assert abs(predicted - (math.log(ALPHA / (ALPHA - 1)) - 1 / (ALPHA - 1))) < 1e-12
assert abs(measured[-1] - predicted) < 0.05
print("all checks passed")
