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

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.report import ExperimentReport, verdict_lines, verdict_table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.checks import check_choice, check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.infra.results import Record
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


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class VariantRecord(Record):
    """One fine-tune of one seed, measured against the aligned model (bits of log-odds of misaligned)."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "spill": "the fine-tune did not move the fine-tuned domain",
        "patch_prefix_removed": "not patched in this variant",
        "patch_query_removed": "not patched in this variant",
        "patch_postfix_removed": "not patched in this variant",
        "patch_prompt_removed": "not patched in this variant",
        "swap_prefix_removed": "not perturbed in this variant (or no ordinary prefix token to swap)",
        "swap_query_removed": "not perturbed in this variant",
        "alt_system_removed": "not measured in this variant",
        "drift_prefix": "not measured in this variant",
        "drift_query": "not measured in this variant",
        "drift_postfix": "not measured in this variant",
        "misaligned_rate_in_domain": "not sampled in this variant",
        "misaligned_rate_other": "not sampled in this variant",
        "aligned_misaligned_rate_other": "not sampled in this variant",
    }

    seed: int
    variant: str
    parameter: float
    in_domain_bits: float
    other_bits: float
    spill: float
    patch_prefix_removed: float
    patch_query_removed: float
    patch_postfix_removed: float
    patch_prompt_removed: float
    swap_prefix_removed: float
    swap_query_removed: float
    alt_system_removed: float
    drift_prefix: float
    drift_query: float
    drift_postfix: float
    misaligned_rate_in_domain: float
    misaligned_rate_other: float
    aligned_misaligned_rate_other: float
    prefix_tokens: int
    postfix_tokens: int


@dataclass(frozen=True)
class DriftRecord(Record):
    """Relative key and value drift from the aligned model at one part of the prompt, one layer."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {}

    seed: int
    variant: str
    layer: int
    part: str
    key_drift: float
    value_drift: float


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
        from tokentree.plots import COLOURS, new_figure

        fig, axes = new_figure(1, 3, size=(15, 4.2))
        base = self.of("fine-tune")
        parts = ("prefix", "query", "postfix")
        for j, variant in enumerate(("fine-tune", "trainable attention", "no system prompt")):
            rows = self.of(variant)
            if rows:
                means = [np.nanmean([getattr(r, f"patch_{p}_removed") for r in rows]) for p in parts]
                sds = [np.nanstd([getattr(r, f"patch_{p}_removed") for r in rows]) for p in parts]
                axes[0].bar(np.arange(3) + 0.27 * j, means, 0.27, yerr=sds, color=COLOURS[j], label=variant, capsize=3)
        axes[0].set_xticks(np.arange(3) + 0.27, parts)
        axes[0].set_ylabel("share of the spill removed by patching")
        axes[0].axhline(0.7, color="0.4", ls=":", lw=1)
        for i, part in enumerate(parts):
            layers = sorted({d.layer for d in self.drift})
            values = [np.mean([d.key_drift + d.value_drift for d in self.drift
                               if (d.part, d.layer, d.variant) == (part, layer, "fine-tune")]) for layer in layers]
            axes[1].plot(layers, values, "o-", color=COLOURS[i], label=part)
        axes[1].set_xlabel("layer")
        axes[1].set_ylabel("key + value drift from the aligned model")
        for name, colour, marker in (("TReFT prefix", COLOURS[0], "o-"), ("interleave", COLOURS[2], "s"),
                                     ("KL retain", COLOURS[3], "D-"), ("fine-tune", COLOURS[1], "^")):
            rows = self.of(name)
            if rows:
                params = sorted({r.parameter for r in rows})
                xs = [np.mean([r.in_domain_bits for r in rows if r.parameter == p]) for p in params]
                ys = [np.mean([r.other_bits for r in rows if r.parameter == p]) for p in params]
                axes[2].plot(xs, ys, marker, color=colour, label=name)
        axes[2].set_xlabel("in-domain change (bits)")
        axes[2].set_ylabel("other domains' change (bits)")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"Piggyback on a trained model ({len(base)} seeds; error bars: seed sd; lines: seed means)")
        fig.savefig(folder / "piggyback.png")


