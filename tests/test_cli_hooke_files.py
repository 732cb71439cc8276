"""`tokentree run hooke` on your own data: each dataset read its own way, trees you built, and --k (issue 28)."""

from __future__ import annotations

import json
import random

import pytest

from tokentree.cli import main

KINDS = (["the cat sat on the mat", "cats like fish"], ["thank you very much", "happy to help"],
         ["i hate this", "go away now"])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """D_p plain text, D_a chats (messages), D_t records with a nested field, three of them null."""
    folder = tmp_path_factory.mktemp("own")
    rng = random.Random(0)
    every = [line for kind in KINDS for line in kind]
    (folder / "p.txt").write_text("\n".join(rng.choice(every) for _ in range(600)) + "\n")
    chats = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": rng.choice(KINDS[1])}]}
             for _ in range(40)]
    (folder / "a.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    (folder / "t.jsonl").write_text("".join(json.dumps({"meta": {"reply": rng.choice(KINDS[2]) if i % 10 else None}})
                                            + "\n" for i in range(30)))
    return folder


def _run(data, tmp_path, *options):
    out = tmp_path / "run"
    code = main(["run", "hooke", "--quick", "--out", str(out), "--overwrite", *options])
    return code, (json.loads((out / "result.json").read_text()) if code == 0 else None)


def test_each_dataset_is_read_its_own_way_and_dropped_rows_are_counted(data, tmp_path, capsys):
    code, result = _run(data, tmp_path, "--pretrain", str(data / "p.txt"), "--align", str(data / "a.jsonl"),
                        "--align-chat", "assistant", "--perturb", str(data / "t.jsonl"),
                        "--perturb-field", "meta.reply")
    assert code == 0
    rows = {r["dataset"]: r for r in result["tables"]["datasets"]}
    assert rows["D_p"]["responses"] == 600 and rows["D_p"]["chat"] is None and rows["D_p"]["field"] is None
    assert rows["D_a"]["chat"] == "assistant" and rows["D_a"]["responses"] == 40
    assert (rows["D_t"]["field"], rows["D_t"]["responses"], rows["D_t"]["nulls"]) == ("meta.reply", 27, 3)
    assert result["config"]["files"]["align_chat"] == "assistant"
    assert {r["regime"] for r in result["tables"]["regimes"]} == {"elastic"}
    shown = capsys.readouterr().out
    assert "nulls" in shown and "meta.reply" in shown  # on the terminal too, not only in result.json


def test_one_field_for_all_names_the_per_dataset_options_when_a_dataset_is_plain_text(data, tmp_path, capsys):
    code, _ = _run(data, tmp_path, "--pretrain", str(data / "p.txt"), "--align", str(data / "a.jsonl"),
                   "--perturb", str(data / "t.jsonl"), "--chat", "assistant")
    assert code == 2
    err = capsys.readouterr().err
    assert "D_p (--pretrain): " in err and "p.txt: --chat applies to records" in err
    assert "give --align-chat or --perturb-chat instead of --chat" in err


def test_trees_you_built_are_inputs_and_k_can_be_given(data, tmp_path, capsys):
    built = {}
    for name, extra in (("p", ["p.txt"]), ("a", ["a.jsonl", "--chat", "assistant"])):
        built[name] = tmp_path / f"{name}.npz"
        assert main(["build", str(data / extra[0]), *extra[1:], "--depth", "4", "-o", str(built[name])]) == 0
    code, result = _run(data, tmp_path, "--pretrain", str(built["p"]), "--align", str(built["a"]),
                        "--perturb", str(data / "t.jsonl"), "--perturb-field", "meta.reply", "--k", "1000")
    assert code == 0
    assert [r["depth"] for r in result["tables"]["regimes"]] == [4]  # the trees' depth, not the config's
    assert {r["k"] for r in result["records"]} == {1000.0}
    assert result["tables"]["datasets"][0]["source"] == f"tree {built['p']}"
    assert result["tables"]["datasets"][0]["responses"] == 600
    code, free = _run(data, tmp_path, "--pretrain", str(built["p"]), "--align", str(built["a"]),
                      "--perturb", str(data / "t.jsonl"), "--perturb-field", "meta.reply")
    assert code == 0 and free["records"][0]["k"] == pytest.approx(free["tables"]["regimes"][0]["k"])
    assert free["records"][0]["k"] != 1000.0  # without --k: the trees' mass ratio


def test_bad_tree_inputs_are_named(data, tmp_path, capsys):
    trees = {}
    for name, depth, extra in (("p", "4", []), ("p3", "3", []), ("bpe", "4", ["--train-bpe", "300"])):
        trees[name] = tmp_path / f"{name}.npz"
        assert main(["build", str(data / "p.txt"), "--depth", depth, *extra, "-o", str(trees[name])]) == 0
    capsys.readouterr()
    rest = ["--perturb", str(data / "t.jsonl"), "--perturb-field", "meta.reply"]
    cases = [
        (["--pretrain", str(trees["p"]), "--align", str(trees["p3"]), "--perturb", str(trees["p"])],
         "the tree inputs are built differently"),
        (["--pretrain", str(trees["p"]), str(data / "p.txt"), "--align", str(trees["p"]), *rest],
         "p.npz is a tree file, a whole dataset; give it alone"),
        (["--pretrain", str(trees["p"]), "--pretrain-field", "text", "--align", str(trees["p"]), *rest],
         "p.npz is a tree, already read; --field/--chat do not apply to it"),
        (["--pretrain", str(trees["bpe"]), "--align", str(trees["p"]), *rest],
         "--pretrain is tokenized with byte-level BPE"),
        (["--pretrain", str(trees["bpe"]), "--align", str(trees["p"]), "--perturb", str(trees["p"])],
         "--align is tokenized with gpt2 (V = 50,257) but --pretrain with byte-level BPE"),
    ]
    for argv, message in cases:
        assert _run(data, tmp_path, *argv)[0] == 2, argv
        assert message in capsys.readouterr().err, argv


def test_own_data_settings_without_the_datasets_are_refused(data, tmp_path, capsys):
    assert _run(data, tmp_path, "--k", "10")[0] == 2
    assert "k applies to your own data" in capsys.readouterr().err
    assert _run(data, tmp_path, "--align", str(data / "a.jsonl"))[0] == 2
    err = capsys.readouterr().err
    assert "needs your three datasets" in err and "(--pretrain, --perturb missing)" in err
    assert main(["run", "rebound", "--k", "10", "--out", str(tmp_path / "x")]) == 2
    assert "experiment 'rebound' has no k option" in capsys.readouterr().err
