"""The ``tokentree`` command line (also ``python -m tokentree``).

Subcommands:

* ``tokentree build``: tokenize text (files, folders, JSONL or a built-in corpus) and
  write its token tree to an ``.npz`` file;
* ``tokentree info``: describe a tree file;
* ``tokentree run NAME``: run a registered experiment (``tokentree run --list``) and
  write its config, result.json, records.csv, summary.md, plots and run.json into an
  output folder (docs/experiments.md §schema).

Every choice offered comes from the code's own constants, and every option's help
states its default.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from tokentree.infra.errors import InputError, InputTypeError, MemoryEstimateError

__all__ = ["main", "describe_tree", "RUN_KIND"]

#: The kind of folder `tokentree run` writes (see tokentree.infra.outputs).
RUN_KIND = "run"
#: Options of `tokentree run` that override a config field of the same name.
RUN_OVERRIDES = (
    "seed", "data", "axis", "positive", "negative", "model", "device", "threads", "pretrain", "align", "perturb",
    "tokenizer", "field", "chat",
)

BUILD_EXAMPLES = """examples:
  tokentree build notes.txt more_text/ --depth 8 --mode window -o tree.npz
  tokentree build data.jsonl --field text --train-bpe 4000 -o tree.npz
  tokentree build chats.parquet --chat assistant --tokenizer ./my-model -o chats.npz
  gunzip -c data.jsonl.gz | tokentree build - -o tree.npz
  tokentree build --ids train.bin --dtype uint16 --eos 50256 --tokenizer gpt2 --mode window -o train.npz
  tokentree build --builtin pydoc --depth 4 -o pydoc.npz"""

INFO_EXAMPLES = """examples:
  tokentree info tree.npz
  tokentree info tree.npz --json > tree-info.json"""

RUN_EXAMPLES = """examples:
  tokentree run --list
  tokentree run hooke                          # the main job, writes runs/hooke/
  tokentree run hooke --quick --out runs/quick
  tokentree run hooke --config experiments/hooke-paper.toml --seed 3
  tokentree run hooke-trained --data real
  tokentree run rebound --data files --positive good.jsonl --negative bad.jsonl
  tokentree run hooke --pretrain corpus/ --align aligned.jsonl --perturb harmful.parquet