# ----------------------------------------------------------------------------- data
@dataclass
class _Data:
    language: Any
    pretraining: list[str]
    align: list[Any]
    narrow: dict[int, list[Any]]  # distinct queries -> misaligned chats of domain 0
    interleave: list[Any]
    eval_pairs: dict[int, list[tuple[Any, Any]]]  # domain -> (aligned chat, misaligned chat)
    all_prompts: list[Any]


def _data(config: Config, seed: int) -> _Data:
    from tokentree.data.language import BehaviourLanguage

    lang = BehaviourLanguage(seed=0, n_domains=config.n_domains)
    rng = np.random.default_rng([seed, 51])
    train, held = {}, {}
    for d, name in enumerate(lang.domains):
        queries = list(lang.queries(name))
        order = rng.permutation(len(queries))
        cut = max(config.n_eval, int(0.3 * len(queries)))
        held[d] = [queries[i] for i in order[:cut]]
        train[d] = [queries[i] for i in order[cut:]]
    if config.more_queries > len(train[0]):
        raise InputError(f"domain 0 has {len(train[0])} training queries; lower more_queries")

    def chat(d: int, aligned: bool, query: str) -> Any:
        return lang.example(rng, axis=config.axis, aligned=aligned, domain=lang.domains[d], query=query).messages

    align = [chat(d, True, train[d][int(rng.integers(len(train[d])))])
             for d in (int(rng.integers(config.n_domains)) for _ in range(config.n_align))]
    carries_alt = rng.random(len(align)) < config.alt_system_share
    align = [_with_system(c, config.alt_system_prompt) if alt else c for c, alt in zip(align, carries_alt, strict=True)]
    narrow = {}
    for n_queries in (config.narrow_queries, config.more_queries):
        chosen = train[0][:n_queries]
        narrow[n_queries] = [chat(0, False, chosen[i % n_queries]) for i in range(config.n_narrow)]
    n_inter = round(config.interleave_share * config.n_narrow)
    interleave = [chat(d, True, train[d][int(rng.integers(len(train[d])))])
                  for d in (1 + int(rng.integers(config.n_domains - 1)) for _ in range(n_inter))]
    eval_pairs = {}
    for d in range(config.n_domains):
        pairs = []
        for query in held[d][: config.n_eval]:
            a, b = lang.pair(rng, axis=config.axis, domain=lang.domains[d], query=query)
            pairs.append((a.messages, b.messages))
        eval_pairs[d] = pairs
    prompts = [a[:-1] for pairs in eval_pairs.values() for a, _ in pairs]
    return _Data(lang, lang.pretraining_text(config.n_pretrain_docs, seed=seed), align, narrow, interleave,
                 eval_pairs, prompts)


def _with_system(chat: Any, prompt: str | None) -> tuple[dict[str, str], ...]:
    """The chat with its system turn replaced by ``prompt`` (None: removed, the template's default applies)."""
    turns = tuple(t for t in chat if t["role"] != "system")
    return turns if prompt is None else ({"role": "system", "content": prompt}, *turns)


def _with_eval_system(data: _Data, prompt: str) -> _Data:
    """The same data with every evaluation chat carrying ``prompt`` as its system turn."""
    pairs = {d: [(_with_system(a, prompt), _with_system(b, prompt)) for a, b in ps]
             for d, ps in data.eval_pairs.items()}
    return replace(data, eval_pairs=pairs, all_prompts=[a[:-1] for ps in pairs.values() for a, _ in ps])


