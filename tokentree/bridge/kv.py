"""Attention keys and values of Llama-style models: captured, compared, patched, and regularised.

Every decoder layer of a Llama-style ``transformers`` model (the tiny Llama, SmolLM2, any
``LlamaForCausalLM``-like model, grouped-query attention included) projects its hidden
states to keys and values with ``self_attn.k_proj`` and ``self_attn.v_proj``. Those two
modules are the seam: a forward hook on them sees the keys and values of every position
(before the rotary embedding, which is the same for two models at the same position, so
replacing the projection is replacing the key), and can replace them.

* :func:`capture_kv`: the keys and values of every layer during a forward pass;
* :func:`patch_kv`: a forward pass in which chosen positions of every layer read another
  run's keys and values (patching the chat-template prefix with the original model's);
* :func:`kv_drift`: how far a model's keys and values moved from a reference's, per layer
  and position group;
* :func:`treft_penalty`: TReFT's regulariser, the mean over positions and layers of
  ||K - K_0||^2 / ||K_0||^2 + ||V - V_0||^2 / ||V_0||^2, differentiable in K and V.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tokentree.infra.errors import InputError

__all__ = ["KV", "projections", "capture_kv", "patch_kv", "kv_drift", "treft_penalty"]


def _torch() -> Any:
    from tokentree.infra.optional import torch_module

    return torch_module()


def _is_mask(positions: Any) -> bool:
    return hasattr(positions, "dtype") and str(positions.dtype) == "torch.bool"


#: A slice or index list (the same positions in every row), or a boolean tensor (batch, positions).
Positions = Any


@dataclass
class KV:
    """Keys and values of every layer from one forward pass: tensors (batch, positions, kv heads x head dim)."""

    keys: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        return len(self.keys)

    def at(self, positions: Sequence[int] | slice) -> KV:
        """Only the given positions."""
        return KV([k[:, positions] for k in self.keys], [v[:, positions] for v in self.values])

    def detached(self) -> KV:
        return KV([k.detach() for k in self.keys], [v.detach() for v in self.values])


def projections(model: Any) -> list[tuple[Any, Any]]:
    """(k_proj, v_proj) of every decoder layer, in order; a clear error for other architectures."""
    base = getattr(model, "model", None)
    base = getattr(base, "model", base) if getattr(base, "layers", None) is None else base  # a PEFT wrapper
    layers = getattr(base, "layers", None)
    if layers is None:
        raise InputError(f"{type(model).__name__} is not a Llama-style decoder (no model.layers); key/value "
                         "patching needs self_attn.k_proj and v_proj in every layer")
    out = []
    for i, layer in enumerate(layers):
        attn = getattr(layer, "self_attn", None)
        k, v = getattr(attn, "k_proj", None), getattr(attn, "v_proj", None)
        if k is None or v is None:
            raise InputError(f"layer {i} of {type(model).__name__} has no self_attn.k_proj / v_proj")
        out.append((k, v))
    return out


@contextmanager
def capture_kv(model: Any, *, detach: bool = True) -> Iterator[KV]:
    """Within the block, every forward pass of ``model`` records its keys and values (the last pass wins)."""
    kv = KV()
    pairs = projections(model)
    kv.keys[:] = [None] * len(pairs)
    kv.values[:] = [None] * len(pairs)
    handles = []

    def recorder(store: list[Any], i: int) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            store[i] = output.detach() if detach else output
        return hook

    for i, (k, v) in enumerate(pairs):
        handles.append(k.register_forward_hook(recorder(kv.keys, i)))
        handles.append(v.register_forward_hook(recorder(kv.values, i)))
    try:
        yield kv
    finally:
        for h in handles:
            h.remove()


@contextmanager
def patch_kv(model: Any, source: KV, positions: Positions, *, layers: Sequence[int] | None = None
             ) -> Iterator[None]:
    """Within the block, ``positions`` of the chosen ``layers`` (all by default) read ``source``'s keys and values.

    ``source`` comes from :func:`capture_kv` on the same input; a batch of one is broadcast
    to any batch. ``positions`` is a slice or index list (the same in every row) or a
    boolean mask (batch, positions) for positions that differ from row to row. Use it on
    whole-sequence forward passes (not on cached one-token steps).
    """
    pairs = projections(model)
    if source.n_layers != len(pairs):
        raise InputError(f"the keys and values come from a model of {source.n_layers} layers; this one has "
                         f"{len(pairs)}")
    chosen = range(len(pairs)) if layers is None else layers
    handles = []

    def replacer(stored: Any) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> Any:
            other = stored.to(output.dtype).expand_as(output)
            if _is_mask(positions):
                return _torch().where(positions[..., None], other, output)
            patched = output.clone()
            patched[:, positions] = other[:, positions]
            return patched
        return hook

    for i in chosen:
        k, v = pairs[i]
        handles.append(k.register_forward_hook(replacer(source.keys[i])))
        handles.append(v.register_forward_hook(replacer(source.values[i])))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _relative(a: Any, b: Any, positions: Positions) -> Any:
    """||a - b||^2 / ||b||^2 per position (over the feature axis), averaged over the chosen positions.

    ``positions`` is a slice or index list (every row), or a boolean mask (batch, positions).
    """
    per = ((a - b) ** 2).sum(-1) / (b**2).sum(-1).clamp_min(1e-12)  # (batch, positions)
    if _is_mask(positions):
        chosen = positions.to(per.device)
        return (per * chosen).sum() / chosen.sum().clamp_min(1)
    return per[:, positions].mean()


def kv_drift(kv: KV, reference: KV, positions: Positions) -> list[tuple[float, float]]:
    """Per layer: (relative key drift, relative value drift) at ``positions`` (a slice, indices or a mask)."""
    if kv.n_layers != reference.n_layers:
        raise InputError("the two captures come from models with different numbers of layers")
    return [(float(_relative(k, k0, positions)), float(_relative(v, v0, positions)))
            for k, v, k0, v0 in zip(kv.keys, kv.values, reference.keys, reference.values, strict=True)]


def treft_penalty(kv: KV, reference: KV, positions: Positions) -> Any:
    """TReFT: mean over layers (and positions) of ||K - K_0||^2 / ||K_0||^2 + ||V - V_0||^2 / ||V_0||^2."""
    if kv.n_layers != reference.n_layers or kv.n_layers == 0:
        raise InputError("the penalty needs captures of the same model's layers")
    terms = [_relative(k, k0, positions) + _relative(v, v0, positions)
             for k, v, k0, v0 in zip(kv.keys, kv.values, reference.keys, reference.values, strict=True)]
    return sum(terms) / len(terms)
