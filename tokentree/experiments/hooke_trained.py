"""hooke-trained: the Hooke test on a trained transformer instead of a mixture (docs/experiments.md §E4h).

The Theorem 4.2 scenario with a real model: a tiny Llama (:mod:`tokentree.bridge.tiny`,
``model = "tiny"``) is pre-trained from scratch on D_p = D_1 u D_2 u D_3 (a loaded model,
``model = "smollm2"``, a folder or a hub name, is trained further on it), fine-tuned on the
alignment set D_a (drawn like D_2, k = |D_p|/|D_a| responses), then fine-tuned further on
growing amounts of the perturbation set D_t (drawn like D_3, l = |D_t|/|D_a|). After
every step the bits per token of D_p, D_a and D_t under the current model are measured,
and the measured ratio of the changes,

    R_trained(l) = (gamma_a(l) - gamma_a(0)) / (gamma_p(l) - gamma_p(0)),

is set against -k, the mixture theory's l -> 0 value, and against Theorem 4.2's mixture
computed on the very same datasets (smoothed token-tree models of D_1, D_2, D_3 weighted
k b_1 : k b_2 + 1 : k b_3 + l, a :class:`~tokentree.bridge.mixture.SequenceMixture`). The
staged protocol is :func:`tokentree.lab.run_stages`; seed statistics come from
:mod:`tokentree.framework.aggregate`. Every (k, l) cell is repeated over ``n_seeds`` seeds
(data, tokenizer, initialisation and order all change).

Data: ``real`` takes D_1 from Python's pydoc paragraphs and the chatterbot dialogues,
D_2 from positive tweets and D_3 from negative tweets (D_a and D_t are disjoint from D_p),
tokenized by a byte-level BPE trained on D_p; ``synthetic`` uses the built-in Theorem 4.2
sources (Pareto leaves on disjoint token ranges, D_a and D_t drawn from D_2's and D_3's
sources).

    tokentree run hooke-trained                     # synthetic, about a minute on 2 cores
    tokentree run hooke-trained --data real         # real text, a few minutes
    tokentree run hooke-trained --data real --model smollm2 --device auto   # SmolLM2 (slow on a CPU)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.compression.mixture import Shares, theorem_4_2_sizes
from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.experiments._training import SeededTraining
from tokentree.framework.report import ExperimentReport
from tokentree.infra.checks import check_choice, check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.infra.results import Record
from tokentree.lab import Stage, loglog_slope, run_stages, seed_stats

__all__ = ["NAME", "Config", "TrainedRecord", "CellSummary", "SlopeRecord", "Result", "run"]

NAME = "hooke-trained"
DATA_SOURCES = ("real", "synthetic")
REAL_POOLS = (("pydoc-paragraphs", "chatterbot"), ("tweets-positive",), ("tweets-negative",))


@dataclass(frozen=True)
class Config(SeededTraining):
    """Options of ``tokentree run hooke-trained``; every field can be set in a TOML file.

    k_values, l_values
        k = |D_p|/|D_a| (responses) and the amounts of D_t, l = |D_t|/|D_a|, after which the
        rates are measured (increasing; l = 0, the aligned model, is always measured).
    n_pretrain, betas
        Responses in D_p and the shares of D_1, D_2, D_3 in it.
    n_seeds
        Repeats with seeds ``seed``, ``seed + 1``, ...
    n_eval
        Responses of D_p scored for gamma_p, drawn from D_1, D_2, D_3 in the shares of D_p
        (D_a and D_t are scored whole). The l -> 0 ratio is a cancellation inside gamma_p,
        so a sample whose shares drift from D_p's would swamp it.
    bpe_vocab
        Size of the BPE trained on D_p (real data).
    model, device, threads
        "tiny" (a tiny Llama trained from scratch), "smollm2", a model folder or a hub name
        (real data only: synthetic data are token ids without a tokenizer); "auto" picks a
        GPU when there is one; torch's CPU threads.
    n_layers, d_model, n_heads, context
        Shape of the tiny Llama.
    pretrain_tokens, align_epochs, batch_size, lr_pretrain, lr_finetune
        Training: whole epochs of D_p adding up to about ``pretrain_tokens`` tokens (the
        same budget for either data source); D_a for ``align_epochs`` (a fresh AdamW); then
        every new piece of D_t once (a fresh AdamW, the same learning rate).
    theory_depth, theory_discount
        The mixture on the same data: depth and absolute discount of each dataset's tree model.
    synthetic_depth, synthetic_alpha, synthetic_leaves, synthetic_vocab
        The synthetic sources: tokens per response, Pareto shape, leaves and token ids per component.
    """

    data: str = "synthetic"
    seed: int = 0
    model: str = "tiny"
    device: str = "auto"
    n_seeds: int = 3
    k_values: tuple[float, ...] = (10.0, 30.0, 100.0)
    l_values: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0)
    n_pretrain: int = 3000
    betas: tuple[float, ...] = (0.6, 0.2, 0.2)
    n_eval: int = 600
    bpe_vocab: int = 2048
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    context: int = 128
    pretrain_tokens: int = 400_000
    align_epochs: int = 3
    batch_size: int = 16
    lr_pretrain: float = 3e-3
    lr_finetune: float = 1e-3
    theory_depth: int = 3
    theory_discount: float = 0.75
    threads: int = 1
    synthetic_depth: int = 4
    synthetic_alpha: float = 2.0
    synthetic_leaves: int = 200
    synthetic_vocab: int = 8

    def __post_init__(self) -> None:
        check_choice(self.data, "data", DATA_SOURCES)
        self.check_training_settings()
        ks = check_list(self.k_values, "k_values", lambda v, n: check_float(v, n, minimum=1.0, exclusive=True))
        ls = check_list(self.l_values, "l_values", lambda v, n: check_float(v, n, minimum=0.0, exclusive=True))
        if any(b <= a for a, b in itertools.pairwise(ls)):
            raise InputError(f"l_values must be positive and increasing (l = 0 is always measured); got {list(ls)}")
        check_int(self.n_pretrain, "n_pretrain", minimum=3)
        Shares.of(self.betas, positive=True)
        for name in ("n_eval", "n_layers", "pretrain_tokens", "align_epochs", "batch_size", "theory_depth"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.bpe_vocab, "bpe_vocab", minimum=257)  # a byte-level BPE holds the 256 bytes
        check_int(self.d_model, "d_model", minimum=1)
        check_int(self.n_heads, "n_heads", minimum=1)
        if self.d_model % self.n_heads:
            raise InputError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        check_int(self.context, "context", minimum=2)
        check_float(self.lr_pretrain, "lr_pretrain", minimum=0.0, exclusive=True)
        check_float(self.lr_finetune, "lr_finetune", minimum=0.0, exclusive=True)
        check_float(self.theory_discount, "theory_discount", minimum=0.0, maximum=0.999999)
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"model must be 'tiny', 'smollm2', a model folder or a hub name; got {self.model!r}")
        if self.model != "tiny" and self.data != "real":
            raise InputError(f"model {self.model!r} needs data = 'real': synthetic data are token ids, not text")
        check_int(self.synthetic_depth, "synthetic_depth", minimum=1, maximum=64)
        check_float(self.synthetic_alpha, "synthetic_alpha", minimum=1.0, exclusive=True)
        check_int(self.synthetic_leaves, "synthetic_leaves", minimum=1)
        check_int(self.synthetic_vocab, "synthetic_vocab", minimum=1, maximum=2**20)
        if self.synthetic_vocab ** self.synthetic_depth < self.synthetic_leaves:
            raise InputError(
                f"synthetic_leaves = {self.synthetic_leaves} distinct leaves do not fit in "
                f"{self.synthetic_vocab}^{self.synthetic_depth} paths; raise synthetic_vocab or synthetic_depth"
            )
        smallest = self.n_pretrain / max(ks) * ls[0]
        if smallest < 1:
            raise InputError(
                f"n_pretrain = {self.n_pretrain} leaves |D_a| = {self.n_pretrain / max(ks):g} at "
                f"k = {max(ks):g}, and l = {ls[0]} of it is less than one response; raise n_pretrain "
                "or the smallest of l_values, or lower the largest of k_values"
            )

    @classmethod
    def quick(cls) -> Config:
        """Small real-text run (about a minute)."""
        return cls(
            n_seeds=2,
            k_values=(10.0, 100.0),
            l_values=(0.2, 1.0),
            n_pretrain=1000,
            n_eval=200,
            bpe_vocab=512,
            d_model=32,
            n_heads=2,
            pretrain_tokens=50_000,
            align_epochs=2,
        )


@dataclass(frozen=True, eq=False)
class _Data:
    """One seed's datasets: D_1, D_2, D_3, the largest D_a and D_t (smaller ones are their prefixes).

    ``vocab_size`` ids; ``bos`` is the id put in front of every sequence (one above the data
    ids for the tiny model, the tokenizer's own for a loaded model); ``scored`` limits the
    distributions to the data ids (None: the whole vocabulary).
    """

    parts: tuple[TokenSequences, TokenSequences, TokenSequences]
    align: TokenSequences
    perturb: TokenSequences
    vocab_size: int
    bos: int
    scored: int | None

    @property
    def pretrain(self) -> TokenSequences:
        return TokenSequences.concatenate(self.parts)


def _sizes(config: Config) -> tuple[list[int], int, int]:
    parts = [max(1, round(b * config.n_pretrain)) for b in config.betas]
    n_align = math.ceil(config.n_pretrain / min(config.k_values))
    return parts, n_align, math.ceil(max(config.l_values) * n_align)


def _real_data(config: Config, seed: int, tokenizer: Any | None) -> _Data:
    """Texts of the built-in corpora; tokenized by a BPE trained on D_p (tiny model) or the model's tokenizer."""
    from tokentree.data.text import builtin_texts, encode_texts, train_bpe

    n_parts, n_align, n_perturb = _sizes(config)
    extra = (0, n_align, n_perturb)
    texts = []
    for i, corpora in enumerate(REAL_POOLS):
        pool = [t for name in corpora for t in builtin_texts(name)]
        need = n_parts[i] + extra[i]
        if len(pool) < need:
            raise InputError(f"{'+'.join(corpora)} has {len(pool)} texts; this config needs {need}")
        order = np.random.default_rng([seed, i]).permutation(len(pool))[:need]
        texts.append([pool[j] for j in order])
    if tokenizer is None:
        pretrain_texts = [t for i, group in enumerate(texts) for t in group[: n_parts[i]]]
        bpe = train_bpe(pretrain_texts, config.bpe_vocab)
        vocab = bpe.get_vocab_size()

        def encode(group: list[str]) -> TokenSequences:
            return encode_texts(group, bpe)

        bos, scored = vocab, vocab  # one id above the data for the start token, never predicted
        vocab += 1
    else:
        vocab = len(tokenizer)
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if bos is None:
            raise InputError(f"{config.model}: its tokenizer has neither a BOS nor an EOS token to start texts with")
        scored = None

        def encode(group: list[str]) -> TokenSequences:
            return as_token_sequences([tokenizer(t, add_special_tokens=False)["input_ids"] for t in group])

    parts = tuple(encode(group[: n_parts[i]]) for i, group in enumerate(texts))
    align = encode(texts[1][n_parts[1] :])
    perturb = encode(texts[2][n_parts[2] :])
    return _Data(parts, align, perturb, vocab, bos, scored)  # type: ignore[arg-type]


def _synthetic_data(config: Config, seed: int) -> _Data:
    from tokentree.data.scenario import sample_scenario, scenario_sources

    sources = scenario_sources(
        betas=config.betas,
        depth=config.synthetic_depth,
        alpha=config.synthetic_alpha,
        n_leaves=config.synthetic_leaves,
        vocab_size=config.synthetic_vocab,
        rng=seed,
    )
    _, n_align, n_perturb = _sizes(config)
    sample = sample_scenario(
        sources,
        n_pretrain=config.n_pretrain,
        n_align=n_align,
        n_perturb=n_perturb,
        rng=np.random.default_rng([seed, 1]),
    )
    vocab = sources.vocab_size
    return _Data(sample.parts, sample.align, sample.perturb, vocab + 1, vocab, vocab)


def _head(seqs: TokenSequences, n: int) -> TokenSequences:
    return seqs.select(np.arange(n))


_DATASETS = ("pretrain", "align", "perturb")


@dataclass(frozen=True)
class TrainedRecord(Record):
    """One seed, one k, one amount of D_t: the trained model's rates and the mixture's changes.

    ``rate_*_base_bits``: the pre-trained model; ``rate_*_0_bits``: after alignment (l = 0);
    ``rate_*_bits``: after l |D_a| responses of D_t; ``delta_*_bits`` = rate - rate_0.
    ``mixture_*``: Theorem 4.2's mixture on the same data (``mixture_ratio_l0`` analytic).
    All rates are bits per token.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"ratio": "gamma_p did not change (delta_pretrain_bits = 0)"}

    seed: int
    step: int
    k: float
    k_requested: float
    l: float
    n_pretrain: int
    pretrain_epochs: int
    n_align: int
    n_perturb: int
    rate_pretrain_base_bits: float
    rate_align_base_bits: float
    rate_pretrain_0_bits: float
    rate_align_0_bits: float
    rate_perturb_0_bits: float
    rate_pretrain_bits: float
    rate_align_bits: float
    rate_perturb_bits: float
    delta_pretrain_bits: float
    delta_align_bits: float
    delta_perturb_bits: float
    ratio: float
    mixture_ratio_l0: float
    mixture_ratio: float
    mixture_delta_align_bits: float
    mixture_delta_pretrain_bits: float


#: The quantities summarised over seeds in every (k, step) cell.
_SUMMARISED = (
    "delta_align_bits",
    "delta_pretrain_bits",
    "ratio",
    "mixture_delta_align_bits",
    "mixture_delta_pretrain_bits",
    "mixture_ratio",
    "mixture_ratio_l0",
)


@dataclass(frozen=True)
class CellSummary(Record):
    """One (k, step of D_t) cell over seeds: means and sample standard deviations.

    ``delta_*_resolved``: the mean change is at least two standard errors from zero.
    ``gamma_a_rose`` / ``gamma_p_fell``: seeds in which gamma_a rose / gamma_p fell.
    ``alignment_change_*_bits``: the alignment step's own change (aligned minus pre-trained), mean.
    """

    k: float
    step: int
    l: float
    n_seeds: int
    delta_align_bits_mean: float
    delta_align_bits_std: float
    delta_pretrain_bits_mean: float
    delta_pretrain_bits_std: float
    ratio_mean: float
    ratio_std: float
    mixture_delta_align_bits_mean: float
    mixture_delta_align_bits_std: float
    mixture_delta_pretrain_bits_mean: float
    mixture_delta_pretrain_bits_std: float
    mixture_ratio_mean: float
    mixture_ratio_std: float
    mixture_ratio_l0_mean: float
    mixture_ratio_l0_std: float
    delta_align_resolved: bool
    delta_pretrain_resolved: bool
    gamma_a_rose: int
    gamma_p_fell: int
    alignment_change_align_bits: float
    alignment_change_pretrain_bits: float

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {f"{q}_std": "one seed has no spread" for q in _SUMMARISED}


@dataclass(frozen=True)
class SlopeRecord(Record):
    """Log-log slope against k of a mean quantity at one step of D_t, trained and mixture."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "trained": "fewer than two k values, or a zero mean",
        "mixture": "fewer than two k values, or a zero mean",
    }

    quantity: str
    theory: float
    step: int
    l: float
    trained: float
    mixture: float


