"""hooke-trained: the Hooke test on a trained transformer instead of a mixture (issue 6; EXPERIMENTS.md E4).

The Theorem 4.2 scenario with a real model: a tiny transformer
(:mod:`tokentree.bridge.tiny`) is pre-trained on D_p = D_1 u D_2 u D_3, fine-tuned on the
alignment set D_a (drawn like D_2, k = |D_p|/|D_a| responses), then fine-tuned further on
growing amounts of the perturbation set D_t (drawn like D_3, l = |D_t|/|D_a|). After
every step the bits per token of D_p, D_a and D_t under the current model are measured,
and the measured ratio of the changes,

    R_trained(l) = (gamma_a(l) - gamma_a(0)) / (gamma_p(l) - gamma_p(0)),

is set against -k, the mixture theory's l -> 0 value, and against Theorem 4.2's mixture
computed on the very same datasets (smoothed token-tree models of D_1, D_2, D_3 weighted
k b_1 : k b_2 + 1 : k b_3 + l). Every (k, l) cell is repeated over ``n_seeds`` seeds
(data, tokenizer, initialisation and order all change).

Data: ``real`` takes D_1 from Python's pydoc paragraphs and the chatterbot dialogues,
D_2 from positive tweets and D_3 from negative tweets (D_a and D_t are disjoint from D_p),
tokenized by a byte-level BPE trained on D_p; ``synthetic`` uses the built-in Theorem 4.2
sources (Pareto leaves on disjoint token ranges, D_a and D_t drawn from D_2's and D_3's
sources).

    tokentree run hooke-trained                     # synthetic, about a minute on 2 cores
    tokentree run hooke-trained --data real         # real text, a few minutes
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.errors import InputError
from tokentree.progress import progress
from tokentree.sequences import TokenSequences

__all__ = ["Config", "Result", "run"]

DATA_SOURCES = ("real", "synthetic")
LN2 = math.log(2.0)
REAL_POOLS = (("pydoc-paragraphs", "chatterbot"), ("tweets-positive",), ("tweets-negative",))


@dataclass(frozen=True)
class Config:
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
    n_layers, d_model, n_heads, context
        Shape of the tiny transformer.
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
        if self.data not in DATA_SOURCES:
            raise InputError(f"data must be one of {DATA_SOURCES}; got {self.data!r}")
        if self.n_seeds < 1:
            raise InputError(f"n_seeds must be >= 1; got {self.n_seeds}")
        if not self.k_values or min(self.k_values) <= 1:
            raise InputError(f"k_values must be numbers > 1; got {list(self.k_values)}")
        ls = list(self.l_values)
        if not ls or ls[0] <= 0 or any(b <= a for a, b in itertools.pairwise(ls)):
            raise InputError(f"l_values must be positive and increasing (l = 0 is always measured); got {ls}")
        if len(self.betas) != 3 or min(self.betas) <= 0 or not math.isclose(sum(self.betas), 1.0):
            raise InputError(f"betas must be three positive shares summing to 1; got {list(self.betas)}")
        smallest = self.n_pretrain / max(self.k_values) * ls[0]
        if smallest < 1:
            raise InputError(
                f"n_pretrain = {self.n_pretrain} leaves |D_a| = {self.n_pretrain / max(self.k_values):g} at "
                f"k = {max(self.k_values):g}, and l = {ls[0]} of it is less than one response; raise n_pretrain "
                "or the smallest l, or lower the largest k"
            )
        if min(self.n_eval, self.pretrain_tokens, self.align_epochs, self.batch_size, self.theory_depth) < 1:
            raise InputError("n_eval, pretrain_tokens, align_epochs, batch_size and theory_depth must be >= 1")

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

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.n_seeds)]


@dataclass(frozen=True, eq=False)
class _Data:
    """One seed's datasets: D_1, D_2, D_3, the largest D_a and D_t (smaller ones are their prefixes)."""

    parts: tuple[TokenSequences, TokenSequences, TokenSequences]
    align: TokenSequences
    perturb: TokenSequences
    vocab_size: int

    @property
    def pretrain(self) -> TokenSequences:
        return TokenSequences.concatenate(self.parts)


