"""The papers' own figures, written once, for experiments to put beside their measurements (docs/theory.md §8).

J. Ji et al., "Language Models Resist Alignment: Evidence From Data Compression", ACL 2025;
Zhao et al., "The Piggyback Hypothesis of Generalization" (arXiv 2606.06667).
"""

from __future__ import annotations

__all__ = [
    "TABLE_3_N_POSITIVE",
    "TABLE_3_NEGATIVES",
    "TABLE_3_KL_AFTER_SFT",
    "TABLE_3_KL_THRESHOLD",
    "TABLE_1_CELLS",
    "TABLE_1_INVERSE_WINS",
    "TABLE_1_ALPACA_LLAMA2_7B",
    "REBOUND_NEGATIVES",
    "table_3_normalised",
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
#: Table 1, Alpaca on Llama2-7B: (pair, inverse loss, forward loss).
TABLE_1_ALPACA_LLAMA2_7B = (("1-2", 0.159, 0.202), ("1-3", 0.195, 0.214), ("2-3", 0.167, 0.235))
#: The rebound grid: negative examples after each amount of positive ones.
REBOUND_NEGATIVES = (0, 100, 200, 500, 1000, 2000)


def table_3_normalised(model: str) -> tuple[float, ...]:
    """Table 3's negatives divided by the first column: Llama2-7B 1, 0.88, 0.83, 0.76.

    >>> [round(x, 2) for x in table_3_normalised("Gemma-2B")]
    [1.0, 0.92, 0.77, 0.65]
    """
    row = TABLE_3_NEGATIVES[model]
    return tuple(x / row[0] for x in row)