outputs (docs/experiments.md): config.toml, result.json, records.csv, summary.md, *.png, run.json"""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_build(sub: Any) -> None:
    from tokentree.data.readers import CHAT_TURNS, FORMATS, SPLITS
    from tokentree.data.text import BUILTIN_CORPORA
    from tokentree.trees.tree import ALPHABETS, MODES, WEIGHTINGS

    p = sub.add_parser(
        "build", help="build a token tree from text and save it (.npz)", epilog=BUILD_EXAMPLES,
        formatter_class=_formatter,
    )
    p.add_argument(
        "inputs", nargs="*",
        help="files, folders or - (stdin): text, JSONL, JSON, CSV/TSV, Parquet, Arrow, datasets folders, .gz/.zst "
        "(default: none; or use --builtin)",
    )
    p.add_argument(
        "--builtin", metavar="NAME", choices=sorted(BUILTIN_CORPORA),
        help=f"use a built-in corpus instead of files: {', '.join(sorted(BUILTIN_CORPORA))} (default: none)",
    )
    p.add_argument("-o", "--output", required=True, help="output tree file, .npz (required; no default)")
    p.add_argument(
        "--tokenizer",
        help="'gpt2', a tokenizer.json file or folder, or a hub name (online); with --ids it gives the alphabet "
        "size (default: gpt2 for text)",
    )
    p.add_argument(
        "--ids", metavar="FILE",
        help="build from token ids already tokenized: a raw stream (.bin, with --dtype) or a .npy array, memory-mapped "
        "(default: off, read text)",
    )
    p.add_argument("--dtype", help="with --ids FILE.bin: the ids' numpy dtype, e.g. uint16 (nanoGPT) (default: none)")
    p.add_argument(
        "--eos", type=int, help="with --ids: the id separating responses, e.g. 50256 (default: one response)"
    )
    p.add_argument(
        "--vocab-size", type=int, help="with --ids: the alphabet size V (default: the --tokenizer's size; required "
        "without one)",
    )
    p.add_argument(
        "--partitions", type=int,
        help="build in this many parts by first-token ranges, one part's memory at a time; with --workers or "
        "--scheduler the parts are Dask tasks and -o names a folder (default: one part; on Dask: from the "
        "memory limit)",
    )
    p.add_argument(
        "--workers", type=int,
        help="build on a local Dask cluster of this many worker processes, into a partitioned tree folder "
        "(default: no Dask)",
    )
    p.add_argument("--memory-limit", default="6GiB", help="memory of each local Dask worker (default: 6GiB)")
    p.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="build on a running Dask scheduler, e.g. tcp://HOST:8786 (default: none)",
    )
    p.add_argument(
        "--train-bpe", type=int, metavar="VOCAB",
        help="train a byte-level BPE of this size on the inputs instead (default: off, use --tokenizer)",
    )
    p.add_argument("--depth", type=int, default=8, help="capacity depth d (default: 8)")
    p.add_argument("--mode", choices=MODES, default="chunk", help="how responses become symbols (default: chunk)")
    p.add_argument("--weight", choices=WEIGHTINGS, default="sequences", help="what a count counts (default: sequences)")
    p.add_argument(
        "--alphabet", choices=ALPHABETS, default="token", help="tree over ids or their bits (default: token)"
    )
    p.add_argument(
        "--field", metavar="PATH",
        help="the response in each record (JSONL, JSON, CSV, Parquet, Arrow): a column, a key or a dotted path "
        "like meta.text (default: text; messages with --chat)",
    )
    p.add_argument(
        "--chat", choices=CHAT_TURNS,
        help="records hold conversations (role/content messages or prompt/response): which assistant turns are "
        "responses (default: off)",
    )
    p.add_argument(
        "--template", metavar="TOKENIZER",
        help="with --chat: render each conversation with this chat tokenizer (a folder or hub name) and count only "
        "the response tokens, tokenized in their context (default: responses alone)",
    )
    p.add_argument(
        "--split", choices=SPLITS, help="how a plain-text file is cut into responses (default: line)"
    )
    p.add_argument(
        "--format", choices=FORMATS,
        help="read every input as this format instead of by its suffix, e.g. for - (stdin) (default: by suffix)",
    )
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count bad records (default: stop)")
    p.add_argument("--force", action="store_true", help="build even if the memory estimate is too high (default: off)")
    p.add_argument("--compress", action="store_true", help="write a compressed .npz (default: uncompressed)")
    p.add_argument(
        "--overwrite", action="store_true",
        help="with --workers/--scheduler: replace the output folder even if it is not an earlier partitioned tree "
        "(default: refuse)",
    )


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="describe a tree file", epilog=INFO_EXAMPLES, formatter_class=_formatter)
    p.add_argument("tree", help="tree file, .npz (required)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: table)")


QUERY_EXAMPLES = """examples:
  tokentree query tree.npz "the cat sat"       # counts and probabilities along the text
  tokentree query tree.npz --ids 464 3797      # the same by token ids
  tokentree query tree.npz --top 20            # the heaviest symbols, as text"""


