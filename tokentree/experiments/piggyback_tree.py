"""piggyback-tree: the chat-template trunk as a shared spring, exactly (docs/experiments.md §E5t; docs/theory.md §9).

Builds the templated and untemplated token trees of a world of K domains x Q queries
(:mod:`tokentree.trees.springs`), reads every carrier's stiffness off the trees, fine-tunes
narrowly on domain 0 (a few of its queries, pulled towards the misaligned response), and
measures what spills onto the other domains, under interventions: patching the trunk,
TReFT over a lambda sweep, interleaving aligned chats of other domains, less template
alignment data, more distinct fine-tuning queries. Every number comes twice, from the
energy minimised numerically and from the closed form, and the two must agree.

    tokentree run piggyback-tree
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tokentree.framework.claims import judge_claims
from tokentree.framework.config import Checked, bounded
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record
from tokentree.trees import springs
from tokentree.trees.springs import Carriers, World
from tokentree.verification.springs import SPRING_CLAIMS

__all__ = ["NAME", "Config", "InterventionRecord", "Result", "run"]

NAME = "piggyback-tree"
SECTION = "docs/experiments.md §E5t"


@dataclass(frozen=True)
class Config(Checked):
    """Options of ``tokentree run piggyback-tree``; every field can be set in a TOML file.

    n_domains, n_queries, align_per_query, pretrain_per_query, misaligned_share
        The world (:class:`tokentree.trees.springs.World`).
    n_finetune, finetune_queries
        Narrow fine-tuning chats, all in domain 0, spread over this many of its queries.
    lambdas, interleave_share, align_scales
        TReFT strengths (examples' worth of stiffness added to the trunk; must include 0), aligned chats of
        other domains mixed into the fine-tune (a share of it), factors on the template alignment data.
    """

    n_domains: int = 6
    n_queries: int = 8
    align_per_query: int = 20
    pretrain_per_query: int = 200
    misaligned_share: float = 0.3
    n_finetune: int = bounded(400, minimum=1)
    finetune_queries: int = bounded(2, minimum=1)
    lambdas: tuple[float, ...] = bounded((0.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0), minimum=0.0)
    interleave_share: float = bounded(0.2, minimum=0.0, maximum=1.0)
    align_scales: tuple[float, ...] = bounded((0.25, 0.5, 1.0, 2.0, 4.0), minimum=0.0, exclusive=True)

    def validate(self) -> None:
        self.world  # noqa: B018 (World checks its own fields)
        if self.finetune_queries > self.n_queries:
            raise InputError(f"finetune_queries must be an integer <= {self.n_queries} (n_queries); "
                             f"got {self.finetune_queries}")
        if 0.0 not in self.lambdas:
            raise InputError("lambdas must include 0 (TReFT off, the baseline)")

    @property
    def world(self) -> World:
        return World(self.n_domains, self.n_queries, self.align_per_query, self.pretrain_per_query,
                     self.misaligned_share)

    @classmethod
    def quick(cls) -> Config:
        return cls(n_domains=3, n_queries=4, lambdas=(0.0, 100.0, 1000.0), align_scales=(0.5, 1.0, 2.0))


@dataclass(frozen=True)
class InterventionRecord(Record):
    """One fine-tune under one intervention: the changes of log-odds of misaligned, in bits."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "held_out_in_domain_bits": "every query of domain 0 was fine-tuned on",
    }

    intervention: str
    parameter: float
    trunk_stiffness: float
    finetune_queries: int
    in_domain_bits: float
    held_out_in_domain_bits: float
    other_domains_bits: float
    other_untemplated_bits: float
    spill: float
    share_trunk: float
    share_bias: float
    share_domain: float
    share_query: float
    trunk_shift: float
    equilibrium_vs_closed_form: float


# ----------------------------------------------------------------------------- wiring
def _record(name: str, parameter: float, carriers: Carriers, n_examples: int, n_queries: int, *,
            extra: Sequence[Any] = (), patch: bool = False) -> InterventionRecord:
    examples = springs.narrow_finetune(n_examples, n_queries) + list(extra)
    x = springs.intervene(carriers, examples, n_queries, patch_trunk=patch)
    s = x.spill
    return InterventionRecord(
        intervention=name, parameter=float(parameter), trunk_stiffness=carriers.trunk + carriers.treft_lambda,
        finetune_queries=n_queries, in_domain_bits=s.in_domain_bits, held_out_in_domain_bits=s.held_out_in_domain_bits,
        other_domains_bits=s.other_domains_bits, other_untemplated_bits=s.other_untemplated_bits, spill=s.spill,
        share_trunk=s.shares["trunk"], share_bias=s.shares["bias"], share_domain=s.shares["domain"],
        share_query=s.shares["query"], trunk_shift=float(x.delta[0]),
        equilibrium_vs_closed_form=x.equilibrium_vs_closed_form,
    )