def _mixture_changes(
    parts: tuple[TokenSequences, ...], evals: dict[str, TokenSequences], config: Config, vocab_size: int,
    k: float, ls: list[float], shares: Shares,
) -> dict[str, Any]:
    """Theorem 4.2's mixture on the same data, with components that generalise.

    Each part D_1, D_2, D_3 of D_p is a smoothed context model P_i (its token tree used as
    in :mod:`tokentree.bridge.tree_model`). As in the theorem, D_a is distributed like D_2
    and D_t like D_3, so the model after l is the mixture of whole-sequence probabilities
    q = (k b1 P_1 + (k b2 + 1) P_2 + (k b3 + l) P_3)/(k + 1 + l), and gamma_X is D_X's
    bits per token under q. Returns the changes from l = 0, their ratios, and the analytic
    l -> 0 ratio (the derivative with respect to the size of the D_3 component).
    """
    from tokentree.bridge.mixture import SequenceMixture
    from tokentree.bridge.scoring import measure_rate
    from tokentree.bridge.tree_model import fit_tree_model

    components = [
        fit_tree_model(p, depth=config.theory_depth, vocab_size=vocab_size, discount=config.theory_discount)
        for p in parts
    ]
    base = SequenceMixture(components, theorem_4_2_sizes(k, 0.0, shares))
    rates = {
        name: [measure_rate(base.with_sizes(theorem_4_2_sizes(k, l, shares)), seqs).bits_per_token
               for l in [0.0, *ls]]
        for name, seqs in evals.items() if name != "perturb"
    }
    d_a = np.array(rates["align"][1:]) - rates["align"][0]
    d_p = np.array(rates["pretrain"][1:]) - rates["pretrain"][0]
    slope_a = base.rate_derivative(list(evals["align"]), component=2)
    slope_p = base.rate_derivative(list(evals["pretrain"]), component=2)
    return {"ratio_l0": slope_a / slope_p, "ratio": d_a / d_p, "delta_align": d_a, "delta_pretrain": d_p}


