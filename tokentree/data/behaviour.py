"""Behaviour scorers: how aligned each sampled response is, behind one protocol.

A :class:`BehaviourScorer` maps responses (and their prompts) to numbers in [0, 1]: 1 is
the aligned behaviour (positive, safe, structured, true), 0 the other, and nan where the
behaviour cannot be read from the response (the experiment reports how many). Three
kinds come with tokentree:

* :class:`RuleScorer`: exact, for the synthetic behaviour language
  (:class:`~tokentree.data.language.BehaviourLanguage`);
* :class:`VaderScorer`: English sentiment from the offline VADER lexicon
  (``vaderSentiment``): (compound + 1) / 2;
* :class:`CallableScorer`: any function a user brings (a classifier, a judge model).

>>> from tokentree.data.language import BehaviourLanguage
>>> RuleScorer(BehaviourLanguage(), "style").score(["step one : bake the bread . step two : ..."]).tolist()
[1.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tokentree.data.language import AXES, BehaviourLanguage
from tokentree.infra.errors import InputError
from tokentree.infra.optional import optional_import

__all__ = ["BehaviourScorer", "RuleScorer", "VaderScorer", "CallableScorer", "aligned_share"]


@runtime_checkable
class BehaviourScorer(Protocol):
    """Anything that scores responses in [0, 1] (1: the aligned behaviour; nan: unreadable)."""

    def score(self, responses: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray: ...


def _prompts(responses: Sequence[str], prompts: Sequence[str] | None) -> Sequence[str | None]:
    if prompts is None:
        return [None] * len(responses)
    if len(prompts) != len(responses):
        raise InputError(f"{len(prompts)} prompts for {len(responses)} responses; give one prompt per response")
    return prompts


@dataclass(frozen=True)
class RuleScorer:
    """The exact rule of one axis of a behaviour language (1.0 aligned, 0.0 misaligned, nan unreadable)."""

    language: BehaviourLanguage
    axis: str

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise InputError(f"axis must be one of {AXES}; got {self.axis!r}")

    def score(self, responses: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray:
        out = np.empty(len(responses))
        for i, (response, prompt) in enumerate(zip(responses, _prompts(responses, prompts), strict=True)):
            label = self.language.label(response, self.axis, prompt=prompt)
            out[i] = math.nan if label is None else float(label)
        return out


class VaderScorer:
    """English sentiment from the VADER lexicon (offline): (compound + 1) / 2, so 1 is most positive."""

    def __init__(self) -> None:
        vader = optional_import("vaderSentiment.vaderSentiment", "VaderScorer", "pip install 'tokentree[torch]'")
        self._analyser = vader.SentimentIntensityAnalyzer()

    def score(self, responses: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray:
        _prompts(responses, prompts)
        return np.array([(self._analyser.polarity_scores(r)["compound"] + 1.0) / 2.0 for r in responses])


@dataclass(frozen=True)
class CallableScorer:
    """Wraps ``function(responses, prompts) -> scores`` (any classifier), checking what it returns."""

    function: Callable[[Sequence[str], Sequence[str] | None], Any]

    def score(self, responses: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray:
        if prompts is not None:
            _prompts(responses, prompts)
        got: np.ndarray = np.asarray(self.function(responses, prompts), dtype=np.float64)
        if got.shape != (len(responses),):
            raise InputError(f"the scoring function returned shape {got.shape} for {len(responses)} responses")
        finite = got[np.isfinite(got)]
        if np.any((finite < 0) | (finite > 1)):
            raise InputError("the scoring function returned scores outside [0, 1]; rescale them")
        return got


def aligned_share(scores: np.ndarray) -> tuple[float, int]:
    """(mean score over the readable responses, how many were unreadable)."""
    scores = np.asarray(scores, dtype=float)
    readable = scores[np.isfinite(scores)]
    return (float(readable.mean()) if readable.size else math.nan), int(scores.size - readable.size)