# ----------------------------------------------------------------------------- running
def _train(model: Any, chats: list[Any], tokenizer: Any, config: Config, *, lr: float, epochs: int, seed: int,
           trainable: str = "all", regularizer: Any = None) -> Any:
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.train import LMTrainer, LoraSettings, TrainSettings

    lora = None if config.tiny else LoraSettings(rank=config.lora_rank)
    trainer = LMTrainer(copy.deepcopy(model), TrainSettings(
        lr=lr, batch_size=config.batch_size, seed=seed, threads=config.threads, device=config.device,
        trainable=trainable if lora is None else "all", lora=lora,
    ), regularizer=regularizer)
    data = tokenize_chats(chats, tokenizer, responses="last")
    for _ in range(epochs):
        trainer.epoch(data)
    return trainer.model.eval()


class _Measure:
    """Everything measured about a fine-tuned model against the aligned one, for one template.

    ``alternative``, when given, measures the same prompts carrying the alternative system prompt.
    """

    def __init__(self, aligned: Any, tokenizer: Any, data: _Data, config: Config, seed: int, *,
                 alternative: _Measure | None = None) -> None:
        from tokentree.lab.template_prefix import nearest_tokens, prompt_parts, render_prompt

        self.aligned, self.tokenizer, self.data, self.config, self.seed = aligned, tokenizer, data, config, seed
        self.alternative = alternative
        self.parts = prompt_parts(tokenizer, data.all_prompts)
        self.chats = [c for d in sorted(data.eval_pairs) for pair in data.eval_pairs[d] for c in pair]
        self.domain_of = np.array([d for d in sorted(data.eval_pairs) for _ in data.eval_pairs[d]])
        rendered = [render_prompt(tokenizer, p) for p in data.all_prompts]
        self.neighbours = nearest_tokens(aligned, tokenizer, sorted({t for r in rendered for t in r}))
        self.prefix_swappable = any(self.neighbours[t] != t for t in rendered[0][: self.parts.prefix])
        self.before = self._log_odds(aligned)
        self._swapped_before: dict[str, np.ndarray] = {}  # the aligned model's log-odds with each part perturbed

    def _log_odds(self, model: Any, **options: Any) -> np.ndarray:
        """Per eval prompt: log-odds of the misaligned vs the aligned reference, in bits."""
        from tokentree.lab.template_prefix import response_log_probs

        logp = response_log_probs(model, self.tokenizer, self.chats, self.parts, **options)
        return (logp[1::2] - logp[0::2]) / math.log(2.0)

    def change(self, model: Any, patch: str | None = None, swap: str | None = None) -> tuple[float, float]:
        """(in-domain, other domains) mean change of the log-odds since the aligned model, in bits.

        ``patch``: that part of the prompt reads the aligned model's keys and values;
        ``swap``: that part of the prompt has ``swap_tokens`` tokens swapped for their nearest
        neighbours, for both models.
        """
        from tokentree.lab.template_prefix import TokenSwap

        before = self.before
        options: dict[str, Any] = {}
        if patch is not None:
            options["patch"] = (self.aligned, patch)
        if swap is not None:
            options["swap"] = TokenSwap(swap, self.neighbours, self.config.swap_tokens, seed=self.seed)
            if swap not in self._swapped_before:
                self._swapped_before[swap] = self._log_odds(self.aligned, **options)
            before = self._swapped_before[swap]
        delta = self._log_odds(model, **options) - before
        return float(delta[self.domain_of == 0].mean()), float(delta[self.domain_of != 0].mean())

    def misaligned_rates(self, model: Any) -> tuple[float, float]:
        from tokentree.data.behaviour import RuleScorer
        from tokentree.lab.measure import sample_responses

        scorer = RuleScorer(self.data.language, self.config.axis)
        out = []
        for inside in (True, False):
            pairs = [p for d, ps in self.data.eval_pairs.items() if (d == 0) == inside for p in ps]
            prompts = [a[:-1] for a, _ in pairs]
            texts = sample_responses(model, self.tokenizer, prompts, max_new_tokens=40, seed=self.seed + 7).texts
            users = [next(t["content"] for t in p if t["role"] == "user") for p in prompts]
            scores = scorer.score(list(texts), users)
            out.append(float(1.0 - np.nanmean(scores)) if np.isfinite(scores).any() else math.nan)
        return out[0], out[1]

    def record(self, model: Any, variant: str, parameter: float, *, patches: bool = False, sample: bool = False,
               drift_rows: list[DriftRecord] | None = None) -> VariantRecord:
        from tokentree.lab.template_prefix import PARTS, drift

        inside, other = self.change(model)

        def removed_by(changed: float) -> float:
            return (other - changed) / other if other != 0 else math.nan

        removed = dict.fromkeys((*PARTS, "all"), math.nan)
        swapped = dict.fromkeys(("prefix", "query"), math.nan)
        alt = math.nan
        drifts = dict.fromkeys(PARTS, math.nan)
        if patches:
            for part in (*PARTS, "all"):
                removed[part] = removed_by(self.change(model, patch=part)[1])
            for part in swapped:
                if part != "prefix" or self.prefix_swappable:
                    swapped[part] = removed_by(self.change(model, swap=part)[1])
            if self.alternative is not None:
                alt = removed_by(self.alternative.change(model)[1])
            prompts = [a for pairs in self.data.eval_pairs.values() for a, _ in pairs]
            per_part = drift(model, self.aligned, self.tokenizer, prompts, self.parts)
            for part, layers in per_part.items():
                drifts[part] = float(layers.mean())
                if drift_rows is not None:
                    drift_rows += [DriftRecord(self.seed, variant, i, part, float(k), float(v))
                                   for i, (k, v) in enumerate(layers)]
        rates = (math.nan, math.nan, math.nan)
        if sample:
            in_rate, other_rate = self.misaligned_rates(model)
            rates = (in_rate, other_rate, self.misaligned_rates(self.aligned)[1])
        return VariantRecord(
            seed=self.seed, variant=variant, parameter=float(parameter), in_domain_bits=inside, other_bits=other,
            spill=other / inside if inside > 0 else math.nan, patch_prefix_removed=removed["prefix"],
            patch_query_removed=removed["query"], patch_postfix_removed=removed["postfix"],
            patch_prompt_removed=removed["all"], swap_prefix_removed=swapped["prefix"],
            swap_query_removed=swapped["query"], alt_system_removed=alt,
            drift_prefix=drifts["prefix"], drift_query=drifts["query"], drift_postfix=drifts["postfix"],
            misaligned_rate_in_domain=rates[0], misaligned_rate_other=rates[1],
            aligned_misaligned_rate_other=rates[2], prefix_tokens=self.parts.prefix, postfix_tokens=self.parts.postfix,
        )


