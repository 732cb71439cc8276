"""hooke on your own data: Theorem 4.2 on three datasets you give, one set of trees per depth (docs/experiments.md §E0).

``tokentree run hooke --pretrain FILES --align FILES --perturb FILES`` reads every format
of :mod:`tokentree.data.readers`, tokenizes with the config's tokenizer, builds one tree
per dataset and depth, and judges them with :func:`tokentree.verification.hooke_on_trees`:
k = |D_p| / |D_a| comes from the trees' masses (or ``--k``), the regime each depth is in is named.
Each dataset is read its own way (``--align-chat assistant``, ``--pretrain-field meta.text``;
``--field``/``--chat`` for all three), and a dataset may be a tree file ``tokentree build``
wrote (then its depth and build options are the run's): read by
:mod:`tokentree.verification.own_data`. The config is hooke's
(:class:`tokentree.experiments.hooke.Config`, ``data = "files"``, these settings in its
``files`` group: a ``[files]`` table in TOML).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.tables import Column, Table
from tokentree.infra.progress import progress
from tokentree.verification import RegimeRecord, TreeSweepRecord, Verdict, hooke_on_trees
from tokentree.verification.own_data import DATASETS, DatasetRecord, OwnData, built_alike, read_datasets

if TYPE_CHECKING:
    from tokentree.experiments.hooke import Config

__all__ = ["DATASETS", "FilesResult", "OwnData", "run_files"]

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


def run_files(config: Config, *, show_progress: bool | None = None) -> FilesResult:
    """Theorem 4.2 on the config's own files (``data = "files"``), one set of trees per depth."""
    from tokentree.trees.build import build_tree
    from tokentree.trees.tree import TokenTree

    start = time.perf_counter()
    datasets, read = read_datasets(config.files, config.tokenizer, show_progress=show_progress)
    given = [d for d in datasets if isinstance(d, TokenTree)]
    builds = ([built_alike(given)] if given else
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
