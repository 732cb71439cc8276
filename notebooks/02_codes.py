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
# # 02 Codes: ideal, Huffman and the paper's Theorem 3.4
#
# **What it shows.** The compressor of the paper (Def. 3.3) Huffman-codes the symbols of
# the pruned token tree. Three code lengths live side by side and the paper mixes them:
# the ideal length -log2 q(s), the exact integer Huffman length, and the Theorem 3.4
# estimate ceil(|x|/d) ceil(H). We compare them across depths on real and synthetic trees,
# encode a whole dataset into a real bitstream and decode it back bit-exactly, and see why
# Huffman lengths are piecewise constant when the model moves a little, which is why the
# derivatives in notebook 03 use ideal lengths.
#
# **How long.** About 20 seconds on a 2-core laptop. Figures go to `$TOKENTREE_FIGURES` (default
# `~/.cache/tokentree/figures/notebooks/`, never the source tree).

# %%

import matplotlib.pyplot as plt
import numpy as np

from tokentree import build_tree
from tokentree.trees.combine import align_symbols
from tokentree.compression import (
    compression_rate,
    entropy,
    huffman_code,
    perturbation_setting,
    simulate_perturbation,
)
from tokentree.trees.dataset_codes import decode_dataset, encode_dataset
from tokentree.data.synthetic import zipf_corpus
from tokentree.data.text import builtin_texts, encode_texts, gpt2_tokenizer
from tokentree.plots import figure_folder

FIGURES = figure_folder()
DEPTHS = range(1, 9)
SEED = 0

# %% [markdown]
# ## Two datasets
#
# Real: Python's help texts, one response per paragraph, GPT-2 tokens. Synthetic: a Zipf
# corpus (exponent 1, 32k ids) of the same number of tokens, seeded.

# %%
tokenizer = gpt2_tokenizer()
V = tokenizer.get_vocab_size()
real = encode_texts(builtin_texts("pydoc-paragraphs"), tokenizer, show_progress=False)
synthetic = zipf_corpus(real.n_tokens, vocab_size=32_000, rng=SEED)
datasets = {"pydoc (GPT-2)": (real, V), "Zipf synthetic": (synthetic, 32_000)}
print({name: (d.n_sequences, d.n_tokens) for name, (d, _) in datasets.items()})

# %% [markdown]
# ## Code lengths against depth
#
# Each dataset compressed by the code of its own pruned tree (q = P), in bits per token.
# The Huffman rate sits in [H, H + 1) bits per symbol, so its excess over the ideal rate
# shrinks like 1/d per token; the Theorem 3.4 estimate rounds the entropy up to whole bits.

# %%
rows = {}
for name, (data, vocab) in datasets.items():
    out = []
    for d in DEPTHS:
        symbols = build_tree(data, depth=d, mode="chunk", vocab_size=vocab).symbols()
        r = compression_rate(symbols.mass, symbols.mass, symbols.length, depth=d, vocab_size=vocab)
        out.append((d, r.rate_bits_per_token, r.huffman_rate_bits_per_token, r.theorem_3_4_rate_bits_per_token,
                    r.rate_bits_per_symbol, r.huffman_rate_bits_per_symbol, r.ratio_to_raw))
    rows[name] = np.array(out)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
for ax, (name, arr) in zip(axes, rows.items()):
    ax.plot(arr[:, 0], arr[:, 1], "o-", label="ideal: H / mean symbol length")
    ax.plot(arr[:, 0], arr[:, 2], "s--", label="exact Huffman")
    ax.plot(arr[:, 0], arr[:, 3], "^:", label="Theorem 3.4: ceil(|x|/d) ceil(H) / |x|")
    ax.set_title(name)
    ax.set_xlabel("capacity depth d (tokens per symbol)")
    ax.set_ylabel("bits per token")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle("Each dataset under the code of its own pruned tree")
fig.savefig(FIGURES / "02_lengths_vs_depth.png", dpi=110)
plt.show()
for name, arr in rows.items():
    print(f"{name}: compressed / raw at d = 8: {arr[-1, 6]:.3f}")

