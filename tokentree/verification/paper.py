"""The papers' own figures, written once, for experiments to put beside their measurements (docs/theory.md §8).

J. Ji et al., "Language Models Resist Alignment: Evidence From Data Compression", ACL 2025;
Zhao et al., "The Piggyback Hypothesis of Generalization" (arXiv 2606.06667).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.tables import Column, Table

__all__ = [
    "TABLE_3_N_POSITIVE",
    "TABLE_3_NEGATIVES",
    "TABLE_3_KL_AFTER_SFT",
    "TABLE_3_KL_THRESHOLD",
    "TABLE_1_CELLS",
    "TABLE_1_INVERSE_WINS",
    "TABLE_1_ALPACA_LLAMA2_7B",
    "REBOUND_NEGATIVES",
    "PIGGYBACK_FIGURES",
    "table_3_normalised",
    "TABLE_1_SIDE_BY_SIDE",
    "table_1_rows",
    "TABLE_3_SIDE_BY_SIDE",
    "table_3_rows",
]

#: Table 3: safety examples in the first fine-tune.
TABLE_3_N_POSITIVE = (1000, 2000, 5000, 10000)
#: Table 3: unsafe examples needed afterwards to bring the KL to the base model below 0.01.
TABLE_3_NEGATIVES = {"Llama2-7B": (961, 844, 801, 729), "Gemma-2B": (923, 853, 709, 598)}
#: Table 3: the KL to the base model right after the safety fine-tune.
TABLE_3_KL_AFTER_SFT = {"Llama2-7B": (0.21, 0.22, 0.26, 0.27), "Gemma-2B": (0.18, 0.21, 0.24, 0.25)}
TABLE_3_KL_THRESHOLD = 0.01
#: Table 1: forward vs inverse alignment, 3 models x 3 datasets x 3 checkpoint pairs.
TABLE_1_CELLS = 27
TABLE_1_INVERSE_WINS = 27
#: Table 1, Alpaca on Llama2-7B: (pair, inverse loss, forward loss), the values of docs/theory.md §8; the pair
#: labels of the last two were swapped before (issue 25): theta_2-theta_3 is 0.195 vs 0.214, theta_1-theta_3
#: 0.167 vs 0.235.
TABLE_1_ALPACA_LLAMA2_7B = (("1-2", 0.159, 0.202), ("2-3", 0.195, 0.214), ("1-3", 0.167, 0.235))
#: The rebound grid: negative examples after each amount of positive ones.
REBOUND_NEGATIVES = (0, 100, 200, 500, 1000, 2000)
#: Zhao et al.'s figures in words, for the piggyback report.
PIGGYBACK_FIGURES = (
    "The paper's figures, from secondary write-ups of Zhao et al. (not its tables): general alignment after the "
    "narrow fine-tune 39.7 -> 86.5 with the prefix keys/values patched (Qwen-2.5-7B), 40.8 -> 90.4 (Llama-3.1-8B); "
    "query patching helps less. EM-F1 on Llama legal: TReFT on the prefix 78.4, on query tokens 34.1, on all tokens "
    "36.9, 20% data interleaving 73.0, plain fine-tuning 61.4. Without a fixed prefix the carrier moves to the "
    "postfix (the assistant header).")


def table_3_normalised(model: str) -> tuple[float, ...]:
    """Table 3's negatives divided by the first column: Llama2-7B 1, 0.88, 0.83, 0.76.

    >>> [round(x, 2) for x in table_3_normalised("Gemma-2B")]
    [1.0, 0.92, 0.77, 0.65]
    """
    row = TABLE_3_NEGATIVES[model]
    return tuple(x / row[0] for x in row)


#: The paper's Table 1 Alpaca rows beside a run's (:func:`table_1_rows`).
TABLE_1_SIDE_BY_SIDE = Table("paper", "The paper's Alpaca rows (Llama2-7B, as secondary write-ups of the paper "
                             "report them) beside this run's answer-style rows (raw final training loss)", [
    Column("pair"), Column("paper_inverse", "paper inverse"), Column("paper_forward", "paper forward"),
    Column("inverse", "this run inverse"), Column("forward", "this run forward"),
])


def table_1_rows(ours: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> list[dict[str, Any]]:
    """Rows of :data:`TABLE_1_SIDE_BY_SIDE`: per pair, the paper's losses and ``ours[pair]`` = (inverse, forward)
    losses over seeds as mean ± sd (empty where the run has no such pair)."""
    return [{"pair": pair, "paper_inverse": inverse, "paper_forward": forward,
             "inverse": mean_sd_text(ours.get(pair, ([], []))[0], ".3f", missing=""),
             "forward": mean_sd_text(ours.get(pair, ([], []))[1], ".3f", missing="")}
            for pair, inverse, forward in TABLE_1_ALPACA_LLAMA2_7B]


#: Table 3 beside a run's (:func:`table_3_rows`).
TABLE_3_SIDE_BY_SIDE = Table("table3", "Table 3 side by side (negatives needed, normalised to the smallest n_pos; the "
                             "paper's rows as secondary write-ups of it report them; the count model is a reference "
                             "line, not a claim)", [
    Column("n_pos"), Column("ours", "this run", ".2f"), Column("model", "count model", ".2f"),
    Column("llama", "Llama2-7B"), Column("gemma", "Gemma-2B"),
])


def table_3_rows(n_pos: Sequence[int], ours: Sequence[float], model: Sequence[float]) -> list[dict[str, Any]]:
    """Rows of :data:`TABLE_3_SIDE_BY_SIDE`: a run's and the count model's normalised counts beside the paper's."""
    llama, gemma = table_3_normalised("Llama2-7B"), table_3_normalised("Gemma-2B")
    return [{"n_pos": n, "ours": ours[i], "model": model[i], "llama": f"{llama[i]:.2f}" if i < len(llama) else "",
             "gemma": f"{gemma[i]:.2f}" if i < len(gemma) else ""} for i, n in enumerate(n_pos)]
