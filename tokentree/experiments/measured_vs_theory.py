"""E3 measured-vs-theory: a real model's bits per token against the token-tree rates (docs/experiments.md §E3).

D_p (generic text: Python's pydoc paragraphs and chatterbot dialogues), D_a (positive
tweets) and D_t (negative tweets), tokenized with the model's own tokenizer and split
into a training part and held-out texts. On the held-out texts: the measured bits per
token of the model (SmolLM2-135M-Instruct by default), and the bits per token of the
token tree of each dataset's training part used as an order-(d-1) context model with
interpolated absolute discounting, d = 1..8. A range coder then turns the model's
probabilities into a real bitstream for a few held-out texts and decodes it back.

    tokentree run measured-vs-theory              # a few minutes on 2 cores (SmolLM2 scoring)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.bridge.coding import decode_tokens, encode_tokens
from tokentree.bridge.hf import DEVICES
from tokentree.bridge.scoring import measure_rate
from tokentree.bridge.tree_model import fit_tree_model
from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.framework.report import ExperimentReport
from tokentree.infra.checks import check_choice, check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.infra.results import Record

__all__ = ["NAME", "Config", "RateRecord", "CodingRecord", "Result", "run"]

NAME = "measured-vs-theory"

DATASETS = {
    "D_p": ("pydoc-paragraphs", "chatterbot"),
    "D_a": ("tweets-positive",),
    "D_t": ("tweets-negative",),
}


@dataclass(frozen=True)
class Config:
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

    seed: int = 0
    model: str = "smollm2"
    device: str = "auto"
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    discount: float = 0.75
    n_train: int = 3000
    n_heldout: int = 60
    n_coded: int = 2
    max_context: int = 1024
    stride: int = 512
    batch_size: int = 8
    threads: int = 1

    def __post_init__(self) -> None:
        check_int(self.seed, "seed", minimum=0)
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"model must be 'smollm2', a model folder, a .gguf file or a hub name; got {self.model!r}")
        check_choice(self.device, "device", DEVICES)
        check_list(self.depths, "depths", lambda v, n: check_int(v, n, minimum=1, maximum=64))
        check_float(self.discount, "discount", minimum=0.0, maximum=0.999999)
        check_int(self.n_train, "n_train", minimum=1)
        check_int(self.n_heldout, "n_heldout", minimum=1)
        check_int(self.n_coded, "n_coded", minimum=0)
        if self.n_coded > self.n_heldout:
            raise InputError(f"n_coded ({self.n_coded}) must be at most n_heldout ({self.n_heldout})")
        check_int(self.max_context, "max_context", minimum=2)
        check_int(self.stride, "stride", minimum=1)
        if self.stride > self.max_context:
            raise InputError(f"stride ({self.stride}) must be at most max_context ({self.max_context})")
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.threads, "threads", minimum=1)

    @classmethod
    def quick(cls) -> Config:
        return cls(depths=(1, 2, 3), n_train=300, n_heldout=6, n_coded=1)


@dataclass(frozen=True)
class RateRecord(Record):
    """Held-out bits per token of one dataset: the model's, and the depth-d tree model's."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"model_bits_per_byte": "no texts were given to count bytes"}

    dataset: str
    corpora: str
    depth: int
    n_tokens: int
    n_bytes: int
    model_bits_per_token: float
    model_bits_per_byte: float
    tree_bits_per_token: float
    raw_bits_per_token: float


