"""``tokentree info`` and ``tokentree query``: describe a tree, count a text in it, list its heaviest symbols."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from tokentree.cli._common import formatter, save_figure
from tokentree.infra.errors import InputError
from tokentree.infra.outputs import check_output_file

__all__ = ["add_info", "add_query", "describe_tree", "query_tree", "run_info", "run_query"]

INFO_EXAMPLES = """examples:
  tokentree info tree.npz
  tokentree info tree.npz --json > tree-info.json
  tokentree info tree.npz --plot layers.png     # nodes, mass and entropy by depth, drawn"""

QUERY_EXAMPLES = """examples:
  tokentree query tree.npz "the cat sat"       # counts and probabilities along the text
  tokentree query tree.npz --ids 464 3797      # the same by token ids
  tokentree query tree.npz --top 20            # the heaviest symbols, as text
  tokentree query tree.npz "the cat sat" --plot counts.png   # the counts by depth, drawn"""


def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="describe a tree file", epilog=INFO_EXAMPLES, formatter_class=formatter)
    p.add_argument("tree", help="tree file, .npz (required)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: table)")
    p.add_argument("--plot", metavar="FILE.png", help="also draw nodes, mass and entropy by depth into FILE.png "
                   "(default: none)")


def add_query(sub: Any) -> None:
    p = sub.add_parser(
        "query", help="count a text or ids in a tree, or list its heaviest symbols", epilog=QUERY_EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("tree", help="tree file, .npz (required)")
    p.add_argument(
        "text", nargs="?", help="text to look up, with the tree's recorded tokenizer (default: none)"
    )
    p.add_argument(
        "--ids", type=int, nargs="+", metavar="ID", help="token ids to look up instead of text (default: none)"
    )
    p.add_argument("--top", type=int, metavar="K", help="list the K heaviest symbols (default: 10 without a query)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: table)")
    p.add_argument("--plot", metavar="FILE.png", help="with a text or --ids: also draw the prefix's count and "
                   "P(token | before) at each depth into FILE.png (default: none)")


def describe_tree(tree: Any) -> dict:
    """The numbers ``tokentree info`` prints, as a JSON-ready dict (a tree file or a partitioned tree folder)."""
    from tokentree.trees.partitioned import PartitionedTree

    if isinstance(tree, PartitionedTree):
        stats = {k: v.tolist() for k, v in tree.layer_stats().items()}
        return {
            "info": tree.info.to_dict(), "nodes": tree.n_nodes, "total_mass": tree.total_mass,
            "symbols": int(tree.symbol_masses().shape[0]), "memory_bytes": tree.nbytes_on_disk, "layers": stats,
            "provenance": tree.provenance, "parts": tree.n_parts,
        }
    return {
        "info": tree.info.to_dict(),
        "nodes": tree.n_nodes,
        "total_mass": tree.total_mass,
        "symbols": len(tree.symbols()),
        "memory_bytes": tree.nbytes,
        "layout": "paths" if tree.is_compressed else "full",
        "layers": tree.layer_stats().to_dict(),
        "provenance": tree.provenance,
    }


def run_info(args: argparse.Namespace) -> int:
    from tokentree.trees.partitioned import open_tree

    plot = check_output_file(args.plot) if args.plot is not None else None  # before any work
    tree = open_tree(args.tree)
    d = describe_tree(tree)
    if plot is not None:
        from tokentree.plots.trees import plot_tree_layers

        save_figure(plot_tree_layers(d["layers"], title=f"{args.tree}: the tree by depth"), plot)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    i = d["info"]
    print(f"{args.tree}")
    print(f"  sequences {i['n_sequences']:,}   tokens {i['n_tokens']:,}   vocab {i['vocab_size']:,}")
    print(f"  mode {i['mode']}   depth {i['depth']}   weight {i['weighting']}   alphabet {i['alphabet']}")
    where = f"on disk in {d['parts']} parts" if "parts" in d else "memory"
    print(f"  nodes {d['nodes']:,}   symbols {d['symbols']:,}   mass {d['total_mass']:,}   "
          f"{where} {d['memory_bytes'] / 2**20:.1f} MiB" + (" (path-compressed)" if d.get("layout") == "paths" else ""))
    print(f"  {'depth':>5} {'nodes':>12} {'mass':>12} {'eos':>10} {'entropy (bits)':>15}")
    layers = d["layers"]
    for j in range(len(layers["nodes"])):
        print(f"  {j:>5} {layers['nodes'][j]:>12,} {layers['mass'][j]:>12,} {layers['eos_mass'][j]:>10,} "
              f"{layers['entropy_bits'][j]:>15.4f}")
    made = d.get("provenance")
    if made:
        tok = made.get("tokenizer", {})
        builtin = made.get("options", {}).get("builtin")
        sources = ", ".join(i["path"] for i in made.get("inputs", [])) or (f"the built-in corpus {builtin}" if builtin
                                                                             else "data given in Python")
        print(f"  made by tokentree {made.get('tokentree_version', '?')} from {sources}"
              + (f"; tokenizer {tok.get('name')} (V = {tok.get('vocab_size'):,}, sha256 {tok.get('sha256', '')[:12]})"
                 if tok else ""))
    return 0


def query_tree(tree: Any, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Along ``ids``: each prefix's count and the probability of its last token given the prefix before it."""
    rows = []
    before = tree.total_mass
    for j in range(1, len(ids) + 1):
        count = tree.count(list(ids[:j])) if j <= tree.depth else None
        rows.append({
            "position": j, "id": int(ids[j - 1]), "token": tree.decode([ids[j - 1]]), "count": count,
            "probability": (count / before) if count is not None and before else None,
            "ends_here": tree.eos_count(list(ids[:j])) if j <= tree.depth else None,
        })
        before = count or 0
    return rows


def run_query(args: argparse.Namespace) -> int:
    from tokentree.trees.partitioned import open_tree

    if args.text is not None and args.ids is not None:
        raise InputError("give a text or --ids, not both")
    if args.plot is not None and args.text is None and args.ids is None:
        raise InputError("--plot draws a query's counts by depth: give a text or --ids (the whole tree by depth: "
                         "`tokentree info TREE --plot FILE.png`)")
    plot = check_output_file(args.plot) if args.plot is not None else None  # before any work
    tree = open_tree(args.tree)
    if args.top is not None and args.top < 1:
        raise InputError(f"--top K lists the K heaviest symbols, so K must be at least 1; got {args.top}")
    vocab = tree.info.vocab_size
    outside = [(j, i) for j, i in enumerate(args.ids or (), start=1) if not 0 <= i < vocab]
    if outside:
        j, i = outside[0]
        raise InputError(f"--ids: id {i} (position {j}) is not a token of this tree, whose ids are 0..{vocab - 1}")
    out: dict[str, Any] = {}
    if args.text is not None or args.ids is not None:
        ids = tree.ids_of(args.text) if args.text is not None else args.ids
        if not ids:
            raise InputError("the text is empty after tokenizing; give some text")
        out["query"] = query_tree(tree, ids)
        if plot is not None:
            from tokentree.plots.trees import plot_query_counts

            save_figure(plot_query_counts(out["query"], title=f"{args.tree}: the query by depth"), plot)
    if args.top is not None or "query" not in out:
        out["top"] = [{"symbol": t, "mass": m, "probability": p} for t, m, p in tree.top_symbols(args.top or 10)]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "query" in out:
        print(f"{args.tree}: {len(out['query'])} tokens (depth {tree.depth}; deeper prefixes are not in the tree)")
        print(f"  {'#':>3} {'id':>8} {'token':<16} {'count':>12} {'P(token | before)':>18} {'ends here':>10}")
        for r in out["query"]:
            count = "-" if r["count"] is None else f"{r['count']:,}"
            prob = "-" if r["probability"] is None else f"{r['probability']:.6g}"
            ends = "-" if r["ends_here"] is None else f"{r['ends_here']:,}"
            print(f"  {r['position']:>3} {r['id']:>8} {r['token']!r:<16} {count:>12} {prob:>18} {ends:>10}")
    if "top" in out:
        print(f"{args.tree}: the {len(out['top'])} heaviest symbols of {tree.total_mass:,}")
        for r in out["top"]:
            print(f"  {r['mass']:>12,} {r['probability']:>10.4%}  {r['symbol']!r}")
    return 0