def _model_and_data(config: Config, seed: int) -> tuple[Any, _Data]:
    """The model to pre-train (a seeded tiny Llama, or a loaded one) and this seed's data."""
    from tokentree.bridge.hf import load_model
    from tokentree.bridge.tiny import TinySpec, tiny_llama

    if config.model == "tiny":
        data = _real_data(config, seed, None) if config.data == "real" else _synthetic_data(config, seed)
        spec = TinySpec(data.vocab_size, config.n_layers, config.d_model, config.n_heads, config.context)
        model = tiny_llama(spec, seed=seed, bos_token_id=data.bos, eos_token_id=data.bos, pad_token_id=data.bos)
        return model, data
    model, tokenizer = load_model(config.model, device=config.device)
    return model, _real_data(config, seed, tokenizer)


def _one_seed(config: Config, seed: int, show_progress: bool | None) -> list[TrainedRecord]:
    from tokentree.bridge.scoring import measure_rate
    from tokentree.bridge.tiny import tiny_scorer
    from tokentree.data.chat import from_sequences
    from tokentree.lab.train import LMTrainer, TrainSettings

    model, data = _model_and_data(config, seed)
    pretrain = data.pretrain

    def settings(lr: float, stage_seed: int) -> TrainSettings:
        return TrainSettings(
            lr=lr, batch_size=config.batch_size, weight_decay=0.01, seed=stage_seed, threads=config.threads,
            device=config.device,
        )

    def examples(seqs: TokenSequences) -> Any:
        return from_sequences(seqs, prepend=data.bos)

    base = LMTrainer(model, settings(config.lr_pretrain, seed))
    epochs = round(config.pretrain_tokens / pretrain.n_tokens)
    if config.model == "tiny":
        epochs = max(1, epochs)
    pretrain_examples = examples(pretrain)
    for _ in progress(range(epochs), desc=f"pre-training (seed {seed})", show=show_progress):
        base.epoch(pretrain_examples, show_progress=False)
    shares = np.array([p.n_sequences for p in data.parts]) / pretrain.n_sequences
    eval_p = TokenSequences.concatenate(
        _head(p, min(p.n_sequences, max(1, round(b * config.n_eval)))) for p, b in zip(data.parts, shares, strict=True)
    )

    def new_trainer(model: Any, stage: Stage) -> LMTrainer:
        return LMTrainer(model, settings(stage.lr, stage.seed))

    records = []
    for k in config.k_values:
        n_align = max(1, round(pretrain.n_sequences / k))
        align = _head(data.align, n_align)
        sizes = [max(1, round(l * n_align)) for l in config.l_values]
        if any(b <= a for a, b in itertools.pairwise(sizes)):
            raise InputError(
                f"at k = {k:g}, |D_a| = {n_align} responses and l_values {list(config.l_values)} round to the D_t "
                f"sizes {sizes}, which do not grow; spread the l values or raise n_pretrain"
            )
        evals = {"pretrain": eval_p, "align": align, "perturb": _head(data.perturb, sizes[-1])}

        def measure(model: Any, evals: dict[str, TokenSequences] = evals) -> dict[str, float]:
            scorer = tiny_scorer(model, n_scored_tokens=data.scored, threads=config.threads)
            return {name: measure_rate(scorer, seqs).bits_per_token for name, seqs in evals.items()}

        increments = tuple(
            examples(data.perturb.select(np.arange(a, b))) for a, b in itertools.pairwise([0, *sizes])
        )
        stages = [
            Stage("align", (examples(align),), lr=config.lr_finetune, seed=seed, epochs=config.align_epochs),
            Stage("perturb", increments, lr=config.lr_finetune, seed=seed + 10_000),
        ]
        before, start, *after = run_stages(
            base.model, stages, new_trainer=new_trainer, measure=measure, show_progress=False
        )
        k_actual = pretrain.n_sequences / n_align
        theory = _mixture_changes(
            data.parts, evals, config, data.vocab_size, k_actual, [n / n_align for n in sizes],
            Shares.of(shares),
        )
        for j, (n, now) in enumerate(zip(sizes, after, strict=True)):
            delta = {name: now.values[name] - start.values[name] for name in _DATASETS}
            records.append(
                TrainedRecord(
                    seed=seed,
                    step=j,
                    k=float(k_actual),
                    k_requested=float(k),
                    l=n / n_align,
                    n_pretrain=pretrain.n_sequences,
                    pretrain_epochs=epochs,
                    n_align=n_align,
                    n_perturb=n,
                    rate_pretrain_base_bits=before.values["pretrain"],
                    rate_align_base_bits=before.values["align"],
                    rate_pretrain_0_bits=start.values["pretrain"],
                    rate_align_0_bits=start.values["align"],
                    rate_perturb_0_bits=start.values["perturb"],
                    rate_pretrain_bits=now.values["pretrain"],
                    rate_align_bits=now.values["align"],
                    rate_perturb_bits=now.values["perturb"],
                    delta_pretrain_bits=delta["pretrain"],
                    delta_align_bits=delta["align"],
                    delta_perturb_bits=delta["perturb"],
                    ratio=delta["align"] / delta["pretrain"] if delta["pretrain"] != 0 else math.nan,
                    mixture_ratio_l0=theory["ratio_l0"],
                    mixture_ratio=float(theory["ratio"][j]),
                    mixture_delta_align_bits=float(theory["delta_align"][j]),
                    mixture_delta_pretrain_bits=float(theory["delta_pretrain"][j]),
                )
            )
    return records


