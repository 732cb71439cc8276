"""Benchmark: the model stack on one thread, each figure against its baseline in the same run.

    python benchmarks/bench_models.py [--quick] [--skip-smollm2] [--coding-tokens 1000 4000]

1. Training tokens per second of the tiny Llama (2 layers, width 128, 2k vocabulary,
   context 128, batches of 16) with the lab's trainer, for each packing, against a
   minimal torch loop (forward with labels, backward, AdamW) of the same model on the
   same packed windows, the two alternating in the same run.
2. Sampling tokens per second with the KV cache and without it (the same prompts, seed
   and lengths).
3. Range coding (tiny Llama, and SmolLM2-135M-Instruct offline): encoding N tokens from
   batched windows against one plain forward pass over the same tokens (windows of the
   model's context side by side, no overlap, the model's default attention, after a warm-up
   call), against the same pass with the coder's attention (SDPA with an explicit causal mask
   over the whole window, which the decoder reproduces bit for bit), and against scoring them
   (the overlapping windows of ``token_log_probs``); decoding (lockstep,
   preallocated cache) with a check that it returns the exact tokens; the bits over the
   ideal code length.
4. SmolLM2 LoRA fine-tuning tokens per second (the trainer's default for a 100M+ model),
   float32 and bfloat16 alternated, on packed text windows and on the experiments' batches
   of short chats; the ratio bf16 / fp32 (above 1: bfloat16 is faster); and what bf16 costs in
   precision (the KL of the rounded model from itself; the share of a small merged change that
   survives rounding).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _minimal_loop(model, windows, batch_size: int, lr: float) -> float:
    """Seconds for one epoch of the plainest torch loop over ``windows`` (full, unmasked batches)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98))
    model.train()
    start = time.perf_counter()
    for b in range(0, len(windows.ids), batch_size):
        rows = windows.ids[b : b + batch_size]
        width = max(w.shape[0] for w in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for r, w in enumerate(rows):
            ids[r, : w.shape[0]] = torch.from_numpy(w)
            labels[r, 1 : w.shape[0]] = torch.from_numpy(w[1:])
        loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def training_speed(quick: bool) -> dict[str, float]:
    from tokentree.bridge.tiny import TinySpec, tiny_llama
    from tokentree.data.chat import from_sequences
    from tokentree.data.synthetic import zipf_corpus
    from tokentree.lab.packing import make_windows
    from tokentree.lab.train import LMTrainer, TrainSettings

    corpus = zipf_corpus(40_000 if quick else 200_000, vocab_size=2000, min_length=100, max_length=200, rng=0)
    data = from_sequences(corpus, prepend=2000)
    spec = TinySpec(vocab_size=2001, n_layers=2, d_model=128, n_heads=4, context=128)

    def fresh():
        return tiny_llama(spec, seed=0, bos_token_id=2000, eos_token_id=2000, pad_token_id=2000)

    out: dict[str, float] = {}
    for packing in ("off", "open", "confined"):
        lab_s = loop_s = 0.0
        trainer = LMTrainer(fresh(), TrainSettings(lr=1e-3, batch_size=16, threads=1, packing=packing))
        windows = trainer.windows(data)
        baseline = fresh()
        trainer.epoch(windows, stop_after=3)  # warm-up of both
        _minimal_loop(baseline, make_windows(data.head(60), 128, "open"), 16, 1e-3)
        for _ in range(2):  # alternate, so both see the same load on the shared machine
            start = time.perf_counter()
            trainer.epoch(windows)
            lab_s += time.perf_counter() - start
            loop_s += _minimal_loop(baseline, make_windows(data, 128, "open"), 16, 1e-3)
        tokens = 2 * data.n_target_tokens
        out[f"training_tokens_per_s_{packing}"] = tokens / lab_s
        out[f"training_tokens_per_s_minimal_loop_vs_{packing}"] = tokens / loop_s
        out[f"training_ratio_{packing}_to_minimal_loop"] = loop_s / lab_s
    return out


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


def _plain_forward_seconds(model, ids: np.ndarray, context: int, *, coder: bool = False) -> float:
    """One forward pass over ``ids`` as windows of ``context`` tokens side by side (no overlap), after one
    untimed warm-up window; ``coder``: with the attention the coder uses (SDPA, an explicit causal mask over the
    window), else the model's own."""
    import contextlib

    import torch

    from tokentree.bridge.lockstep import causal_mask, coding_attention

    rows = [ids[i : i + context] for i in range(0, ids.shape[0], context)]  # the last one as long as what is left
    with torch.inference_mode(), coding_attention(model, "cpu") if coder else contextlib.nullcontext():
        def run(row: np.ndarray) -> None:
            mask = causal_mask(model, 1, 0, row.shape[0], row.shape[0], "cpu") if coder else None
            model(input_ids=torch.from_numpy(row[None]), attention_mask=mask, use_cache=False)

        run(rows[0][:64])  # first-call costs
        start = time.perf_counter()
        for row in rows:  # one window at a time: the logits of a batch of 2k-token windows do not fit
            run(row)
        return time.perf_counter() - start


def coding_speed(name: str, scorer, ids: np.ndarray, counts: list[int], decode_tokens_max: int) -> dict[str, float]:
    from tokentree.bridge.coding import decode_tokens, encode_tokens

    out: dict[str, float] = {}
    for n in counts:
        seq = ids[:n]
        full = np.concatenate([[scorer.bos_token_id], seq])
        forward = _plain_forward_seconds(scorer.model, full, scorer.max_context)
        coder = _plain_forward_seconds(scorer.model, full, scorer.max_context, coder=True)
        start = time.perf_counter()
        scorer.token_log_probs([seq])
        scoring = time.perf_counter() - start
        start = time.perf_counter()
        coded = encode_tokens(scorer, [seq])
        encode = time.perf_counter() - start
        out[f"{name}_{n}_forward_tokens_per_s"] = n / forward
        out[f"{name}_{n}_scoring_tokens_per_s"] = n / scoring
        out[f"{name}_{n}_encode_tokens_per_s"] = n / encode
        out[f"{name}_{n}_coder_forward_over_forward"] = coder / forward
        out[f"{name}_{n}_encode_over_forward"] = encode / forward
        out[f"{name}_{n}_encode_over_coder_forward"] = encode / coder
        out[f"{name}_{n}_encode_over_scoring"] = encode / scoring
        out[f"{name}_{n}_bits_over_ideal"] = coded.n_bits - coded.ideal_bits
    m = min(decode_tokens_max, ids.shape[0])
    seqs = [ids[: m // 2], ids[m // 2 : m]]  # two sequences decoded in lockstep
    coded = encode_tokens(scorer, seqs)
    start = time.perf_counter()
    decoded = decode_tokens(scorer, coded)
    out[f"{name}_decode_tokens_per_s_{m}_in_2_lanes"] = m / (time.perf_counter() - start)
    out[f"{name}_decode_exact"] = float(all(np.array_equal(a, b) for a, b in zip(decoded, seqs, strict=True)))
    return out


def tiny_coding(counts: list[int]) -> dict[str, float]:
    from tokentree.bridge.hf import HFScorer
    from tokentree.bridge.tiny import TinySpec, tiny_llama
    from tokentree.data.synthetic import zipf_corpus

    model = tiny_llama(TinySpec(vocab_size=2001, n_layers=2, d_model=128, n_heads=4, context=128), seed=0,
                       bos_token_id=2000, eos_token_id=2000, pad_token_id=2000)
    scorer = HFScorer(model, bos_token_id=2000, max_context=128, stride=96, batch_size=16)
    corpus = zipf_corpus(max(counts), vocab_size=2000, min_length=100, max_length=200, rng=1)
    ids = np.asarray(corpus.tokens, dtype=np.int64)
    return coding_speed("tiny", scorer, ids, counts, 1000)


def smollm2_coding(counts: list[int]) -> dict[str, float]:
    from tokentree.bridge.hf import HFScorer, load_smollm2
    from tokentree.data.text import builtin_texts

    model, tokenizer = load_smollm2()
    scorer = HFScorer(model, bos_token_id=tokenizer.bos_token_id, max_context=2048, stride=1024, threads=1)
    text = "\n\n".join(builtin_texts("pydoc-paragraphs")[:600])
    ids = np.asarray(tokenizer(text)["input_ids"][: max(counts)], dtype=np.int64)
    return coding_speed("smollm2", scorer, ids, counts, 120)


def _lora_seconds(dtype: str, data, steps: int, *, packing: str, window: int) -> tuple[float, int, int]:
    """(CPU seconds, tokens seen, target tokens) of ``steps`` LoRA steps of SmolLM2 in ``dtype`` (after a warm step).

    CPU time, not wall time: on a shared machine the wall clock counts the other jobs too."""
    from tokentree.bridge.hf import load_smollm2
    from tokentree.lab.train import LMTrainer, TrainSettings

    model, _ = load_smollm2()
    trainer = LMTrainer(model, TrainSettings(lr=1e-4, batch_size=4 if packing == "open" else 16, packing=packing,
                                             window=window, dtype=dtype, seed=0))
    assert trainer.settings.lora is not None, "SmolLM2 should get LoRA by default"
    windows = trainer.windows(data)
    trainer.epoch(windows, stop_after=1)
    start = time.process_time()  # CPU seconds of this one-thread process: what a free core would take
    trainer.epoch(windows, stop_after=steps)
    seconds = time.process_time() - start
    b = trainer.settings.batch_size
    rows = range(b, min(len(windows), b * (steps + 1)))
    return (seconds, sum(int(windows.ids[i].shape[0]) for i in rows), sum(int(windows.targets[i].sum()) for i in rows))


def smollm2_lora_training(quick: bool) -> dict[str, float]:
    """SmolLM2 LoRA steps in float32 and bfloat16, alternated (f, b, f, b) so that load changes hit both alike:
    packed text windows (256 tokens, every token a target) and the experiments' shape (batches of 16 short chats
    in SmolLM2's template, system prompt included, only the response a target)."""
    from tokentree.bridge.hf import load_smollm2
    from tokentree.data.chat import tokenize_chats, tokenize_texts
    from tokentree.data.sources import tweets_data
    from tokentree.data.text import builtin_texts

    _, tokenizer = load_smollm2()
    shapes = {
        "packed": (tokenize_texts(builtin_texts("pydoc-paragraphs")[: 40 if quick else 120], tokenizer), "open", 256),
        "chats": (tokenize_chats(tweets_data(n_pretrain=2, n_aligned=200, n_misaligned=1, n_eval=1, seed=0).aligned,
                                 tokenizer), "off", 0),
    }
    out: dict[str, float] = {}
    steps = 2 if quick else 4
    for shape, (data, packing, window) in shapes.items():
        totals = {d: [0.0, 0, 0] for d in ("float32", "bfloat16")}
        for _ in range(1 if quick else 2):
            for dtype in totals:
                seconds, seen, targets = _lora_seconds(dtype, data, steps, packing=packing, window=window)
                print(f"  ({shape}, {dtype}: {seen / seconds:.1f} tokens/s)", file=sys.stderr, flush=True)
                totals[dtype] = [totals[dtype][0] + seconds, totals[dtype][1] + seen, totals[dtype][2] + targets]
        for dtype, (seconds, seen, targets) in totals.items():
            out[f"smollm2_lora_{shape}_tokens_per_s_{dtype}"] = seen / seconds
            out[f"smollm2_lora_{shape}_target_tokens_per_s_{dtype}"] = targets / seconds
        out[f"smollm2_lora_{shape}_bf16_over_fp32"] = totals["float32"][0] / totals["bfloat16"][0]
    return {**out, **_bf16_rounding(shapes["chats"][0])}


def _bf16_rounding(chats) -> dict[str, float]:
    """What training in bfloat16 costs in precision (why float32 stays the trainer's default): the KL of SmolLM2
    with its weights rounded to bf16 from itself, and the share (cosine) of a small weight change, as a merged
    earlier stage leaves it, that survives the next stage's rounding to bf16."""
    import copy

    import torch

    from tokentree.bridge.hf import load_smollm2
    from tokentree.lab.measure import kl_to_reference

    model, _ = load_smollm2()
    rounded = copy.deepcopy(model).to(torch.bfloat16).float()
    out = {"smollm2_bf16_rounding_kl_nats": kl_to_reference(rounded, model, chats.head(16)).mean_kl_nats}
    w = model.model.layers[0].mlp.down_proj.weight.detach()
    for rel in (1e-4, 1e-3, 1e-2):
        delta = rel * w.abs().mean() * torch.randn(w.shape, generator=torch.Generator().manual_seed(0))
        kept = (w + delta).to(torch.bfloat16).float() - w.to(torch.bfloat16).float()
        out[f"bf16_keeps_a_change_of_{rel:g}_cosine"] = float(torch.cosine_similarity(kept.flatten(), delta.flatten(),
                                                                                      dim=0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coding-tokens", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--skip-smollm2", action="store_true")
    parser.add_argument("--only", choices=["training", "sampling", "coding", "lora"], default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    parts = {
        "training": lambda: training_speed(args.quick),
        "sampling": lambda: sampling_speed(args.quick),
        "coding": lambda: {**tiny_coding(args.coding_tokens),
                           **({} if args.skip_smollm2 else smollm2_coding(args.coding_tokens))},
        "lora": lambda: {} if args.skip_smollm2 else smollm2_lora_training(args.quick),
    }
    for name, part in parts.items():
        if args.only not in (None, name):
            continue
        results = part()
        width = max([len(k) for k in results] + [1])
        for key, value in results.items():
            print(f"{key:<{width}}  {value:,.3f}", flush=True)


if __name__ == "__main__":
    main()
