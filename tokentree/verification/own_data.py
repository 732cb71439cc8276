"""Your own three datasets for Theorem 4.2: how each is read, and each as token sequences or a tree it already is.

:class:`OwnData` is hooke's ``files`` settings group (``--pretrain``, ``--align``, ``--perturb``,
per-dataset ``--NAME-field``/``--NAME-chat``, ``--k``); :func:`read_datasets` reads the three
(every format of :mod:`tokentree.data.readers`, or one tree file ``tokentree build`` wrote), with
one tokenizer checked across them, and says how each was read (:class:`DatasetRecord`: nulls and
empty fields counted); :func:`built_alike` gives the build options tree inputs share. Judged by
:func:`tokentree.verification.trees.hooke_on_trees`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from tokentree.data.readers import CHAT_TURNS
from tokentree.framework.config import Checked, bounded
from tokentree.infra.errors import InputError
from tokentree.trees.tree import MODES

if TYPE_CHECKING:
    from tokentree.trees.tree import TokenTree

__all__ = ["DATASETS", "OwnData", "DatasetRecord", "read_datasets", "built_alike"]

#: The three datasets: config name (and option --NAME), and the paper's symbol.
DATASETS = (("pretrain", "D_p"), ("align", "D_a"), ("perturb", "D_t"))
_CHATS = ("", *CHAT_TURNS)


@dataclass(frozen=True)
class OwnData(Checked):
    """Your three datasets and how each is read (hooke's ``files`` group; docs/experiments.md §E0files).

    pretrain, align, perturb
        D_p, D_a, D_t: files or folders of any format ``tokentree build`` reads, or one tree file it wrote.
    field, chat
        How records are read, for all three (``--field``, ``--chat``).
    pretrain_field, align_field, perturb_field, pretrain_chat, align_chat, perturb_chat
        The same for one dataset, over ``field``/``chat`` (``--align-chat assistant``).
    mode
        How responses become symbols in the trees built from files.
    k
        k = |D_p| / |D_a|; 0: the ratio of the trees' masses.
    """

    pretrain: tuple[str, ...] = ()
    align: tuple[str, ...] = ()
    perturb: tuple[str, ...] = ()
    field: str = ""
    chat: str = bounded("", choices=_CHATS)
    pretrain_field: str = ""
    align_field: str = ""
    perturb_field: str = ""
    pretrain_chat: str = bounded("", choices=_CHATS)
    align_chat: str = bounded("", choices=_CHATS)
    perturb_chat: str = bounded("", choices=_CHATS)
    mode: str = bounded("chunk", choices=MODES)
    k: float = bounded(0.0, minimum=0.0)

    def check_used(self, used: bool) -> None:
        """Refuse a missing dataset when ``used`` (``data = "files"``), and any of these settings when not."""
        missing = [f"--{name}" for name, _ in DATASETS if not getattr(self, name)]
        if used and missing:
            raise InputError(f"data = 'files' needs your three datasets: --pretrain FILES --align FILES --perturb "
                             f"FILES ({', '.join(missing)} missing)")
        given = [f.name for f in fields(self) if getattr(self, f.name) != f.default]
        if not used and given:
            one = len(given) == 1
            raise InputError(f"{', '.join(given)} {'applies' if one else 'apply'} to your own data (data = 'files', "
                             f"set by --pretrain FILES --align FILES --perturb FILES); give the three datasets, or "
                             f"drop {'it' if one else 'them'}")

    def how_to_read(self, name: str) -> tuple[str | None, str | None]:
        """(field, chat) of dataset ``name``: its own settings, else those for all three."""
        field, chat = getattr(self, f"{name}_field") or self.field, getattr(self, f"{name}_chat") or self.chat
        return field or None, chat or None


@dataclass(frozen=True)
class DatasetRecord:
    """How one dataset was read: from where, with which field and chat turns, and what was not a response."""

    dataset: str
    source: str
    field: str | None
    chat: str | None
    responses: int | None
    nulls: int
    empty: int


def _tree_file(paths: Sequence[str], option: str) -> TokenTree | None:
    """The tree in ``paths`` when they are one tree file (``.npz``), else None (files to read)."""
    from tokentree.trees.storage import load_tree

    trees = [p for p in paths if str(p).endswith(".npz")]
    if not trees:
        return None
    if len(paths) > 1:
        raise InputError(f"{option}: {trees[0]} is a tree file, a whole dataset; give it alone, or the files it was "
                         "built from")
    return load_tree(trees[0])


def _tokenized_alike(trees: dict[str, TokenTree | None], tokenizer: Any, name: str) -> None:
    """Every tree input, and the files, tokenized by one tokenizer (same V; same sha256 where it is recorded)."""
    from tokentree.data.text import provenance

    seen = []  # (where, what, V, sha256 or None)
    if tokenizer is not None:
        ours = provenance(tokenizer=tokenizer, tokenizer_name=name, inputs=[], options={})["tokenizer"]
        seen.append(("the files", f"the config's tokenizer {name}", ours["vocab_size"], ours["sha256"]))
    for option, tree in trees.items():
        if tree is not None:
            made = (tree.provenance or {}).get("tokenizer", {})
            what = made.get("name", "an unrecorded tokenizer")
            seen.append((f"--{option}", what, tree.vocab_size, made.get("sha256")))
    for where, what, vocab, sha in seen[1:]:
        first = seen[0]
        if vocab != first[2] or (sha is not None and first[3] is not None and sha != first[3]):
            raise InputError(f"{where} is tokenized with {what} (V = {vocab:,}) but {first[0]} with {first[1]} (V = "
                             f"{first[2]:,}); one tokenizer for all three: rebuild the tree with the same --tokenizer "
                             "(`tokentree info TREE` shows a tree's), or pass --tokenizer for the files")


def read_datasets(own: OwnData, tokenizer_name: str, *, show_progress: bool | None = None,
                  ) -> tuple[list[Any], list[DatasetRecord]]:
    """Each dataset as a tree (a tree file) or token sequences (files, tokenized by ``tokenizer_name``), and how
    each was read."""
    from tokentree.data.text import ReadStats, encode_texts, load_tokenizer, read_responses

    trees = {name: _tree_file(getattr(own, name), f"--{name}") for name, _ in DATASETS}
    tokenizer = load_tokenizer(tokenizer_name) if None in trees.values() else None
    _tokenized_alike(trees, tokenizer, tokenizer_name)
    datasets: list[Any] = []
    read: list[DatasetRecord] = []
    for name, symbol in DATASETS:
        paths, option, how, tree = list(getattr(own, name)), f"--{name}", own.how_to_read(name), trees[name]
        if tree is not None:
            if any(how):
                raise InputError(f"{option}: {paths[0]} is a tree, already read; --field/--chat do not apply to it "
                                 "(give them per dataset, e.g. --align-field, to the datasets read from files)")
            datasets.append(tree)
            read.append(DatasetRecord(symbol, f"tree {paths[0]}", None, None, tree.info.n_sequences, 0, 0))
            continue
        stats = ReadStats()
        try:
            datasets.append(encode_texts(read_responses(paths, field=how[0], chat=how[1], stats=stats), tokenizer,
                                         show_progress=show_progress))
        except InputError as exc:
            shared = "field" if own.field else "chat" if own.chat else None
            each = " or ".join(f"--{n}-{shared}" for n, _ in DATASETS if n != name)
            hint = (f"; to read only the other datasets as records, give {each} instead of --{shared}"
                    if shared and "applies to records" in str(exc) else "")
            raise InputError(f"{symbol} ({option}): {exc}{hint}") from None
        read.append(DatasetRecord(symbol, ", ".join(paths), how[0], how[1], stats.responses, stats.nulls, stats.empty))
    return datasets, read


def built_alike(trees: Sequence[TokenTree]) -> dict[str, Any]:
    """The depth and build options the tree inputs share (the run's, then), or an error naming them."""
    built = {(t.info.depth, t.info.mode, t.info.weighting, t.info.alphabet) for t in trees}
    if len(built) > 1:
        raise InputError(f"the tree inputs are built differently: {sorted(built)} (depth, mode, weight, alphabet); "
                         "rebuild them with the same --depth, --mode, --weight and --alphabet")
    depth, mode, weight, alphabet = built.pop()
    return {"depth": depth, "mode": mode, "weight": weight, "alphabet": alphabet}


