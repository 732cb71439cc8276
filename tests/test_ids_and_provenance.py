"""Pre-tokenized ids (memory-mapped streams, .npy), what a tree file records about its making, and queries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tokentree.cli import main
from tokentree.data.sequences import TokenStream, as_token_sequences, load_token_ids
from tokentree.data.text import encode_texts, gpt2_tokenizer
from tokentree.infra.errors import InputError
from tokentree.trees.build import build_tree
from tokentree.trees.storage import load_tree

TEXTS = ["The cat sat on the mat.", "The cat ran.", "A dog sat on the cat.", "The end."]
EOS = 50256


def _stream(tmp_path):
    ids = encode_texts(TEXTS, gpt2_tokenizer())
    flat = np.array([t for r in ids for t in [*r.tolist(), EOS]], dtype=np.uint16)
    path = tmp_path / "train.bin"
    flat.tofile(path)
    return path, flat


def test_ids_on_a_uint16_stream_equal_tokenizing_its_text(tmp_path):
    path, flat = _stream(tmp_path)
    text = tmp_path / "texts.txt"
    text.write_text("\n".join(TEXTS) + "\n")
    for mode in ("prefix", "chunk", "window"):
        assert main(["build", str(text), "--depth", "3", "--mode", mode, "-o", str(tmp_path / "a.npz")]) == 0
        assert main(["build", "--ids", str(path), "--dtype", "uint16", "--eos", str(EOS), "--tokenizer", "gpt2",
                     "--depth", "3", "--mode", mode, "--partitions", "3", "-o", str(tmp_path / "b.npz")]) == 0
        assert load_tree(tmp_path / "a.npz") == load_tree(tmp_path / "b.npz"), mode
    stream = load_token_ids(path, dtype="uint16", eos=EOS)
    assert isinstance(stream, TokenStream) and isinstance(stream.tokens, np.memmap)  # read where it lies
    assert stream.n_sequences == len(TEXTS)
    np.save(tmp_path / "ids.npy", flat)
    from_npy = load_token_ids(tmp_path / "ids.npy", eos=EOS)
    assert isinstance(from_npy.tokens, np.memmap) and from_npy.n_tokens == stream.n_tokens
    assert as_token_sequences(flat, eos=EOS) == encode_texts(TEXTS, gpt2_tokenizer())


@pytest.mark.parametrize(("args", "message"), [
    (["--dtype", "uint16"], "needs the alphabet size"),
    (["--vocab-size", "60000"], "needs its dtype"),
    (["--dtype", "float32", "--vocab-size", "9"], "integer type"),
    (["--dtype", "uint32", "--vocab-size", "60000"], "not a whole number of uint32 ids"),
    (["--dtype", "uint16", "--vocab-size", "100"], "token ids must be < vocab_size = 100"),
    (["--dtype", "uint16", "--vocab-size", "60000", "--field", "text"], "--field read text"),
])
def test_bad_ids_options_say_what_to_do(tmp_path, capsys, args, message):
    path, flat = _stream(tmp_path)
    path.write_bytes(flat.tobytes() + (b"\x00" if "uint32" in args else b""))  # an odd size cannot be uint32
    assert main(["build", "--ids", str(path), *args, "-o", str(tmp_path / "t.npz")]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(InputError, match="dtype"):
        load_token_ids(path)  # a raw stream without its dtype


def test_a_tree_file_records_its_making_and_answers_text_queries(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    out = tmp_path / "t.npz"
    assert main(["build", str(data), "--depth", "4", "--mode", "prefix", "-o", str(out)]) == 0
    tree = load_tree(out)
    made = tree.provenance
    assert made["tokenizer"]["name"] == "gpt2" and made["tokenizer"]["vocab_size"] == 50257
    assert made["inputs"] == [{"path": str(data), "bytes": data.stat().st_size}]
    assert made["options"]["mode"] == "prefix" and made["tokentree_version"]
    assert tree.count("The cat") == 2 and tree.count("The") == 3 and tree.count("A dog") == 1
    assert tree.top_symbols(1)[0][1] == 1
    capsys.readouterr()
    assert main(["query", str(out), "The cat", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["query"]
    assert [r["count"] for r in rows] == [3, 2] and rows[1]["probability"] == pytest.approx(2 / 3)
    assert main(["info", str(out)]) == 0
    assert "tokenizer gpt2 (V = 50,257" in capsys.readouterr().out
    # the same build writes the same bytes (no timestamps)
    again = tmp_path / "again.npz"
    assert main(["build", str(data), "--depth", "4", "--mode", "prefix", "-o", str(again)]) == 0
    assert load_tree(again).provenance["options"] == made["options"]
    # a tree made in Python records nothing, and says so when asked for text
    with pytest.raises(InputError, match="records no tokenizer"):
        build_tree([[1, 2]], depth=2).count("hello")