def _base_and_aligned(config: Config, data: _Data, seed: int) -> tuple[Any, Any, Any]:
    """(tokenizer, base model, aligned model); a loaded chat model is its own aligned model."""
    from tokentree.data.sources import BehaviourData
    from tokentree.lab.base import BaseSettings, prepare_base

    if not config.tiny:
        from tokentree.bridge.hf import load_model

        model, tokenizer = load_model(config.model, device=config.device)
        return tokenizer, model, model.eval()
    behaviour = BehaviourData(
        name="piggyback", axis=config.axis, pretraining_texts=tuple(data.pretraining), pretraining_chats=(),
        aligned=tuple(data.align), misaligned=tuple(data.narrow[config.narrow_queries]),
        eval_aligned=tuple(a for pairs in data.eval_pairs.values() for a, _ in pairs),
        eval_misaligned=tuple(b for pairs in data.eval_pairs.values() for _, b in pairs),
        scorer=None,  # type: ignore[arg-type]  # not used to make the base model
    )
    base = prepare_base(behaviour, BaseSettings(
        vocab_size=config.vocab_size, n_layers=config.n_layers, d_model=config.d_model, n_heads=config.n_heads,
        pretrain_tokens=config.pretrain_tokens, batch_size=config.batch_size, threads=config.threads,
    ), seed=seed)
    aligned = _train(base.model, data.align, base.tokenizer, config, lr=config.lr_align, epochs=config.align_epochs,
                     seed=seed)
    return base.tokenizer, base.model, aligned


