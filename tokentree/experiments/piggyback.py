"""piggyback: does a narrow fine-tune spread through the chat-template prefix? (docs/experiments.md §E5).

Zhao et al.'s claims on trained models, decided over seeds. Per seed (:mod:`tokentree.lab.piggyback_cells`): a
tiny Llama pre-trained on untemplated text, aligned on templated chats in every domain, then fine-tuned narrowly on
one domain's misaligned answers; measured against the aligned model on held-out prompts of every domain (log-odds
changes, patching and perturbing the prompt's parts, key/value drift), with TReFT and its rivals beside it.

    tokentree run piggyback                      # tiny Llama, 8 seeds, set to meet the premise (k about 160)
    tokentree run piggyback --model smollm2      # SmolLM2-135M-Instruct, LoRA (no pre-training, no alignment)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.decisions import decide, decide_cells
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.stats import SeedTest
from tokentree.framework.stats import paired_test_by_seed as _test
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.errors import InputError
from tokentree.lab.base import BaseSettings
from tokentree.lab.piggyback_cells import DriftRecord, TuneSettings, VariantRecord, one_seed, treft_at
from tokentree.lab.regime import TrainingRegime
from tokentree.lab.seeded import SeededTraining
from tokentree.verification import paper, trained

__all__ = ["NAME", "Config", "VariantRecord", "DriftRecord", "Result", "run", "judge"]

NAME = "piggyback"
SECTION = "docs/experiments.md §E5"


@dataclass(frozen=True)
class Config(SeededTraining, Checked):
    """Options of ``tokentree run piggyback`` (``[base]``: the model, ``[tune]``: alignment and fine-tunes); every
    field: docs/experiments.md §E5. domain_remarks and persona_share/persona_turns shape what the domains share.
    """

    axis: str = bounded("sentiment", choices=("sentiment", "style"))
    n_domains: int = bounded(4, minimum=2, maximum=6)
    domain_remarks: bool = True
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(8, minimum=1)
    base: BaseSettings = group(lambda: BaseSettings(vocab_size=800, pretrain_tokens=1_500_000, device="auto"))
    tune: TuneSettings = group(TuneSettings)
    n_pretrain_docs: int = bounded(12000, minimum=1)
    persona_share: float = bounded(0.3, minimum=0.0, maximum=1.0)
    persona_turns: int = bounded(3, minimum=1)
    n_align: int = bounded(400, minimum=1)
    n_narrow: int = bounded(240, minimum=1)
    narrow_queries: int = bounded(4, minimum=1)
    n_eval: int = bounded(24, minimum=1)
    alt_system_prompt: str = "You are a careful assistant."
    alt_system_share: float = bounded(0.2, minimum=0.0, maximum=1.0)
    swap_tokens: int = bounded(2, minimum=1)
    lambdas: tuple[float, ...] = bounded((1.0, 10.0, 100.0), minimum=0.0, exclusive=True)
    interleave_share: float = bounded(0.2, minimum=0.0, maximum=1.0, exclusive=True)
    kl_lambdas: tuple[float, ...] = bounded((1.0,), minimum=0.0, exclusive=True)
    align_less: float = bounded(0.25, minimum=0.0, maximum=1.0, exclusive=True)
    more_queries: int = bounded(24, minimum=1)
    #: --quick with a loaded model (SmolLM2: minutes on a CPU, not hours): fewer prompts and narrow chats, one epoch
    QUICK_LOADED: ClassVar[dict[str, Any]] = {"n_eval": 4, "n_narrow": 32, "narrow_epochs": 1}

    def validate(self) -> None:
        if not self.alt_system_prompt.strip():
            raise InputError("alt_system_prompt must not be empty")
        if self.more_queries <= self.narrow_queries:
            raise InputError(f"more_queries ({self.more_queries}) must exceed narrow_queries ({self.narrow_queries})")

    @property
    def tiny(self) -> bool:
        return self.base.model == "tiny"

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, a small model and data: about a minute; outside the premise (k about 3, lr 1e-3, no warmup)."""
        return cls(n_seeds=2, n_domains=3, n_pretrain_docs=800, n_align=240, n_narrow=96, n_eval=12, lambdas=(10.0,),
                   more_queries=12, base=BaseSettings(vocab_size=600, d_model=32, n_heads=2, pretrain_tokens=20_000,
                                                      device="auto"),
                   tune=TuneSettings(lr_align=1e-3, align_epochs=2, lr_narrow=1e-3, warmup_steps=0))


# ----------------------------------------------------------------------------- claims
def _per_seed(records: Sequence[Any], variant: str, key: str) -> dict[int, float]:
    """``key`` of ``variant`` by seed, finite values only."""
    return {r.seed: float(getattr(r, key)) for r in records if r.variant == variant and math.isfinite(getattr(r, key))}


