"""Device check: the trained experiments, range coding and LoRA on an accelerator, against the CPU in the same run.

    python benchmarks/device_check.py [--device cuda] [--out DIR] [--only runs coding lora]

The CPU tests check the device path with a stand-in (tests/device_guard.py: no tensor left on
the wrong side); this script is what a machine with a GPU runs to see the numbers:

1. every trained experiment's ``--quick`` run (the tiny model) on the device and on the CPU:
   wall time of each, whether every verdict is the same, and the largest difference of the
   numbers in the records and verdicts; and whether rebound run twice on the device gives the
   same numbers (the project's promise, same seed same bytes, which a GPU's nondeterministic
   kernels could break);
2. range coding 1,000 tokens in 2 lanes with the tiny Llama on the device: encode and decode
   tokens/s against the CPU's, whether decoding returns the exact tokens (the two sides run
   differently shaped passes, which a GPU's kernels need not round alike), the bits over the
   ideal code length, and the ideal bits' difference from the CPU's (a large one: the device's
   attention sees other keys);
3. LoRA fine-tuning of the tiny Llama, resumed from a checkpoint, then sampling, the KL to the
   reference and scoring (tests/test_device_guard.py's ``lora_flow``): the largest differences
   of the step losses, the KL and the log-probabilities from the CPU's, and whether the samples
   are the same tokens.

Writes ``device_check.json`` into ``--out`` (default: the current folder) and prints it; exits 1
if a run fails on the device, decoding is not exact, a verdict differs or a repeat does. On a machine with no
GPU, ``--device cpu`` runs the same steps (the script's own check).

Off this machine: the image of a GPU machine has torch, transformers, peft, scipy and numpy,
not this project's smaller pure-Python needs; ``make device-wheels`` downloads those into
``.whl/`` (carry it), and the command there is::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
    PYTHONPATH=.:/tmp/site python3 benchmarks/device_check.py --out $OUT
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRAINED = ("measured-vs-theory", "hooke-trained", "rebound", "resistance", "rebound-scale", "piggyback")


def _quick_run(name: str, device: str, root: Path) -> tuple[float, dict]:
    from tokentree.cli import main

    out = root / f"{name}-{device}"
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's summary: in its folder
        code = main(["run", name, "--quick", "--device", device, "--out", str(out)])
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{name} --device {device} exited with {code}")
    return seconds, json.loads((out / "result.json").read_text())


def _numbers(result: dict) -> dict[str, float]:
    """Every finite number of a run's records and verdicts, by where it stands."""
    rows = [(f"record {i}", r) for i, r in enumerate(result["records"])]
    rows += [(v["item"], v.get("values") or {}) for v in result["verdicts"]]
    return {f"{where}.{key}": float(x) for where, row in rows for key, x in row.items()
            if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)}


def experiment_runs(device: str, root: Path) -> dict[str, dict]:
    out = {}
    for name in TRAINED:
        on_device, there = _quick_run(name, device, root)
        on_cpu, here = _quick_run(name, "cpu", root)
        a, b = _numbers(there), _numbers(here)
        shared = sorted(set(a) & set(b))
        out[name] = {
            "device_s": round(on_device, 2), "cpu_s": round(on_cpu, 2),
            "verdicts_equal": [v["status"] for v in there["verdicts"]] == [v["status"] for v in here["verdicts"]],
            "largest_number_difference": max((abs(a[k] - b[k]) for k in shared), default=0.0),
            "numbers_compared": len(shared),
        }
        if name == "rebound":  # the same seed: the same numbers on the device too?
            out[name]["repeat_equal"] = _numbers(_quick_run(name, device, root / "again")[1]) == a
    return out


def _tiny_scorer(device: str):
    from tokentree.bridge.hf import HFScorer
    from tokentree.bridge.tiny import TinySpec, tiny_llama

    model = tiny_llama(TinySpec(vocab_size=2001, n_layers=2, d_model=128, n_heads=4, context=128), seed=0,
                       bos_token_id=2000, eos_token_id=2000, pad_token_id=2000).to(device)
    return HFScorer(model, bos_token_id=2000, max_context=128, stride=96, batch_size=16)


def coding(device: str, n_tokens: int = 1000) -> dict:
    from tokentree.bridge.coding import DecodingMismatchError, decode_tokens, encode_tokens
    from tokentree.data.synthetic import zipf_corpus

    ids = np.asarray(zipf_corpus(n_tokens, vocab_size=2000, min_length=100, max_length=200, rng=1).tokens[:n_tokens],
                     dtype=np.int64)
    seqs = [ids[: n_tokens // 2], ids[n_tokens // 2 :]]
    out: dict = {}
    for where in (device, "cpu"):
        scorer = _tiny_scorer(where)
        start = time.perf_counter()
        coded = encode_tokens(scorer, seqs)
        encode = time.perf_counter() - start
        start = time.perf_counter()
        try:
            decoded = decode_tokens(scorer, coded)
            exact = all(np.array_equal(x, y) for x, y in zip(decoded, seqs, strict=True))
        except DecodingMismatchError:
            exact = False
        decode = time.perf_counter() - start
        out[where] = {"encode_tokens_per_s": round(n_tokens / encode, 1),
                      "decode_tokens_per_s": round(n_tokens / decode, 1), "decoded_exactly": exact,
                      "ideal_bits": coded.ideal_bits, "bits_over_ideal": round(coded.n_bits - coded.ideal_bits, 1)}
    out["ideal_bits_difference"] = abs(out[device]["ideal_bits"] - out["cpu"]["ideal_bits"])  # the same attention?
    return out


def lora(device: str, root: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, whose tests/ holds the flow
    from tests.test_device_guard import lora_flow

    there, here = lora_flow(root / "lora-device", device), lora_flow(root / "lora-cpu", "cpu")
    return {"steps": int(here["losses"].shape[0]),
            "largest_loss_difference": float(np.abs(there["losses"] - here["losses"]).max()),
            "kl_difference": abs(there["kl"] - here["kl"]),
            "largest_log_prob_difference": max(float(np.abs(a - b).max()) for a, b in zip(
                there["log_probs"], here["log_probs"], strict=True)),
            "samples_equal": all(np.array_equal(a, b) for a, b in zip(there["samples"], here["samples"], strict=True))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "mps", "cpu"])
    parser.add_argument("--out", default=".")
    parser.add_argument("--only", nargs="+", choices=["runs", "coding", "lora"], default=["runs", "coding", "lora"])
    args = parser.parse_args()
    import torch

    report: dict = {"device": args.device, "torch": torch.__version__,
                    "device_name": torch.cuda.get_device_name() if args.device == "cuda" else args.device}
    with tempfile.TemporaryDirectory() as tmp:
        if "runs" in args.only:
            report["runs"] = experiment_runs(args.device, Path(tmp))
        if "coding" in args.only:
            report["coding"] = coding(args.device)
        if "lora" in args.only:
            report["lora"] = lora(args.device, Path(tmp))
    Path(args.out, "device_check.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = all(r["verdicts_equal"] and r.get("repeat_equal", True) for r in report.get("runs", {}).values()) and all(
        c["decoded_exactly"] for c in report.get("coding", {}).values() if isinstance(c, dict))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
