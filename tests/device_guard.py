"""A CPU stand-in for an accelerator, to test the ``--device cuda`` path on a machine without a GPU.

Inside :class:`PretendAccelerator` code runs on the CPU as usual, but every tensor is tracked as
living on the *device* (where ``.to(device)``, ``device=`` and the model's parameters put it) or
on the *host* (what ``torch.tensor``, ``torch.from_numpy``, ``.cpu()`` and factories without a
``device`` make), and what a GPU would refuse raises :class:`DeviceMixError` at the line that
does it:

- an operation on device tensors and host tensors together (a host 0-dim tensor is allowed in
  element-wise operations, as CUDA allows it, and nowhere else);
- indexing a host tensor with device indices, and assigning at tensor indices values from the
  other side;
- ``.numpy()`` or ``np.asarray`` of a device tensor.

An in-place operation (``copy_``, ``add_``, ...) leaves its target where it was. The pretend device
is the CPU, so code that branches on the device type takes its CPU branch here (the coder's
attention: tests/test_coding.py runs the other branch on its own).

``.to(device)`` of a host tensor and ``.cpu()`` of a device tensor copy, as a transfer does, so a
tensor left behind keeps its side. Parameters keep their side through ``Module.to`` (which swaps
``.data``) and ``copy.deepcopy`` (which makes new ``Parameter`` objects). Tensors made before
the guard was entered, or by code it does not see (``safetensors.load_file``), are not tracked
until moved and never raise: run the whole flow inside it. Random generators are not checked
(a CPU ``torch.Generator`` passed with device tensors fails on a GPU; the package passes none).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

DEVICE, HOST = "device", "host"
_SIDE = "_pretend_side"

_FACTORIES = frozenset({"zeros", "ones", "full", "empty", "arange", "range", "linspace", "logspace", "eye",
                        "tensor", "as_tensor", "rand", "randn", "randint", "randperm", "tril_indices",
                        "triu_indices", "empty_strided", "scalar_tensor", "from_numpy", "frombuffer"})
_LIKE = frozenset({"zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "randint_like"})
#: Operations that take no host 0-dim tensor beside device ones on CUDA (it allows them in element-wise ones only).
_NOT_ELEMENTWISE = frozenset({"stack", "cat", "concat", "concatenate", "hstack", "vstack", "index_select", "gather",
                              "scatter", "scatter_add", "index_add", "index_add_", "index_copy", "embedding", "take",
                              "take_along_dim", "matmul", "mm", "bmm", "linear", "conv1d", "searchsorted"})
_IN_PLACE_OPERATORS = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__",
                                 "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__"})
_UNCHECKED = frozenset({"to", "cpu", "cuda", "copy_", "__set__", "_has_compatible_shallow_copy_type",
                        "__getitem__", "__setitem__"})


class DeviceMixError(AssertionError):
    """What a GPU run would refuse: tensors of the device and the host in one operation, or device data read as
    numpy."""


def _tensors(values: Any) -> Iterator[Any]:
    """The tensors in ``values``: a tensor, or tuples, lists and dicts of them (as torch functions take and give)."""
    if isinstance(values, torch.Tensor):
        yield values
    elif isinstance(values, tuple | list):
        for v in values:
            yield from _tensors(v)
    elif isinstance(values, dict):
        for v in values.values():
            yield from _tensors(v)


def side(tensor: Any) -> str | None:
    """"device", "host", or None for a tensor the guard has not seen made."""
    return getattr(tensor, _SIDE, None) if isinstance(tensor, torch.Tensor) else None


def _mark(out: Any, where: str | None) -> None:
    if where is None:
        return
    for tensor in _tensors(out):
        setattr(tensor, _SIDE, where)


def _survey(values: Any, *, scalars: bool = False) -> tuple[bool, bool, bool]:
    """(any device tensor, any host tensor, any host tensor a GPU refuses beside device ones: of one dimension or
    more, or any with ``scalars``) in ``values``."""
    device = host = refused = False
    for tensor in _tensors(values):
        s = getattr(tensor, _SIDE, None)
        if s == DEVICE:
            device = True
        elif s == HOST:
            host = True
            refused = refused or scalars or tensor.dim() > 0
    return device, host, refused


def _target(args: tuple, kwargs: dict) -> str | None:
    """Where ``tensor.to(*args, **kwargs)`` puts a tensor: the device, the side of a tensor given, or unchanged."""
    if kwargs.get("device") is not None or any(isinstance(a, str | torch.device) for a in args):
        return DEVICE
    for a in args:
        if isinstance(a, torch.Tensor):
            return side(a)
    return None


class PretendAccelerator(TorchFunctionMode):
    """Track device and host tensors on the CPU and raise :class:`DeviceMixError` where a GPU would (module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.transfers = 0  # tensors moved from the host to the device

    def __enter__(self) -> PretendAccelerator:
        self._new_parameter = torch.nn.Parameter.__new__

        def new_parameter(cls: Any, data: Any = None, requires_grad: bool = True) -> Any:
            made = self._new_parameter(cls, data, requires_grad)
            _mark(made, side(data))
            return made

        torch.nn.Parameter.__new__ = new_parameter  # type: ignore[method-assign]
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        torch.nn.Parameter.__new__ = self._new_parameter  # type: ignore[method-assign]

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__get__":  # a property: .shape, .device, .data, .grad, ...
            out = func(*args, **kwargs)
            if isinstance(out, torch.Tensor) and side(args[0]) is not None:
                _mark(out, side(args[0]))
            return out
        if name in ("numpy", "__array__") and side(args[0]) == DEVICE:
            raise DeviceMixError(f"{name}() of a device tensor: numpy reads only the host; .cpu() it first")
        if name in ("__getitem__", "__setitem__") and side(args[0]) == HOST and _survey(args[1])[0]:
            raise DeviceMixError("a host tensor indexed with device indices")
        advanced = name == "__setitem__" and any(True for _ in _tensors(args[1]))
        if advanced and side(args[2]) not in (None, side(args[0])) and args[2].dim() > 0:
            raise DeviceMixError(f"{side(args[2])} values assigned at tensor indices of a {side(args[0])} tensor")
        device, host, refused = _survey((args, kwargs), scalars=name in _NOT_ELEMENTWISE)
        if device and refused and name not in _UNCHECKED:
            raise DeviceMixError(f"{name}() of device and host tensors together: "
                                 f"{[side(t) for t in _tensors((args, kwargs)) if side(t)]}")
        out = func(*args, **kwargs)
        if name in ("to", "cuda"):
            where = DEVICE if name == "cuda" else _target(args[1:], kwargs)
            if where == DEVICE and side(args[0]) != DEVICE:
                self.transfers += 1
            if where is not None and out is args[0] and side(args[0]) != where:
                out = out.clone()  # a transfer copies: the tensor left behind stays where it was
            _mark(out, where or side(args[0]))
        elif name == "cpu":
            if out is args[0] and side(args[0]) == DEVICE:
                out = out.clone()
            _mark(out, HOST)
        elif name == "__set__":  # tensor.data = other, as Module.to does to every parameter
            _mark(args[0], side(args[1]))
        elif name in _FACTORIES or name in _LIKE:
            given = side(args[0]) if name in _LIKE or (args and isinstance(args[0], torch.Tensor)) else None
            _mark(out, DEVICE if kwargs.get("device") is not None else given or HOST)
        elif (name in _IN_PLACE_OPERATORS or (name.endswith("_") and not name.endswith("__"))) and args \
                and side(args[0]) is not None:
            pass  # in place: the target stays where it is
        elif name not in ("numpy", "__array__", "__setitem__"):
            _mark(out, DEVICE if device else HOST if host else None)
        return out
