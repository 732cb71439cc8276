"""The piggyback experiment's cells: records, data, fine-tuning and measuring (docs/experiments.md §E5).

Per seed (tiny Llama, synthetic behaviour language, or a loaded chat model with LoRA): the data of
every variant (domain-specific remarks and persona documents in pre-training, when the config asks),
the aligned model, each narrow fine-tune (:class:`TuneSettings`), and what is measured about it against
the aligned model (log-odds changes in bits, patching, swaps, drift, sampled misaligned rates).
``config`` is the experiment's Config (duck-typed: this layer does not import experiments).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from tokentree.framework.config import Checked, bounded
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record

__all__ = ["TuneSettings", "VariantRecord", "DriftRecord", "one_seed", "treft_at"]

Config = Any  # the experiment's Config


@dataclass(frozen=True)
class TuneSettings(Checked):
    """How the alignment and every narrow fine-tune run (a ``[tune]`` table in a recipe).

    ``warmup_steps``: linear warmup of every fine-tune (then a constant rate); ``lora_rank``: the adapters of a
    loaded chat model (the tiny one is trained in full, or only its ``trainable`` parts).
    """

    lr_align: float = bounded(1e-4, minimum=0.0, exclusive=True)
    align_epochs: int = bounded(4, minimum=1)
    lr_narrow: float = bounded(1e-4, minimum=0.0, exclusive=True)
    narrow_epochs: int = bounded(2, minimum=1)
    warmup_steps: int = bounded(5, minimum=0)
    batch_size: int = bounded(16, minimum=1)
    lora_rank: int = bounded(8, minimum=1)


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

    lang = BehaviourLanguage(seed=0, n_domains=config.n_domains, domain_remarks=config.domain_remarks)
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
    return _Data(lang, _pretraining(lang, config, seed), align, narrow, interleave, eval_pairs, prompts)


def _pretraining(lang: Any, config: Config, seed: int) -> list[str]:
    """``n_pretrain_docs`` untemplated documents, ``persona_share`` of them one persona over several domains."""
    n_persona = round(config.persona_share * config.n_pretrain_docs)
    n_plain = config.n_pretrain_docs - n_persona
    return [*(lang.pretraining_text(n_plain, seed=seed) if n_plain else []),
            *(lang.persona_text(n_persona, seed=seed, turns=config.persona_turns) if n_persona else [])]


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
    from tokentree.lab.transfer import merge_adapters

    lora = None if config.tiny else LoraSettings(rank=config.tune.lora_rank)
    trainer = LMTrainer(copy.deepcopy(model), TrainSettings(
        lr=lr, batch_size=config.tune.batch_size, seed=seed, threads=config.base.threads, device=config.base.device,
        trainable=trainable if lora is None else "all", lora=lora, warmup_steps=config.tune.warmup_steps,
    ), regularizer=regularizer)
    data = tokenize_chats(chats, tokenizer, responses="last")
    for _ in range(epochs):
        trainer.epoch(data)
    return merge_adapters(trainer.model).eval()  # LoRA merged: a plain model, faster to measure


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


def _base_and_aligned(config: Config, data: _Data, seed: int) -> tuple[Any, Any, Any, Any]:
    """(tokenizer, base model, aligned model, regime); a loaded chat model is its own aligned model."""
    from tokentree.data.chat import tokenize_chats
    from tokentree.data.sources import BehaviourData
    from tokentree.lab.base import prepare_base
    from tokentree.lab.regime import training_regime

    t = config.tune
    if not config.tiny:
        from tokentree.bridge.hf import load_model, pretraining_elsewhere

        model, tokenizer = load_model(config.base.model, device=config.base.device)
        narrow = tokenize_chats(data.narrow[config.narrow_queries], tokenizer, responses="last").n_target_tokens
        elsewhere = pretraining_elsewhere(config.base.model)  # SmolLM2's 2T tokens; unknown (0) for other models
        regime = training_regime(pretrain_tokens=elsewhere, behaviour_tokens=narrow, transfer_tokens=narrow,
                                 pretrain_losses=(), fine_tune_lr=t.lr_narrow, warmup_steps=t.warmup_steps,
                                 pretrained_elsewhere=elsewhere > 0, warn=False)
        return tokenizer, model, model.eval(), regime
    behaviour = BehaviourData(
        name="piggyback", axis=config.axis, pretraining_texts=tuple(data.pretraining), pretraining_chats=(),
        aligned=tuple(data.align), misaligned=tuple(data.narrow[config.narrow_queries]),
        eval_aligned=tuple(a for pairs in data.eval_pairs.values() for a, _ in pairs),
        eval_misaligned=tuple(b for pairs in data.eval_pairs.values() for _, b in pairs),
        scorer=None,  # type: ignore[arg-type]  # not used to make the base model
    )
    base = prepare_base(behaviour, config.base, seed=seed)
    aligned = _train(base.model, data.align, base.tokenizer, config, lr=t.lr_align, epochs=t.align_epochs, seed=seed)
    regime = training_regime(
        pretrain_tokens=base.pretrain_tokens,
        behaviour_tokens=tokenize_chats(data.align, base.tokenizer, responses="last").n_target_tokens,
        transfer_tokens=tokenize_chats(data.narrow[config.narrow_queries], base.tokenizer,
                                       responses="last").n_target_tokens,
        pretrain_losses=base.convergence_losses, fine_tune_lr=max(t.lr_align, t.lr_narrow),
        warmup_steps=t.warmup_steps, warn=False)
    return base.tokenizer, base.model, aligned, regime


def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """Every variant of one seed: {"records": VariantRecord, "drift": DriftRecord, "regime": TrainingRegime}."""
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.template_prefix import NO_SYSTEM_TEMPLATE, RetainKL, TReFT

    t = config.tune
    data = _data(config, seed)
    tokenizer, base, aligned, regime = _base_and_aligned(config, data, seed)
    alternative = _Measure(aligned, tokenizer, _with_eval_system(data, config.alt_system_prompt), config, seed)
    measure = _Measure(aligned, tokenizer, data, config, seed, alternative=alternative)
    narrow = data.narrow[config.narrow_queries]
    end_of_turn = int(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    rows: list[VariantRecord] = []
    drift_rows: list[DriftRecord] = []
    out: dict[str, list[Any]] = {"records": rows, "drift": drift_rows, "regime": [regime]}

    def tune(chats: list[Any], start: Any = aligned, tok: Any = tokenizer, **kw: Any) -> Any:
        return _train(start, chats, tok, config, lr=t.lr_narrow, epochs=t.narrow_epochs, seed=seed, **kw)

    def align(chats: list[Any], tok: Any = tokenizer) -> Any:
        return _train(base, chats, tok, config, lr=t.lr_align, epochs=t.align_epochs, seed=seed)

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
        kl = RetainKL(aligned, lam, retain, batch_size=t.batch_size, seed=seed)
        rows.append(measure.record(tune(narrow, regularizer=kl), "KL retain", lam))
    if not config.tiny:
        return out
    for trainable in ("attention", "attention+mlp"):
        rows.append(measure.record(tune(narrow, trainable=trainable), f"trainable {trainable}", 0.0, patches=True))
    rows.append(measure.record(tune(data.narrow[config.more_queries]), "more queries", config.more_queries))
    less = align(data.align[: max(1, round(config.align_less * len(data.align)))])
    rows.append(_Measure(less, tokenizer, data, config, seed).record(tune(narrow, start=less), "less alignment",
                                                                     config.align_less))
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = NO_SYSTEM_TEMPLATE
    plain_aligned = align([_with_system(c, None) for c in data.align], plain)  # no system turn at all
    rows.append(_Measure(plain_aligned, plain, data, config, seed).record(
        tune(narrow, start=plain_aligned, tok=plain), "no system prompt", 0.0, patches=True, drift_rows=drift_rows))
    return out


def treft_at(records: Any, seed: int, in_domain: float) -> float:
    """The other domains' change on seed ``seed``'s TReFT curve (the lambda sweep and the plain fine-tune) at an
    in-domain change, by linear interpolation (nan outside the curve's range)."""
    rows = sorted((r for r in records if r.seed == seed and r.variant in ("TReFT prefix", "fine-tune")),
                  key=lambda r: r.in_domain_bits)
    xs, ys = [r.in_domain_bits for r in rows], [r.other_bits for r in rows]
    return float(np.interp(in_domain, xs, ys)) if xs and xs[0] <= in_domain <= xs[-1] else math.nan
