"""tokentree: token trees, Huffman codes and the elasticity of joint compression.

Implements the compression model of Ji et al., "Language Models Resist Alignment:
Evidence From Data Compression" (ACL 2025). Heavy or optional dependencies (torch,
sympy, matplotlib, numba) are imported only by the modules that need them.
"""

from __future__ import annotations

from tokentree.data.sequences import TokenSequences, as_token_sequences, binary_expand
from tokentree.infra.cache import use_user_numba_cache
from tokentree.infra.errors import (
    InputError,
    InputTypeError,
    MemoryEstimateError,
    TextInputError,
    TreeFileError,
)
from tokentree.infra.version import __version__
from tokentree.trees.build import build_tree
from tokentree.trees.tree import LayerStats, PathCount, Symbols, TokenTree, TreeInfo

use_user_numba_cache()  # before any kernel imports numba (lazily): its cache goes to ~/.cache/tokentree/numba

__all__ = [
    "InputError",
    "InputTypeError",
    "LayerStats",
    "MemoryEstimateError",
    "PathCount",
    "Symbols",
    "TextInputError",
    "TokenSequences",
    "TokenTree",
    "TreeFileError",
    "TreeInfo",
    "__version__",
    "as_token_sequences",
    "binary_expand",
    "build_tree",
]