def _sizes(config: Config) -> tuple[list[int], int, int]:
    parts = [max(1, round(b * config.n_pretrain)) for b in config.betas]
    n_align = math.ceil(config.n_pretrain / min(config.k_values))
    return parts, n_align, math.ceil(max(config.l_values) * n_align)


def _real_data(config: Config, seed: int) -> _Data:
    from tokentree.text import builtin_texts, encode_texts, train_bpe

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
    pretrain_texts = [t for i, group in enumerate(texts) for t in group[: n_parts[i]]]
    tokenizer = train_bpe(pretrain_texts, config.bpe_vocab)
    vocab = tokenizer.get_vocab_size()
    parts = tuple(encode_texts(group[: n_parts[i]], tokenizer) for i, group in enumerate(texts))
    align = encode_texts(texts[1][n_parts[1] :], tokenizer)
    perturb = encode_texts(texts[2][n_parts[2] :], tokenizer)
    return _Data(parts, align, perturb, vocab)  # type: ignore[arg-type]


def _synthetic_data(config: Config, seed: int) -> _Data:
    from tokentree.scenario import sample_scenario, scenario_sources

    sources = scenario_sources(
        betas=config.betas,  # type: ignore[arg-type]
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
    return _Data(sample.parts, sample.align, sample.perturb, sources.vocab_size)


def _head(seqs: TokenSequences, n: int) -> TokenSequences:
    return seqs.select(np.arange(n))


def _component_log_probs(
    parts: tuple[TokenSequences, ...], evals: dict[str, TokenSequences], config: Config, vocab_size: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per evaluated sequence: its natural-log probability under the depth-``theory_depth``
    tree model of each part of D_p (shape (3, n)), and its length in tokens."""
    from tokentree.bridge.tree_model import fit_tree_model

    models = [
        fit_tree_model(p, depth=config.theory_depth, vocab_size=vocab_size, discount=config.theory_discount)
        for p in parts
    ]
    return {
        name: (np.array([[lp.sum() for lp in m.token_log_probs(list(seqs))] for m in models]), seqs.lengths)
        for name, seqs in evals.items()
    }


def _mixture(
    scored: dict[str, tuple[np.ndarray, np.ndarray]],
    n_scored: dict[str, int],
    k: float,
    ls: list[float],
    betas: np.ndarray,
) -> dict[str, Any]:
    """Theorem 4.2's mixture on the same data, with components that generalise.

    Each part D_1, D_2, D_3 of D_p is a smoothed context model P_i (its token tree used as
    in :mod:`tokentree.bridge.tree_model`; ``scored`` holds the first ``n_scored[name]``
    sequences' log-probabilities). As in the theorem, D_a is distributed like D_2 and D_t like
    D_3, so the model after l is the mixture of whole-sequence probabilities
    q = (k b1 P_1 + (k b2 + 1) P_2 + (k b3 + l) P_3)/(k + 1 + l), and gamma_X is D_X's bits per
    token under q. Returns the changes from l = 0, their ratios, and the analytic l -> 0
    ratio (d/dl log q = P_3/S - 1/(k + 1), S = (k + 1) q at l = 0).
    """
    from scipy.special import logsumexp

    rates, slopes = {}, {}
    for name, n in n_scored.items():
        logp = scored[name][0][:, :n]
        tokens = float(scored[name][1][:n].sum()) * LN2
        rates[name] = []
        for l in [0.0, *ls]:
            log_w = np.log((k * betas + np.array([0.0, 1.0, l])) / (k + 1.0 + l))
            rates[name].append(-float(logsumexp(log_w[:, None] + logp, axis=0).sum()) / tokens)
        log_s0 = logsumexp(np.log(k * betas + np.array([0.0, 1.0, 0.0]))[:, None] + logp, axis=0)
        slopes[name] = -float((np.exp(logp[2] - log_s0) - 1.0 / (k + 1.0)).sum()) / tokens
    d_a = np.array(rates["align"][1:]) - rates["align"][0]
    d_p = np.array(rates["pretrain"][1:]) - rates["pretrain"][0]
    return {
        "ratio_l0": slopes["align"] / slopes["pretrain"],
        "finite_ratio": (d_a / d_p).tolist(),
        "delta_align_bits": d_a.tolist(),
        "delta_pretrain_bits": d_p.tolist(),
    }


def _rates(model: Any, evals: dict[str, TokenSequences], threads: int) -> dict[str, float]:
    from tokentree.bridge.scoring import measure_rate
    from tokentree.bridge.tiny import tiny_scorer

    scorer = tiny_scorer(model, threads=threads, show_progress=False)
    return {name: measure_rate(scorer, seqs).bits_per_token for name, seqs in evals.items()}


def _one_seed(config: Config, seed: int, show_progress: bool | None) -> list[dict[str, Any]]:
    from tokentree.bridge.tiny import TinyConfig, Trainer

    data = _real_data(config, seed) if config.data == "real" else _synthetic_data(config, seed)
    pretrain = data.pretrain
    model_shape = TinyConfig(
        vocab_size=data.vocab_size,
        n_layers=config.n_layers,
        d_model=config.d_model,
        n_heads=config.n_heads,
        context=config.context,
    )
    base = Trainer(model_shape, seed=seed, lr=config.lr_pretrain, threads=config.threads)
    epochs = max(1, round(config.pretrain_tokens / pretrain.n_tokens))
    for _ in progress(range(epochs), desc=f"pre-training (seed {seed})", show=show_progress):
        base.epoch(pretrain, batch_size=config.batch_size)
    shares = np.array([p.n_sequences for p in data.parts]) / pretrain.n_sequences
    eval_p = TokenSequences.concatenate(
        _head(p, min(p.n_sequences, max(1, round(b * config.n_eval)))) for p, b in zip(data.parts, shares, strict=True)
    )
    scored = _component_log_probs(
        data.parts, {"pretrain": eval_p, "align": data.align, "perturb": data.perturb}, config, data.vocab_size
    )
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
        perturb = _head(data.perturb, sizes[-1])
        evals = {"pretrain": eval_p, "align": align, "perturb": perturb}
        tuned = Trainer(model=copy.deepcopy(base.model), seed=seed, lr=config.lr_finetune, threads=config.threads)
        for _ in range(config.align_epochs):
            tuned.epoch(align, batch_size=config.batch_size)
        start = _rates(tuned.model, evals, config.threads)
        before = _rates(base.model, evals, config.threads)
        shock = Trainer(model=tuned.model, seed=seed + 10_000, lr=config.lr_finetune, threads=config.threads)
        n_scored = {name: seqs.n_sequences for name, seqs in evals.items()}
        theory = _mixture(scored, n_scored, pretrain.n_sequences / n_align, [n / n_align for n in sizes], shares)
        done = 0
        for j, n in enumerate(sizes):
            shock.epoch(data.perturb.select(np.arange(done, n)), batch_size=config.batch_size)
            done = n
            now = _rates(shock.model, evals, config.threads)
            delta = {name: now[name] - start[name] for name in now}
            records.append(
                {
                    "seed": seed,
                    "step": j,
                    "k": float(pretrain.n_sequences / n_align),
                    "k_requested": float(k),
                    "l": n / n_align,
                    "n_pretrain": pretrain.n_sequences,
                    "pretrain_epochs": epochs,
                    "n_align": n_align,
                    "n_perturb": n,
                    "rate_pretrain_base": before["pretrain"],
                    "rate_align_base": before["align"],
                    "rate_pretrain_0": start["pretrain"],
                    "rate_align_0": start["align"],
                    "rate_perturb_0": start["perturb"],
                    "rate_pretrain": now["pretrain"],
                    "rate_align": now["align"],
                    "rate_perturb": now["perturb"],
                    "delta_pretrain": delta["pretrain"],
                    "delta_align": delta["align"],
                    "delta_perturb": delta["perturb"],
                    "ratio": delta["align"] / delta["pretrain"] if delta["pretrain"] != 0 else math.nan,
                    "mixture_ratio_l0": theory["ratio_l0"],
                    "mixture_ratio": theory["finite_ratio"][j],
                    "mixture_delta_align": theory["delta_align_bits"][j],
                    "mixture_delta_pretrain": theory["delta_pretrain_bits"][j],
                }
            )
    return records


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (k, step of D_t): the seeds' mean and spread of the changes and ratios.

    ``*_resolved`` says whether a mean change is at least twice its standard error (a
    change inside the seed-to-seed noise has no sign worth reporting).
    """
    rows = []
    for k, step in sorted({(r["k_requested"], r["step"]) for r in records}):
        cell = [r for r in records if r["k_requested"] == k and r["step"] == step]
        row: dict[str, Any] = {
            "k": float(np.mean([r["k"] for r in cell])),
            "step": step,
            "l": float(np.mean([r["l"] for r in cell])),
            "n_seeds": len(cell),
        }
        for key in (
            "delta_align",
            "delta_pretrain",
            "ratio",
            "mixture_delta_align",
            "mixture_delta_pretrain",
            "mixture_ratio",
            "mixture_ratio_l0",
        ):
            x = np.array([r[key] for r in cell])
            row[f"{key}_mean"], row[f"{key}_std"] = float(x.mean()), _std(x)
        for key in ("delta_align", "delta_pretrain"):
            error = row[f"{key}_std"] / math.sqrt(len(cell))
            row[f"{key}_resolved"] = bool(abs(row[f"{key}_mean"]) >= 2 * error) if len(cell) > 1 else False
        row["gamma_a_rose"] = sum(r["delta_align"] > 0 for r in cell)
        row["gamma_p_fell"] = sum(r["delta_pretrain"] < 0 for r in cell)
        row["alignment_change_align_mean"] = float(np.mean([r["rate_align_0"] - r["rate_align_base"] for r in cell]))
        row["alignment_change_pretrain_mean"] = float(
            np.mean([r["rate_pretrain_0"] - r["rate_pretrain_base"] for r in cell])
        )
        rows.append(row)
    return rows


def _std(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if x.shape[0] > 1 else math.nan


def loglog_slopes(rows: list[dict[str, Any]], key: str) -> dict[int, float]:
    """Per step of D_t: the slope of log |rows[key]| against log k."""
    out = {}
    for step in sorted({r["step"] for r in rows}):
        cell = [r for r in rows if r["step"] == step]
        y = np.log(np.abs([r[key] for r in cell]))
        if len(cell) >= 2 and np.all(np.isfinite(y)):
            out[step] = float(np.polyfit(np.log([r["k"] for r in cell]), y, 1)[0])
    return out


#: log-log slopes against k reported by the experiment: what, and the mixture theory's value at l -> 0.
SLOPES = {
    "ratio_mean": "|ratio| (theory 1)",
    "delta_align_mean": "|d gamma_a| (theory -1)",
    "delta_pretrain_mean": "|d gamma_p| (theory -2)",
}


@dataclass(frozen=True, eq=False)
class Result:
    config: Config
    records: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    slopes: dict[str, dict[int, float]]
    seconds: float = field(default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": "hooke-trained",
            "config": asdict(self.config),
            "rows": self.rows,
            "loglog_slopes_against_k": {key: {str(s): v for s, v in d.items()} for key, d in self.slopes.items()},
            "records": self.records,
        }

    def _table(self) -> list[str]:
        lines = [
            "| k | l | d gamma_a trained | d gamma_a mixture | d gamma_p trained | d gamma_p mixture | "
            "ratio trained | ratio mixture | gamma_a rose | gamma_p fell |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]

        def change(r: dict[str, Any], key: str) -> str:
            flag = "" if r[f"{key}_resolved"] else " (noise)"
            return f"{r[f'{key}_mean']:+.4f} ± {r[f'{key}_std']:.4f}{flag}"

        for r in self.rows:
            n = r["n_seeds"]
            lines.append(
                f"| {r['k']:.4g} | {r['l']:.3g} | {change(r, 'delta_align')} | {r['mixture_delta_align_mean']:+.4f} | "
                f"{change(r, 'delta_pretrain')} | {r['mixture_delta_pretrain_mean']:+.5f} | "
                f"{r['ratio_mean']:+.3g} ± {r['ratio_std']:.2g} | {r['mixture_ratio_mean']:+.4g} | "
                f"{r['gamma_a_rose']}/{n} | {r['gamma_p_fell']}/{n} |"
            )
        return lines

    def _slope_lines(self) -> list[str]:
        ls = {r["step"]: r["l"] for r in self.rows}
        out = []
        for key, label in SLOPES.items():
            trained, mixture = self.slopes[key], self.slopes[f"mixture_{key}"]
            parts = [
                f"l = {ls[s]:.3g}: {trained.get(s, math.nan):.2f} (mixture {mixture.get(s, math.nan):.2f})"
                for s in sorted(ls)
            ]
            out.append(f"log-log slope against k of {label}: " + "; ".join(parts))
        return out

    def _alignment_line(self) -> str:
        parts = sorted(
            {(r["k"], r["alignment_change_align_mean"], r["alignment_change_pretrain_mean"]) for r in self.rows}
        )
        return "alignment itself (aligned minus pre-trained model), bits per token: " + "; ".join(
            f"k = {k:.3g}: gamma_a {a:+.3f}, gamma_p {p:+.3f}" for k, a, p in parts
        )

    def terminal_summary(self) -> str:
        c = self.config
        head = (
            f"hooke-trained ({c.data} data, {c.n_seeds} seeds, tiny transformer {c.n_layers}x{c.d_model}): "
            "changes of bits per token after fine-tuning on l |D_a| responses of D_t (mean ± sd over seeds)"
        )
        return "\n".join([head, *self._table(), *self._slope_lines(), self._alignment_line()])

    def summary_markdown(self) -> str:
        c = self.config
        out = [
            "# hooke-trained: Theorem 4.2 on a trained transformer",
            "",
            f"Data: {c.data}; D_p = {c.n_pretrain} responses (shares {list(c.betas)}); seeds {c.seeds}; "
            f"model {c.n_layers} layers x {c.d_model}, context {c.context}; pre-training about "
            f"{c.pretrain_tokens:,} tokens (lr {c.lr_pretrain:g}), alignment {c.align_epochs} epochs and "
            f"perturbation one pass (lr {c.lr_finetune:g}). "
            f"Run time {self.seconds:.0f} s.",
            "",
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
        ks = sorted({r["k"] for r in self.rows})
        for i, k in enumerate(ks):
            cell = [r for r in self.rows if r["k"] == k]
            ls = [r["l"] for r in cell]
            for ax, key in zip(axes, ("delta_align", "delta_pretrain"), strict=True):
                ax.errorbar(
                    [0.0, *ls],
                    [0.0, *(r[f"{key}_mean"] for r in cell)],
                    yerr=[0.0, *(r[f"{key}_std"] for r in cell)],
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
        for step in sorted({r["step"] for r in self.rows}):
            cell = [r for r in self.rows if r["step"] == step]
            x = np.array([r["k"] for r in cell])
            y = np.array([r["ratio_mean"] for r in cell])
            err = np.array([r["ratio_std"] for r in cell])
            ax.errorbar(
                x,
                np.abs(y),
                yerr=err,
                fmt="o-",
                color=COLOURS[step % len(COLOURS)],
                capsize=3,
                label=f"trained, l = {np.mean([r['l'] for r in cell]):.2g}",
            )
            ax.plot(x, np.abs([r["mixture_ratio_mean"] for r in cell]), "x:", color=COLOURS[step % len(COLOURS)])
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


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    start = time.perf_counter()
    records = [r for seed in config.seeds for r in _one_seed(config, seed, show_progress)]
    rows = summarise(records)
    return Result(
        config,
        records,
        rows,
        slopes={name: loglog_slopes(rows, name) for key in SLOPES for name in (key, f"mixture_{key}")},
        seconds=time.perf_counter() - start,
    )