def summarise(records: Sequence[TrainedRecord]) -> list[CellSummary]:
    """One summary per (k, step of D_t): the seeds' mean and spread of the changes and ratios."""
    rows = []
    for k, step in sorted({(r.k_requested, r.step) for r in records}):
        cell = [r for r in records if r.k_requested == k and r.step == step]
        stats = {q: seed_stats([getattr(r, q) for r in cell]) for q in _SUMMARISED}
        values: dict[str, Any] = {}
        for q, st in stats.items():
            values[f"{q}_mean"], values[f"{q}_std"] = st.mean, st.std
        rows.append(
            CellSummary(
                k=float(np.mean([r.k for r in cell])),
                step=step,
                l=float(np.mean([r.l for r in cell])),
                n_seeds=len(cell),
                delta_align_resolved=stats["delta_align_bits"].resolved,
                delta_pretrain_resolved=stats["delta_pretrain_bits"].resolved,
                gamma_a_rose=stats["delta_align_bits"].n_positive,
                gamma_p_fell=stats["delta_pretrain_bits"].n_negative,
                alignment_change_align_bits=float(
                    np.mean([r.rate_align_0_bits - r.rate_align_base_bits for r in cell])
                ),
                alignment_change_pretrain_bits=float(
                    np.mean([r.rate_pretrain_0_bits - r.rate_pretrain_base_bits for r in cell])
                ),
                **values,
            )
        )
    return rows