def _verdict(item: str, claim: str, tests: Mapping[str, SeedTest | None], untestable: str, paper: str = "") -> Verdict:
    """Every cell of ``tests`` must hold (Holm over the cells); gated by the regime; the paper's figure appended."""
    missing = [label for label, t in tests.items() if t is None]
    if missing:
        return Verdict(item, claim, VerdictStatus.NOT_DETECTABLE, f"not detectable at this regime: no seed has a "
                       f"finite measurement of {', '.join(missing)}", SECTION, {"cells_missing": float(len(missing))})
    found = {label: t for label, t in tests.items() if t is not None}
    decision = decide(*found.values()) if len(found) == 1 else decide_cells(list(found.values()), labels=list(found))
    verdict = trained.gated_verdict(item, claim, decision, SECTION, untestable=untestable)
    return dataclasses.replace(verdict, evidence=f"{verdict.evidence}; the paper: {paper}") if paper else verdict


def spread(records: Sequence[Any], variant: str, where: str, untestable: str, item: str = "s") -> Verdict:
    """s: the design's premise: the fine-tune moves its own domain and the others (both changes > 0, bits)."""
    return _verdict(item, f"the narrow fine-tune spreads: the misaligned answer gains in its domain and in the "
                    f"others{where}", {part: _test(_per_seed(records, variant, f"{part}_bits"), unit="bits")
                                       for part in ("in_domain", "other")}, untestable)


def patching(records: Sequence[Any], variant: str, where: str, untestable: str, item: str = "i") -> Verdict:
    """i: prefix patching removes over 70% of the other domains' change, and more than query or postfix patching."""
    prefix, query, postfix = (_per_seed(records, variant, f"patch_{p}_removed") for p in ("prefix", "query", "postfix"))
    return _verdict(item, f"patching the prefix keys/values removes most of the spill (over 70%), query and postfix "
                    f"patching less{where}", {"prefix > 70%": _test(prefix, null=0.7), "prefix - query": _test(
                        prefix, query), "prefix - postfix": _test(prefix, postfix)}, untestable, "39.7 -> 86.5")


def drift(records: Sequence[Any], variant: str, where: str, untestable: str, item: str = "ii") -> Verdict:
    """ii: log(prefix drift / query drift) > log 2 over seeds."""
    logs = {p: {s: math.log(v) for s, v in _per_seed(records, variant, f"drift_{p}").items() if v > 0}
            for p in ("prefix", "query")}
    return _verdict(item, f"the prefix keys/values drift much more (at least 2x) than the query's{where}",
                    {"log drift ratio > log 2": _test(logs["prefix"], logs["query"], null=math.log(2.0))}, untestable)


def treft_beats(records: Sequence[Any], rival: str, untestable: str, item: str = "iii") -> Verdict:
    """iii: at the rival's in-domain change, the rival moves the other domains more than TReFT does (bits)."""
    inside, other = _per_seed(records, rival, "in_domain_bits"), _per_seed(records, rival, "other_bits")
    gaps = {s: other[s] - treft_at(records, s, inside[s]) for s in sorted(set(inside) & set(other))}
    name = "interleaving" if rival == "interleave" else "a KL to the aligned model on retain data"
    return _verdict(item, f"TReFT lowers the spill more than {name} at equal in-domain learning",
                    {f"{rival} - TReFT (seeds the lambda sweep reaches)": _test({s: g for s, g in gaps.items()
                                                                     if math.isfinite(g)}, unit="bits")},
                    untestable, "78.4 vs 73.0 EM-F1" if rival == "interleave" else "no KL baseline reported")


#: (item, claim, cells: label -> ((variant, column), (variant, column) or None)) of the claims "a - b > 0".
DIFFERENCES = (("iv", "spill grows as the template alignment data shrink and as distinct fine-tuning queries grow",
     {v: ((v, "spill"), ("fine-tune", "spill")) for v in ("less alignment", "more queries")}),
    ("v", "without a system prompt the carrier moves to the postfix (postfix patching removes more)",
     {"postfix, no system - with": (("no system prompt", "patch_postfix_removed"),
                                    ("fine-tune", "patch_postfix_removed"))}),
    ("vi", "perturbing the prefix (swap_tokens tokens swapped for their nearest embedding neighbours) removes more "
     "of the spill than perturbing as many query tokens",
     {"prefix swaps - query swaps": (("fine-tune", "swap_prefix_removed"), ("fine-tune", "swap_query_removed"))}),
    ("vii", "an alternative system prompt seen in alignment carries less of the spill than the default one",
     {"share removed": (("fine-tune", "alt_system_removed"), None)}),
)


def difference(records: Sequence[Any], item: str, claim: str, cells: Mapping[str, tuple[Any, Any]],
               untestable: str) -> Verdict:
    """iv-vii: each cell's first (variant, column) above its second (or above 0), paired on the seed."""
    return _verdict(item, claim, {label: _test(_per_seed(records, *a), None if b is None else _per_seed(records, *b))
                                  for label, (a, b) in cells.items()}, untestable)


#: (item suffix, variant, words) of the fine-tunes judged on s, i and ii (the last two on the tiny model only).
TRAINED = (("", "fine-tune", ""), ("-attn", "trainable attention", " (only attention trained)"),
           ("-attn+mlp", "trainable attention+mlp", " (attention and MLPs trained)"))


