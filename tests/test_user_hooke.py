"""Theorem 4.2 on a user's own trees and files: one call, k and symbol lengths from the trees, the regime named."""

from __future__ import annotations

import json
import random

import pytest

from tokentree.cli import main
from tokentree.infra.errors import InputError
from tokentree.trees.build import build_tree
from tokentree.verification import RegimeWarning, hooke_on_trees

P = [[1, 2], [3, 4, 4], [5, 6]] * 40  # three kinds; D_a like the second, D_t like the third
A, T = [[3, 4, 4]] * 4, [[5, 6]] * 3


def test_one_call_from_three_trees_to_the_verdicts():
    p, a, t = (build_tree(x, depth=3, mode="chunk") for x in (P, A, T))
    r = hooke_on_trees(p, a, t)
    assert r.regime.regime == "elastic" and r.regime.conditions_hold
    assert r.regime.k == pytest.approx(120 / 4)  # the trees' masses
    # symbol lengths from the trees: L_p / L_a = (mean tokens of D_p's symbols) / 3
    assert r.regime.minus_k_scaled == pytest.approx(-30 * (7 / 3) / 3)
    assert r.regime.ratio_l0 == pytest.approx(r.regime.minus_k_scaled, rel=1e-12)
    assert [str(v.status) for v in r.verdicts] == ["holds", "holds", "holds"]
    assert len(r.to_pandas()) == len(r.sweep)


def test_each_regime_is_named_with_a_warning():
    p, a = (build_tree(x, depth=3) for x in (P, A))
    with pytest.warns(RegimeWarning, match=r"novel perturbation: 100\.0% of D_t's mass"):
        novel = hooke_on_trees(p, a, build_tree([[7, 8]], depth=3))
    assert novel.regime.unseen_share == 1.0 and novel.regime.ratio_l0 > 0
    assert [str(v.status) for v in novel.verdicts] == ["holds", "fails as predicted", "not applicable"]
    with pytest.warns(RegimeWarning, match="overlapping perturbation"):
        overlap = hooke_on_trees(p, a, build_tree(A, depth=3))
    assert overlap.regime.overlap_with_align == 1.0 and overlap.regime.d_rate_align_l0_bits < 0
    part = hooke_on_trees(p, a, build_tree([[5, 6], [7, 8]], depth=3), warn=False)
    assert part.regime.regime == "novel perturbation" and part.regime.novel_share == pytest.approx(0.5)


def test_bad_inputs_are_named():
    p, a, t = (build_tree(x, depth=3) for x in (P, A, T))
    with pytest.raises(InputError, match="align is a list; hooke_on_trees takes three TokenTree objects"):
        hooke_on_trees(p, [[1]], t)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must be built alike"):
        hooke_on_trees(p, build_tree(A, depth=2), t)
    with pytest.raises(InputError, match="must include 0"):
        hooke_on_trees(p, a, t, l_values=[0.1])


def test_hooke_runs_on_your_files_of_any_format(tmp_path, capsys):
    rng = random.Random(0)
    kinds = (["the cat sat on the mat", "cats like fish"], ["thank you very much", "happy to help"],
             ["i hate this", "go away now"])
    every = [line for kind in kinds for line in kind]
    (tmp_path / "p.txt").write_text("\n".join(rng.choice(every) for _ in range(600)) + "\n")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"meta": {"reply": rng.choice(kinds[1])}}) + "\n"
                                              for _ in range(40)))
    (tmp_path / "t.csv").write_text("reply\n" + "\n".join(rng.choice(kinds[2]) for _ in range(30)) + "\n")
    out = tmp_path / "run"
    assert main(["run", "hooke", "--pretrain", str(tmp_path / "p.txt"), "--align", str(tmp_path / "a.jsonl"),
                 "--perturb", str(tmp_path / "t.csv"), "--field", "meta.reply", "--out", str(out)]) == 2
    assert "p.txt: --field applies to records" in capsys.readouterr().err  # refused, not ignored
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"meta": {"reply": rng.choice(kinds[2])}}) + "\n"
                                              for _ in range(30)))
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"meta": {"reply": line}}) + "\n"
                                              for line in (tmp_path / "p.txt").read_text().split("\n") if line))
    assert main(["run", "hooke", "--pretrain", str(tmp_path / "p.jsonl"), "--align", str(tmp_path / "a.jsonl"),
                 "--perturb", str(tmp_path / "t.jsonl"), "--field", "meta.reply", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["data"] == "files"
    assert {r["regime"] for r in result["tables"]["regimes"]} == {"elastic"}
    assert all(v["status"] == "holds" for v in result["verdicts"])
    assert "Theorem 4.2 on your data" in (out / "summary.md").read_text()
    assert main(["run", "hooke", "--pretrain", str(tmp_path / "p.txt"), "--out", str(tmp_path / "x")]) == 2
    assert "needs your three datasets" in capsys.readouterr().err


def test_trees_passed_to_the_distribution_api_get_pointed_to_the_tree_api():
    from tokentree.compression.elasticity import perturbation_setting

    a = build_tree(A, depth=3)
    with pytest.raises(InputError, match=r"align is a token tree; .*hooke_on_trees\(pretrain, align, perturb\)"):
        perturbation_setting([1.0, 0.0], a, [0.0, 1.0], k=10.0)
