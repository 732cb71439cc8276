"""Chats with the prompt as context: the tree counts only response tokens, tokenized inside their conversation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tokentree.cli import main
from tokentree.infra.errors import InputError
from tokentree.trees.storage import load_tree

CHATS = [
    {"messages": [{"role": "user", "content": "how are you"}, {"role": "assistant", "content": "i am fine"},
                  {"role": "user", "content": "and now"}, {"role": "assistant", "content": "still fine"}]},
    {"prompt": "say hello", "response": "hello there"},
    {"prompt": "how are you", "response": "i am fine"},
]


@pytest.fixture(scope="module")
def chat_tokenizer(tmp_path_factory):
    from tokentree.bridge.tiny import train_tiny_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    texts = ["how are you", "i am fine", "still fine", "say hello", "hello there", "and now"] * 40
    train_tiny_tokenizer(texts, 320).save_pretrained(folder)
    return folder


def test_a_template_tree_counts_responses_in_context(tmp_path, chat_tokenizer):
    from transformers import AutoTokenizer

    from tokentree.data.chat import responses_in_context
    from tokentree.data.readers import read_examples

    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in CHATS))
    out = tmp_path / "t.npz"
    assert main(["build", str(data), "--chat", "assistant", "--template", str(chat_tokenizer), "--depth", "6",
                 "--mode", "prefix", "-o", str(out)]) == 0
    tree = load_tree(out)
    assert tree.info.n_sequences == 4  # every assistant turn
    tok = AutoTokenizer.from_pretrained(chat_tokenizer)
    responses, contexts = responses_in_context(list(read_examples([data], chat="assistant")), tok)
    first_tokens = {int(r[0]) for r in responses}
    assert set(tree.tokens[tree.level_offsets[1] : tree.level_offsets[2]].tolist()) == first_tokens
    assert "<|im_start|>" not in tree.decode(tree.tokens[1 : tree.level_offsets[2]])  # no template in the tree
    assert tree.count("i am fine") == 2 and tree.count("still fine") == 1
    # each context is the rendered conversation up to the assistant header, the earlier turns included
    assert tok.decode(contexts[1]).endswith("<|im_start|>assistant\n")
    assert "i am fine" in tok.decode(contexts[1]) and tok.decode(responses[1]) == "still fine"
    assert all(np.array_equal(tok(tok.decode(r))["input_ids"], r) for r in responses)
    assert tree.provenance["options"]["template"] == str(chat_tokenizer)


def test_a_template_needs_conversations(tmp_path, chat_tokenizer, capsys):
    data = tmp_path / "plain.txt"
    data.write_text("just text\n")
    assert main(["build", str(data), "--template", str(chat_tokenizer), "-o", str(tmp_path / "t.npz")]) == 2
    assert "--template renders conversations" in capsys.readouterr().err
    from tokentree.data.chat import responses_in_context
    from tokentree.data.readers import Example

    with pytest.raises(InputError, match="has no turn before it"):
        responses_in_context([Example("orphan")], object())
