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

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from tokentree.framework.report import ExperimentReport, verdict_lines, verdict_table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.checks import check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record
from tokentree.trees.springs import (
    Carriers,
    Example,
    World,
    carriers_from_trees,
    closed_form,
    equilibrium,
    spill_of,
    world_trees,
)

__all__ = ["NAME", "Config", "InterventionRecord", "Result", "run"]

NAME = "piggyback-tree"
SECTION = "docs/experiments.md §E5t"
#: Float precision for the numerical equilibrium against the closed form.
EXACT = 1e-12


@dataclass(frozen=True)
class Config:
    """Options of ``tokentree run piggyback-tree``; every field can be set in a TOML file.

    n_domains, n_queries, align_per_query, pretrain_per_query, misaligned_share
        The world (:class:`tokentree.trees.springs.World`).
    n_finetune, finetune_queries
        Narrow fine-tuning chats, all in domain 0, spread over this many of its queries.
    lambdas
        TReFT strengths (in examples' worth of stiffness added to the trunk).
    interleave_share
        Aligned chats of other domains mixed into the fine-tune, as a share of it.
    align_scales
        Template alignment data multiplied by these factors.
    """

    n_domains: int = 6
    n_queries: int = 8
    align_per_query: int = 20
    pretrain_per_query: int = 200
    misaligned_share: float = 0.3
    n_finetune: int = 400
    finetune_queries: int = 2
    lambdas: tuple[float, ...] = (0.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
    interleave_share: float = 0.2
    align_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)

    def __post_init__(self) -> None:
        World(self.n_domains, self.n_queries, self.align_per_query, self.pretrain_per_query, self.misaligned_share)
        check_int(self.n_finetune, "n_finetune", minimum=1)
        check_int(self.finetune_queries, "finetune_queries", minimum=1, maximum=self.n_queries)
        lams = check_list(self.lambdas, "lambdas", lambda v, n: check_float(v, n, minimum=0.0))
        if 0.0 not in lams:
            raise InputError("lambdas must include 0 (TReFT off, the baseline)")
        check_float(self.interleave_share, "interleave_share", minimum=0.0, maximum=1.0)
        check_list(self.align_scales, "align_scales", lambda v, n: check_float(v, n, minimum=0.0, exclusive=True))

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


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[InterventionRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def verdict_list(self) -> Sequence[Verdict]:
        return self.verdicts

    def rows(self, intervention: str) -> list[InterventionRecord]:
        return [r for r in self.records if r.intervention == intervention]

    def terminal_summary(self) -> str:
        base = self.rows("baseline")[0]
        head = (f"piggyback-tree: spill {base.spill:.3f} bits on other domains per bit in-domain; shares trunk "
                f"{base.share_trunk:.2f}, bias {base.share_bias:.2f}, domain {base.share_domain:.2f}, query "
                f"{base.share_query:.2f} ({SECTION})")
        return "\n".join([head, *verdict_lines(self.verdicts)])

    def summary_markdown(self) -> str:
        c = self.config
        out = [
            "# piggyback-tree: the template trunk as a shared spring",
            "",
            f"{c.n_domains} domains x {c.n_queries} queries; {c.align_per_query} templated aligned chats per query, "
            f"{c.pretrain_per_query} untemplated documents per query ({c.misaligned_share:.0%} misaligned); a narrow "
            f"fine-tune of {c.n_finetune} misaligned chats on {c.finetune_queries} queries of domain 0. Changes are "
            f"in bits of log-odds of the misaligned response; spill = bits on other domains' templated prompts per "
            f"bit in-domain. Run time {self.seconds:.2f} s. Columns: {SECTION}.",
            "",
            "## Verdicts",
            "",
            *verdict_table(self.verdicts),
            "",
            "## Interventions",
            "",
            "| intervention | parameter | in-domain | held-out in-domain | other domains | untemplated | spill | "
            "trunk share |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.records:
            out.append(f"| {r.intervention} | {r.parameter:g} | {r.in_domain_bits:.4f} | "
                       f"{r.held_out_in_domain_bits:.4f} | {r.other_domains_bits:.4f} | "
                       f"{r.other_untemplated_bits:.4f} | {r.spill:.4f} | {r.share_trunk:.3f} |")
        out += [
            "",
            "## The paper's figures (Zhao et al.), for the direction of the effects",
            "",
            "General alignment after the narrow fine-tune, and after patching the prefix keys/values with the "
            "original model's: 39.7 -> 86.5 (Qwen-2.5-7B), 40.8 -> 90.4 (Llama-3.1-8B). EM-F1 on Llama legal: "
            "TReFT (prefix) 78.4, query-token regularisation 34.1, all tokens 36.9, 20% data interleaving 73.0, "
            "plain fine-tuning 61.4. In this model, patching the trunk removes the trunk's share of the spill "
            "exactly and leaves the bias's; the trained models are `tokentree run piggyback` (§E5).",
            "",
            "![spill under interventions](piggyback_tree.png)",
        ]
        return "\n".join(out).replace("nan", "n/a") + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, axes = new_figure(1, 3, size=(15, 4.2))
        treft = self.rows("TReFT")
        axes[0].plot([r.parameter for r in treft], [r.spill for r in treft], "o-", color=COLOURS[0], label="TReFT")
        for name, colour in (("patch trunk", COLOURS[1]), ("interleave", COLOURS[2])):
            rows = self.rows(name)
            if rows:
                axes[0].axhline(rows[0].spill, color=colour, ls="--", label=name)
        axes[0].set_xscale("symlog", linthresh=10)
        axes[0].set_xlabel("TReFT lambda (examples of stiffness)")
        axes[0].set_ylabel("spill (bits elsewhere per bit in-domain)")
        align = self.rows("alignment data")
        axes[1].plot([r.parameter for r in align], [r.spill for r in align], "o-", color=COLOURS[3])
        axes[1].set_xscale("log")
        axes[1].set_xlabel("template alignment data (x the default)")
        queries = self.rows("fine-tuning queries")
        axes[2].plot([r.parameter for r in queries], [r.spill for r in queries], "o-", color=COLOURS[4])
        axes[2].set_xlabel("distinct fine-tuning queries")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7) if ax.get_legend_handles_labels()[0] else None
        fig.suptitle("Piggyback in the token tree: what spills onto other domains")
        fig.savefig(folder / "piggyback_tree.png")


def _finetune(config: Config, n_queries: int) -> list[Example]:
    per = [config.n_finetune // n_queries + (1 if q < config.n_finetune % n_queries else 0) for q in range(n_queries)]
    return [Example(True, 0, q) for q in range(n_queries) for _ in range(per[q])]


def _interleaved(config: Config) -> list[Example]:
    n = round(config.interleave_share * config.n_finetune)
    cells = [(d, q) for d in range(1, config.n_domains) for q in range(config.n_queries)]
    return [Example(True, *cells[i % len(cells)], force=-1.0) for i in range(n)]


def _record(name: str, parameter: float, carriers: Carriers, examples: list[Example], n_queries: int,
            patch: bool = False) -> InterventionRecord:
    numeric, exact = equilibrium(carriers, examples), closed_form(carriers, examples)
    gap = float(np.max(np.abs(numeric - exact)) / np.max(np.abs(exact)))
    if patch:
        numeric = numeric.copy()
        numeric[0] = 0.0  # the trunk's keys and values put back as they were
    s = spill_of(carriers, numeric, range(n_queries))
    return InterventionRecord(
        intervention=name, parameter=float(parameter), trunk_stiffness=carriers.trunk + carriers.treft_lambda,
        finetune_queries=n_queries, in_domain_bits=s.in_domain_bits, held_out_in_domain_bits=s.held_out_in_domain_bits,
        other_domains_bits=s.other_domains_bits, other_untemplated_bits=s.other_untemplated_bits, spill=s.spill,
        share_trunk=s.shares["trunk"], share_bias=s.shares["bias"], share_domain=s.shares["domain"],
        share_query=s.shares["query"], trunk_shift=float(numeric[0]), equilibrium_vs_closed_form=gap,
    )


def _judge(records: list[InterventionRecord], carriers: Carriers, config: Config) -> list[Verdict]:
    def rows(name: str) -> list[InterventionRecord]:
        return [r for r in records if r.intervention == name]

    base = rows("baseline")[0]
    worst = max(r.equilibrium_vs_closed_form for r in records)
    verdicts = [Verdict("P1", "the energy's minimum is the closed form delta_i = m_i f / k_i",
                        VerdictStatus.judge(worst < EXACT),
                        f"largest relative gap over {len(records)} fine-tunes: {worst:.1e}", SECTION)]
    n = config.n_finetune
    c = {"trunk": 1 / carriers.trunk, "bias": 1 / carriers.bias, "domain": 1 / carriers.domain[0],
         "query": float(np.mean([(1 / config.finetune_queries) / carriers.query[0, q]
                                 for q in range(config.finetune_queries)]))}
    shares = {k: v / sum(c.values()) for k, v in c.items()}
    measured = {"trunk": base.share_trunk, "bias": base.share_bias, "domain": base.share_domain,
                "query": base.share_query}
    gap = max(abs(shares[k] - measured[k]) for k in shares)
    verdicts.append(Verdict("P2", "carrier i's share of the in-domain change is c_i / sum_j c_j, c_i = (m_i / n) / k_i",
                            VerdictStatus.judge(gap < EXACT),
                            f"predicted {', '.join(f'{k} {v:.4f}' for k, v in shares.items())}; largest gap "
                            f"{gap:.1e} (n = {n})", SECTION))
    treft = rows("TReFT")
    ratios = [r.trunk_shift / treft[0].trunk_shift for r in treft]
    expected = [carriers.trunk / (carriers.trunk + r.parameter) for r in treft]
    falls = all(b.spill < a.spill for a, b in itertools.pairwise(treft))
    verdicts.append(Verdict(
        "P3", "TReFT: the trunk's shift falls as k_s / (k_s + lambda), and the spill with it",
        VerdictStatus.judge(np.allclose(ratios, expected, rtol=EXACT, atol=0) and falls),
        f"k_s = {carriers.trunk:g}; shift ratios {', '.join(f'{x:.4f}' for x in ratios)} vs "
        f"{', '.join(f'{x:.4f}' for x in expected)}; spill {', '.join(f'{r.spill:.4f}' for r in treft)}", SECTION))
    patched = rows("patch trunk")[0]
    left = base.share_bias / (base.share_trunk + base.share_bias)
    verdicts.append(Verdict(
        "P4", "patching the trunk undoes its part of what spilled and leaves the bias's (other domains move by "
        "delta_b alone)",
        VerdictStatus.judge(abs(patched.other_domains_bits / base.other_domains_bits - left) < 1e-9),
        f"other domains {base.other_domains_bits:.4f} -> {patched.other_domains_bits:.4f} bits "
        f"({patched.other_domains_bits / base.other_domains_bits:.1%} left; predicted c_b / (c_s + c_b) = "
        f"{left:.1%}); the paper's prefix patching: 39.7 -> 86.5 general alignment (Qwen-2.5-7B)", SECTION))
    align = rows("alignment data")
    grows = all(b.spill < a.spill for a, b in itertools.pairwise(align))
    verdicts.append(Verdict(
        "P5", "spill grows as the template alignment data shrink (a softer trunk)", VerdictStatus.judge(grows),
        "spill by alignment data x " + ", ".join(f"{r.parameter:g}: {r.spill:.4f}" for r in align), SECTION))
    queries = rows("fine-tuning queries")
    grows = all(b.spill > a.spill for a, b in itertools.pairwise(queries))
    verdicts.append(Verdict(
        "P6", "spill grows with more distinct fine-tuning queries (less for the query carriers to absorb)",
        VerdictStatus.judge(grows),
        "spill by distinct queries " + ", ".join(f"{r.parameter:g}: {r.spill:.4f}" for r in queries), SECTION))
    inter = rows("interleave")[0]
    verdicts.append(Verdict(
        "P7", "interleaving aligned chats of other domains lowers the spill",
        VerdictStatus.judge(inter.spill < base.spill),
        f"spill {base.spill:.4f} -> {inter.spill:.4f} with {config.interleave_share:.0%} interleaved; the paper: "
        "20% interleaving 73.0 EM-F1 against TReFT's 78.4 (Llama legal)", SECTION))
    return verdicts


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    start = time.perf_counter()
    world = config.world
    carriers = carriers_from_trees(world, *world_trees(world))
    q = config.finetune_queries
    ft = _finetune(config, q)
    records = [_record("baseline", 0.0, carriers, ft, q), _record("patch trunk", 0.0, carriers, ft, q, patch=True)]
    records += [_record("TReFT", lam, carriers.with_treft(lam), ft, q) for lam in config.lambdas]
    records.append(_record("interleave", config.interleave_share, carriers, ft + _interleaved(config), q))
    for scale in config.align_scales:
        scaled = World(world.n_domains, world.n_queries, max(1, round(world.align_counts[0] * scale)),
                       world.pretrain_per_query, world.misaligned_share)
        records.append(_record("alignment data", scale, carriers_from_trees(scaled, *world_trees(scaled)), ft, q))
    for n_queries in sorted({1, q, config.n_queries // 2, config.n_queries} - {0}):
        records.append(_record("fine-tuning queries", n_queries, carriers, _finetune(config, n_queries), n_queries))
    verdicts = _judge(records, carriers, config)
    return Result(config, records, verdicts, seconds=time.perf_counter() - start)
