"""Fuzzing: hostile inputs get a documented error or a finite, correct answer, never a raw exception,
NaN or infinity that nobody asked for.

Derandomised in CI like every hypothesis test here (tests/conftest.py); search new examples by hand
with HYPOTHESIS_PROFILE=explore.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import QUICK_EXPERIMENTS
from tokentree import build_tree
from tokentree.compression import (
    cross_entropy,
    entropy,
    huffman_code,
    kl_divergence,
    perturbation_setting,
    simulate_perturbation,
)
from tokentree.data.text import read_responses
from tokentree.framework.runs import load_experiment, resolve_config
from tokentree.infra.errors import InputError, InputTypeError, TextInputError, TreeFileError
from tokentree.trees.storage import load_tree, save_tree

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
FEW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TREE = build_tree([[1, 2, 3], [1, 2], [4]], depth=2, vocab_size=8)
_GOOD = {
    "header": json.dumps(
        {"format": "tokentree.TokenTree", "version": 1, "info": _TREE.info.to_dict()}, sort_keys=True
    ),
    "tokens": _TREE.tokens, "parents": _TREE.parents, "counts": _TREE.counts, "leaf_eos": _TREE.leaf_eos,
    "level_offsets": _TREE.level_offsets,
}


def _load_written(arrays: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.npz"
        header = np.frombuffer(arrays["header"].encode(), dtype=np.uint8)
        np.savez(path, **{**arrays, "header": header})
        try:
            tree = load_tree(path)
        except TreeFileError:
            return
        # whatever loads is a consistent tree
        assert tree.layer_stats().mass[0] == tree.total_mass
        assert int(tree.symbols().mass.sum()) <= tree.total_mass * max(1, tree.depth)


@FEW
@given(field=st.sampled_from([*_TREE.info.to_dict(), "extra"]), value=JSON)
def test_tree_file_headers(field, value):
    info = {**_TREE.info.to_dict(), field: value}
    _load_written({**_GOOD, "header": json.dumps({"format": "tokentree.TokenTree", "version": 1, "info": info})})


@FEW
@given(header=JSON)
def test_whole_tree_file_headers(header):
    _load_written({**_GOOD, "header": json.dumps(header)})


@FEW
@given(
    name=st.sampled_from(["tokens", "parents", "counts", "leaf_eos", "level_offsets"]),
    values=st.lists(st.integers(-(2**40), 2**40), max_size=12),
    dtype=st.sampled_from([np.int32, np.int64, np.uint8, np.float64]),
)
def test_tree_file_arrays(name, values, dtype):
    _load_written({**_GOOD, name: np.array(values).astype(dtype)})


TOKENS = st.recursive(
    st.none() | st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=3) | st.booleans(),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


@FEW
@given(data=TOKENS, depth=st.integers(-2, 6), vocab=st.none() | st.integers(-1, 40))
def test_token_inputs(data, depth, vocab):
    try:
        tree = build_tree(data, depth=depth, vocab_size=vocab)
    except (InputError, InputTypeError):
        return
    assert tree.total_mass >= 1 and np.all(tree.tokens[1:] >= 0)


@FEW
@given(lines=st.lists(st.text(max_size=12), min_size=1, max_size=5), jsonl=st.booleans(), raw=st.binary(max_size=16))
def test_text_and_jsonl_files(lines, jsonl, raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("d.jsonl" if jsonl else "d.txt")
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw)
        try:
            out = list(read_responses([path]))
        except (TextInputError, InputError):
            return
        assert all(isinstance(t, str) and t and "\x00" not in t for t in out)


def _fields(name):
    return [f.name for f in dataclasses.fields(load_experiment(name).Config)]


TOML_VALUES = (
    st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=6) | st.booleans()
    | st.lists(st.integers(-5, 10**12) | st.floats(), max_size=3)
    | st.lists(st.lists(st.floats(-1, 2), max_size=4), max_size=2)
)


@pytest.mark.parametrize("name", QUICK_EXPERIMENTS)
@FEW
@given(data=st.data())
def test_config_values(name, data):
    """A value of any type for any field: a config, or an error that names that field."""
    field = data.draw(st.sampled_from(_fields(name)))
    value = data.draw(TOML_VALUES)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_text(tomli_w.dumps({field: value}))
        try:
            resolve_config(load_experiment(name).Config, toml_path=path, experiment=name)
        except InputError as exc:
            assert field in str(exc) or "leaves" in str(exc), (field, value, str(exc))


MASSES = st.lists(
    st.sampled_from([0.0, 1e-300, 1e-200, 1e-30, 1e-9, 0.5, 1.0, 3.0, 1e30, 1e200]), min_size=2, max_size=6
)
RATIOS = st.sampled_from([0.0, 1e-15, 1e-9, 0.01, 0.5, 1.0, 10.0, 1e3, 1e6, 1e9, 1e12, 1e300, -1.0, math.nan])


@FEW
@given(p=MASSES, a=MASSES, t=MASSES, k=RATIOS, ls=st.lists(RATIOS, min_size=1, max_size=3))
def test_perturbation_sweeps_at_extreme_magnitudes(p, a, t, k, ls):
    n = min(len(p), len(a), len(t))
    try:
        setting = perturbation_setting(p[:n], a[:n], t[:n], k=k)
        r = simulate_perturbation(setting, ls)
    except InputError:
        return
    lp, la, lt = setting.pretrain, setting.align, setting.perturb
    unseen = bool(np.any((lt > 0) & (lp == 0) & (la == 0)))  # D_t has symbols nothing else has
    for i, l in enumerate(r.l):
        infinite_t_allowed = unseen and l == 0.0
        for name in ("rate_pretrain_bits", "rate_align_bits", "huffman_rate_pretrain_bits", "huffman_rate_align_bits",
                     "d_rate_pretrain_bits", "d_rate_align_bits", "identity_residual",
                     "kl_pretrained_to_current_bits", "mixture_entropy_bits"):
            assert math.isfinite(getattr(r, name)[i]), (name, l)
        for name in ("rate_perturb_bits", "d_rate_perturb_bits"):
            assert math.isfinite(getattr(r, name)[i]) or infinite_t_allowed, (name, l)
        assert r.identity_residual[i] < 1e-6
        ratio, dp, da = r.ratio[i], r.d_rate_pretrain_bits[i], r.d_rate_align_bits[i]
        assert math.isfinite(ratio) or dp == 0.0
        assert not math.isnan(ratio) or da == dp == 0.0


@FEW
@given(weights=st.lists(st.sampled_from([0.0, 1e-300, 1e-100, 1e-10, 1.0, 7.0, 1e100, 1e300]), min_size=1, max_size=40))
def test_huffman_codes_at_extreme_weights(weights):
    try:
        code = huffman_code(weights)
    except InputError:
        assert not any(w > 0 for w in weights)
        return
    assert code.is_prefix_free()
    positive = sum(w > 0 for w in weights)
    assert code.kraft_sum() == (1 if positive > 1 else 0.5)


@FEW
@given(p=MASSES, q=MASSES, base=st.sampled_from([2.0, math.e, 10.0, 1.0, 0.0, -2.0, math.nan, math.inf]))
def test_information_measures(p, q, base):
    n = min(len(p), len(q))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (lambda: entropy(p[:n], base=base), lambda: cross_entropy(p[:n], q[:n], base=base, on_zero="raise"),
                  lambda: kl_divergence(p[:n], q[:n], base=base, on_zero="raise")):
            try:
                value = f()
            except InputError:
                continue
            assert math.isfinite(value) and value >= -1e-12


def test_saved_trees_survive_the_fuzz_helpers(tmp_path):
    """The valid file the header and array fuzzers start from loads back equal."""
    path = save_tree(_TREE, tmp_path / "t.npz")
    assert load_tree(path) == _TREE
    _load_written(dict(_GOOD))