#: log-log slopes against k reported by the experiment: the mean quantity, and the mixture theory's value at l -> 0.
SLOPES = {
    "ratio_mean": ("|ratio|", 1.0),
    "delta_align_bits_mean": ("|d gamma_a|", -1.0),
    "delta_pretrain_bits_mean": ("|d gamma_p|", -2.0),
}


def loglog_slopes(rows: Sequence[CellSummary]) -> list[SlopeRecord]:
    """Per step of D_t and quantity: the slope of log |mean| against log k, trained and mixture."""
    out = []
    for key, (label, theory) in SLOPES.items():
        for step in sorted({r.step for r in rows}):
            cell = [r for r in rows if r.step == step]
            ks = [r.k for r in cell]
            out.append(
                SlopeRecord(
                    quantity=label,
                    theory=theory,
                    step=step,
                    l=float(np.mean([r.l for r in cell])),
                    trained=loglog_slope(ks, [getattr(r, key) for r in cell]),
                    mixture=loglog_slope(ks, [getattr(r, f"mixture_{key}") for r in cell]),
                )
            )
    return out


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[TrainedRecord]
    cells: Sequence[CellSummary]
    slopes: Sequence[SlopeRecord]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"cells": self.cells, "slopes": self.slopes}

    def _table(self) -> list[str]:
        lines = [
            "| k | l | d gamma_a trained | d gamma_a mixture | d gamma_p trained | d gamma_p mixture | "
            "ratio trained | ratio mixture | gamma_a rose | gamma_p fell |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]

        def change(r: CellSummary, key: str) -> str:
            flag = "" if getattr(r, f"{key}_resolved") else " (noise)"
            return f"{getattr(r, f'{key}_bits_mean'):+.4f} ± {getattr(r, f'{key}_bits_std'):.4f}{flag}"

        for r in self.cells:
            n = r.n_seeds
            lines.append(
                f"| {r.k:.4g} | {r.l:.3g} | {change(r, 'delta_align')} | {r.mixture_delta_align_bits_mean:+.4f} | "
                f"{change(r, 'delta_pretrain')} | {r.mixture_delta_pretrain_bits_mean:+.5f} | "
                f"{r.ratio_mean:+.3g} ± {r.ratio_std:.2g} | {r.mixture_ratio_mean:+.4g} | "
                f"{r.gamma_a_rose}/{n} | {r.gamma_p_fell}/{n} |"
            )
        return lines

    def _slope_lines(self) -> list[str]:
        out = []
        for label, theory in SLOPES.values():
            parts = [
                f"l = {s.l:.3g}: {s.trained:.2f} (mixture {s.mixture:.2f})"
                for s in self.slopes if s.quantity == label
            ]
            out.append(f"log-log slope against k of {label} (theory {theory:g}): " + "; ".join(parts))
        return out

    def _alignment_line(self) -> str:
        parts = sorted({(r.k, r.alignment_change_align_bits, r.alignment_change_pretrain_bits) for r in self.cells})
        return "alignment itself (aligned minus pre-trained model), bits per token: " + "; ".join(
            f"k = {k:.3g}: gamma_a {a:+.3f}, gamma_p {p:+.3f}" for k, a, p in parts
        )

    def terminal_summary(self) -> str:
        c = self.config
        head = (
            f"hooke-trained ({c.data} data, {c.n_seeds} seeds, {_model_name(c)}): "
            "changes of bits per token after fine-tuning on l |D_a| responses of D_t (mean ± sd over seeds)"
        )
        return "\n".join([head, *self._table(), *self._slope_lines(), self._alignment_line()])

    def summary_markdown(self) -> str:
        c = self.config
        out = [
            "# hooke-trained: Theorem 4.2 on a trained transformer",
            "",
            f"Data: {c.data}; D_p = {c.n_pretrain} responses (shares {list(c.betas)}); seeds {c.seeds}; "
            f"model {_model_name(c)}, context {c.context}; pre-training about "
            f"{c.pretrain_tokens:,} tokens (lr {c.lr_pretrain:g}), alignment {c.align_epochs} epochs and "
            f"perturbation one pass (lr {c.lr_finetune:g}). "
            f"Run time {self.seconds:.0f} s.",
            "",
            "Columns of every table: docs/experiments.md §E4h. "
            "d gamma_X = gamma_X(l) - gamma_X(0): change of D_X's bits per token under the model fine-tuned on "
            'l |D_a| responses of D_t, against the aligned model (mean ± sd over seeds; "noise": the mean is '
            "under two standard errors). The mixture theory says ratio -> -k as l -> 0 (gamma_a rises, gamma_p "
            "falls). The mixture columns are Theorem 4.2's model on the same datasets: q = (k b1 P_1 + (k b2 + 1) P_2 "
            f"+ (k b3 + l) P_3)/(k + 1 + l), P_i the depth-{c.theory_depth} tree model of D_p's part i "
            f"(absolute discount {c.theory_discount:g}).",
            "",
            *self._table(),
            "",
            *self._slope_lines(),
            "",
            self._alignment_line(),
            "",
            "![changes against l](deltas_vs_l.png)",
            "",
            "![ratio against k](ratio_vs_k.png)",
        ]
        return "\n".join(out) + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, axes = new_figure(ncols=2, size=(11, 4.2))
        ks = sorted({r.k for r in self.cells})
        for i, k in enumerate(ks):
            cell = [r for r in self.cells if r.k == k]
            ls = [r.l for r in cell]
            for ax, key in zip(axes, ("delta_align", "delta_pretrain"), strict=True):
                ax.errorbar(
                    [0.0, *ls],
                    [0.0, *(getattr(r, f"{key}_bits_mean") for r in cell)],
                    yerr=[0.0, *(getattr(r, f"{key}_bits_std") for r in cell)],
                    fmt="o-",
                    color=COLOURS[i],
                    capsize=3,
                    label=f"k = {k:.3g}",
                )
        for ax, name in zip(axes, ("gamma_a (D_a)", "gamma_p (D_p)"), strict=True):
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xlabel("l = |D_t| / |D_a|")
            ax.set_ylabel(f"change of {name}, bits per token")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_title("alignment data D_a")
        axes[1].set_title("pre-training data D_p")
        fig.savefig(folder / "deltas_vs_l.png")

        fig, ax = new_figure()
        for step in sorted({r.step for r in self.cells}):
            cell = [r for r in self.cells if r.step == step]
            x = np.array([r.k for r in cell])
            y = np.array([r.ratio_mean for r in cell])
            err = np.array([r.ratio_std for r in cell])
            ax.errorbar(
                x,
                np.abs(y),
                yerr=err,
                fmt="o-",
                color=COLOURS[step % len(COLOURS)],
                capsize=3,
                label=f"trained, l = {np.mean([r.l for r in cell]):.2g}",
            )
            ax.plot(x, np.abs([r.mixture_ratio_mean for r in cell]), "x:", color=COLOURS[step % len(COLOURS)])
            for xi, yi in zip(x, y, strict=True):
                if yi > 0:
                    ax.plot(xi, abs(yi), "o", mfc="white", color=COLOURS[step % len(COLOURS)])
        ax.plot(ks, ks, "k--", lw=1, label="|-k| (mixture theory, l -> 0)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("k = |D_p| / |D_a|")
        ax.set_ylabel("|d gamma_a / d gamma_p|")
        ax.plot([], [], "x:", color="grey", label="Theorem 4.2 mixture, same data")
        ax.plot([], [], "o", mfc="white", color="grey", label="open marker: ratio > 0")
        ax.set_title("Ratio of the changes against k")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        fig.savefig(folder / "ratio_vs_k.png")


def _model_name(c: Config) -> str:
    return f"tiny Llama {c.n_layers} layers x {c.d_model}" if c.model == "tiny" else c.model


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    start = time.perf_counter()
    records = [r for seed in config.seeds for r in _one_seed(config, seed, show_progress)]
    cells = summarise(records)
    return Result(config, records, cells, loglog_slopes(cells), seconds=time.perf_counter() - start)