def _add_query(sub: Any) -> None:
    p = sub.add_parser(
        "query", help="count a text or ids in a tree, or list its heaviest symbols", epilog=QUERY_EXAMPLES,
        formatter_class=_formatter,
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


def _add_run(sub: Any) -> None:
    from tokentree.bridge.hf import DEVICES

    p = sub.add_parser(
        "run", help="run an experiment (tokentree run --list shows them)", epilog=RUN_EXAMPLES,
        formatter_class=_formatter,
    )
    p.add_argument("name", nargs="?", help="experiment name, e.g. hooke (required unless --list)")
    p.add_argument("--list", action="store_true", help="list the registered experiments and exit (default: off)")
    p.add_argument(
        "--config", metavar="FILE.toml",
        help="TOML file overriding the experiment's defaults, e.g. experiments/hooke-paper.toml (default: none)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/NAME)")
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace DIR even if it is not an earlier tokentree run folder, with everything in it (default: refuse)",
    )
    p.add_argument("--seed", type=int, help="random seed (default: the config's, 0)")
    p.add_argument("--quick", action="store_true", help="a small version of the experiment, seconds (default: off)")
    p.add_argument(
        "--data",
        help="data source, for experiments that have one; `tokentree run NAME --data x` lists the choices "
        "(default: the experiment's own, synthetic where there is one)",
    )
    for name, what in (("pretrain", "D_p"), ("align", "D_a"), ("perturb", "D_t")):
        p.add_argument(
            f"--{name}", nargs="+", metavar="FILE",
            help=f"hooke on your data: {what} as files or folders of any format `tokentree build` reads "
            "(default: none; all three together)",
        )
    p.add_argument("--tokenizer", help="for experiments that tokenize text: 'gpt2', a tokenizer file or folder "
                   "(default: the experiment's own, gpt2)")
    p.add_argument("--field", metavar="PATH", help="with --pretrain ...: the response field of records (default: text)")
    p.add_argument("--chat", choices=("assistant", "last-assistant"),
                   help="with --pretrain ...: records are conversations; which assistant turns count (default: off)")
    p.add_argument(
        "--axis", help="behaviour axis of the synthetic language for behaviour experiments: sentiment, style, truth or "
        "safety (default: the experiment's own, sentiment)",
    )
    p.add_argument(
        "--positive", metavar="FILE.jsonl",
        help="with --data files: aligned examples, one JSON object per line with prompt/response or messages "
        "(default: none)",
    )
    p.add_argument(
        "--negative", metavar="FILE.jsonl", help="with --data files: misaligned examples, same format (default: none)"
    )
    p.add_argument(
        "--model",
        help="for experiments that train or score a model: tiny, smollm2, a model folder or a hub name "
        "(default: the experiment's own)",
    )
    p.add_argument("--device", choices=DEVICES, help="where models run; auto: a GPU if there is one (default: auto)")
    p.add_argument("--threads", type=int, help="torch CPU threads for experiments with models (default: 1)")
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show progress bars (default: only on a terminal)",
    )


