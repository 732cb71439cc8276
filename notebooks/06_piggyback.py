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
# # 06 Piggyback: the chat-template prefix as a shared spring
#
# **What it shows.** Zhao et al. explain why a narrow fine-tune (misaligned answers in one
# domain) spreads to unrelated prompts: the chat template comes first in every prompt,
# so a shift stored at its positions is read everywhere. First the token-tree version,
# where every carrier of behaviour (the template trunk, a global bias, a domain, a query)
# is a spring whose stiffness is the data behind it (docs/theory.md §9): exact, with
# closed forms. Then one small trained run: a tiny Llama aligned on templated chats and
# fine-tuned narrowly, its spill patched part by part and regularised with TReFT
# (docs/experiments.md §E5).
#
# **How long.** About 20 seconds on a 2-core laptop. Figures go to `$TOKENTREE_FIGURES`
# (default `~/.cache/tokentree/figures/notebooks/`, never the source tree).

# %%
import dataclasses

import matplotlib.pyplot as plt
import numpy as np

from tokentree.experiments.piggyback import Config, run
from tokentree.trees.springs import Example, World, carriers_from_trees, closed_form, equilibrium, spill_of, world_trees
from tokentree.plots import COLOURS, figure_folder

FIGURES = figure_folder()

# %% [markdown]
# ## The token tree and its springs
#
# Six domains of eight queries; 20 templated aligned chats per query (the template trunk
# T comes first), 200 untemplated documents per query. Every carrier's stiffness is a
# node count of the two trees.

# %%
world = World(n_domains=6, n_queries=8, align_per_query=20, pretrain_per_query=200)
templated, plain = world_trees(world)
carriers = carriers_from_trees(world, templated, plain)
print(f"trunk k_s = {carriers.trunk:g} (templated chats), bias k_b = {carriers.bias:g} (everything), "
      f"domain 0 k_d = {carriers.domain[0]:g}, one query k_q = {carriers.query[0, 0]:g}")

# %% [markdown]
# A narrow fine-tune: 400 chats on two queries of domain 0, each pulling towards the
# misaligned answer. The energy's minimum, found numerically, against the closed form
# delta_i = f m_i / k_i, and what spills onto the other domains:

# %%
finetune = [Example(True, 0, q) for q in (0, 1) for _ in range(200)]
numeric, exact = equilibrium(carriers, finetune), closed_form(carriers, finetune)
print(f"largest relative gap, numerical vs closed form: {np.max(np.abs(numeric - exact)) / np.max(np.abs(exact)):.1e}")
base = spill_of(carriers, exact, [0, 1])
print(f"in-domain {base.in_domain_bits:.3f} bits, other domains {base.other_domains_bits:.3f} bits "
      f"(spill {base.spill:.3f}); shares: " + ", ".join(f"{k} {v:.2f}" for k, v in base.shares.items()))

# %% [markdown]
# TReFT stiffens the trunk to k_s + lambda; patching resets it. The spill against lambda:

# %%
lambdas = np.array([0, 100, 300, 1000, 3000, 10000], dtype=float)
spills, shifts = [], []
for lam in lambdas:
    delta = closed_form(carriers.with_treft(lam), finetune)
    spills.append(spill_of(carriers, delta, [0, 1]).spill)
    shifts.append(delta[0])
patched = exact.copy()
patched[0] = 0.0
fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
ax.plot(lambdas, spills, "o-", color=COLOURS[0], label="TReFT")
ax.axhline(spill_of(carriers, patched, [0, 1]).spill, color=COLOURS[1], ls="--", label="trunk patched")
ax.set_xscale("symlog", linthresh=10)
ax.set_xlabel("TReFT lambda (examples of stiffness)")
ax.set_ylabel("spill (bits elsewhere per bit in-domain)")
ax.grid(alpha=0.3)
ax.legend()
fig.savefig(FIGURES / "06_piggyback_tree.png", dpi=110)
plt.show()

# %% [markdown]
# ## A trained model
#
# One seed of `tokentree run piggyback --quick`: pre-trained on untemplated text,
# aligned on templated chats, fine-tuned on misaligned answers in one domain. Changes are
# bits of log-odds of the misaligned vs the aligned reference answer on held-out
# prompts; "removed" is the share of the other domains' change undone by patching that
# part of the prompt with the aligned model's keys and values; "swap" perturbs a part
# instead (tokens swapped for their nearest embedding neighbours), and "alt system" renders
# the prompts with a second system prompt the alignment data also used.

# %%
result = run(dataclasses.replace(Config.quick(), n_seeds=1), show_progress=False)
table = result.to_pandas()
table[["variant", "parameter", "in_domain_bits", "other_bits", "spill", "patch_prefix_removed",
       "patch_query_removed", "patch_postfix_removed", "patch_prompt_removed", "swap_prefix_removed",
       "swap_query_removed", "alt_system_removed"]]

# %%
plain_run = result.of("fine-tune")[0]
fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
names = ["prefix", "query", "postfix", "prompt"]
values = [plain_run.patch_prefix_removed, plain_run.patch_query_removed, plain_run.patch_postfix_removed,
          plain_run.patch_prompt_removed]
ax.bar(names, values, color=COLOURS[: len(names)])
ax.axhline(0.7, color="0.4", ls=":", label="the claim: over 70% for the prefix")
ax.set_ylabel("share of the other domains' change removed")
ax.set_title("Patching the aligned model's keys and values back, part by part")
ax.legend(fontsize=7)
fig.savefig(FIGURES / "06_piggyback_patching.png", dpi=110)
plt.show()
for v in result.verdicts:
    print(f"{v.item:<12} {v.status:<13} {v.claim}\n{'':<27}{v.evidence}")

# %% [markdown]
# ## Checks

# %%
assert np.allclose(numeric, exact, rtol=1e-12, atol=0)
assert np.allclose(np.array(shifts) / shifts[0], carriers.trunk / (carriers.trunk + lambdas), rtol=1e-12)
assert all(b < a for a, b in zip(spills, spills[1:]))
assert plain_run.in_domain_bits > 0  # the narrow fine-tune took
assert all(np.isfinite(values))
print("all checks passed")
