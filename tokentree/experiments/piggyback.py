"""piggyback: does a narrow fine-tune spread through the chat-template prefix? (docs/experiments.md §E5).

Zhao et al.'s claims on trained models, judged over seeds. Per seed (tiny Llama, synthetic
behaviour language): pre-train on untemplated text; align on templated chats (a fixed
default system prompt) with aligned responses in every domain; fine-tune narrowly on one
domain's queries with misaligned responses. Measured against the aligned model, on
held-out prompts of the fine-tuned domain and of every other domain: the change of the
log-odds of the misaligned vs the aligned reference response (bits) and, for the plain
fine-tune, the exact scorer's misaligned rate of sampled answers. Then: patching the
keys and values of the prefix, the query or the postfix with the aligned model's; the
keys' and values' drift per layer at each part; perturbing the prefix (an alternative
system prompt seen in alignment; nearest-neighbour token swaps) against perturbing the
query; TReFT over a lambda sweep and at the query or all tokens, against interleaving
aligned chats of other domains and against a KL to the aligned model on them; which
parameters may move; less template alignment data; more distinct fine-tuning queries;
and a template without a system prompt (does the carrier move to the postfix?).

    tokentree run piggyback                      # tiny Llama, 5 seeds
    tokentree run piggyback --model smollm2      # SmolLM2-135M-Instruct, LoRA rank 8 (no pre-training, no alignment)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.report import ExperimentReport, verdict_lines, verdict_table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.checks import check_choice, check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.lab.piggyback_cells import DriftRecord, VariantRecord, one_seed
from tokentree.lab.seeded import SeededTraining
from tokentree.verification import claims

__all__ = ["NAME", "Config", "VariantRecord", "DriftRecord", "Result", "run"]

NAME = "piggyback"
SECTION = "docs/experiments.md §E5"
PAPER = ("Zhao et al.: general alignment after the narrow fine-tune 39.7 -> 86.5 with the prefix keys/values patched "
         "(Qwen-2.5-7B), 40.8 -> 90.4 (Llama-3.1-8B); query patching helps less. EM-F1 on Llama legal: TReFT on the "
         "prefix 78.4, on query tokens 34.1, on all tokens 36.9, 20% data interleaving 73.0, plain fine-tuning 61.4. "
         "Without a fixed prefix the carrier moves to the postfix (the assistant header).")


@dataclass(frozen=True)
class Config(SeededTraining):
    """Options of ``tokentree run piggyback``; every field can be set in a TOML file.

    axis, n_domains
        The behaviour (misaligned = its False value) and the advice domains (domain 0 is fine-tuned).
    model, device, threads
        "tiny" (pre-trained and aligned here) or a chat model ("smollm2", a folder, a hub name), fine-tuned with LoRA.
    n_pretrain_docs, pretrain_tokens, vocab_size, n_layers, d_model, n_heads
        The tiny model and its untemplated pre-training.
    n_align, align_epochs, lr_align
        Templated aligned chats over every domain.
    n_narrow, narrow_queries, narrow_epochs, lr_narrow, lora_rank
        The narrow fine-tune: misaligned chats on this many distinct queries of domain 0.
    n_eval
        Held-out prompts per domain, each with an aligned and a misaligned reference.
    alt_system_prompt, alt_system_share, swap_tokens
        The alternative system prompt and the share of alignment chats that carry it (the
        rest use the template's default); the prompt tokens swapped for their nearest
        embedding neighbour when perturbing the prefix or the query.
    lambdas, interleave_share, kl_lambdas, align_less, more_queries
        TReFT strengths (prefix); the share of aligned chats of other domains mixed in (also
        the retain data of the KL regulariser, at the strengths ``kl_lambdas``); the alignment
        set scaled down; the distinct fine-tuning queries of the "more queries" variant.
    """

    axis: str = "sentiment"
    n_domains: int = 4
    model: str = "tiny"
    device: str = "auto"
    threads: int = 1
    seed: int = 0
    n_seeds: int = 5
    n_pretrain_docs: int = 3000
    pretrain_tokens: int = 100_000
    vocab_size: int = 800
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    n_align: int = 800
    align_epochs: int = 2
    lr_align: float = 1e-3
    n_narrow: int = 240
    narrow_queries: int = 4
    narrow_epochs: int = 2
    lr_narrow: float = 1e-3
    lora_rank: int = 8
    n_eval: int = 24
    alt_system_prompt: str = "You are a careful assistant."
    alt_system_share: float = 0.2
    swap_tokens: int = 2
    lambdas: tuple[float, ...] = (1.0, 10.0, 100.0)
    interleave_share: float = 0.2
    kl_lambdas: tuple[float, ...] = (1.0,)
    align_less: float = 0.25
    more_queries: int = 24
    batch_size: int = 16

    def __post_init__(self) -> None:
        check_choice(self.axis, "axis", ("sentiment", "style"))
        check_int(self.n_domains, "n_domains", minimum=2, maximum=6)
        self.check_training_settings()
        for name in ("n_pretrain_docs", "pretrain_tokens", "n_align", "align_epochs", "n_narrow",
                     "narrow_queries", "narrow_epochs", "lora_rank", "n_eval", "more_queries", "batch_size",
                     "swap_tokens"):
            check_int(getattr(self, name), name, minimum=1)
        check_float(self.lr_align, "lr_align", minimum=0.0, exclusive=True)
        check_float(self.lr_narrow, "lr_narrow", minimum=0.0, exclusive=True)
        check_list(self.lambdas, "lambdas", lambda v, n: check_float(v, n, minimum=0.0, exclusive=True))
        check_list(self.kl_lambdas, "kl_lambdas", lambda v, n: check_float(v, n, minimum=0.0, exclusive=True))
        check_float(self.alt_system_share, "alt_system_share", minimum=0.0, maximum=1.0)
        if not self.alt_system_prompt.strip():
            raise InputError("alt_system_prompt must not be empty")
        check_float(self.interleave_share, "interleave_share", minimum=0.0, maximum=1.0, exclusive=True)
        check_float(self.align_less, "align_less", minimum=0.0, maximum=1.0, exclusive=True)
        if self.more_queries <= self.narrow_queries:
            raise InputError(f"more_queries ({self.more_queries}) must exceed narrow_queries ({self.narrow_queries})")

    @property
    def tiny(self) -> bool:
        return self.model == "tiny"

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, a small model and data: about half a minute."""
        return cls(n_seeds=2, n_domains=3, n_pretrain_docs=800, pretrain_tokens=20_000, vocab_size=600, d_model=32,
                   n_heads=2, n_align=240, n_narrow=96, n_eval=12, lambdas=(10.0,), more_queries=12)





# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[VariantRecord]
    drift: Sequence[DriftRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"drift": self.drift}

    def verdict_list(self) -> Sequence[Verdict]:
        return self.verdicts

    def of(self, variant: str) -> list[VariantRecord]:
        return sorted((r for r in self.records if r.variant == variant), key=lambda r: (r.parameter, r.seed))

    def terminal_summary(self) -> str:
        head = f"piggyback ({self.config.model}, {self.config.n_seeds} seeds): verdicts ({SECTION})"
        return "\n".join([head, *verdict_lines(self.verdicts)])

    def _rows(self) -> list[str]:
        def ms(values: Sequence[float], fmt: str = ".3f") -> str:
            return mean_sd_text(values, fmt, missing="-")

        lines = ["| variant | parameter | in-domain (bits) | other domains (bits) | spill | prefix patch removes | "
                 "query patch removes | postfix patch removes | whole prompt patched removes | "
                 "prefix / query swaps remove | alternative system prompt removes | drift prefix / query / postfix |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        seen = []
        for r in self.records:
            if (r.variant, r.parameter) not in seen:
                seen.append((r.variant, r.parameter))
        for variant, parameter in seen:
            rows = [r for r in self.records if (r.variant, r.parameter) == (variant, parameter)]

            def col(name: str, rows: list[VariantRecord] = rows) -> list[float]:
                return [getattr(r, name) for r in rows]

            lines.append(
                f"| {variant} | {parameter:g} | {ms(col('in_domain_bits'))} | {ms(col('other_bits'))} | "
                f"{ms(col('spill'))} | {ms(col('patch_prefix_removed'), '.0%')} | "
                f"{ms(col('patch_query_removed'), '.0%')} | {ms(col('patch_postfix_removed'), '.0%')} | "
                f"{ms(col('patch_prompt_removed'), '.0%')} | {ms(col('swap_prefix_removed'), '.0%')} / "
                f"{ms(col('swap_query_removed'), '.0%')} | {ms(col('alt_system_removed'), '.0%')} | "
                f"{ms(col('drift_prefix'), '.3g')} / "
                f"{ms(col('drift_query'), '.3g')} / {ms(col('drift_postfix'), '.3g')} |")
        return lines

    def summary_markdown(self) -> str:
        c = self.config
        base = self.of("fine-tune")
        rates = ""
        if base and math.isfinite(base[0].misaligned_rate_in_domain):
            rates = (f" Sampled answers judged misaligned by the exact scorer: in-domain "
                     f"{np.nanmean([r.misaligned_rate_in_domain for r in base]):.0%}, other domains "
                     f"{np.nanmean([r.misaligned_rate_other for r in base]):.0%} (the aligned model: "
                     f"{np.nanmean([r.aligned_misaligned_rate_other for r in base]):.0%}).")
        out = [
            f"# piggyback: does a narrow fine-tune spread through the template prefix? ({c.model}, axis {c.axis})",
            "",
            f"Seeds {c.seeds}; {c.n_domains} domains; aligned on {c.n_align} templated chats, then fine-tuned on "
            f"{c.n_narrow} misaligned chats over {c.narrow_queries} queries of domain 0. Changes are bits of log-odds "
            f"of the misaligned vs the aligned reference answer, against the aligned model, on held-out prompts; spill "
            f"= other domains over the fine-tuned domain. 'removes' = the share of the other domains' change undone by "
            f"patching that part's keys and values with the aligned model's.{rates} Run time {self.seconds:.0f} s. "
            f"Columns: {SECTION}.",
            "",
            "## Verdicts",
            "",
            *verdict_table(self.verdicts),
            "",
            "## Every fine-tune (mean ± sd over seeds)",
            "",
            *self._rows(),
            "",
            "## The paper",
            "",
            PAPER,
            "",
            "![spill and patching](piggyback.png)",
        ]
        return "\n".join(out) + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots.piggyback import spill_figure

        spill_figure(self.records, self.drift, folder)


# ----------------------------------------------------------------------------- verdicts
def _paired(records: Sequence[VariantRecord], variant: str, attribute: str, parameter: float | None = None
            ) -> dict[int, float]:
    return {r.seed: getattr(r, attribute) for r in records
            if r.variant == variant and (parameter is None or r.parameter == parameter)}


def _differences(a: dict[int, float], b: dict[int, float]) -> list[float]:
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def _treft_at(records: Sequence[VariantRecord], seed: int, in_domain: float) -> float:
    """Other domains' change of the TReFT curve of ``seed`` at the given in-domain change (linear interpolation)."""
    rows = sorted((r for r in records if r.seed == seed and r.variant in ("TReFT prefix", "fine-tune")),
                  key=lambda r: r.in_domain_bits)
    xs, ys = [r.in_domain_bits for r in rows], [r.other_bits for r in rows]
    if not xs[0] <= in_domain <= xs[-1]:
        return math.nan
    return float(np.interp(in_domain, xs, ys))


def _judge(records: Sequence[VariantRecord], config: Config) -> list[Verdict]:
    verdicts = []

    def add(item: str, claim: str, status: VerdictStatus, evidence: str) -> None:
        verdicts.append(Verdict(item, claim, status, evidence, SECTION))

    def mean(values: Sequence[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    configurations = [("", "fine-tune", "")]
    if config.tiny:
        configurations += [("-attn", "trainable attention", " (only attention trained)"),
                           ("-attn+mlp", "trainable attention+mlp", " (attention and MLPs trained)")]
    for suffix, variant, where in configurations:
        prefix = _paired(records, variant, "patch_prefix_removed")
        query = _paired(records, variant, "patch_query_removed")
        postfix = _paired(records, variant, "patch_postfix_removed")
        status = claims.all_of([claims.at_least(list(prefix.values()), 0.7),
                                claims.direction(_differences(prefix, query)),
                                claims.direction(_differences(prefix, postfix))])
        prompt = _paired(records, variant, "patch_prompt_removed")
        add(f"i{suffix}", "patching the prefix keys/values removes most of the spill (over 70%), query and postfix "
            f"patching less{where}", status, f"share of the other domains' change removed: prefix "
            f"{mean(list(prefix.values())):.0%}, query {mean(list(query.values())):.0%}, postfix "
            f"{mean(list(postfix.values())):.0%}, the whole prompt {mean(list(prompt.values())):.0%}; the paper: "
            "39.7 -> 86.5")
        dp = _paired(records, variant, "drift_prefix")
        dq = _paired(records, variant, "drift_query")
        logs = [math.log(dp[s] / dq[s]) - math.log(2.0) for s in sorted(set(dp) & set(dq)) if dp[s] > 0 and dq[s] > 0]
        add(f"ii{suffix}", f"the prefix keys/values drift much more (at least 2x) than the query's{where}",
            claims.direction(logs), f"mean relative drift prefix {mean(list(dp.values())):.3g}, query "
            f"{mean(list(dq.values())):.3g} (ratio {mean([dp[s] / dq[s] for s in dp if s in dq and dq[s] > 0]):.2f})")
    for item, variant, name, paper in (("iii", "interleave", "interleaving", "78.4 vs 73.0 EM-F1"),
                                       ("iii-kl", "KL retain", "a KL to the aligned model on retain data",
                                        "no KL baseline reported")):
        rival_in = _paired(records, variant, "in_domain_bits")
        rival_other = _paired(records, variant, "other_bits")
        gaps = [rival_other[s] - _treft_at(records, s, rival_in[s]) for s in sorted(rival_in)]
        reached = [g for g in gaps if math.isfinite(g)]
        status = claims.direction(reached) if len(reached) >= 2 else VerdictStatus.WITHIN_NOISE
        add(item, f"TReFT lowers the spill more than {name} at equal in-domain learning", status,
            f"other domains' change with {variant} minus TReFT's at the same in-domain change: mean "
            f"{mean(reached):.3g} bits over {len(reached)} seeds"
            + (f" (of {len(gaps)}: TReFT's lambda range did not reach its in-domain change in the others)"
               if len(reached) < len(gaps) else "") + f"; the paper: {paper}")
    if config.tiny:
        base_spill = _paired(records, "fine-tune", "spill")
        less = _differences(_paired(records, "less alignment", "spill"), base_spill)
        more = _differences(_paired(records, "more queries", "spill"), base_spill)
        less_spill = mean(list(_paired(records, "less alignment", "spill").values()))
        more_spill = mean(list(_paired(records, "more queries", "spill").values()))
        add("iv", "spill grows as the template alignment data shrink and as distinct fine-tuning queries grow",
            claims.all_of([claims.direction(less), claims.direction(more)]),
            f"spill {mean(list(base_spill.values())):.3f} (plain) -> {less_spill:.3f} with {config.align_less:.0%} "
            f"of the alignment data, -> {more_spill:.3f} with {config.more_queries} queries")
        plain_post = _paired(records, "no system prompt", "patch_postfix_removed")
        add("v", "without a system prompt the carrier moves to the postfix (postfix patching removes more)",
            claims.direction(_differences(plain_post, postfix)),
            f"postfix patching removes {mean(list(plain_post.values())):.0%} without a system prompt, "
            f"{mean(list(postfix.values())):.0%} with one; prefix patching "
            f"{mean(list(_paired(records, 'no system prompt', 'patch_prefix_removed').values())):.0%} without")
    swap_prefix = _paired(records, "fine-tune", "swap_prefix_removed")
    swap_query = _paired(records, "fine-tune", "swap_query_removed")
    add("vi", f"perturbing the prefix ({config.swap_tokens} tokens swapped for their nearest embedding neighbours) "
        "removes more of the spill than perturbing as many query tokens",
        claims.direction([d for d in _differences(swap_prefix, swap_query) if math.isfinite(d)]),
        f"share of the other domains' change removed: prefix swaps {mean(list(swap_prefix.values())):.0%}, query "
        f"swaps {mean(list(swap_query.values())):.0%}")
    alt = _paired(records, "fine-tune", "alt_system_removed")
    add("vii", "an alternative system prompt seen in alignment carries less of the spill than the default one",
        claims.direction([v for v in alt.values() if math.isfinite(v)]),
        f"share of the other domains' change gone with the system prompt {config.alt_system_prompt!r}: "
        f"{mean(list(alt.values())):.0%} ("
        + (f"in {config.alt_system_share:.0%} of the alignment chats)" if config.tiny else "not aligned here)"))
    return verdicts


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    start = time.perf_counter()
    records: list[VariantRecord] = []
    drift_rows: list[DriftRecord] = []
    for seed in progress(config.seeds, desc="piggyback seeds", show=show_progress):
        rows, drifts = one_seed(config, seed)
        records += rows
        drift_rows += drifts
    return Result(config, records, drift_rows, _judge(records, config), seconds=time.perf_counter() - start)
