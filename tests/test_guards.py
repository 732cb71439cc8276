"""Nothing silent: each case a hostile user found, with the error or the exact answer it now gets."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from tokentree import build_tree
from tokentree.cli import main
from tokentree.compression import (
    compression_rate,
    disjoint_closed_form,
    entropy,
    huffman_code,
    perturbation_setting,
    ratio_disjoint,
    simulate_perturbation,
)
from tokentree.compression.mixture import MAX_SIZE_RATIO
from tokentree.data.text import read_responses, train_bpe
from tokentree.experiments.hooke import Config as HookeConfig
from tokentree.framework.runs import resolve_config
from tokentree.infra.errors import InputError, InputTypeError, TextInputError, TreeFileError
from tokentree.trees.combine import scale_tree
from tokentree.trees.storage import load_tree, save_tree
from tokentree.verification import VerdictStatus, judge


# ----------------------------------------------------------------------------- the seven bad ones
def test_long_huffman_codewords_are_exact_python_integers():
    """92 Fibonacci weights give an 85-bit code: every codeword distinct and prefix-free, encoding refused."""
    fib = [1, 1]
    while len(fib) < 92:
        fib.append(fib[-1] + fib[-2])
    code = huffman_code(np.array(fib, dtype=float))
    assert code.max_length > 64
    words = [code.codeword(i) for i in range(92)]
    assert len(set(words)) == 92 and code.is_prefix_free() and code.kraft_sum() == 1
    assert sorted(len(w) for w in words) == sorted(code.lengths.tolist())
    with pytest.raises(InputError, match="encoding supports up to 64"):
        code.encode([0, 1])
    short = huffman_code([5, 3, 2, 1, 1])  # the long-code routine gives the same canonical codewords
    from tokentree.compression.huffman import _canonical_order, _long_canonical_codes

    assert _long_canonical_codes(short.lengths, _canonical_order(short.lengths)).tolist() == short.codes.tolist()


def test_scaling_a_tree_past_int64_is_refused():
    tree = build_tree([[1, 2], [1]], depth=2)
    with pytest.raises(InputError, match="overflow the int64 counts"):
        scale_tree(tree, 2**62)
    assert scale_tree(tree, 2**40).total_mass == 2 * 2**40


def test_a_symbol_whose_mixture_weight_underflows_keeps_its_exact_code_length():
    """D_t alone has a 1e-300 symbol; at k = 1e9 and l = 1e-15 its q is 1e-324, below the smallest float."""
    p, a, t = [0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.5, 0.5 - 1e-300, 1e-300]
    k, l = 1e9, 1e-15
    r = simulate_perturbation(perturbation_setting(p, a, t, k=k), [l])
    n = k + 1 + l
    log_q = [math.log((k * 0.6 + 0.3 + l * 0.5) / n), math.log((k * 0.4 + 0.7 + l * 0.5) / n),
             math.log(l) + math.log(1e-300) - math.log(n)]
    exact = -(0.5 * log_q[0] + 0.5 * log_q[1] + 1e-300 * log_q[2]) / math.log(2)
    assert r.rate_perturb_bits[0] == pytest.approx(exact, rel=1e-12)
    assert math.isfinite(r.huffman_rate_perturb_bits[0]) and r.identity_residual[0] < 1e-9


@pytest.mark.parametrize("k", [1e300, math.inf, math.nan, 0.0, -1.0, MAX_SIZE_RATIO * 10])
def test_k_outside_the_exact_range_is_refused_with_the_range(k):
    with pytest.raises(InputError, match=r"k must be a finite number in \(0, 1e\+09\]"):
        perturbation_setting([1, 0, 0], [0, 1, 0], [0, 0, 1], k=k)
    with pytest.raises(InputError, match=r"k must be"):
        ratio_disjoint(k, [0.5, 0.3, 0.2], 0.0)


def test_a_toml_asking_for_k_1e300_is_refused_and_verdicts_never_hold_on_nan(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("k_values = [1e300]\n")
    with pytest.raises(InputError, match=r"k_values\[0\] must be a finite number in \(0, 1e\+09\]"):
        resolve_config(HookeConfig, toml_path=path)
    from tokentree.experiments.hooke import run

    result = run(HookeConfig.quick(), show_progress=False)
    import dataclasses

    broken = [dataclasses.replace(r, ratio=math.nan, identity_residual=math.nan) if r.l == 0.0 else r
              for r in result.records]
    verdicts = {v.item: v.status for v in judge(broken, result.controls, result.pareto)}
    assert verdicts["5.1"] == verdicts["5.2"] == verdicts["5.6"] == VerdictStatus.UNEXPECTED


# ----------------------------------------------------------------------------- numerics
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: perturbation_setting([1, 0], [0, 1], [1, 1], k=2.0, symbol_lengths=[1.0, math.nan]),
         "symbol_lengths must be 2 finite numbers"),
        (lambda: perturbation_setting([1, 0], [0, 1], [1, 1], k=2.0, depth=0), "depth must be an integer >= 1"),
        (lambda: perturbation_setting([1, 1], [1, 1], [2, 2], k=2.0), "the same distribution"),
        (lambda: ratio_disjoint(10.0, [0.5, 0.3, 0.2], [0.1, math.nan]), "every l value must be"),
        (lambda: ratio_disjoint(10.0, [0.5, 0.3, 0.2], -0.5), "every l value must be"),
        (lambda: disjoint_closed_form(10.0, [0.5, 0.3, 0.2], [1, 1, 1], [0.1], depth=0), "depth must be"),
        (lambda: entropy([0.5, 0.5], base=math.nan), "base must be a positive finite number"),
        (lambda: entropy([0.5, 0.5], base=1.0), "base must be"),
        (lambda: compression_rate([1, 1], [1, 1], [2, 2], depth=0, vocab_size=4), "depth must be"),
        (lambda: compression_rate([1, 1], [1, 1], [0, 2], depth=2, vocab_size=4), "symbol_lengths must be"),
        (lambda: compression_rate([1, 1], [1, 1], [2, 2], depth=2, vocab_size=1), "vocab_size must be"),
        (lambda: huffman_code(["a"]), "weights must be numbers"),
    ],
)
def test_bad_numbers_get_a_named_error(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_empty_and_missing_inputs_are_named():
    from tokentree.bridge.scoring import UniformScorer, measure_rate

    with pytest.raises(InputTypeError, match="data must be token sequences"):
        build_tree(None, depth=2)
    with pytest.raises(InputError, match="dataset is empty"):
        measure_rate(UniformScorer(4), [])
    with pytest.raises(InputError, match="beyond any vocabulary"):
        build_tree(np.array([[2**63 + 5]], dtype=np.uint64), depth=1)
    with pytest.raises(InputTypeError, match="not a flat list of token ids"):
        build_tree([[None, []]], depth=1)
    with pytest.raises(InputError, match="depth must be <= 65536"):
        build_tree([[1, 2]], depth=10**9)


# ----------------------------------------------------------------------------- files
def _header_file(tmp_path: Path, change) -> Path:
    path = save_tree(build_tree([[1, 2], [1]], depth=2, vocab_size=4), tmp_path / "t.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(arrays["header"]).decode())
    header = change(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: {**h, "info": {**h["info"], "depth": "2"}}, "depth = '2'"),
        (lambda h: [h], "a JSON list"),
        (lambda h: {**h, "info": {**h["info"], "vocab_size": 2**62}}, "vocab_size = 4611686018427387904"),
        (lambda h: {**h, "info": {**h["info"], "n_tokens": -1}}, "n_tokens = -1"),
        (lambda h: {**h, "info": {**h["info"], "alphabet": "emoji"}}, "alphabet = 'emoji'"),
        (lambda h: {**h, "info": {**h["info"], "colour": 1}}, "unknown fields"),
    ],
)
def test_every_header_field_is_validated(tmp_path, change, message):
    with pytest.raises(TreeFileError, match=message):
        load_tree(_header_file(tmp_path, change))


def test_a_npy_renamed_npz_and_a_device_are_named(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as f:
        np.save(f, np.arange(3))
    with pytest.raises(TreeFileError, match=r"a single \.npy array"):
        load_tree(path)
    with pytest.raises(TreeFileError, match="not a regular file"):
        load_tree("/dev/null")


def test_text_files_that_are_not_text(tmp_path):
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"\x00" * 64)
    with pytest.raises(TextInputError, match="NUL bytes"):
        list(read_responses([nul]))
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfhello\nworld\n")
    assert list(read_responses([bom])) == ["hello", "world"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("fine\n")
    os.symlink(tmp_path / "missing.txt", folder / "b.txt")
    with pytest.raises(InputError, match=r"b\.txt: a link to a file that does not exist"):
        list(read_responses([folder]))
    with pytest.raises(InputError, match="not a regular file or folder"):
        list(read_responses(["/dev/zero"]))
    with pytest.raises(InputError, match="vocab_size from 257"):
        train_bpe(["some text"], 0)


def test_config_files_that_are_not_utf8_or_not_files(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"seed = 1 # \xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8 text"):
        resolve_config(HookeConfig, toml_path=path)
    with pytest.raises(InputError, match="is a folder"):
        resolve_config(HookeConfig, toml_path=tmp_path)
    for text, message in (("seed = -1\n", "seed must be an integer >= 0"), ("pareto_seeds = 0\n", "pareto_seeds"),
                          ("n_align = 0\n", "n_align must be"), ("control_k = -5.0\n", "control_k must be"),
                          ("pareto_sizes = [1]\n", r"pareto_sizes\[0\]")):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            resolve_config(HookeConfig, toml_path=path)


def test_cli_depth_too_large_and_bpe_zero_are_one_line_errors(tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text("hello there\n")
    assert main(["build", str(text), "--depth", "1000000000", "-o", str(tmp_path / "t.npz")]) == 2
    assert main(["build", str(text), "--train-bpe", "0", "-o", str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "depth must be <=" in err[0] and "vocab_size from 257" in err[1]
