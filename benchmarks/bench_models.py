"""Benchmark: the model stack on one thread, each figure against its baseline in the same run.

    python benchmarks/bench_models.py [--coded-tokens 1000] [--reforward-tokens 200] [--quick]

1. Training tokens per second of the tiny Llama (2 layers, width 128, 2k vocabulary,
   context 128, batches of 16) with the lab's trainer.
2. Sampling tokens per second with the KV cache and without it (the same prompts, seed
   and lengths).
3. Range coding with SmolLM2-135M-Instruct: ``--coded-tokens`` tokens through the KV
   cache, against the re-forward way (one forward pass over the whole prefix per token)
   on the first ``--reforward-tokens`` of them; the re-forward cost of all of them is its
   measured sum over prefix lengths, extrapolated from a fit of time against length (the
   real thing takes about half an hour on one thread). Also: scoring tokens per second
   (one batched pass), and whether the cached and re-forward bitstreams of the measured
   prefix are identical (they need not be: a cached forward and a full forward round
   float32 differently, about 1e-6, which can move the coder's fixed-point quantisation;
   each bitstream decodes exactly with its own reader).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def training_speed(quick: bool) -> dict[str, float]:
    from tokentree.bridge.tiny import TinySpec, tiny_llama
    from tokentree.data.chat import from_sequences
    from tokentree.data.synthetic import zipf_corpus
    from tokentree.lab.train import LMTrainer, TrainSettings

    corpus = zipf_corpus(40_000 if quick else 200_000, vocab_size=2000, min_length=100, max_length=200, rng=0)
    data = from_sequences(corpus, prepend=2000)
    model = tiny_llama(TinySpec(vocab_size=2001, n_layers=2, d_model=128, n_heads=4, context=128), seed=0,
                       bos_token_id=2000, eos_token_id=2000, pad_token_id=2000)
    trainer = LMTrainer(model, TrainSettings(lr=1e-3, batch_size=16, threads=1))
    trainer.epoch(data, stop_after=3)  # warm-up
    start = time.perf_counter()
    trainer.epoch(data)
    seconds = time.perf_counter() - start
    return {"training_tokens_per_s": data.n_target_tokens / seconds}


def sampling_speed(quick: bool) -> dict[str, float]:
    from tokentree.bridge.tiny import TinySpec, tiny_llama, train_tiny_tokenizer
    from tokentree.data.language import BehaviourLanguage
    from tokentree.lab.measure import sample_responses

    lang = BehaviourLanguage(seed=0)
    tokenizer = train_tiny_tokenizer(lang.pretraining_text(500, seed=0), 1000)
    model = tiny_llama(TinySpec(vocab_size=len(tokenizer), n_layers=2, d_model=128, n_heads=4, context=256), seed=0)
    prompts = [e.prompt for e in lang.chats(16 if quick else 32, axis="style", aligned=True, seed=1)]
    out = {}
    for cache in (True, False):
        start = time.perf_counter()
        samples = sample_responses(model, tokenizer, prompts, max_new_tokens=64, seed=0, batch_size=16,
                                   use_cache=cache)
        seconds = time.perf_counter() - start
        out[f"sampling_tokens_per_s_{'with' if cache else 'without'}_cache"] = (
            sum(len(t) for t in samples.token_ids) / seconds
        )
    return out


def coding_speed(coded_tokens: int, reforward_tokens: int) -> dict[str, float]:
    from tokentree.bridge.coding import encode_tokens
    from tokentree.bridge.hf import HFScorer, load_smollm2
    from tokentree.bridge.scoring import measure_rate
    from tokentree.data.text import builtin_texts

    model, tokenizer = load_smollm2()
    scorer = HFScorer(model, bos_token_id=tokenizer.bos_token_id, max_context=2048, stride=1024, threads=1)
    text = "\n\n".join(builtin_texts("pydoc-paragraphs")[:400])
    ids = np.asarray(tokenizer(text)["input_ids"][:coded_tokens], dtype=np.int64)
    start = time.perf_counter()
    measure_rate(scorer, [ids])
    scoring = time.perf_counter() - start
    start = time.perf_counter()
    cached = encode_tokens(scorer, [ids])
    cached_seconds = time.perf_counter() - start

    class Reforward:  # the same model, read the old way: one forward pass per prefix
        vocab_size = scorer.vocab_size

        def next_token_probs(self, prefix: np.ndarray) -> np.ndarray:
            return scorer.next_token_probs(prefix)

    prefix = ids[:reforward_tokens]
    steps = []
    for n in range(prefix.shape[0]):
        t0 = time.perf_counter()
        scorer.next_token_probs(prefix[:n])
        steps.append(time.perf_counter() - t0)
    slope, intercept = np.polyfit(np.arange(len(steps)), steps, 1)
    extrapolated = float(sum(intercept + slope * n for n in range(coded_tokens)))
    reforward_code, cached_code = encode_tokens(Reforward(), [prefix]), encode_tokens(scorer, [prefix])
    same = reforward_code.words.tobytes() == cached_code.words.tobytes()
    return {
        "coded_tokens": float(coded_tokens),
        "scoring_tokens_per_s": coded_tokens / scoring,
        "coding_tokens_per_s_cached": coded_tokens / cached_seconds,
        "coding_seconds_cached": cached_seconds,
        "reforward_seconds_measured_prefix": float(sum(steps)),
        "reforward_tokens_measured": float(prefix.shape[0]),
        "reforward_seconds_extrapolated": extrapolated,
        "speedup": extrapolated / cached_seconds,
        "speedup_on_measured_prefix": float(sum(steps)) / (cached_seconds * prefix.shape[0] / coded_tokens),
        "identical_bitstream_on_prefix": float(same),
        "prefix_bits_cached": float(cached_code.n_bits),
        "prefix_bits_reforward": float(reforward_code.n_bits),
        "prefix_ideal_bits_difference": abs(cached_code.ideal_bits - reforward_code.ideal_bits),
        "bits_over_ideal": float(cached.n_bits - cached.ideal_bits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coded-tokens", type=int, default=1000)
    parser.add_argument("--reforward-tokens", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    results = {**training_speed(args.quick), **sampling_speed(args.quick)}
    results.update(coding_speed(args.coded_tokens, args.reforward_tokens))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:,.3f}")


if __name__ == "__main__":
    main()
