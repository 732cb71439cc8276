"""hooke on your own data: Theorem 4.2 on three datasets you give, one set of trees per depth (docs/experiments.md §E0).

``tokentree run hooke --pretrain FILES --align FILES --perturb FILES`` reads every format
of :mod:`tokentree.data.readers`, tokenizes with the config's tokenizer, builds one tree
per dataset and depth, and judges them with :func:`tokentree.verification.hooke_on_trees`:
k = |D_p| / |D_a| comes from the trees' masses, the regime each depth is in is named.
The config is hooke's (:class:`tokentree.experiments.hooke.Config`, ``data = "files"``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tokentree.experiments.hooke import Config
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.tables import Column, Table
from tokentree.infra.progress import progress
from tokentree.verification import RegimeRecord, TreeSweepRecord, Verdict, hooke_on_trees

__all__ = ["FilesResult", "run_files"]

REGIME_TABLE = Table("regimes", "Regimes", [
    Column("depth"), Column("regime"), Column("k", fmt=".4g"), Column("unseen_share", "unseen by D_p", ".1%"),
    Column("novel_share", "novel", ".1%"), Column("overlap_with_align", "on D_a's symbols", ".1%"),
    Column("ratio_l0", "R(0)", ".6g"), Column("minus_k_scaled", "-k L_p/L_a", ".6g"), Column("l_star", "l*", ".4g"),
    Column("explanation", "why"),
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
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"regimes": self.regimes}

    def title(self) -> str:
        return "hooke: Theorem 4.2 on your data"

    def intro(self) -> str:
        c = self.config
        return (f"D_p: {', '.join(c.pretrain)}; D_a: {', '.join(c.align)}; D_t: {', '.join(c.perturb)}. Tokenizer "
                f"{c.tokenizer}, mode {c.mode}, depths {list(c.depths)}; k = |D_p| / |D_a| from the trees' masses, "
                f"symbol lengths from the symbols. Run time {self.seconds:.1f} s. Columns: docs/experiments.md §E0.")

    def sections(self) -> Sequence[Section]:
        return [(REGIME_TABLE, self.regimes)]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        short = Table("regimes", "regime per depth", [c for c in REGIME_TABLE.columns if c.key != "explanation"])
        return [(short, self.regimes)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.hooke import files_figure

        files_figure(self.records, self.regimes, folder / "files_rates_vs_l.png")


def run_files(config: Config, *, show_progress: bool | None = None) -> FilesResult:
    """Theorem 4.2 on the config's own files (``data = "files"``), one set of trees per depth."""
    from tokentree.data.text import encode_texts, load_tokenizer, read_responses
    from tokentree.trees.build import build_tree

    start = time.perf_counter()
    tokenizer = load_tokenizer(config.tokenizer)
    datasets = [
        encode_texts(read_responses(list(paths), field=config.field or None, chat=config.chat or None), tokenizer,
                     show_progress=show_progress)
        for paths in (config.pretrain, config.align, config.perturb)
    ]
    records: list[TreeSweepRecord] = []
    regimes: list[RegimeRecord] = []
    verdicts: list[Verdict] = []
    for depth in progress(config.depths, desc="hooke on your data", show=show_progress):
        trees = [build_tree(s, depth=depth, mode=config.mode) for s in datasets]
        found = hooke_on_trees(*trees, l_values=config.l_values, warn=False)
        records += found.sweep
        regimes.append(found.regime)
        verdicts += [replace(v, item=f"{v.item} d={depth}") for v in found.verdicts]
    return FilesResult(config, records, regimes, verdicts, seconds=time.perf_counter() - start)
