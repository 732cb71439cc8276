"""The regime a trained-model run is in, and whether it meets the theory's premise (docs/experiments.md §regime).

The compression model's claims are about a model whose pre-training data dwarfs the
behaviour data (k = |D_pre| / |D_a| of order 10^5 in the paper; at least
:data:`MIN_K` here), whose pre-training has converged, and which is then fine-tuned
gently. A run that does not meet this premise cannot test the claims: its verdicts say
"not detectable at this regime" instead of "fails", and :func:`training_regime` warns
with a :class:`RegimeWarning` that names what is missing.

>>> r = training_regime(pretrain_tokens=2_000_000, behaviour_tokens=10_000, transfer_tokens=5_000,
...                     pretrain_losses=[3.0] * 50 + [2.0] * 50, fine_tune_lr=1e-4, warmup_steps=10, warn=False)
>>> r.k, r.premise_met
(200.0, True)
>>> training_regime(pretrain_tokens=100_000, behaviour_tokens=10_000, transfer_tokens=0,
...                 pretrain_losses=[], fine_tune_lr=1e-3, warmup_steps=0, warn=False).problems
'k = 10 < 100; no pre-training loss curve to check; fine-tuning lr 0.001 > 0.0001; no warmup'
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tokentree.infra.results import Record

__all__ = ["MIN_K", "MAX_FINE_TUNE_LR", "PLATEAU_TOLERANCE", "RegimeWarning", "TrainingRegime", "plateau_slope",
           "training_regime"]

#: The smallest k = |D_pre| / |D_a| at which the theory's premise counts as met.
MIN_K = 100.0
#: The largest fine-tuning learning rate that counts as gentle (the paper fine-tunes at about 1e-5 to 1e-4).
MAX_FINE_TUNE_LR = 1e-4
#: Converged: over the last :data:`PLATEAU_SHARE` of pre-training, the loss moves less than this share of
#: itself per doubling of the steps.
PLATEAU_TOLERANCE = 0.02
PLATEAU_SHARE = 0.3


class RegimeWarning(UserWarning):
    """A trained-model run outside the theory's premise: its verdicts cannot detect the claimed effect."""


def plateau_slope(losses: Sequence[float], share: float = PLATEAU_SHARE) -> float:
    """Relative change of the loss per doubling of the steps over the last ``share`` of the curve (nan if too short).

    Fitted by least squares on log2(step) over per-step losses smoothed in 20 bins; negative: still improving.

    >>> round(plateau_slope([2.0] * 100), 6)
    0.0
    """
    y = np.asarray(losses, dtype=np.float64)
    start = int(len(y) * (1 - share))
    tail = y[start:]
    if tail.size < 20 or not np.all(np.isfinite(tail)):
        return math.nan
    bins = np.array_split(np.arange(start + 1, len(y) + 1), 20)
    x = np.log2([b.mean() for b in bins])
    means = np.array([y[b - 1].mean() for b in bins])
    return float(np.polyfit(x, means, 1)[0] / means.mean())


@dataclass(frozen=True)
class TrainingRegime(Record):
    """Where one trained run stands against the premise (the same for every seed of a config, up to tokens).

    ``k`` is pre-training tokens per behaviour (alignment) token; ``transfer_tokens`` the
    tokens of the later fine-tune (negatives, the inverse direction); ``plateau_slope`` of
    the pre-training loss (:func:`plateau_slope`); ``alignment_kl_nats`` how far the
    alignment moved the model (KL to theta_0 on held-out prompts, nan if not measured);
    ``pretrained_elsewhere``: theta_0 is a loaded model whose k and convergence come from its own pre-training.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "plateau_slope": "no pre-training loss curve (a loaded model) or one too short to fit",
        "alignment_kl_nats": "not measured by this experiment",
    }

    pretrain_tokens: int
    behaviour_tokens: int
    transfer_tokens: int
    k: float
    plateau_slope: float
    fine_tune_lr: float
    warmup_steps: int
    alignment_kl_nats: float
    premise_met: bool
    problems: str
    pretrained_elsewhere: bool = False

    @property
    def words(self) -> str:
        """The regime in one line, for a summary."""
        met = "premise met" if self.premise_met else f"premise NOT met ({self.problems})"
        where = " elsewhere" if self.pretrained_elsewhere else ""
        return (f"k = {self.k:.3g} ({self.pretrain_tokens:,} pre-training{where} / {self.behaviour_tokens:,} behaviour "
                f"tokens), plateau slope {self.plateau_slope:+.3g} per doubling, fine-tuning lr "
                f"{self.fine_tune_lr:g} with {self.warmup_steps} warmup steps: {met}")


def training_regime(
    *,
    pretrain_tokens: int,
    behaviour_tokens: int,
    transfer_tokens: int,
    pretrain_losses: Sequence[float],
    fine_tune_lr: float,
    warmup_steps: int,
    alignment_kl_nats: float = math.nan,
    pretrained_elsewhere: bool = False,
    warn: bool = True,
) -> TrainingRegime:
    """The regime of a run, checked against the premise; a :class:`RegimeWarning` names what is missing.

    ``pretrained_elsewhere``: a loaded model pre-trained on far more than this run sees (SmolLM2:
    trillions of tokens), so its k and convergence are taken from its pre-training, not this run.
    """
    k = pretrain_tokens / behaviour_tokens if behaviour_tokens else math.inf
    slope = plateau_slope(pretrain_losses)
    problems = []
    if not pretrained_elsewhere:
        if k < MIN_K:
            problems.append(f"k = {k:.3g} < {MIN_K:g}")
        if not math.isfinite(slope):
            problems.append("no pre-training loss curve to check")
        elif slope < -PLATEAU_TOLERANCE:
            problems.append(f"pre-training still improving ({slope:+.3g} of the loss per doubling of the steps)")
    if fine_tune_lr > MAX_FINE_TUNE_LR:
        problems.append(f"fine-tuning lr {fine_tune_lr:g} > {MAX_FINE_TUNE_LR:g}")
    if warmup_steps <= 0:
        problems.append("no warmup")
    regime = TrainingRegime(int(pretrain_tokens), int(behaviour_tokens), int(transfer_tokens), float(k), slope,
                            float(fine_tune_lr), int(warmup_steps), float(alignment_kl_nats), not problems,
                            "; ".join(problems), bool(pretrained_elsewhere))
    if warn and problems:
        warnings.warn(RegimeWarning(f"outside the theory's premise: {regime.problems}; the verdicts of this run "
                                    "cannot detect the claimed effects (docs/experiments.md §regime)"), stacklevel=2)
    return regime