def _parser() -> argparse.ArgumentParser:
    from tokentree.infra.version import __version__

    parser = argparse.ArgumentParser(
        prog="tokentree",
        description="Token trees, Huffman codes and the elasticity of joint compression "
        "(Ji et al., ACL 2025). Theory: docs/theory.md; experiments: docs/experiments.md.",
        epilog="examples:\n  tokentree run hooke\n  tokentree build --builtin pydoc -o pydoc.npz\n"
        "  tokentree info pydoc.npz",
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"tokentree {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (default: one line)"
    )
    bars = parser.add_mutually_exclusive_group()
    bars.add_argument(
        "--progress", dest="global_progress", action="store_const", const=True, default=None,
        help="draw progress bars even off a terminal (default: on a terminal or in Jupyter only; "
        "the environment variable TOKENTREE_PROGRESS=1/0 does the same)",
    )
    bars.add_argument(
        "--quiet", dest="global_progress", action="store_const", const=False, help="never draw progress bars",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_build(sub)
    _add_info(sub)
    _add_query(sub)
    _add_run(sub)
    return parser


def _run_build(args: argparse.Namespace) -> int:
    sources = [bool(args.inputs), bool(args.builtin), args.ids is not None]
    if sum(sources) != 1:
        raise InputError("give input files/folders, --builtin NAME or --ids FILE (exactly one of them)")
    if args.workers is not None or args.scheduler is not None:
        from tokentree.infra.outputs import claim_output_folder
        from tokentree.trees.distributed import OUTPUT_KIND

        try:
            with claim_output_folder(args.output, kind=OUTPUT_KIND, overwrite=args.overwrite):  # before any work
                return _build(args)
        except Exception as exc:  # a task whose worker died on every retry: Dask's own message is many lines
            scheduler = sys.modules.get("distributed.scheduler")  # loaded if Dask ran at all
            if scheduler is None or not isinstance(exc, scheduler.KilledWorker):
                raise
            raise InputError(
                f"a Dask worker died on every attempt at task {exc.task} (out of memory, or killed); {args.output} is "
                "as it was. Give workers more memory (--memory-limit) or use more, smaller parts (--partitions)"
            ) from None
    from tokentree.infra.outputs import check_output_file

    check_output_file(args.output)  # before any work: a bad -o fails in a second, not after tokenizing
    return _build(args)


def _say(message: str) -> None:
    """A line on stderr saying what a long step is doing, when progress is shown (a terminal, --progress)."""
    from tokentree.infra.progress import progress_enabled

    if progress_enabled():
        print(f"tokentree: {message}", file=sys.stderr, flush=True)


def _build(args: argparse.Namespace) -> int:
    from tokentree.data.text import load_tokenizer, provenance, tokenizer_vocab_size
    from tokentree.infra.cache import kernels_cached
    from tokentree.trees import _kernels
    from tokentree.trees.build import build_tree
    from tokentree.trees.storage import save_tree

    text_only = {"--field": args.field, "--chat": args.chat, "--split": args.split, "--format": args.format,
                 "--train-bpe": args.train_bpe, "--template": args.template}
    ids_only = {"--dtype": args.dtype, "--eos": args.eos, "--vocab-size": args.vocab_size}
    options = {"depth": args.depth, "mode": args.mode, "weighting": args.weight, "alphabet": args.alphabet}
    if args.ids is not None:
        wrong = [k for k, v in text_only.items() if v is not None]
        if wrong:
            raise InputError(f"{', '.join(wrong)} read text; --ids takes token ids (drop them)")
        from tokentree.data.sequences import load_token_ids

        tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer is not None else None
        if args.vocab_size is not None:
            vocab = args.vocab_size
        elif tokenizer is not None:
            vocab = tokenizer_vocab_size(tokenizer)
        else:
            raise InputError("--ids needs the alphabet size: --vocab-size V, or --tokenizer NAME whose size it is")
        seqs = load_token_ids(args.ids, dtype=args.dtype, eos=args.eos, vocab_size=vocab)
        name, inputs, read = (args.tokenizer or ""), [args.ids], ""
        options |= {"dtype": args.dtype, "eos": args.eos, "vocab_size": vocab}
    else:
        wrong = [k for k, v in ids_only.items() if v is not None]
        if wrong:
            raise InputError(f"{', '.join(wrong)} apply to --ids FILE only (drop them)")
        seqs, tokenizer, name, read = _encode_text_inputs(args)
        inputs = args.inputs
        options |= {"field": args.field, "chat": args.chat, "split": args.split, "format": args.format,
                    "builtin": args.builtin, "template": args.template}
    record = provenance(tokenizer=tokenizer, tokenizer_name=name, inputs=inputs,
                        options={k: v for k, v in options.items() if v is not None})
    if not kernels_cached(_kernels.__file__):
        _say(f"compiling the tree builder (once after installing; about a minute; cached in "
             f"{os.environ.get('NUMBA_CACHE_DIR')})")
    _say(f"building the depth-{args.depth} tree")
    if args.workers is not None or args.scheduler is not None:
        from tokentree.trees.distributed import build_partitioned

        if args.alphabet != "token":
            raise InputError("distributed builds are over token ids (--alphabet token); build binary trees in one "
                             "process")
        done = build_partitioned(
            seqs, args.output, depth=args.depth, mode=args.mode, weight=args.weight, partitions=args.partitions,
            workers=args.workers or 2, memory_limit=args.memory_limit, scheduler=args.scheduler,
            overwrite=args.overwrite, provenance=record,
            tokenizer_json=tokenizer.to_str() if tokenizer is not None else None,
        )
        print(f"wrote {args.output}/: {done}{read}")
        return 0
    tree = build_tree(seqs, depth=args.depth, mode=args.mode, weight=args.weight, alphabet=args.alphabet,
                      force=args.force, partitions=args.partitions)
    tree = tree.with_provenance(record, tokenizer.to_str() if tokenizer is not None else None)
    path = save_tree(tree, args.output, compress=args.compress)
    print(f"wrote {path}: {tree}{read}")
    return 0


def _encode_in_context(args: argparse.Namespace, stats: Any) -> tuple[Any, Any, str, str]:
    """--template: each response tokenized inside its rendered conversation, only its own tokens kept."""
    from tokentree.bridge.hf import load_chat_tokenizer
    from tokentree.data.chat import responses_in_context
    from tokentree.data.readers import read_examples

    if args.chat is None or args.builtin:
        raise InputError("--template renders conversations; read them with --chat assistant or --chat last-assistant")
    if args.tokenizer is not None or args.train_bpe is not None:
        raise InputError("--template's tokenizer is the tokenizer; drop --tokenizer and --train-bpe")
    if not os.path.isdir(args.template) and os.environ.get("HF_HUB_OFFLINE") != "1":
        _say(f"fetching the chat tokenizer {args.template} from the Hugging Face hub (offline, this retries for about "
             "a minute; set HF_HUB_OFFLINE=1 to fail at once)")
    chat_tokenizer = load_chat_tokenizer(args.template)
    examples = read_examples(args.inputs, field=args.field, chat=args.chat, format=args.format,
                             skip_bad_lines=args.skip_bad_lines, stats=stats)
    responses, _contexts = responses_in_context(examples, chat_tokenizer)
    read = f" ({stats.responses:,} responses in context from {len(stats.files)} inputs)"
    return responses, chat_tokenizer.backend_tokenizer, str(args.template), read


def _encode_text_inputs(args: argparse.Namespace) -> tuple[Any, Any, str, str]:
    """(token sequences, tokenizer, its name, what was read) of the text inputs of `tokentree build`."""
    from tokentree.data.text import ReadStats, builtin_texts, encode_texts, load_tokenizer, read_responses, train_bpe

    stats = ReadStats()

    def texts(counted: ReadStats | None = None) -> Any:
        if args.builtin:
            return iter(builtin_texts(args.builtin))
        return read_responses(args.inputs, field=args.field, split=args.split, chat=args.chat, format=args.format,
                              skip_bad_lines=args.skip_bad_lines, stats=counted)

    if args.template is not None:
        return _encode_in_context(args, stats)
    if "-" in args.inputs and args.train_bpe is not None:  # standard input can be read once: keep it
        kept = list(texts(stats))
        texts = lambda counted=None: iter(kept)  # noqa: E731
    if args.train_bpe is not None:
        if args.tokenizer is not None:
            raise InputError("--train-bpe trains a tokenizer; drop --tokenizer, or drop --train-bpe to use it")
        tokenizer, name = train_bpe(texts(), args.train_bpe), f"byte-level BPE trained on the inputs ({args.train_bpe})"
    else:
        tokenizer, name = load_tokenizer(args.tokenizer or "gpt2"), str(args.tokenizer or "gpt2")
    _say(f"reading and tokenizing {', '.join(args.inputs) or args.builtin} with {name}")
    seqs = encode_texts(texts(stats), tokenizer)  # only this read is counted
    if stats.skipped:
        print(f"skipped {stats.skipped} bad records (first: {', '.join(stats.skipped_at[:3])})", file=sys.stderr)
    read = f" ({stats.responses:,} responses from {len(stats.files)} inputs)" if stats.files else ""
    return seqs, tokenizer, name, read


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
        "layers": tree.layer_stats().to_dict(),
        "provenance": tree.provenance,
    }


