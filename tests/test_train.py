"""The fine-tuning lab's trainer: determinism, exact resume (adapters too), LoRA and parameter groups,
response-only loss, schedules, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokentree.bridge.tiny import TinySpec, tiny_llama, train_tiny_tokenizer
from tokentree.data.chat import TokenizedExamples, as_messages, tokenize_chats, tokenize_texts
from tokentree.data.language import BehaviourLanguage
from tokentree.infra.errors import InputError
from tokentree.lab.train import LMTrainer, LoraSettings, TrainSettings, training_windows

LANG = BehaviourLanguage(seed=0)
TOKENIZER = train_tiny_tokenizer(LANG.pretraining_text(300, seed=1), 400)
SPEC = TinySpec(vocab_size=len(TOKENIZER), n_layers=1, d_model=32, n_heads=2, context=48)
TEXTS = tokenize_texts(LANG.pretraining_text(40, seed=2), TOKENIZER)
CHATS = tokenize_chats([e.messages for e in LANG.chats(24, axis="style", aligned=True, seed=3)], TOKENIZER)


def _bytes(model) -> dict[str, bytes]:
    return {k: v.detach().numpy().tobytes() for k, v in model.state_dict().items()}


def _trainer(seed=0, **settings) -> LMTrainer:
    return LMTrainer(tiny_llama(SPEC, seed=7), TrainSettings(batch_size=8, seed=seed, **settings))


def test_same_seed_same_bytes_and_a_new_seed_changes_them():
    a, b, c = _trainer(0), _trainer(0), _trainer(1)
    for t in (a, b, c):
        t.epoch(TEXTS)
    assert _bytes(a.model) == _bytes(b.model) != _bytes(c.model)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    whole = _trainer(schedule="cosine", warmup_steps=2, total_steps=20, lr=3e-3)
    for _ in range(2):
        whole.epoch(TEXTS)
    first = _trainer(schedule="cosine", warmup_steps=2, total_steps=20, lr=3e-3)
    first.epoch(TEXTS)
    first.epoch(TEXTS, stop_after=2)  # stopped in the middle of an epoch
    folder = first.save(tmp_path / "ckpt")
    resumed = LMTrainer.resume(folder, tiny_llama(SPEC, seed=99))  # the folder's weights replace these
    per_epoch = -(-len(training_windows(TEXTS, SPEC.context)[0]) // 8)
    assert (resumed.steps_done, resumed.epochs_done, resumed.batches_done) == (per_epoch + 2, 1, 2)
    resumed.epoch(TEXTS)
    assert _bytes(resumed.model) == _bytes(whole.model)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(whole.optimizer.param_groups[0]["lr"])


def test_lora_moves_only_the_adapters_and_resumes_exactly(tmp_path):
    settings = dict(lora=LoraSettings(rank=4, target_modules=("q_proj", "v_proj")), lr=1e-2)
    base = tiny_llama(SPEC, seed=7)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    trainer = LMTrainer(base, TrainSettings(batch_size=8, **settings))
    trainer.epoch(CHATS, stop_after=2)
    folder = trainer.save(tmp_path / "adapter")
    assert (folder / "adapter_model.safetensors").is_file() and not (folder / "model.safetensors").exists()
    trainer.epoch(CHATS)
    after = trainer.model.state_dict()
    adapters = [k for k in after if "lora_" in k]
    assert adapters and all(not torch.equal(after[k], torch.zeros_like(after[k])) for k in adapters)
    for name, value in before.items():  # every base weight is exactly where it was
        key = next(k for k in after if k.endswith(name.replace("q_proj.weight", "q_proj.base_layer.weight")
                                                   .replace("v_proj.weight", "v_proj.base_layer.weight")))
        assert torch.equal(after[key], value), name
    resumed = LMTrainer.resume(folder, tiny_llama(SPEC, seed=7))
    resumed.epoch(CHATS)
    assert _bytes(resumed.model) == _bytes(trainer.model)


@pytest.mark.parametrize(("trainable", "moving"), [("attention", ("q_proj", "k_proj", "v_proj", "o_proj")),
                                                   ("attention+mlp", ("proj",))])
def test_parameter_groups(trainable, moving):
    trainer = _trainer(trainable=trainable, lr=1e-2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.epoch(CHATS)
    for name, value in trainer.model.state_dict().items():
        should_move = any(m in name for m in moving)
        assert torch.equal(value, before[name]) != should_move, name


def test_the_loss_counts_response_tokens_only():
    """The trainer's loss is the mean cross-entropy over response tokens, whatever the prompt tokens are."""
    trainer = _trainer()
    seq, mask = CHATS.sequences[0], CHATS.masks[0]
    assert mask.sum() < mask.size / 2 and not mask[: np.argmax(mask)].any()  # a prompt, then the response
    model = trainer.model
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(seq)[None]).logits[0, :-1].double()
    nll = -torch.log_softmax(logits, -1).gather(-1, torch.from_numpy(seq[1:])[:, None])[:, 0].numpy()
    expected = float(nll[mask[1:]].mean())
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    loss = trainer.step([seq], [mask])
    assert loss == pytest.approx(expected, rel=1e-5)
    model.load_state_dict(initial)
    with_prompt = trainer.step([seq], [np.ones_like(mask)])  # counting the prompt gives another loss
    assert with_prompt == pytest.approx(float(nll.mean()), rel=1e-5) and abs(with_prompt - expected) > 0.01


