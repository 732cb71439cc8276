"""hooke on your own data: Theorem 4.2 on three datasets you give, one set of trees per depth (docs/experiments.md §E0).

``tokentree run hooke --pretrain FILES --align FILES --perturb FILES`` reads every format
of :mod:`tokentree.data.readers`, tokenizes with the config's tokenizer, builds one tree
per dataset and depth, and judges them with :func:`tokentree.verification.hooke_on_trees`:
k = |D_p| / |D_a| comes from the trees' masses (or ``--k``), the regime each depth is in is named.
Each dataset is read its own way (``--align-chat assistant``, ``--pretrain-field meta.text``;
``--field``/``--chat`` for all three), and a dataset may be a tree file ``tokentree build``
wrote (then its depth and build options are the run's). The config is hooke's
(:class:`tokentree.experiments.hooke.Config`, ``data = "files"``, these settings in its
``files`` group: a ``[files]`` table in TOML).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokentree.data.readers import CHAT_TURNS
from tokentree.framework.config import Checked, bounded
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.tables import Column, Table
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.trees.tree import MODES
from tokentree.verification import RegimeRecord, TreeSweepRecord, Verdict, hooke_on_trees

if TYPE_CHECKING:
    from tokentree.experiments.hooke import Config
    from tokentree.trees.tree import TokenTree

__all__ = ["DATASETS", "FilesResult", "OwnData", "run_files"]

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


REGIME_TABLE = Table("regimes", "Regimes", [
    Column("depth"), Column("regime"), Column("k", fmt=".4g"), Column("unseen_share", "unseen by D_p", ".1%"),
    Column("novel_share", "novel", ".1%"), Column("overlap_with_align", "on D_a's symbols", ".1%"),
    Column("ratio_l0", "R(0)", ".6g"), Column("minus_k_scaled", "-k L_p/L_a", ".6g"), Column("l_star", "l*", ".4g"),
    Column("explanation", "why"),
])
DATASET_TABLE = Table("datasets", "Datasets (null and empty fields are not responses; counted here)", [
    Column("dataset"), Column("source"), Column("field"), Column("chat"), Column("responses"), Column("nulls"),
    Column("empty"),
])


@dataclass(frozen=True, eq=False, repr=False)
class FilesResult(ExperimentReport):
    """Theorem 4.2 on your three datasets: a sweep per depth, the regime each depth is in, and the verdicts."""

    EXPERIMENT = "hooke"
    PLOTS = ("files_rates_vs_l",)
    CLAIMS_SECTION = "docs/theory.md §5"

    config: Config
    records: Sequence[TreeSweepRecord]
    regimes: Sequence[RegimeRecord]
    verdicts: Sequence[Verdict]
    datasets: Sequence[DatasetRecord] = ()
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"regimes": self.regimes, "datasets": [vars(d) for d in self.datasets]}

    def title(self) -> str:
        return "hooke: Theorem 4.2 on your data"

    def intro(self) -> str:
        c = self.config
        depths = sorted({r.depth for r in self.regimes})
        k = f"k = {c.files.k:g} (given)" if c.files.k else "k = |D_p| / |D_a| from the trees' masses"
        return (f"{'; '.join(f'{d.dataset}: {d.source}' for d in self.datasets)}. Tokenizer {c.tokenizer}, depths "
                f"{depths}; {k}, symbol lengths from the symbols. Run time {self.seconds:.1f} s. Columns: "
                "docs/experiments.md §E0.")

    def sections(self) -> Sequence[Section]:
        return [(REGIME_TABLE, self.regimes), (DATASET_TABLE, [vars(d) for d in self.datasets])]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        short = Table("regimes", "regime per depth", [c for c in REGIME_TABLE.columns if c.key != "explanation"])
        return [(DATASET_TABLE, [vars(d) for d in self.datasets]), (short, self.regimes)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.hooke import files_figure

        files_figure(self.records, self.regimes, folder / "files_rates_vs_l.png")


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


def _read(config: Config, show_progress: bool | None) -> tuple[list[Any], list[DatasetRecord]]:
    """Each dataset as a tree (a tree file) or token sequences (files), and how each was read."""
    from tokentree.data.text import ReadStats, encode_texts, load_tokenizer, read_responses

    own = config.files
    trees = {name: _tree_file(getattr(own, name), f"--{name}") for name, _ in DATASETS}
    tokenizer = load_tokenizer(config.tokenizer) if None in trees.values() else None
    _tokenized_alike(trees, tokenizer, config.tokenizer)
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


def _built_alike(trees: Sequence[TokenTree]) -> dict[str, Any]:
    """The depth and build options the tree inputs share (the run's, then), or an error naming them."""
    built = {(t.info.depth, t.info.mode, t.info.weighting, t.info.alphabet) for t in trees}
    if len(built) > 1:
        raise InputError(f"the tree inputs are built differently: {sorted(built)} (depth, mode, weight, alphabet); "
                         "rebuild them with the same --depth, --mode, --weight and --alphabet")
    depth, mode, weight, alphabet = built.pop()
    return {"depth": depth, "mode": mode, "weight": weight, "alphabet": alphabet}


def run_files(config: Config, *, show_progress: bool | None = None) -> FilesResult:
    """Theorem 4.2 on the config's own files (``data = "files"``), one set of trees per depth."""
    from tokentree.trees.build import build_tree
    from tokentree.trees.tree import TokenTree

    start = time.perf_counter()
    datasets, read = _read(config, show_progress)
    given = [d for d in datasets if isinstance(d, TokenTree)]
    builds = ([_built_alike(given)] if given else
              [{"depth": depth, "mode": config.files.mode} for depth in config.depths])
    records: list[TreeSweepRecord] = []
    regimes: list[RegimeRecord] = []
    verdicts: list[Verdict] = []
    for options in progress(builds, desc="hooke on your data", show=show_progress):
        trees = [d if isinstance(d, TokenTree) else build_tree(d, **options) for d in datasets]
        found = hooke_on_trees(*trees, l_values=config.l_values, k=config.files.k or None, warn=False)
        records += found.sweep
        regimes.append(found.regime)
        verdicts += [replace(v, item=f"{v.item} d={options['depth']}") for v in found.verdicts]
    return FilesResult(config, records, regimes, verdicts, read, seconds=time.perf_counter() - start)
