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
# # 05 Rebound on a trained model, the count model, and Table 3
#
# **What it shows.** Ji et al. fine-tune a model on n_pos aligned examples, then on
# misaligned ones, and report that the alignment collapses fast and then slowly, and (their
# Table 3) that *more* alignment needs *fewer* misaligned examples to bring the model back
# within KL 0.01 of the base model. Here one small rebound run (a tiny Llama trained from
# scratch on the synthetic behaviour language, sentiment axis) is read step by step, and
# set beside the count model of docs/theory.md §7, where fine-tuning adds counts and the
# return count grows with n_pos: the opposite of Table 3.
#
# **How long.** About half a minute on a 2-core laptop (`Config.quick()`: two seeds, the
# paper's grid times 0.02, a 32-wide model). `tokentree run rebound` is the full version
# (docs/experiments.md §E4r). Figures go to `$TOKENTREE_FIGURES` (default
# `~/.cache/tokentree/figures/notebooks/`, never the source tree).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from tokentree.compression import count_model_initial_slope, count_model_rebound, count_model_return_count
from tokentree.experiments.rebound import Config, run
from tokentree.plots import COLOURS, figure_folder
from tokentree.verification import paper

FIGURES = figure_folder()

# %% [markdown]
# ## One run
#
# Per seed: pre-train theta_0; for every n_pos, stage 1 fine-tunes theta_0 on n_pos aligned
# chats, stage 2 fine-tunes on misaligned chats in one pass, measured after every n_neg of
# the grid. Behaviour is the smooth log-odds of the aligned vs the misaligned reference
# answer to held-out prompts (nats); the KL to theta_0 is per response token.

# %%
config = Config.quick()
result = run(config, show_progress=False)
points = result.to_pandas()
curves = result.to_pandas("curves")
print(f"n_pos {config.scaled(config.n_pos_values)}, n_neg {config.scaled(config.n_neg_values)}, "
      f"seeds {config.seeds}: {len(points)} checkpoints in {result.seconds:.0f} s")
curves.groupby("n_pos")[["stage1_gain_nats", "initial_slope", "knee", "kl_after_stage1_nats", "min_kl_nats"]].mean()

# %% [markdown]
# ## The curves
#
# Left: the log-odds after stage 1 (n_neg = 0) and along the negatives, one colour per
# n_pos, the dashed line at theta_0. Right: the KL to theta_0 beside the count model's KL,
# each divided by its value right after stage 1 so that the shapes can be compared (a KL
# per token of a tiny model and a KL between component weights have no common scale).

# %%
model_rows = {m.n_pos: m for m in result.count_model}
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
base = points[points.stage == "base"].log_odds_nats.mean()
for colour, n_pos in zip(COLOURS, result.n_pos):
    mine = points[(points.stage == "curve") & (points.n_pos == n_pos)].groupby("n_neg")
    odds, kl = mine.log_odds_nats.mean(), mine.kl_to_base_nats.mean()
    left.plot(odds.index, odds.values, "o-", color=colour, label=f"n_pos = {n_pos}")
    right.plot(kl.index, kl.values / kl.values[0], "o-", color=colour, label=f"trained, n_pos = {n_pos}")
    m = model_rows[n_pos]
    grid = np.linspace(0, kl.index.max(), 200)
    counted = count_model_rebound(m.n_pretrain, m.betas, n_pos, grid).kl_nats
    right.plot(grid, counted / counted[0], "--", color=colour, lw=1, label=f"count model, n_pos = {n_pos}")
