"""``tokentree build``: tokenize text (files, folders, JSONL, a built-in corpus) or read token ids; save the tree."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tokentree.cli._common import formatter, say
from tokentree.infra.errors import InputError

__all__ = ["add_build", "run_build"]

BUILD_EXAMPLES = """examples:
  tokentree build notes.txt more_text/ --depth 8 --mode window -o tree.npz
  tokentree build data.jsonl --field text --train-bpe 4000 -o tree.npz
  tokentree build chats.parquet --chat assistant --tokenizer ./my-model -o chats.npz
  gunzip -c data.jsonl.gz | tokentree build - -o tree.npz
  tokentree build --ids train.bin --dtype uint16 --eos 50256 --tokenizer gpt2 --mode window -o train.npz
  tokentree build --builtin pydoc --depth 4 -o pydoc.npz"""


def add_build(sub: Any) -> None:
    from tokentree.data.readers import CHAT_TURNS, FORMATS, SPLITS
    from tokentree.data.text import BUILTIN_CORPORA
    from tokentree.trees.tree import ALPHABETS, MODES, WEIGHTINGS

    p = sub.add_parser(
        "build", help="build a token tree from text and save it (.npz)", epilog=BUILD_EXAMPLES,
        formatter_class=formatter,
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
        "--split", metavar="HOW|SPLIT",
        help=f"how a plain-text file is cut into responses ({', '.join(SPLITS)}), or which split of a DatasetDict "
        "folder to read, any name it holds, e.g. train or validation (default: line; a DatasetDict needs one)",
    )
    p.add_argument(
        "--format", choices=FORMATS,
        help="read every input as this format instead of by its suffix, e.g. for - (stdin) (default: by suffix)",
    )
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count bad records (default: stop)")
    p.add_argument("--force", action="store_true", help="build even if the memory estimate is too high (default: off)")
    p.add_argument("--compress", action="store_true", help="write a compressed .npz (default: uncompressed)")
    p.add_argument("--paths", action="store_true", help="store chains of one child as runs in one token array "
                   "(path compression: smaller in memory and on disk; the same tree) (default: one node per prefix)")
    p.add_argument(
        "--overwrite", action="store_true",
        help="with --workers/--scheduler: replace the output folder even if it is not an earlier partitioned tree "
        "(default: refuse)",
    )


def run_build(args: argparse.Namespace) -> int:
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


def _build(args: argparse.Namespace) -> int:
    from tokentree.data.text import load_tokenizer, provenance, tokenizer_vocab_size
    from tokentree.infra.cache import kernels_cached
    from tokentree.trees import _kernels
    from tokentree.trees.build import build_tree
    from tokentree.trees.storage import save_tree

    if args.paths and (args.workers is not None or args.scheduler is not None):  # before any input is read
        raise InputError("--paths writes one tree file; a partitioned build writes a folder of parts: drop "
                         "--paths, or build without --workers/--scheduler")
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
        say(f"compiling the tree builder (once after installing; about a minute; cached in "
             f"{os.environ.get('NUMBA_CACHE_DIR')})")
    say(f"building the depth-{args.depth} tree")
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
    path = save_tree(tree.compressed() if args.paths else tree, args.output, compress=args.compress)
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
        say(f"fetching the chat tokenizer {args.template} from the Hugging Face hub (or its local cache)")
    chat_tokenizer = load_chat_tokenizer(args.template)
    examples = read_examples(args.inputs, field=args.field, chat=args.chat, split=args.split, format=args.format,
                             skip_bad_lines=args.skip_bad_lines, stats=stats)
    responses, _contexts = responses_in_context(examples, chat_tokenizer)
    read = f" ({stats.responses:,} responses in context from {len(stats.files)} inputs{_not_read(stats)})"
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
    say(f"reading and tokenizing {', '.join(args.inputs) or args.builtin} with {name}")
    seqs = encode_texts(texts(stats), tokenizer)  # only this read is counted
    if stats.skipped:
        print(f"skipped {stats.skipped} bad records (first: {', '.join(stats.skipped_at[:3])})", file=sys.stderr)
    read = f" ({stats.responses:,} responses from {len(stats.files)} inputs{_not_read(stats)})" if stats.files else ""
    return seqs, tokenizer, name, read


def _not_read(stats: Any) -> str:
    """The records that held no response (a null or empty field), said beside the responses: never dropped silently."""
    if not stats.nulls and not stats.empty:
        return ""
    return f"; not responses: {stats.nulls:,} null and {stats.empty:,} empty fields"
