"""A token tree stored in parts: one folder, one subtree per range of first tokens, opened lazily.

Layout of a partitioned tree folder (written by :mod:`tokentree.trees.distributed`)::

    manifest.json            written last: format, version, tree info, boundaries, parts
    part-00000/tokens.npy    the part's arrays, as a TokenTree of the part's occurrences
    part-00000/flags.npy     node flags, from which parent links derive (tree.py); folders written
                             before issue 26 hold parents.npy instead (indexing the part's own nodes)
    part-00000/counts.npy    uint8 counts, with count_overflow_at.npy and count_overflow.npy (the
                             large ones; tokentree.trees.counts_layout), or dense in older folders
    part-00000/leaf_eos.npy
    part-00000/level_offsets.npy
    ...

Every array is a plain ``.npy``, loaded memory-mapped and without pickle, so opening a
tree larger than memory costs nothing until a part is read. :class:`PartitionedTree`
answers the questions that decompose over first-token ranges part by part and sums them
exactly (docs/theory.md §1 and §2):

==========================  ==================================================================
``count``, ``find``         one part: the one holding the prefix's first token (and second, when
                            a heavy first token is cut by its second; a one-token prefix then
                            sums over its slices)
``layer_stats``             nodes, mass and EOS mass per level add up; the entropy of a level is
                            log T - (1/T) sum c log c, and the sums add up across parts (level 1
                            merged first: the slices of a heavy first token share its node)
``symbols``, ``prune``      per part; a symbol's index is its part's offset plus its index there
``cross_entropy_bits``,     between two trees built with the same boundaries: aligned part by
``kl_bits``                 part, since a symbol lies in the part of its first token
``huffman_lengths``         needs every symbol's mass at once (a global sort by weight): the
                            masses are gathered (8 bytes a symbol) and coded, then split per part
``materialize``             the whole tree in memory, equal to ``build_tree``'s array for array
==========================  ==================================================================
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.infra.errors import InputError, TreeFileError
from tokentree.trees.partition import PartKey, stitch_trees
from tokentree.trees.tree import TokenTree, TreeInfo

__all__ = ["PartitionedTree", "open_partitioned", "open_tree", "is_partitioned_tree", "MANIFEST", "FORMAT_NAME",
           "PART_ARRAYS", "part_name"]

MANIFEST = "manifest.json"
FORMAT_NAME = "tokentree.PartitionedTree"
FORMAT_VERSION = 2  # 2: parts may cut a heavy first token by its second token
PART_ARRAYS = ("tokens", "counts", "leaf_eos", "level_offsets")  # and flags.npy, or (older folders) parents.npy
#: The table of large counts beside one-byte counts (tokentree.trees.counts_layout); folders written before lack it.
COUNT_TABLE = ("count_overflow_at", "count_overflow")


def part_name(index: int) -> str:
    """The folder of part ``index`` inside a partitioned tree."""
    return f"part-{index:05d}"


def is_partitioned_tree(path: str | os.PathLike[str]) -> bool:
    """True for a folder holding a partitioned tree's manifest."""
    return (Path(path) / MANIFEST).is_file()


@dataclass(frozen=True)
class _Part:
    index: int
    name: str
    first_tokens: tuple[int, int]
    level_sizes: tuple[int, ...]
    mass: int
    second_tokens: tuple[int, int] | None = None

    @property
    def key(self) -> PartKey:
        return PartKey(self.first_tokens, self.second_tokens)