# %% [markdown]
# ## A real bitstream, encoded and decoded
#
# At d = 4 every response is cut into 4-token chunks; each chunk is a symbol with a
# canonical Huffman codeword. The bitstream length is the sum of the codeword lengths,
# within one bit per symbol of the ideal length, and decoding gives back every token id.

# %%
tree = build_tree(real, depth=4, mode="chunk", vocab_size=V)
symbols = tree.symbols()
code = huffman_code(symbols.mass)
bits = encode_dataset(tree, real, code)
decoded = decode_dataset(tree, bits, code)
q = symbols.mass / symbols.mass.sum()
ideal_bits = float(-(symbols.mass * np.log2(q)).sum())
raw_bits = real.n_tokens * np.log2(V)
print(f"{bits.n_symbols:,} symbols -> {bits.n_bits:,} bits ({len(bits.data):,} bytes)")
print(f"ideal {ideal_bits:,.0f} bits; raw {raw_bits:,.0f} bits; Kraft sum {code.kraft_sum()}")
print(f"decoded equals the input: {decoded == real}")

# %% [markdown]
# ## Why Huffman lengths are piecewise constant
#
# Take the Theorem 4.2 mixture of notebook 03 on the real chunks: D_p the help texts, D_a
# a sample, D_t another, k = 1000. As l = |D_t|/|D_a| grows from 0 to 20 in 100 steps, the
# ideal rate of D_a moves at every step, but the Huffman code changes only when the
# mixture's weights cross a point where the tree of merges changes: its rate is a
# staircase with a handful of jumps, and its "derivative" is 0 or a jump.

# %%
rng = np.random.default_rng(SEED)
pick_a = rng.choice(real.n_sequences, 300, replace=False)
pick_t = rng.choice(real.n_sequences, 300, replace=False)
al = align_symbols([tree, build_tree(real.select(pick_a), depth=4, vocab_size=V),
                    build_tree(real.select(pick_t), depth=4, vocab_size=V)])
setting = perturbation_setting(al.masses[0], al.masses[1], al.masses[2], k=1000.0,
                               symbol_lengths=al.symbols.length, depth=4)
ls = np.linspace(0, 20, 101)
sweep = simulate_perturbation(setting, ls, l_star_search_max=0.0)
fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
ax.plot(ls, sweep.rate_align_bits - sweep.rate_align_bits[0], "-", label="ideal rate of D_a")
ax.step(ls, sweep.huffman_rate_align_bits - sweep.huffman_rate_align_bits[0], where="post", label="Huffman rate of D_a")
ax.set_xlabel("l = |D_t| / |D_a|")
ax.set_ylabel("change from l = 0 (bits per token)")
ax.set_title("Ideal lengths move smoothly; Huffman lengths jump")
ax.grid(alpha=0.3)
ax.legend()
fig.savefig(FIGURES / "02_huffman_steps.png", dpi=110)
plt.show()
moved_ideal = int(np.count_nonzero(np.diff(sweep.rate_align_bits)))
moved_huffman = int(np.count_nonzero(np.diff(sweep.huffman_rate_align_bits)))
print(f"of 100 steps, the ideal rate moved {moved_ideal} times, the Huffman rate {moved_huffman} times")

# %% [markdown]
# ## Checks

# %%
for name, arr in rows.items():
    h, huff = arr[:, 4], arr[:, 5]
    assert np.all(h <= huff + 1e-9) and np.all(huff < h + 1), name  # H <= L < H + 1 per symbol
    assert np.all(arr[:, 3] >= arr[:, 1] - 1e-9), name  # ceil(H) >= H
    assert np.all(np.diff(arr[:, 1]) < 0), name  # deeper trees compress better
assert code.kraft_sum() == 1 and code.is_prefix_free()
assert decoded == real
assert bits.n_bits == int((code.lengths * symbols.mass).sum())
assert ideal_bits <= bits.n_bits < ideal_bits + bits.n_symbols
assert abs(entropy(q) * symbols.mass.sum() - ideal_bits) < 1e-6 * ideal_bits
assert moved_ideal == 100 and 0 < moved_huffman < 100
print("all checks passed")
