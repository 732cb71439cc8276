"""Whole datasets through a tree's Huffman code: responses -> symbols -> bits -> tokens.

A dataset is cut into symbols by the model tree's mode (docs/theory.md §2), each
symbol is looked up in the model's symbol set, and the symbol sequence is
Huffman-coded. In chunk mode the blocks of a response tile it, so decoding restores
the exact token ids.
"""

from __future__ import annotations

import numpy as np

from tokentree.compression.huffman import EncodedBits, HuffmanCode, huffman_code
from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.infra.errors import InputError
from tokentree.trees.build import occurrences
from tokentree.trees.tree import TokenTree

__all__ = ["symbol_indices", "encode_dataset", "decode_dataset"]


def symbol_indices(tree: TokenTree, sequences: object) -> np.ndarray:
    """Index (into ``tree.symbols()``) of every symbol occurrence of ``sequences``; -1 if absent.

    >>> from tokentree import build_tree
    >>> t = build_tree([[1, 2, 3]], depth=2)
    >>> symbol_indices(t, [[1, 2, 3], [3]]).tolist()
    [1, 0, 0]
    """
    seqs = as_token_sequences(sequences)  # type: ignore[arg-type]
    symbols = tree.symbols()
    lookup = {(int(n), bool(e)): i for i, (n, e) in enumerate(zip(symbols.node, symbols.ends, strict=False))}
    occ = occurrences(seqs, tree.depth, tree.mode, "sequences")
    out = np.empty(occ.start.shape[0], dtype=np.int64)
    tokens = seqs.tokens
    for i, (s, n, e) in enumerate(zip(occ.start.tolist(), occ.length.tolist(), occ.eos.tolist(), strict=True)):
        node = tree.find(tokens[s : s + n].tolist())
        out[i] = -1 if node < 0 else lookup.get((node, e), -1)
    return out


def encode_dataset(tree: TokenTree, sequences: object, code: HuffmanCode | None = None) -> EncodedBits:
    """Huffman-code a dataset with the code of ``tree``'s symbol masses (built if not given)."""
    idx = symbol_indices(tree, sequences)
    if np.any(idx < 0):
        raise InputError(
            f"{int((idx < 0).sum())} symbol occurrences are not in the model tree, so they have no "
            "codeword; build the model from data that includes them, or smooth it"
        )
    code = huffman_code(tree.symbols().mass) if code is None else code
    return code.encode(idx)


def decode_dataset(tree: TokenTree, bits: EncodedBits, code: HuffmanCode | None = None) -> TokenSequences:
    """Decode a chunk-mode bitstream back into the token ids of every response."""
    if tree.mode != "chunk":
        raise InputError(f"only chunk-mode symbols tile their responses; this tree is {tree.mode!r}")
    code = huffman_code(tree.symbols().mass) if code is None else code
    symbols = tree.symbols()
    responses: list[list[int]] = []
    current: list[int] = []
    for s in code.decode(bits).tolist():
        current.extend(tree.path(int(symbols.node[s])))
        if symbols.ends[s]:
            responses.append(current)
            current = []
    if current:
        raise InputError("bitstream ends inside a response (no final EOS symbol)")
    return as_token_sequences(responses)