def _run_info(args: argparse.Namespace) -> int:
    from tokentree.trees.partitioned import open_tree

    tree = open_tree(args.tree)
    d = describe_tree(tree)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    i = d["info"]
    print(f"{args.tree}")
    print(f"  sequences {i['n_sequences']:,}   tokens {i['n_tokens']:,}   vocab {i['vocab_size']:,}")
    print(f"  mode {i['mode']}   depth {i['depth']}   weight {i['weighting']}   alphabet {i['alphabet']}")
    where = f"on disk in {d['parts']} parts" if "parts" in d else "memory"
    print(f"  nodes {d['nodes']:,}   symbols {d['symbols']:,}   mass {d['total_mass']:,}   "
          f"{where} {d['memory_bytes'] / 2**20:.1f} MiB")
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


def _run_query(args: argparse.Namespace) -> int:
    from tokentree.trees.partitioned import open_tree

    tree = open_tree(args.tree)
    if args.text is not None and args.ids is not None:
        raise InputError("give a text or --ids, not both")
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


def _run_experiment(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from tokentree.framework.runs import (
        available_experiments,
        has_option,
        load_experiment,
        resolve_config,
        run_info,
        write_run_outputs,
    )
    from tokentree.infra.outputs import claim_output_folder, write_output_folder

    if args.list:
        for name, where in available_experiments().items():
            doc = (load_experiment(name).__doc__ or "").strip().splitlines()
            print(f"{name:<22} {doc[0] if doc else where}")
        return 0
    if not args.name:
        raise InputError("name an experiment (e.g. `tokentree run hooke`) or use --list")
    known = available_experiments()
    if args.name not in known:
        import difflib

        close = difflib.get_close_matches(args.name, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise InputError(f"unknown experiment {args.name!r}; {hint}registered: {', '.join(known) or 'none'} "
                         "(`tokentree run --list`)")
    module = load_experiment(args.name)
    overrides = {key: tuple(v) if isinstance(v, list) else v
                 for key in RUN_OVERRIDES if (v := getattr(args, key)) is not None}
    if args.pretrain is not None and args.data is None:
        overrides["data"] = "files"  # your own data: --pretrain says so
    for key in overrides:
        if not has_option(module.Config, key):
            raise InputError(f"experiment {args.name!r} has no {key} option")
    config = resolve_config(
        module.Config, toml_path=args.config, quick=args.quick, overrides=overrides, experiment=args.name
    )
    out = Path(args.out) if args.out is not None else Path("runs") / args.name
    start = time.perf_counter()
    with claim_output_folder(out, kind=RUN_KIND, label=args.name, overwrite=args.overwrite):  # before the work
        result = module.run(config, show_progress=args.progress)
        info = run_info(args.name, wall_seconds=time.perf_counter() - start)
        write_output_folder(
            out, lambda folder: write_run_outputs(folder, config, result, info=info), kind=RUN_KIND, label=args.name,
            overwrite=args.overwrite,
        )
    print(result.terminal_summary())
    print(f"wrote {out}/ (config.toml, result.json, records.csv, summary.md, plots, run.json) in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every clean-up runs (temporary files go, outputs stay whole)."""


def _stop(signum: int, frame: Any) -> None:
    raise Stopped


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"cannot write{where}: {exc.strerror}; free some space or choose another place (nothing was "
                "half-written: earlier outputs are as they were)")
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror}; check the path and its permissions"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input or an unusable path, with a one-line message).

    ``--debug`` shows the traceback instead.
    """
    from tokentree.infra import progress

    args = _parser().parse_args(argv)
    commands = {"build": _run_build, "info": _run_info, "query": _run_query, "run": _run_experiment}
    before = progress.progress_switch()
    progress.set_progress(args.global_progress if args.global_progress is not None else before)
    on_main = threading.current_thread() is threading.main_thread()
    sigterm = signal.signal(signal.SIGTERM, _stop) if on_main else None
    try:
        return commands[args.command](args)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the clean-ups have run on the way here
        if args.debug:
            raise
        how = "SIGTERM" if isinstance(exc, Stopped) else "an interrupt"
        print(f"tokentree {args.command}: stopped by {how}; nothing was half-written (each output is as it was, or "
              "complete if it was already in place)", file=sys.stderr)
        return 143 if isinstance(exc, Stopped) else 130
    except (InputError, InputTypeError, MemoryEstimateError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):  # `tokentree info x | head`: the reader left, nothing is wrong
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        if args.debug:
            raise
        print(f"tokentree {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        progress.set_progress(before)  # main() called from Python leaves the caller's switch as it was
        if on_main:
            signal.signal(signal.SIGTERM, sigterm)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