class PartitionedTree:
    """A token tree in parts on disk (see the module docstring); open it with :func:`open_partitioned`."""

    def __init__(self, folder: Path, info: TreeInfo, boundaries: np.ndarray, parts: list[_Part],
                 provenance: dict[str, Any] | None) -> None:
        self.folder, self.info, self.boundaries, self._parts = folder, info, boundaries, parts
        self.provenance = provenance

    # ------------------------------------------------------------------ shape
    @property
    def depth(self) -> int:
        return self.info.depth

    @property
    def n_parts(self) -> int:
        return len(self._parts)

    @property
    def total_mass(self) -> int:
        return sum(p.mass for p in self._parts)

    @property
    def plan(self) -> list[PartKey]:
        """What each part holds, in order: pass it as ``build_partitioned(..., plan=...)`` to build another
        tree whose parts line up with these (for cross-entropy and KL part by part)."""
        return [p.key for p in self._parts]

    def _shares_first_node(self, i: int) -> bool:
        """Whether part ``i`` is a later slice of its predecessor's (heavy) first token."""
        return i > 0 and self._parts[i].second_tokens is not None and \
            self._parts[i].first_tokens == self._parts[i - 1].first_tokens

    @cached_property
    def level_sizes(self) -> np.ndarray:
        """Nodes per level of the whole tree (the root is level 0)."""
        sizes = np.sum([p.level_sizes for p in self._parts], axis=0).astype(np.int64) if self._parts else \
            np.zeros(self.depth + 1, dtype=np.int64)
        sizes[0] = 1
        if self._parts:
            sizes[1] -= sum(self._shares_first_node(i) for i in range(self.n_parts))
        return sizes

    @property
    def n_nodes(self) -> int:
        return int(self.level_sizes.sum())

    @property
    def nbytes_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.folder.rglob("*.npy"))

    def __repr__(self) -> str:
        i = self.info
        return (f"PartitionedTree(mode={i.mode!r}, depth={i.depth}, nodes={self.n_nodes}, mass={self.total_mass}, "
                f"vocab_size={i.vocab_size}, parts={self.n_parts}, folder={str(self.folder)!r})")

    # ------------------------------------------------------------------ parts
    def part(self, index: int) -> TokenTree:
        """Part ``index`` as a TokenTree over its memory-mapped arrays (nothing is read until used)."""
        p = self._parts[index]
        folder = self.folder / p.name
        arrays = {}
        links = "flags" if (folder / "flags.npy").exists() else "parents"
        table = COUNT_TABLE if (folder / f"{COUNT_TABLE[0]}.npy").exists() else ()  # folders before issue 26 lack it
        for name in (*PART_ARRAYS, links, *table):
            try:
                arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise TreeFileError(f"{folder / name}.npy cannot be read ({exc}); the partitioned tree is "
                                    "incomplete or corrupt; rebuild it") from None
        if [int(x) for x in np.diff(arrays["level_offsets"])] != list(p.level_sizes):
            raise TreeFileError(f"{folder}: its level sizes do not match the manifest; rebuild the tree")
        return TokenTree._from_arrays(info=self.info, **arrays)

    def parts(self) -> Iterator[TokenTree]:
        """Every part in order of first tokens."""
        for i in range(self.n_parts):
            yield self.part(i)

    def _parts_of(self, ids: list[int]) -> list[int]:
        """The parts that can hold occurrences starting with ``ids`` (several for one token cut by its second)."""
        starts = [p.first_tokens[0] for p in self._parts]
        lo = int(np.searchsorted(starts, int(ids[0]), side="left"))
        hi = int(np.searchsorted(starts, int(ids[0]), side="right"))
        candidates = range(lo, hi) if hi > lo else range(lo - 1, lo)  # the token's slices, or the range holding it
        return [i for i in candidates if i >= 0 and self._parts[i].key.holds(ids)]

    # ------------------------------------------------------------------ queries
    def _tokenizer_json(self) -> str | None:
        path = self.folder / "tokenizer.json"
        return path.read_text() if path.is_file() else None

    def ids_of(self, prefix: Any) -> Any:
        """``prefix`` as token ids: text is encoded with the recorded tokenizer; ids pass through."""
        if not isinstance(prefix, str):
            return prefix
        text = self._tokenizer_json()
        if text is None or self.info.alphabet != "token":
            raise InputError("this tree records no tokenizer, so text cannot be looked up; pass token ids")
        from tokenizers import Tokenizer

        return Tokenizer.from_str(text).encode(prefix).ids

    def decode(self, ids: Any) -> str:
        """Token ids as text with the recorded tokenizer (the ids themselves when there is none)."""
        ids = [int(i) for i in ids]
        text = self._tokenizer_json()
        if text is None or self.info.alphabet != "token":
            return " ".join(map(str, ids))
        from tokenizers import Tokenizer

        return str(Tokenizer.from_str(text).decode(ids, skip_special_tokens=False))

    def top_symbols(self, k: int = 10) -> list[tuple[str, int, float]]:
        """The ``k`` heaviest symbols over every part: (text, mass, probability), heaviest first."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer; got {k!r}")
        found: list[tuple[int, tuple[Any, ...]]] = []
        total = 0
        for tree in self.parts():
            sym = tree.symbols()
            total += int(sym.mass.sum())
            for i in np.argsort(-sym.mass, kind="stable")[: int(k)].tolist():
                found.append((int(sym.mass[i]), tree.symbol_path(i)))
        found.sort(key=lambda x: -x[0])
        out = []
        for mass, path in found[: int(k)]:
            ends = path[-1] == "EOS"
            text = self.decode(path[:-1] if ends else path) + (" <EOS>" if ends else "")
            out.append((text, mass, mass / total))
        return out

    def count(self, prefix: Any) -> int:
        """Occurrences starting with ``prefix`` (ids, or text with the recorded tokenizer): one part answers."""
        ids = list(self.ids_of(prefix))
        if not ids:
            return self.total_mass
        return sum(self.part(i).count(ids) for i in self._parts_of(ids))

    def eos_count(self, prefix: Any) -> int:
        ids = list(self.ids_of(prefix))
        if not ids:
            return 0
        return sum(self.part(i).eos_count(ids) for i in self._parts_of(ids))

    def layer_stats(self) -> dict[str, np.ndarray]:
        """Per level: nodes, mass, EOS mass and entropy in bits, summed exactly over the parts."""
        depth = self.depth
        mass = np.zeros(depth + 1, dtype=np.int64)
        eos = np.zeros(depth + 1, dtype=np.int64)
        c_log_c = np.zeros(depth + 1, dtype=np.float64)
        first_level = np.zeros(self.info.vocab_size, dtype=np.int64)  # level 1 merged: slices share a node
        for tree in self.parts():
            offsets = tree.level_offsets
            counts = np.asarray(tree.counts)
            eos_counts = tree.eos_counts
            np.add.at(first_level, np.asarray(tree.tokens[offsets[1] : offsets[2]]), counts[offsets[1] : offsets[2]])
            for j in range(1, depth + 1):
                c = counts[offsets[j] : offsets[j + 1]].astype(np.float64)
                mass[j] += int(c.sum())
                eos[j] += int(eos_counts[offsets[j] : offsets[j + 1]].sum())
                positive = c[c > 0]
                c_log_c[j] += float(np.sum(positive * np.log2(positive))) if j > 1 else 0.0
        positive = first_level[first_level > 0].astype(np.float64)
        c_log_c[1] = float(np.sum(positive * np.log2(positive)))
        mass[0] = self.total_mass
        entropy = np.array([max(0.0, math.log2(m) - c_log_c[j] / m) if m > 0 and j > 0 else 0.0  # no -0.0 from rounding
                            for j, m in enumerate(mass)])
        return {"nodes": self.level_sizes.copy(), "mass": mass, "eos_mass": eos, "entropy_bits": entropy}

    def symbol_masses(self) -> np.ndarray:
        """Every symbol's mass, part after part (each part's symbols in its own order)."""
        return np.concatenate([t.symbols().mass for t in self.parts()]) if self.n_parts else np.zeros(0, np.int64)

    def entropy_bits(self) -> float:
        """Entropy of the symbol distribution, in bits per symbol (sums over parts)."""
        total, c_log_c = 0, 0.0
        for t in self.parts():
            m = t.symbols().mass.astype(np.float64)
            total += int(m.sum())
            c_log_c += float(np.sum(m[m > 0] * np.log2(m[m > 0])))
        return math.log2(total) - c_log_c / total if total else 0.0

    def _aligned_with(self, other: PartitionedTree) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from tokentree.trees.combine import align_symbols

        if self.plan != other.plan:
            raise InputError("the two partitioned trees were built with different parts; rebuild one with the "
                             "other's (plan=tree.plan) so their parts line up")
        for a, b in zip(self.parts(), other.parts(), strict=True):
            if a.n_nodes == 1 and b.n_nodes == 1:
                continue
            aligned = align_symbols([a, b])
            yield aligned.masses[0].astype(np.float64), aligned.masses[1].astype(np.float64)

    def cross_entropy_bits(self, model: PartitionedTree) -> float:
        """H(P_self, P_model) in bits per symbol, summed part by part (inf where the model lacks a symbol)."""
        total_p, total_q = float(self.total_mass), float(model.total_mass)
        out = 0.0
        for p, q in self._aligned_with(model):
            seen = p > 0
            if np.any(q[seen] == 0):
                return math.inf
            out -= float(np.sum(p[seen] / total_p * np.log2(q[seen] / total_q)))
        return out

    def kl_bits(self, model: PartitionedTree) -> float:
        """KL(P_self || P_model) in bits per symbol: cross-entropy minus entropy."""
        cross = self.cross_entropy_bits(model)
        return cross - self.entropy_bits() if math.isfinite(cross) else math.inf

    def huffman_lengths(self) -> list[np.ndarray]:
        """Huffman code lengths of every symbol, per part: the masses are gathered, coded once, and split."""
        from tokentree.compression.huffman import huffman_lengths

        per_part = [t.symbols().mass for t in self.parts()]
        lengths = huffman_lengths(np.concatenate(per_part)) if per_part else np.zeros(0, np.int64)
        cuts = np.cumsum([m.shape[0] for m in per_part])[:-1]
        return list(np.split(lengths, cuts))

    def prune(self, depth: int) -> TokenTree:
        """The tree pruned to ``depth``, materialized (each part pruned, then stitched)."""
        parts = [t.prune(depth) for t in self.parts()]
        from dataclasses import replace

        return stitch_trees(parts, replace(self.info, depth=depth), consume=True)

    def materialize(self) -> TokenTree:
        """The whole tree in memory: equal, array for array, to ``build_tree`` on the same data."""
        tree = stitch_trees(list(self.parts()), self.info, consume=True)
        tokenizer = self._tokenizer_json()
        return tree.with_provenance(self.provenance or {}, tokenizer) if self.provenance or tokenizer else tree


def open_partitioned(folder: str | os.PathLike[str]) -> PartitionedTree:
    """Open a partitioned tree folder (reads the manifest only; parts are memory-mapped when used)."""
    where = Path(folder)
    path = where / MANIFEST
    if not path.is_file():
        raise TreeFileError(f"{where}: no {MANIFEST}; not a partitioned tree, or its build did not finish (the "
                            "manifest is written last): rebuild it")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TreeFileError(f"{path}: corrupt manifest; rebuild the tree") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise TreeFileError(f"{path}: not a tokentree partitioned tree manifest")
    if manifest.get("version", 0) > FORMAT_VERSION:
        raise TreeFileError(f"{path}: written by a newer tokentree (version {manifest.get('version')}); upgrade")
    try:
        info = TreeInfo(**manifest["info"])
        boundaries = np.asarray(manifest["boundaries"], dtype=np.int64)
        parts = [_Part(int(p["index"]), str(p["name"]), (int(p["first_tokens"][0]), int(p["first_tokens"][1])),
                       tuple(int(x) for x in p["level_sizes"]), int(p["mass"]),
                       None if p.get("second_tokens") is None else (int(p["second_tokens"][0]),
                                                                    int(p["second_tokens"][1])))
                 for p in manifest["parts"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise TreeFileError(f"{path}: corrupt manifest ({type(exc).__name__}: {exc}); rebuild the tree") from None
    for p in parts:
        if not (where / p.name).is_dir():
            raise TreeFileError(f"{where / p.name}: missing; the partitioned tree is incomplete; rebuild it")
    return PartitionedTree(where, info, boundaries, parts, manifest.get("provenance"))


def open_tree(path: str | os.PathLike[str]) -> TokenTree | PartitionedTree:
    """A tree file (``.npz``) or a partitioned tree folder, whichever ``path`` is."""
    from tokentree.trees.storage import load_tree

    return open_partitioned(path) if Path(path).is_dir() else load_tree(path)