def test_long_sequences_are_cut_into_windows_that_train_every_target_once():
    windows, masks = training_windows(TEXTS, context=16)
    assert all(w.shape[0] <= 17 for w in windows)
    assert sum(int(m.sum()) for m in masks) == TEXTS.n_target_tokens


def test_schedules():
    s = TrainSettings(schedule="cosine", warmup_steps=4, total_steps=14)
    factors = [s.lr_factor(i) for i in range(16)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0] and factors[4] == 1.0
    assert factors[9] == pytest.approx(0.5) and factors[14] == pytest.approx(0.0) and factors[15] == 0.0
    assert TrainSettings().lr_factor(1000) == 1.0
    wsd = TrainSettings(schedule="wsd", warmup_steps=2, total_steps=12, decay_steps=4)
    assert [wsd.lr_factor(i) for i in range(14)] == [0.5, 1.0] + [1.0] * 6 + [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    with pytest.raises(InputError, match="wsd schedule needs 0 < decay_steps"):
        TrainSettings(schedule="wsd", warmup_steps=2, total_steps=12)


def test_a_progress_bar_shows_the_loss(capsys):
    _trainer().epoch(TEXTS, show_progress=True)
    assert "loss=" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TrainSettings(lr=0.0), "lr must be a finite number > 0"),
        (lambda: TrainSettings(lr=math.nan), "lr must be"),
        (lambda: TrainSettings(threads=0), "threads must be an integer >= 1"),
        (lambda: TrainSettings(schedule="cosine"), "total_steps"),
        (lambda: TrainSettings(trainable="everything"), "trainable must be one of"),
        (lambda: LMTrainer(tiny_llama(SPEC), TrainSettings(lora=LoraSettings(target_modules=("c_attn",)))),
         r"LoRA target modules \['c_attn'\] are not in this model"),
        (lambda: TokenizedExamples((), ()), "the dataset is empty"),
        (lambda: as_messages({"prompt": "hi", "response": "  "}), "has no response"),
        (lambda: as_messages([{"role": "robot", "content": "x"}]), "role in"),
        (lambda: tokenize_texts([""], TOKENIZER), "empty"),
    ],
)
def test_bad_settings_and_data_are_named(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_a_tokenizer_without_a_chat_template_is_named():
    from transformers import PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(tokenizer_object=TOKENIZER.backend_tokenizer, bos_token="<|bos|>")
    with pytest.raises(InputError, match="no chat template"):
        tokenize_chats([("hi", "hello")], plain)


@pytest.mark.parametrize(
    ("name", "damage"), [("trainer.json", b"{oops"), ("model.safetensors", b"\x00" * 40), ("trainer_state.pt", b"PK")]
)
def test_corrupt_checkpoints_are_named(tmp_path, name, damage):
    trainer = _trainer()
    trainer.epoch(TEXTS, stop_after=1)
    folder = trainer.save(tmp_path / "ckpt")
    (folder / name).write_bytes(damage)
    with pytest.raises(InputError, match=f"{name}.*corrupt"):
        LMTrainer.resume(folder, tiny_llama(SPEC))


def _forget_checksums(folder):
    import json

    from tokentree.infra.outputs import MARKER

    marker = json.loads((folder / MARKER).read_text())
    marker.pop("sha256")
    (folder / MARKER).write_text(json.dumps(marker))


def test_a_checkpoint_is_read_without_unpickling(tmp_path):

    trainer = _trainer()
    folder = trainer.save(tmp_path / "ckpt")

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"optimizer": Payload()}, folder / "trainer_state.pt")  # a real torch archive with a payload
    _forget_checksums(folder)  # as a checkpoint from elsewhere: only weights_only loading stands in the way
    with pytest.raises(InputError, match="unpickling them could run code"):
        LMTrainer.resume(folder, tiny_llama(SPEC))