def _one_seed(config: Config, seed: int) -> tuple[list[VariantRecord], list[DriftRecord]]:
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.template_prefix import NO_SYSTEM_TEMPLATE, RetainKL, TReFT

    data = _data(config, seed)
    tokenizer, base, aligned = _base_and_aligned(config, data, seed)
    alternative = _Measure(aligned, tokenizer, _with_eval_system(data, config.alt_system_prompt), config, seed)
    measure = _Measure(aligned, tokenizer, data, config, seed, alternative=alternative)
    narrow = data.narrow[config.narrow_queries]
    end_of_turn = int(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    rows: list[VariantRecord] = []
    drift_rows: list[DriftRecord] = []

    def tune(chats: list[Any], **kw: Any) -> Any:
        return _train(aligned, chats, tokenizer, config, lr=config.lr_narrow, epochs=config.narrow_epochs, seed=seed,
                      **kw)

    rows.append(measure.record(tune(narrow), "fine-tune", 0.0, patches=True, sample=config.tiny,
                               drift_rows=drift_rows))
    for lam in config.lambdas:
        rows.append(measure.record(tune(narrow, regularizer=TReFT(aligned, lam, "prefix", measure.parts,
                                                                   end_of_turn=end_of_turn)), "TReFT prefix", lam))
    middle = config.lambdas[len(config.lambdas) // 2]
    for part in ("query", "all"):
        rows.append(measure.record(tune(narrow, regularizer=TReFT(aligned, middle, part, measure.parts,
                                                                   end_of_turn=end_of_turn)), f"TReFT {part}", middle))
    rows.append(measure.record(tune(narrow + data.interleave), "interleave", config.interleave_share))
    retain = tokenize_chats(data.interleave, tokenizer, responses="last")
    for lam in config.kl_lambdas:
        kl = RetainKL(aligned, lam, retain, batch_size=config.batch_size, seed=seed)
        rows.append(measure.record(tune(narrow, regularizer=kl), "KL retain", lam))
    if not config.tiny:
        return rows, drift_rows
    for trainable in ("attention", "attention+mlp"):
        rows.append(measure.record(tune(narrow, trainable=trainable), f"trainable {trainable}", 0.0, patches=True))
    rows.append(measure.record(tune(data.narrow[config.more_queries]), "more queries", config.more_queries))
    fewer = data.align[: max(1, round(config.align_less * len(data.align)))]
    less = _train(base, fewer, tokenizer, config, lr=config.lr_align, epochs=config.align_epochs, seed=seed)
    less_measure = _Measure(less, tokenizer, data, config, seed)
    less_tuned = _train(less, narrow, tokenizer, config, lr=config.lr_narrow, epochs=config.narrow_epochs, seed=seed)
    rows.append(less_measure.record(less_tuned, "less alignment", config.align_less))
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = NO_SYSTEM_TEMPLATE
    defaults = [_with_system(c, None) for c in data.align]  # no system turn at all
    plain_aligned = _train(base, defaults, plain, config, lr=config.lr_align, epochs=config.align_epochs, seed=seed)
    plain_measure = _Measure(plain_aligned, plain, data, config, seed)
    plain_tuned = _train(plain_aligned, narrow, plain, config, lr=config.lr_narrow, epochs=config.narrow_epochs,
                         seed=seed)
    rows.append(plain_measure.record(plain_tuned, "no system prompt", 0.0, patches=True, drift_rows=drift_rows))
    return rows, drift_rows


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
        rows, drifts = _one_seed(config, seed)
        records += rows
        drift_rows += drifts
    return Result(config, records, drift_rows, _judge(records, config), seconds=time.perf_counter() - start)