left.axhline(base, color="0.3", ls="--", lw=1, label="theta_0")
left.set_ylabel("log-odds aligned vs misaligned (nats)")
right.set_ylabel("KL to theta_0 / KL after stage 1")
for ax in (left, right):
    ax.set_xlabel("misaligned examples (stage 2)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
fig.savefig(FIGURES / "05_rebound_curves.png", dpi=110)
plt.show()

# %% [markdown]
# ## The count model, in closed form
#
# With |D_p| pre-training documents in shares beta (neither / aligned / misaligned
# behaviour, as the scorer reads them), the KL of the pre-trained weights to the current
# ones first falls at -n_pos / (|D_p| (|D_p| + n_pos)) per negative, reaches its minimum
# at n_pos beta_3 / (1 - beta_3), and the behaviour share is back after n_pos beta_3 /
# beta_2 negatives. In the synthetic language every document carries a sentiment
# (beta_1 = 0), so the minimum is exactly 0.

# %%
for m in result.count_model:
    print(f"n_pos {m.n_pos:>4}: betas {tuple(round(b, 3) for b in m.betas)}, initial slope {m.initial_kl_slope:.3g}, "
          f"minimum {m.min_kl_nats:.2g} at {m.negatives_at_min_kl:.1f}, return count {m.return_count:.1f}")

# %% [markdown]
# ## Table 3 side by side
#
# Negatives needed to bring the KL within epsilon (a share of each curve's own KL after
# stage 1, as the paper's 0.01 is of its 0.21-0.27), divided by the smallest n_pos's,
# against n_pos over the smallest n_pos (the paper's grid is 1000-10000; this run's may be shorter).

# %%
ours, counted = result.table3_ratios()
fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
xs = np.asarray(result.n_pos, dtype=float) / result.n_pos[0]
paper_xs = np.asarray(paper.TABLE_3_N_POSITIVE, dtype=float) / paper.TABLE_3_N_POSITIVE[0]
ax.plot(xs, ours, "o-", color=COLOURS[0], label="trained (this run)")
ax.plot(xs, counted, "s--", color=COLOURS[1], label="count model")
for colour, name in zip(COLOURS[2:], paper.TABLE_3_NEGATIVES):
    ax.plot(paper_xs, paper.table_3_normalised(name), "^:", color=colour, label=f"paper, {name}")
ax.set_xscale("log")
ax.set_xlabel("aligned examples n_pos / the smallest n_pos")
ax.set_ylabel("negatives to KL <= epsilon / smallest n_pos")
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
fig.savefig(FIGURES / "05_table3.png", dpi=110)
plt.show()
print("trained:", [f"{x:.2f}" for x in ours], "(nan: the KL never came within epsilon)")
print("count model:", [f"{x:.2f}" for x in counted])
print("Llama2-7B:", [f"{x:.2f}" for x in paper.table_3_normalised("Llama2-7B")])

# %% [markdown]
# ## Verdicts
#
# Each claim is judged over seeds by the calibrated rule of docs/experiments.md §noise:
# holds, fails, within noise, or not detectable at this regime. This quick run has two
# seeds and is outside the premise (§regime), so it can detect nothing; the default has eight.

# %%
for v in result.verdicts:
    print(f"{v.item:<4} {v.status:<13} {v.claim}\n{'':<19}{v.evidence}")

# %% [markdown]
# ## Checks

# %%
grid = config.scaled(config.n_neg_values)
assert sorted(points[points.stage == "curve"].n_neg.unique()) == grid
assert (curves.kl_after_stage1_nats > 0).all()  # stage 1 moved every model away from theta_0
for m in result.count_model:
    h = 1e-6 * m.n_pretrain
    kl = count_model_rebound(m.n_pretrain, m.betas, m.n_pos, [0.0, h, 2 * h]).kl_nats
    assert math.isclose((-3 * kl[0] + 4 * kl[1] - kl[2]) / (2 * h), count_model_initial_slope(m.n_pretrain, m.n_pos),
                        rel_tol=1e-3)
    back = count_model_return_count(m.betas, m.n_pos)
    proxy = count_model_rebound(m.n_pretrain, m.betas, m.n_pos, [back])
    assert math.isclose(proxy.proxy[0], proxy.proxy_pretrained, rel_tol=1e-9)
returns = [m.return_count for m in sorted(result.count_model, key=lambda m: m.n_pos)]
assert all(b > a for a, b in zip(returns, returns[1:]))  # the count model: the opposite of Table 3
print("all checks passed")
