"""The next-token distributions of a causal LM for range coding, the same bits on both sides.

An encoder knows every token, so it reads the distributions from whole windows in batched
forward passes (the windows of :meth:`~tokentree.bridge.hf.HFScorer.token_log_probs`). A
decoder learns the tokens one at a time, so it must step the model. The two agree bit for
bit only if they do the same arithmetic, and a plain cached step does not: a one-row
matrix product takes another BLAS kernel than the window's many-row product, and the
attention of one query against a growing cache reduces in another order, so the
probabilities differ by about 1e-7 and a range decoder fed them decodes garbage.
Quantising the log-probabilities does not close the gap: with 49,152 entries per
distribution some entry always sits next to a rounding boundary.

So the decoder repeats the encoder's arithmetic instead, with three choices that the
encoder makes too:

* every window is padded to one length ``L`` and the decoder's key/value cache is a
  preallocated :class:`transformers.StaticCache` of that length, so the attention of a
  position always spans ``L`` keys, the later ones masked (exp of the mask is exactly 0);
* attention is torch's ``scaled_dot_product_attention`` on a CPU, which computes each query
  row on its own (four queries against ``L`` keys give the rows of the whole window's call,
  bit for bit, with the causal flag or a mask alike; measured with torch 2.13 here, and
  the round trips of tests/test_coding.py check it), and the eager ``softmax(q k^T) v`` of
  ``transformers`` on other devices, whose fused kernels are not known to do so;
* the decoder feeds the last :data:`STEP_ROWS` positions at every step (the new one and
  the three before it, rewritten with the same values), never one row alone: matrix
  products of four rows or more give each row the bits of the window's product.

Each row of logits then becomes a distribution by a softmax that treats every row on its
own (:func:`row_probs`), and ``constriction``'s categorical quantises it
deterministically. This rests on row-independent kernels, which hold for torch's CPU
BLAS here (tested by the round trips of tests/test_coding.py); the coded tokens carry a
CRC-32 so that a platform where they do not hold is named instead of returning wrong
tokens. Several sequences are decoded in lockstep, one row of the batch each.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.infra.errors import InputError
from tokentree.infra.optional import torch_module

__all__ = ["STEP_ROWS", "WindowPlan", "plan_windows", "row_probs", "attention_for", "coding_attention", "causal_mask",
           "cache_keyword", "window_logits", "LockstepStepper"]

#: Rows fed to the model at every decoding step: BLAS uses another kernel for fewer.
STEP_ROWS = 4
#: Logits held at once by the encoder (float32 entries): batches of windows are sized to it.
LOGITS_BUDGET = 64 * 2**20


@dataclass(frozen=True)
class WindowPlan:
    """How a sequence of ``n`` tokens (after ``start`` tokens: the BOS) is cut into coding windows.

    Window k reads positions ``begins[k] .. begins[k] + length`` of the full sequence
    (start tokens, then the tokens) and scores those from ``firsts[k]`` (an offset inside
    the window) on; windows are padded to ``length``. The plan depends only on the
    lengths, so the decoder rebuilds it from the side information.
    """

    length: int
    keep: int
    start: int

    def windows(self, n_full: int) -> Iterator[tuple[int, int, int]]:
        """(begin, first scored row, end) of each window of a full sequence of ``n_full`` positions."""
        scored_to, begin = self.start, 0
        while scored_to < n_full:
            end = min(begin + self.length, n_full)
            yield begin, scored_to - begin, end
            scored_to = end
            begin = scored_to - self.keep


def plan_windows(lengths: np.ndarray, *, max_context: int, stride: int, start: int) -> WindowPlan:
    """The windows of scoring (``max_context`` tokens, ``max_context - stride`` carried over), or one
    window of the longest full sequence when every sequence fits in one."""
    longest = int(lengths.max()) + start
    if longest <= max_context:
        return WindowPlan(length=max(longest, STEP_ROWS), keep=0, start=start)
    if max_context < 2 * STEP_ROWS:
        raise InputError(f"coding windows need max_context >= {2 * STEP_ROWS}; got {max_context}")
    return WindowPlan(length=max_context, keep=max_context - stride, start=start)


def row_probs(logits: Any, n_scored: int) -> np.ndarray:
    """Float32 logits (rows, vocabulary) as float64 probabilities over ids ``0..n_scored-1``, row by row.

    torch's softmax over the last axis works on each row alone (its max, its sum of
    exponentials, its own vector tail), so a row gets the same bits in a batch of one as in
    a batch of thousands.
    """
    torch = torch_module()
    rows = logits[:, :n_scored].double()
    return torch.softmax(rows, dim=-1).numpy()


def attention_for(device: Any) -> str:
    """The attention both coding sides use on ``device``: SDPA on a CPU (checked there to give each query row the
    same bits whatever the batch of rows), eager elsewhere (no other device has been checked)."""
    return "sdpa" if torch_module().device(device).type == "cpu" else "eager"


@contextmanager
def coding_attention(model: Any, device: Any) -> Iterator[None]:
    """Within the block, ``model`` computes attention as both coding sides must (:func:`attention_for`)."""
    config = model.config
    was = getattr(config, "_attn_implementation", None)
    config._attn_implementation = attention_for(device)
    try:
        yield
    finally:
        config._attn_implementation = was


def causal_mask(model: Any, lanes: int, begin: int, end: int, length: int, device: Any) -> Any:
    """The 4D attention mask (lanes, 1, rows, ``length``) of rows ``begin..end-1``: each sees the keys up to itself.

    Both sides pass it explicitly, so attention always spans the window's ``length`` keys: left to itself,
    transformers gives SDPA no mask and fewer keys on a first step into an empty cache. SDPA takes it as
    booleans; eager attention adds a 4D mask to the scores as it is, so there it is 0 or the dtype's minimum.
    """
    torch = torch_module()
    rows = torch.arange(begin, end, device=device)[:, None]
    seen = (torch.arange(length, device=device)[None] <= rows)[None, None].expand(lanes, 1, -1, -1)
    if getattr(model.config, "_attn_implementation", None) != "eager":
        return seen
    dtype = next(model.parameters()).dtype
    return torch.zeros(seen.shape, dtype=dtype, device=device).masked_fill(~seen, torch.finfo(dtype).min)


_KEYWORD: dict[type, str] = {}


def cache_keyword(model: Any) -> str:
    """What ``model.forward`` calls its KV cache: "cache" (transformers 5) or "past_key_values" (read once per
    class; a peft model passes it on to the model it wraps, whose name it is)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    kind = type(model)
    if kind not in _KEYWORD:
        params = inspect.signature(kind.forward).parameters
        _KEYWORD[kind] = "cache" if "cache" in params else "past_key_values"
    return _KEYWORD[kind]