@dataclass(frozen=True)
class CodingRecord(Record):
    """One range-coded bitstream: its length against the ideal code length, and the round trip."""

    dataset: str
    n_tokens: int
    n_bits: int
    ideal_bits: float
    decoded_exactly: bool


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[RateRecord]
    coding: Sequence[CodingRecord]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"coding": self.coding}

    def _by_dataset(self) -> dict[str, list[RateRecord]]:
        out: dict[str, list[RateRecord]] = {}
        for r in self.records:
            out.setdefault(r.dataset, []).append(r)
        return out

    def _table(self) -> list[str]:
        depths = self.config.depths
        head = (
            "| dataset | held-out tokens | model bits/token | model bits/byte | "
            + " | ".join(f"tree d={d}" for d in depths)
            + " |"
        )
        lines = [head, "|" + "---|" * (4 + len(depths))]
        for name, rows in self._by_dataset().items():
            first = rows[0]
            lines.append(
                f"| {name} | {first.n_tokens} | {first.model_bits_per_token:.3f} | "
                f"{first.model_bits_per_byte:.3f} | "
                + " | ".join(f"{r.tree_bits_per_token:.3f}" for r in rows)
                + " |"
            )
        return lines

    def terminal_summary(self) -> str:
        lines = [f"measured-vs-theory ({self.config.model}): held-out bits per token", *self._table()]
        for c in self.coding:
            lines.append(
                f"range coding {c.dataset}: {c.n_tokens} tokens, {c.n_bits} bits vs ideal "
                f"{c.ideal_bits:.1f} (+{c.n_bits - c.ideal_bits:.1f}); decoded exactly: {c.decoded_exactly}"
            )
        return "\n".join(lines)

    def summary_markdown(self) -> str:
        c = self.config
        out = [
            "# measured-vs-theory: a real model against token-tree context models",
            "",
            f"Model {c.model}; trees fitted on {c.n_train} training texts per dataset, everything scored on "
            f"{c.n_heldout} held-out texts per dataset (seed {c.seed}); tree models use interpolated absolute "
            f"discounting (D = {c.discount}). Run time {self.seconds:.0f} s. Columns: docs/experiments.md §E3.",
            "",
        ]
        out += self._table()
        out += [
            "",
            "Range coding with the model's probabilities (one bitstream per dataset):",
            "",
            "| dataset | tokens | bits | ideal bits | overhead | decoded exactly |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x.dataset} | {x.n_tokens} | {x.n_bits} | {x.ideal_bits:.1f} | "
            f"{x.n_bits - x.ideal_bits:.1f} | {x.decoded_exactly} |"
            for x in self.coding
        ]
        out += ["", "![bits per token against depth](bits_vs_depth.png)"]
        return "\n".join(out) + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, ax = new_figure()
        for i, (name, rows) in enumerate(self._by_dataset().items()):
            ax.plot(
                [r.depth for r in rows],
                [r.tree_bits_per_token for r in rows],
                "o-",
                color=COLOURS[i],
                label=f"{name}: token tree (order d-1 context model)",
            )
            ax.axhline(
                rows[0].model_bits_per_token,
                color=COLOURS[i],
                ls="--",
                lw=1.2,
                label=f"{name}: {self.config.model} (measured)",
            )
        ax.set_xlabel("tree depth d (context of d - 1 tokens)")
        ax.set_ylabel("bits per token on held-out text")
        ax.set_title("A pretrained model against token-tree context models")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.savefig(folder / "bits_vs_depth.png")


def _load_model(config: Config) -> tuple[Any, Any]:
    from tokentree.bridge.hf import HFScorer, load_model

    model, tokenizer = load_model(config.model, device=config.device)
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise InputError(f"{config.model}: its tokenizer has neither a BOS nor an EOS token to start sequences with")
    scorer = HFScorer(
        model,
        bos_token_id=int(bos),
        max_context=config.max_context,
        stride=config.stride,
        batch_size=config.batch_size,
        threads=config.threads,
    )
    return scorer, tokenizer


def _split(config: Config, name: str, index: int) -> tuple[list[str], list[str]]:
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
    start = time.perf_counter()
    scorer, tokenizer = _load_model(config)
    rows, coding = [], []
    for index, name in enumerate(progress(list(DATASETS), desc="datasets", show=show_progress)):
        train_texts, held_texts = _split(config, name, index)
        train, held = _encode(tokenizer, train_texts), _encode(tokenizer, held_texts)
        measured = measure_rate(scorer, held, texts=held_texts)
        for d in config.depths:
            model = fit_tree_model(train, depth=d, vocab_size=scorer.vocab_size, discount=config.discount)
            rows.append(
                RateRecord(
                    dataset=name,
                    corpora="+".join(DATASETS[name]),
                    depth=int(d),
                    n_tokens=measured.n_tokens,
                    n_bytes=int(measured.n_bytes or 0),
                    model_bits_per_token=measured.bits_per_token,
                    model_bits_per_byte=measured.bits_per_byte,
                    tree_bits_per_token=measure_rate(model, held).bits_per_token,
                    raw_bits_per_token=math.log2(scorer.vocab_size),
                )
            )
        if config.n_coded:
            sample = held.select(np.arange(config.n_coded))
            coded = encode_tokens(scorer, sample)
            decoded = decode_tokens(scorer, coded)
            coding.append(
                CodingRecord(
                    dataset=name,
                    n_tokens=int(sample.n_tokens),
                    n_bits=coded.n_bits,
                    ideal_bits=coded.ideal_bits,
                    decoded_exactly=all(np.array_equal(a, b) for a, b in zip(decoded, sample, strict=True)),
                )
            )
    return Result(config, rows, coding, seconds=time.perf_counter() - start)
