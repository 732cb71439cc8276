"""Training windows for a causal LM: cut per sequence, or packed into full windows; and their batches.

Three layouts (``TrainSettings.packing``):

* ``"off"``: each sequence on its own, cut into windows of ``context + 1`` tokens that
  overlap by one token (the overlap is the input for the next window's first target, so
  every target is trained exactly once); short sequences leave padding in their batch;
* ``"confined"``: all sequences joined end to end and the stream cut the same way, so
  every window but the last is full; the position ids restart at every sequence start,
  which ``transformers`` reads as packed sequences and confines attention to each one (a
  block-diagonal mask), so every token sees exactly what it sees on its own;
* ``"open"``: joined the same way, attention crossing from one sequence into the next
  (what pre-training on a stream does): plain causal attention, the fastest.

The first token of every sequence is never a target, so no loss is counted across a
join. A batch never needs an attention mask: its rows are right-padded and causal
attention never looks ahead, so real tokens never see the padding (and the padding of a
confined batch is a segment of its own, position ids from 0). The model then takes its
causal fast path.

:func:`epoch_batches` draws an epoch's batches from ``(seed, epoch)``; ``bucketed=True``
sorts windows by length first and shuffles the batches, so a batch holds windows of
similar length (less padding) while the order stays random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.data.chat import TokenizedExamples
from tokentree.infra.checks import check_choice, check_int
from tokentree.infra.errors import InputError

__all__ = ["PACKING", "IGNORE", "TrainingWindows", "cut_windows", "pack_windows", "make_windows", "epoch_batches",
           "Batch", "collate"]

PACKING = ("off", "confined", "open")
#: The label of a position that is not a training target (transformers' ignore index).
IGNORE = -100


@dataclass(frozen=True, eq=False)
class TrainingWindows:
    """Windows of token ids, their training targets, and (confined packing) their position ids."""

    ids: tuple[np.ndarray, ...]
    targets: tuple[np.ndarray, ...]
    positions: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_target_tokens(self) -> int:
        return int(sum(int(t.sum()) for t in self.targets))


def _cut(seq: np.ndarray, mask: np.ndarray, context: int, starts: np.ndarray | None,
         out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]) -> None:
    for begin in range(0, max(1, seq.shape[0] - 1), context):
        piece_mask = mask[begin : begin + context + 1].copy()
        piece_mask[0] = False
        if piece_mask.any():
            out[0].append(seq[begin : begin + context + 1])
            out[1].append(piece_mask)
            if starts is not None:
                out[2].append(_positions(starts[begin : begin + context + 1]))


def _positions(starts: np.ndarray) -> np.ndarray:
    """Position ids that restart at 0 at the window's start and at every True of ``starts``."""
    index = np.arange(starts.shape[0])
    restart = starts.copy()
    restart[0] = True
    last = np.maximum.accumulate(np.where(restart, index, 0))
    return (index - last).astype(np.int64)


def cut_windows(data: TokenizedExamples, context: int) -> TrainingWindows:
    """Each sequence cut into windows of ``context + 1`` tokens overlapping by one (``packing="off"``)."""
    check_int(context, "context", minimum=1)
    out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for seq, mask in zip(data.sequences, data.masks, strict=True):
        _cut(seq, mask, context, None, out)
    return TrainingWindows(tuple(out[0]), tuple(out[1]))


def pack_windows(data: TokenizedExamples, context: int, *, confine: bool = True) -> TrainingWindows:
    """All sequences joined in order, cut into windows of ``context + 1`` tokens overlapping by one.

    ``confine``: position ids restart at each sequence, so attention stays inside it.
    """
    check_int(context, "context", minimum=1)
    stream = np.concatenate(data.sequences)
    mask = np.concatenate([np.concatenate([[False], m[1:]]) for m in data.masks])
    starts = np.zeros(stream.shape[0], dtype=bool)
    starts[np.cumsum([0] + [s.shape[0] for s in data.sequences[:-1]])] = True
    out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    _cut(stream, mask, context, starts if confine else None, out)
    return TrainingWindows(tuple(out[0]), tuple(out[1]), tuple(out[2]) if confine else None)


def make_windows(data: TokenizedExamples, context: int, packing: str = "off") -> TrainingWindows:
    """The windows of ``packing`` ("off", "confined" or "open"; see the module docstring)."""
    check_choice(packing, "packing", PACKING)
    if packing == "off":
        return cut_windows(data, context)
    return pack_windows(data, context, confine=packing == "confined")


def epoch_batches(windows: TrainingWindows, batch_size: int, *, seed: int, epoch: int,
                  bucketed: bool = False) -> list[np.ndarray]:
    """The batches (window indices) of one epoch, drawn from ``(seed, epoch)``."""
    check_int(batch_size, "batch_size", minimum=1)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(windows))
    if not bucketed:
        return [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    lengths = np.array([w.shape[0] for w in windows.ids])
    by_length = order[np.argsort(-lengths[order], kind="stable")]
    batches = [by_length[b : b + batch_size] for b in range(0, len(by_length), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass(frozen=True)
class Batch:
    """A batch as torch tensors: ``input_ids``, ``labels`` (IGNORE off target), ``attention`` (1 on real
    tokens, for regularizers; never given to the model) and ``position_ids`` (None: 0.. in every row)."""

    input_ids: Any
    labels: Any
    attention: Any
    position_ids: Any | None

    def model_inputs(self) -> dict[str, Any]:
        inputs = {"input_ids": self.input_ids, "labels": self.labels, "use_cache": False}
        if self.position_ids is not None:
            inputs["position_ids"] = self.position_ids
        return inputs

    def to(self, device: Any) -> Batch:
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Batch(move(self.input_ids), move(self.labels), move(self.attention), move(self.position_ids))


def collate(ids: list[np.ndarray], targets: list[np.ndarray], positions: list[np.ndarray] | None,
            *, pad: int) -> Batch:
    """Right-padded tensors of the windows; padding of a confined batch gets its own positions from 0."""
    from tokentree.infra.optional import torch_module

    torch = torch_module()
    if not ids or len(ids) != len(targets) or (positions is not None and len(positions) != len(ids)):
        raise InputError("a batch needs one target mask (and one position array) per window, and a window")
    width = max(w.shape[0] for w in ids)
    rows = len(ids)
    input_ids = np.full((rows, width), pad, dtype=np.int64)
    labels = np.full((rows, width), IGNORE, dtype=np.int64)
    attention = np.zeros((rows, width), dtype=np.int64)
    pos = None if positions is None else np.zeros((rows, width), dtype=np.int64)
    for r, (w, m) in enumerate(zip(ids, targets, strict=True)):
        n = w.shape[0]
        input_ids[r, :n] = w
        labels[r, :n] = np.where(m, w, IGNORE)
        attention[r, :n] = 1
        if pos is not None and positions is not None:
            pos[r, :n] = positions[r]
            pos[r, n:] = np.arange(width - n)
    return Batch(torch.from_numpy(input_ids), torch.from_numpy(labels), torch.from_numpy(attention),
                 None if pos is None else torch.from_numpy(pos))
