"""E3 measured-vs-theory: a real model's bits per token against the token-tree rates (docs/experiments.md §E3).

D_p (generic text: Python's pydoc paragraphs and chatterbot dialogues), D_a (positive
tweets) and D_t (negative tweets), tokenized with the model's own tokenizer and split
into a training part and held-out texts. On the held-out texts: the measured bits per
token of the model (SmolLM2-135M-Instruct by default), and the bits per token of the
token tree of each dataset's training part used as an order-(d-1) context model with
interpolated absolute discounting, d = 1..8. A range coder then turns the model's
probabilities into a real bitstream for a few held-out texts and decodes it back
(:mod:`tokentree.verification.measured`).

    tokentree run measured-vs-theory              # a few minutes on 2 cores (SmolLM2 scoring)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.bridge.hf import DEVICES
from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.framework.config import Checked, bounded
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.tables import Column, Table
from tokentree.infra.errors import InputError
from tokentree.verification.measured import CodingRecord, RateRecord, coding_record, rate_records

__all__ = ["NAME", "DATASETS", "Config", "RateRecord", "CodingRecord", "Result", "run"]

NAME = "measured-vs-theory"

DATASETS = {
    "D_p": ("pydoc-paragraphs", "chatterbot"),
    "D_a": ("tweets-positive",),
    "D_t": ("tweets-negative",),
}


@dataclass(frozen=True)
class Config(Checked):
    """Options of ``tokentree run measured-vs-theory``.

    model, device
        "smollm2" (built in, offline), a local model folder, a .gguf file, or a hub name; where it
        runs ("auto": a GPU when there is one).
    depths, discount
        Context depths of the tree models and their absolute discount.
    n_train, n_heldout
        Texts per dataset for the trees and for scoring (drawn without overlap, seeded).
    n_coded
        Held-out texts per dataset put through the range coder with the model.
    max_context, stride, batch_size, threads
        Scoring options of the model.
    """

    seed: int = bounded(0, minimum=0)
    model: str = "smollm2"
    device: str = bounded("auto", choices=DEVICES)
    depths: tuple[int, ...] = bounded((1, 2, 3, 4, 5, 6, 7, 8), minimum=1, maximum=64)
    discount: float = bounded(0.75, minimum=0.0, maximum=0.999999)
    n_train: int = bounded(3000, minimum=1)
    n_heldout: int = bounded(60, minimum=1)
    n_coded: int = bounded(2, minimum=0)
    max_context: int = bounded(1024, minimum=2)
    stride: int = bounded(512, minimum=1)
    batch_size: int = bounded(8, minimum=1)
    threads: int = bounded(1, minimum=1)

    def validate(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"model must be 'smollm2', a model folder, a .gguf file or a hub name; got {self.model!r}")
        if self.n_coded > self.n_heldout:
            raise InputError(f"n_coded ({self.n_coded}) must be at most n_heldout ({self.n_heldout})")
        if self.stride > self.max_context:
            raise InputError(f"stride ({self.stride}) must be at most max_context ({self.max_context})")

    @classmethod
    def quick(cls) -> Config:
        return cls(depths=(1, 2, 3), n_train=300, n_heldout=6, n_coded=1)


CODING = Table("coding", "Range coding with the model's probabilities (one bitstream per dataset)", [
    Column("dataset"), Column("n_tokens", "tokens"), Column("n_bits", "bits"),
    Column("ideal_bits", "ideal bits", ".1f"),
    Column("overhead", fmt=".1f", unit="bits", value=lambda r: r.n_bits - r.ideal_bits),
    Column("decoded_exactly", "decoded exactly"),
])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("bits_vs_depth",)

    config: Config
    records: Sequence[RateRecord]
    coding: Sequence[CodingRecord]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"coding": self.coding}

    def by_dataset(self) -> list[dict[str, Any]]:
        """One row per dataset: the model's held-out rates and the tree model's at every depth."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.records:
            row = out.setdefault(r.dataset, {"dataset": r.dataset, "n_tokens": r.n_tokens,
                                             "model_bits_per_token": r.model_bits_per_token,
                                             "model_bits_per_byte": r.model_bits_per_byte})
            row[f"tree_{r.depth}"] = r.tree_bits_per_token
        return list(out.values())

    def rate_table(self) -> Table:
        return Table("rates", f"Held-out bits per token ({self.config.model} against token-tree context models)", [
            Column("dataset"), Column("n_tokens", "held-out tokens"),
            Column("model_bits_per_token", "model bits/token", ".3f"),
            Column("model_bits_per_byte", "model bits/byte", ".3f"),
            *(Column(f"tree_{d}", f"tree d={d}", ".3f") for d in self.config.depths)])

    def title(self) -> str:
        return "measured-vs-theory: a real model against token-tree context models"

    def intro(self) -> str:
        c = self.config
        return (f"Model {c.model}; trees fitted on {c.n_train} training texts per dataset, everything scored on "
                f"{c.n_heldout} held-out texts per dataset (seed {c.seed}); tree models use interpolated absolute "
                f"discounting (D = {c.discount}). Run time {self.seconds:.0f} s. Columns: docs/experiments.md §E3.")

    def sections(self) -> Sequence[Section]:
        return [(self.rate_table(), self.by_dataset()), (CODING, self.coding)]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return [(self.rate_table(), self.by_dataset()), (CODING, self.coding)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.measured_vs_theory import plot_bits_vs_depth

        plot_bits_vs_depth(self.records, model=self.config.model, path=folder / "bits_vs_depth.png")


def _split(config: Config, name: str, index: int) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts) of one dataset, drawn without overlap by a seeded permutation."""
    from tokentree.data.text import builtin_texts

    texts = [t for corpus in DATASETS[name] for t in builtin_texts(corpus)]
    order = np.random.default_rng([config.seed, index]).permutation(len(texts))
    if len(texts) < config.n_heldout + 1:
        raise InputError(f"{name} has {len(texts)} texts; n_heldout = {config.n_heldout} leaves none to train on")
    held = [texts[i] for i in order[: config.n_heldout]]
    train = [texts[i] for i in order[config.n_heldout : config.n_heldout + config.n_train]]
    return train, held


def _encode(tokenizer: Any, texts: list[str]) -> TokenSequences:
    return as_token_sequences([np.asarray(tokenizer(t)["input_ids"], dtype=np.int64) for t in texts])


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    """Score every dataset's held-out texts with the model and the tree models; range-code a few of them."""
    from tokentree.bridge.factory import load_scorer

    start = time.perf_counter()
    scorer, tokenizer = load_scorer(config.model, device=config.device, max_context=config.max_context,
                                    stride=config.stride, batch_size=config.batch_size, threads=config.threads)

    def one_dataset(case: tuple[int, str]) -> dict[str, list[Any]]:
        index, name = case
        train_texts, held_texts = _split(config, name, index)
        held = _encode(tokenizer, held_texts)
        rows = rate_records(scorer, _encode(tokenizer, train_texts), held, held_texts, dataset=name,
                            corpora="+".join(DATASETS[name]), depths=config.depths, discount=config.discount)
        coded = [coding_record(scorer, held.select(np.arange(config.n_coded)), dataset=name)] if config.n_coded else []
        return {"records": rows, "coding": coded}

    runs = run_cases(list(enumerate(DATASETS)), one_dataset, desc="datasets", show=show_progress)
    return Result(config, runs.tables["records"], runs.tables["coding"], seconds=time.perf_counter() - start)