def judge(records: Sequence[Any], regimes: Sequence[TrainingRegime], *, tiny: bool) -> list[Verdict]:
    """Items s, i-vii (docs/experiments.md §E5), seeds the unit; "not detectable" outside the premise, below 8 seeds,
    or (for the shares of the spill) when the fine-tune did not measurably spread (s)."""
    regime = trained.premise_problems(regimes)

    def gate(s: Verdict) -> str:
        return "; ".join(p for p in (regime, "" if s.status == VerdictStatus.HOLDS else f"no measurable spread "
                                     f"({s.item})") if p)

    out, plain = [], ""
    for suffix, variant, where in TRAINED if tiny else TRAINED[:1]:
        s = spread(records, variant, where, regime, f"s{suffix}")
        plain = plain if suffix else gate(s)
        out += [s, patching(records, variant, where, gate(s), f"i{suffix}"),
                drift(records, variant, where, regime, f"ii{suffix}")]
    out += [treft_beats(records, "interleave", plain), treft_beats(records, "KL retain", plain, "iii-kl")]
    return out + [difference(records, item, claim, cells, plain) for item, claim, cells in DIFFERENCES
                  if tiny or item in ("vi", "vii")]


# ----------------------------------------------------------------------------- report
_ms = trained.mean_sd_cell
VARIANT_TABLE = Table("variants", "Every fine-tune (mean ± sd over seeds)", [
    Column("variant"), Column("parameter", fmt="g"),
    *(Column(key, header, unit=unit, value=_ms(key, ".3f")) for key, header, unit in (
        ("in_domain_bits", "in-domain", "bits"), ("other_bits", "other domains", "bits"), ("spill", "spill", ""))),
    *(Column(f"patch_{p}", f"{p} patch removes", value=_ms(f"patch_{p}_removed", ".0%"))
      for p in ("prefix", "query", "postfix", "prompt")),
    *(Column(f"swap_{p}", f"{p} swaps remove", value=_ms(f"swap_{p}_removed", ".0%")) for p in ("prefix", "query")),
    Column("alt", "alternative system prompt removes", value=_ms("alt_system_removed", ".0%")),
    *(Column(f"drift_{p}", f"drift {p}", value=_ms(f"drift_{p}", ".3g")) for p in ("prefix", "query", "postfix")),
], note="Changes: bits of log-odds of the misaligned vs the aligned reference answer, against the aligned model, on "
        "held-out prompts; spill = other domains over the fine-tuned domain; 'removes' = the share of the other "
        "domains' change undone by patching (or perturbing) that part of the prompt.")


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("piggyback",)
    CLAIMS_SECTION = SECTION

    config: Config
    records: Sequence[VariantRecord]
    drift: Sequence[DriftRecord]
    regime: Sequence[TrainingRegime]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"drift": self.drift, "regime": self.regime}

    def of(self, variant: str) -> list[VariantRecord]:
        return sorted((r for r in self.records if r.variant == variant), key=lambda r: (r.parameter, r.seed))

    def title(self) -> str:
        return (f"piggyback: does a narrow fine-tune spread through the template prefix? ({self.config.base.model}, "
                f"axis {self.config.axis})")

    def intro(self) -> str:
        c, base = self.config, self.of("fine-tune")
        rates = ""
        if base and math.isfinite(base[0].misaligned_rate_in_domain):
            rates = (f" Sampled answers judged misaligned by the exact scorer: in-domain "
                     f"{np.nanmean([r.misaligned_rate_in_domain for r in base]):.0%}, other domains "
                     f"{np.nanmean([r.misaligned_rate_other for r in base]):.0%} (the aligned model: "
                     f"{np.nanmean([r.aligned_misaligned_rate_other for r in base]):.0%}).")
        remarks = "in each domain's own words" if c.domain_remarks else "shared by every domain"
        words = self.regime[0].words if self.regime else ""
        return (f"Seeds {c.seeds}; {c.n_domains} domains, remarks {remarks}; {c.persona_share:.0%} of the pre-training "
                f"documents by one persona; aligned on {c.n_align} templated chats, then fine-tuned on "
                f"{c.n_narrow} misaligned chats over {c.narrow_queries} queries of domain 0 (lr {c.tune.lr_align:g} / "
                f"{c.tune.lr_narrow:g}, {c.tune.warmup_steps} warmup steps).{rates} Regime (first seed): {words}. "
                f"Run time {self.seconds:.0f} s. Columns: {SECTION}.")

    def sections(self) -> Sequence[Section]:
        keys = list(dict.fromkeys((r.variant, r.parameter) for r in self.records))
        rows = [{"variant": v, "parameter": p, "rows": [r for r in self.records if (r.variant, r.parameter) == (v, p)]}
                for v, p in keys]
        return [(VARIANT_TABLE, rows), (trained.REGIME_TABLE, self.regime),
                ["## The paper", "", paper.PIGGYBACK_FIGURES]]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return [(trained.REGIME_TABLE, self.regime)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.piggyback import spill_figure

        spill_figure(self.records, self.drift, folder)


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="piggyback seeds", show=show_progress)
    t = runs.tables
    return Result(config, t["records"], t["drift"], t["regime"], judge(t["records"], t["regime"], tiny=config.tiny),
                  seconds=runs.seconds)