def window_logits(model: Any, windows: np.ndarray, firsts: np.ndarray, device: Any) -> Iterator[tuple[int, Any]]:
    """(row offset, float32 logits (rows, vocabulary)) of each padded window in turn: the rows from the
    one before its first scored row (``firsts``) on, computed in batches within :data:`LOGITS_BUDGET`."""
    torch = torch_module()
    length = windows.shape[1]
    vocab = int(model.get_output_embeddings().weight.shape[0])
    per = max(1, LOGITS_BUDGET // (length * vocab))
    for b in range(0, windows.shape[0], per):
        keep = length - int(firsts[b : b + per].min()) + 1  # the lm_head skips the context rows
        with torch.inference_mode(), coding_attention(model, device):
            ids = torch.from_numpy(windows[b : b + per]).to(device)
            mask = causal_mask(model, ids.shape[0], 0, length, length, device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=keep).logits
            logits = logits.float().cpu()
        for row in logits:
            yield length - keep, row


class LockstepStepper:
    """The decoder's side: ``lanes`` sequences stepped together through windows of one plan.

    :meth:`begin` starts a window from its known rows (the carried-over context);
    :meth:`logits` gives the logits of row ``j`` once rows ``0..j`` are known, computing
    them exactly as :func:`window_logits` does for the whole window.
    """

    def __init__(self, model: Any, lanes: int, length: int, device: Any) -> None:
        from transformers import StaticCache

        self.model, self.device, self.lanes, self.length = model, device, lanes, length
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        self.keyword = cache_keyword(model)
        self.rows = np.zeros((lanes, max(length, STEP_ROWS)), dtype=np.int64)
        self.cached = 0  # rows 0..cached-1 of the window hold their final keys and values

    def _forward(self, begin: int, end: int) -> Any:
        torch = torch_module()
        ids = torch.from_numpy(self.rows[:, begin:end]).to(self.device)
        pos = torch.arange(begin, end, device=self.device)[None].expand(self.lanes, -1)
        with torch.inference_mode(), coding_attention(self.model, self.device):
            for layer in self.cache.layers:  # (inside: off the CPU the cache's length was made in inference mode)
                if getattr(layer, "is_initialized", False):
                    if not hasattr(layer, "cumulative_length"):  # pragma: no cover - another transformers layout
                        raise InputError("this transformers version's StaticCache has no cumulative_length; exact "
                                         "decoding needs transformers 5.x")
                    length: Any = layer.cumulative_length
                    length.fill_(begin)
            mask = causal_mask(self.model, self.lanes, begin, end, self.length, self.device)
            out = self.model(input_ids=ids, position_ids=pos, attention_mask=mask, use_cache=True,
                             **{self.keyword: self.cache})
        return out.logits

    def begin(self, known: np.ndarray) -> None:
        """A new window whose first rows are ``known`` (lanes, k); the rest is filled as it is decoded."""
        self.rows[:] = 0
        self.rows[:, : known.shape[1]] = known
        self.cached = 0
        bulk = known.shape[1] - STEP_ROWS  # all but the last rows in one pass, when it is wide enough
        if bulk >= STEP_ROWS:
            self._forward(0, bulk)
            self.cached = bulk

    def logits(self, j: int) -> Any:
        """Float32 logits (lanes, vocabulary) after row ``j`` (rows 0..j set in ``self.rows``)."""
        a = max(0, j - STEP_ROWS + 1)
        if a > self.cached:  # pragma: no cover - the decoder asks for every row in order
            raise AssertionError("rows must be asked for in order")
        logits = self._forward(a, a + STEP_ROWS)
        self.cached = max(self.cached, j + 1)
        return logits[:, j - a].float().cpu()
