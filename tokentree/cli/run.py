"""``tokentree run NAME``: run a registered experiment and write its output folder (docs/experiments.md §schema)."""

from __future__ import annotations

import argparse
from typing import Any

from tokentree.cli._common import formatter
from tokentree.infra.errors import InputError

__all__ = ["RUN_KIND", "RUN_OVERRIDES", "add_run", "run_experiment"]

#: The kind of folder `tokentree run` writes (see tokentree.infra.outputs).
RUN_KIND = "run"
#: Options of `tokentree run` that override a config field of the same name.
RUN_OVERRIDES = (
    "seed", "data", "axis", "positive", "negative", "model", "device", "threads", "pretrain", "align", "perturb",
    "tokenizer", "field", "chat", "pretrain_field", "align_field", "perturb_field", "pretrain_chat", "align_chat",
    "perturb_chat", "k",
)
#: The three datasets of `tokentree run hooke` on your data, and the paper's names for them.
OWN_DATASETS = (("pretrain", "D_p"), ("align", "D_a"), ("perturb", "D_t"))

RUN_EXAMPLES = """examples:
  tokentree run --list
  tokentree run hooke                          # the main job, writes runs/hooke/
  tokentree run hooke --quick --out runs/quick
  tokentree run hooke --config experiments/hooke-paper.toml --seed 3
  tokentree run hooke-trained --data real
  tokentree run rebound --data files --positive good.jsonl --negative bad.jsonl
  tokentree run hooke --pretrain corpus/ --align aligned.jsonl --perturb harmful.parquet
  tokentree run hooke --pretrain web.txt --align chats.jsonl --align-chat assistant --perturb bad.jsonl \
      --perturb-field meta.text --k 1000
  tokentree run hooke --pretrain pretrain.npz --align aligned.npz --perturb harmful.npz   # trees you built

outputs (docs/experiments.md): config.toml, result.json, records.csv, summary.md, *.png, run.json"""


def add_run(sub: Any) -> None:
    from tokentree.bridge.hf import DEVICES
    from tokentree.data.readers import CHAT_TURNS

    p = sub.add_parser(
        "run", help="run an experiment (tokentree run --list shows them)", epilog=RUN_EXAMPLES,
        formatter_class=formatter,
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
    for name, what in OWN_DATASETS:
        p.add_argument(
            f"--{name}", nargs="+", metavar="FILE",
            help=f"hooke on your data: {what} as files or folders of any format `tokentree build` reads, or one tree "
            "file it wrote (default: none; all three together)",
        )
    p.add_argument("--tokenizer", help="for experiments that tokenize text: 'gpt2', a tokenizer file or folder "
                   "(default: the experiment's own, gpt2)")
    p.add_argument("--field", metavar="PATH", help="with --pretrain ...: the response field of records, in all three "
                   "datasets (default: text)")
    p.add_argument("--chat", choices=CHAT_TURNS, help="with --pretrain ...: records of all three datasets are "
                   "conversations; which assistant turns count (default: off)")
    for name, what in OWN_DATASETS:
        p.add_argument(f"--{name}-field", metavar="PATH", help=f"the response field of {what}'s records, over --field "
                       "(default: --field's)")
        p.add_argument(f"--{name}-chat", choices=CHAT_TURNS, help=f"{what}'s records are conversations, over --chat "
                       "(default: --chat's)")
    p.add_argument("--k", type=float, help="hooke on your data: k = |D_p| / |D_a|, the weight of D_p (default: the "
                   "ratio of the trees' masses)")
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


def run_experiment(args: argparse.Namespace) -> int:
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
    if any(getattr(args, name) is not None for name, _ in OWN_DATASETS) and args.data is None:
        overrides["data"] = "files"  # your own data: --pretrain (--align, --perturb) says so
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