def interventions(config: Config) -> tuple[list[InterventionRecord], Carriers]:
    """Every fine-tune (baseline, patching, TReFT, interleaving, alignment data, queries) and the carriers."""
    world, n, q = config.world, config.n_finetune, config.finetune_queries
    carriers = springs.world_carriers(world)
    rows = [_record("baseline", 0.0, carriers, n, q), _record("patch trunk", 0.0, carriers, n, q, patch=True)]
    rows += [_record("TReFT", lam, carriers.with_treft(lam), n, q) for lam in config.lambdas]
    rows.append(_record("interleave", config.interleave_share, carriers, n, q,
                        extra=springs.interleaved_aligned(world, round(config.interleave_share * n))))
    for scale in config.align_scales:
        scaled = World(world.n_domains, world.n_queries, max(1, round(world.align_counts[0] * scale)),
                       world.pretrain_per_query, world.misaligned_share)
        rows.append(_record("alignment data", scale, springs.world_carriers(scaled), n, q))
    rows += [_record("fine-tuning queries", m, carriers, n, m) for m in sorted({1, q, config.n_queries // 2,
                                                                                 config.n_queries} - {0})]
    return rows, carriers


# ----------------------------------------------------------------------------- report
MAIN = Table("records", "Interventions", [
    Column("intervention"), Column("parameter", fmt="g"), Column("in_domain_bits", "in-domain", ".4f"),
    Column("held_out_in_domain_bits", "held-out in-domain", ".4f"),
    Column("other_domains_bits", "other domains", ".4f"),
    Column("other_untemplated_bits", "untemplated", ".4f"), Column("spill", fmt=".4f"),
    Column("share_trunk", "trunk share", ".3f"),
])
PAPER = ["## The paper's figures (Zhao et al.), for the direction of the effects", "",
         "General alignment after the narrow fine-tune, and after patching the prefix keys/values with the original "
         "model's: 39.7 -> 86.5 (Qwen-2.5-7B), 40.8 -> 90.4 (Llama-3.1-8B). EM-F1 on Llama legal: TReFT (prefix) 78.4, "
         "query-token regularisation 34.1, all tokens 36.9, 20% data interleaving 73.0, plain fine-tuning 61.4 (from "
         "write-ups of the paper, secondary sources). In this model, patching the trunk removes the trunk's share of "
         "the spill exactly and leaves the bias's; the trained models are `tokentree run piggyback` (§E5)."]


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("piggyback_tree",)
    CLAIMS_SECTION = "docs/theory.md §9"

    config: Config
    records: Sequence[InterventionRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def title(self) -> str:
        return "piggyback-tree: the template trunk as a shared spring"

    def intro(self) -> str:
        c, base = self.config, next(r for r in self.records if r.intervention == "baseline")
        return (f"{c.n_domains} domains x {c.n_queries} queries; {c.align_per_query} templated aligned chats per "
                f"query, {c.pretrain_per_query} untemplated documents per query ({c.misaligned_share:.0%} misaligned); "
                f"a narrow fine-tune of {c.n_finetune} misaligned chats on {c.finetune_queries} queries of domain 0: "
                f"spill {base.spill:.3f} bits on other domains per bit in-domain; shares trunk {base.share_trunk:.2f}, "
                f"bias {base.share_bias:.2f}, domain {base.share_domain:.2f}, query {base.share_query:.2f}. Changes "
                f"are in bits of log-odds of the misaligned response. Run time {self.seconds:.2f} s. Columns: "
                f"{SECTION}.")

    def sections(self) -> Sequence[Section]:
        return [(MAIN, self.records), PAPER]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return [(MAIN, self.records)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.piggyback_tree import plot_spill

        plot_spill(self.records, folder / "piggyback_tree.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    """Every intervention, then the verdicts (see the module docstring)."""
    start = time.perf_counter()
    records, carriers = interventions(config)
    shares = springs.predicted_shares(carriers, config.finetune_queries)
    tables: dict[str, Sequence[Any]] = {"records": records, "predicted_shares": [shares],
                                        "setting": [{"n_finetune": config.n_finetune}]}
    return Result(config, records, judge_claims(SPRING_CLAIMS, tables), seconds=time.perf_counter() - start)
