"""Datasets in the formats researchers hold them, read as responses (with their chat context).

=============  =========================================  ==========================================
format         files                                      what a record is
=============  =========================================  ==========================================
``text``       ``.txt``, ``.md``, ``.text``               a line, a paragraph or a file (``split``)
``jsonl``      ``.jsonl``, ``.ndjson``                    one JSON object per line
``json``       ``.json``                                  an element of a top-level JSON array
``csv``        ``.csv``                                   a row, the header names the fields
``tsv``        ``.tsv``                                   a row, tab-separated
``parquet``    ``.parquet``, ``.pq``                      a row (needs pyarrow: ``tokentree[data]``)
``arrow``      ``.arrow``, ``.feather``, ``.ipc``         a row of an Arrow IPC file or stream
``datasets``   a Hugging Face ``save_to_disk`` folder     a row of its Arrow files, in order
=============  =========================================  ==========================================

Text-like files may be compressed: ``.gz`` and ``.zst``/``.zstd`` are read transparently
(zstandard needs ``tokentree[data]``). ``-`` reads standard input (the format is given or
sniffed: ``{`` starts JSONL, ``[`` a JSON array, a first line of column names separated by
commas or tabs, one of them the field read, CSV or TSV (``text,label``), anything else text;
``format=`` says it when sniffing would guess wrong). A folder is read recursively, file by
file in sorted order, unless it is a ``datasets`` folder; a ``DatasetDict`` folder needs a
split name, any it holds (``split="train"``, as in ``datasets``), or the split's own
folder. Lines end at ``\n``, ``\r\n`` or a lone ``\r``.

From a record, ``field`` picks the response: a column or key, or a dotted path into
nested records (``meta.answer``, ``messages.1.content``). With ``chat``, the field holds a
conversation (``messages``: role/content turns; ``prompt``/``response`` and
``prompt``/``completion`` records work too, and TRL's preference records,
``prompt``/``chosen``/``rejected``, are read as the chat that ends in the chosen response):
``chat="assistant"`` makes every assistant turn a response, ``"last-assistant"`` only the
last one, and each response keeps the turns before it as its context.

Nothing is silent: an option that does not apply to a file's format is refused, a bad
record stops the read with ``file:line`` (or is skipped and counted with
``skip_bad_lines``), null and blank fields are counted in :class:`ReadStats`, a truncated,
empty or mislabelled file is an error naming it, and a binary file of a format that is not
read gets a message naming the formats that are.

A top-level field of Parquet, Arrow, ``datasets``, JSONL and CSV files is read as an Arrow
column (:mod:`tokentree.data.columnar`), at pyarrow's speed, with the same responses
and errors as record by record (:mod:`tokentree.data.records`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from tokentree.data.columnar import COLUMN_FORMATS, column_responses
from tokentree.data.formats import (
    BINARY_FORMATS,
    FORMATS,
    SPLITS,
    Source,
    detect_format,
    expand_inputs,
)
from tokentree.data.records import Bad, ReadStats, source_records
from tokentree.infra.errors import InputError, TextInputError
from tokentree.infra.optional import installed

__all__ = [
    "FORMATS",
    "SPLITS",
    "CHAT_TURNS",
    "ROLES",
    "Example",
    "ReadStats",
    "as_messages",
    "detect_format",
    "read_examples",
    "read_records",
]

#: Which assistant turns of a conversation are responses.
CHAT_TURNS = ("assistant", "last-assistant")
ROLES = ("system", "user", "assistant")
_CHAT_COLUMNS = ["messages", "prompt", "response", "completion", "chosen", "system"]


@dataclass(frozen=True)
class Example:
    """One response and the conversation turns before it (empty outside chats)."""

    response: str
    context: tuple[dict[str, str], ...] = ()


def _sources(paths: Sequence[str | os.PathLike[str]], format: str | None, split: str | None,
             stats: ReadStats, columns: Sequence[str] | None = None) -> Iterator[tuple[Source, str]]:
    """(source, its format) of every input, the options checked against each."""
    if format is not None and format not in FORMATS:
        raise InputError(f"format must be one of {FORMATS}; got {format!r}")
    if split is not None and (not isinstance(split, str) or not split):
        raise InputError(f"split must be one of {SPLITS}, or a DatasetDict split name; got {split!r}")
    text_split = split if split in SPLITS else None
    for source in expand_inputs(paths, format, None if split is None or split in SPLITS else split):
        kind = source.format or _sniff_stdin(columns or ())
        stats.files.append(source.label)
        if text_split is not None and kind != "text":
            raise InputError(f"{source.label}: split applies to plain text only; this is {kind} (drop --split)")
        yield source, kind


_COLUMN_NAME = re.compile(r'"?[A-Za-z_][A-Za-z0-9_.-]*"?')


def _sniff_stdin(columns: Sequence[str]) -> str:
    """Standard input's format from its first bytes: JSONL, JSON, a CSV/TSV header naming a wanted column, or text."""
    import sys

    stream = sys.stdin.buffer
    peek = getattr(stream, "peek", None)
    head = peek(4096) if peek is not None else b""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"{"):
        return "jsonl"
    if text.startswith(b"["):
        return "json"
    first = text.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    for delimiter, kind in (("\t", "tsv"), (",", "csv")):
        cells = first.split(delimiter)
        if (len(cells) >= 2 and all(_COLUMN_NAME.fullmatch(c) for c in cells)
                and any(c.strip('"') in columns for c in cells)):
            return kind  # a header line of column names, one of them the field read: a table, not prose
    return "text"


def _checked(items: Iterator[tuple[str, Any]], skip_bad_lines: bool, stats: ReadStats) -> Iterator[tuple[str, Any]]:
    """Records, a bad one stopping the read at its location (or skipped and counted)."""
    for where, record in items:
        if isinstance(record, Bad):
            if not skip_bad_lines:
                raise TextInputError(f"{where}: line {record.problem}; fix the line, or pass --skip-bad-lines "
                                     "(skip_bad_lines=True) to skip bad records and count them")
            stats.skip(where)
        else:
            yield where, record


def read_records(
    paths: Sequence[str | os.PathLike[str]],
    *,
    format: str | None = None,
    split: str | None = None,
    skip_bad_lines: bool = False,
    stats: ReadStats | None = None,
    columns: Sequence[str] | None = None,
) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, record)`` from files, folders and ``-``: a string for text, a mapping otherwise.

    ``columns`` (top-level names) lets Parquet and Arrow read only what is needed; records
    of other formats come whole.
    ``where`` is ``file:line`` (or ``file:row N``) for messages. ``format`` forces one format
    for every input (needed for standard input only if sniffing would guess wrong);
    ``split`` cuts text files ("line", "paragraph" or "file") and is refused for others; any
    other name picks that split of a DatasetDict folder. A JSONL line that is not JSON stops
    the read, or with ``skip_bad_lines`` is counted in ``stats`` and skipped.
    """
    stats = ReadStats() if stats is None else stats
    for source, kind in _sources(paths, format, split, stats, columns):
        text_split = split if split in SPLITS else "line"
        yield from _checked(source_records(source, kind, text_split, columns), skip_bad_lines, stats)


# ----------------------------------------------------------------------------- from records to examples
def _get(record: Any, path: str) -> Any:
    """``record`` at a dotted ``path``; KeyError naming the missing part."""
    value = record
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            keys = f"; it has {sorted(value)[:10]}" if isinstance(value, Mapping) else ""
            raise KeyError(f"has no field {part!r}" + (f" (in {path!r})" if part != path else "") + keys)
    return value


def _turns(value: Any, role: str) -> list[Any]:
    """A prompt or answer as turns: a string is one turn of ``role``, a list is turns already."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, Sequence):
        return list(value)
    return [value]  # not text: refused with the turn's index below


def _record_turns(example: Mapping[str, Any], where: str) -> list[Any]:
    """The turns of a prompt/response, prompt/completion or prompt/chosen/rejected (TRL) record."""
    answer_key = next((k for k in ("response", "completion", "chosen") if k in example), None)
    prompt = example.get("prompt")
    implicit = answer_key in ("completion", "chosen") and prompt is None and isinstance(example[answer_key], list)
    if answer_key is None or (prompt is None and not implicit):
        raise InputError(
            f"{where} has keys {sorted(example)}; give 'messages' (a list of role/content turns), 'prompt' and "
            "'response' (or 'completion'), or a preference record: 'prompt', 'chosen' and 'rejected'"
        )
    turns = [] if prompt is None else _turns(prompt, "user")
    if example.get("system") is not None:
        turns.insert(0, {"role": "system", "content": example["system"]})
    return turns + _turns(example[answer_key], "assistant")


def as_messages(example: Any, where: str = "example") -> tuple[dict[str, str], ...]:
    """The chat turns of one example, checked: roles from :data:`ROLES`, text content, an assistant turn.

    A preference record (TRL's ``prompt``/``chosen``/``rejected``, with strings or with
    turns) is the conversation that ends in the chosen response.

    >>> as_messages({"prompt": "hi", "response": "hello"})
    ({'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'hello'})
    >>> as_messages({"prompt": "2+2?", "chosen": "4", "rejected": "5"})[-1]
    {'role': 'assistant', 'content': '4'}
    """
    if isinstance(example, tuple) and len(example) == 2 and all(isinstance(x, str) for x in example):
        example = {"prompt": example[0], "response": example[1]}
    if isinstance(example, Mapping) and "messages" in example:
        example = example["messages"]
    if isinstance(example, Mapping):
        turns = _record_turns(example, where)
    elif isinstance(example, Sequence) and not isinstance(example, str):
        turns = list(example)
    else:
        raise InputError(f"{where} is a {type(example).__name__}; give a chat (messages) or a prompt/response pair")
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise InputError(
                f"{where}, turn {i}: each turn needs a role in {ROLES} and text content; got {turn!r:.80}"
            )
        out.append({"role": str(turn["role"]), "content": str(turn["content"])})
    if not any(t["role"] == "assistant" and t["content"].strip() for t in out):
        raise InputError(f"{where} has no response: no assistant turn with text, so there is nothing to learn")
    return tuple(out)


def _examples(record: Any, where: str, field_path: str, chat: str | None, stats: ReadStats) -> list[Example]:
    if isinstance(record, str):
        return [Example(record)] if record.strip() else []
    if chat is not None:
        try:
            value = _get(record, field_path) if field_path != "messages" or "messages" in record else record
        except KeyError as exc:
            raise InputError(f"{where}: record {exc.args[0]}") from None
        turns = as_messages(value, where)
        answers = [i for i, t in enumerate(turns) if t["role"] == "assistant" and t["content"].strip()]
        if chat == "last-assistant":
            answers = answers[-1:]
        return [Example(turns[i]["content"], turns[:i]) for i in answers]
    try:
        value = _get(record, field_path)
    except KeyError as exc:
        raise InputError(f"{where}: record {exc.args[0]}") from None
    if isinstance(value, str):
        if value.strip():
            return [Example(value)]
        stats.empty += 1
        return []
    if value is None:
        stats.nulls += 1  # a missing value (null, a missing cell): no response, counted
        return []
    hint = " (a conversation: pass --chat assistant or --chat last-assistant)" if isinstance(value, list) else ""
    raise InputError(f"{where}: field {field_path!r} is {type(value).__name__}, not text{hint}")


def response_batches(
    paths: Sequence[str | os.PathLike[str]],
    *,
    field: str | None = None,
    chat: str | None = None,
    split: str | None = None,
    format: str | None = None,
    skip_bad_lines: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[list[str] | list[Example]]:
    """The responses of :func:`read_examples` in lists: strings from the column path, examples otherwise."""
    if chat is not None and chat not in CHAT_TURNS:
        raise InputError(f"chat must be one of {CHAT_TURNS}; got {chat!r}")
    if field is not None and (not isinstance(field, str) or not field or any(not p for p in field.split("."))):
        raise InputError(f"field must be a column name or a dotted path like 'meta.text'; got {field!r}")
    stats = ReadStats() if stats is None else stats
    field_path = field or ("messages" if chat else "text")
    top = _CHAT_COLUMNS if chat is not None and field is None else [field_path.split(".")[0]]
    text_split = split if split in SPLITS else "line"
    for source, kind in _sources(paths, format, split, stats, top):
        columnar = (chat is None and "." not in field_path and source.path is not None and kind in COLUMN_FORMATS
                    and (kind in BINARY_FORMATS or installed("pyarrow")))
        items = (column_responses(source, field_path, stats) if columnar
                 else source_records(source, kind, text_split, top))
        for item in items:
            if type(item) is list:
                stats.responses += len(item)
                yield item
                continue
            for where, record in _checked(iter((item,)), skip_bad_lines, stats):
                if isinstance(record, str) and (field is not None or chat is not None):
                    option = "--field" if field is not None else "--chat"
                    raise InputError(f"{where.rsplit(':', 1)[0]}: {option} applies to records (JSONL, JSON, CSV, "
                                     "Parquet, Arrow); this is plain text, where each line (or --split unit) is a "
                                     "response")
                try:
                    found = _examples(record, where, field_path, chat, stats)
                except InputError as exc:
                    if not skip_bad_lines:
                        raise TextInputError(f"{exc}; fix it, choose another --field, or pass --skip-bad-lines "
                                             "(skip_bad_lines=True) to skip bad records and count them") from None
                    stats.skip(where)
                    continue
                if found:
                    stats.responses += len(found)
                    yield found


def read_examples(
    paths: Sequence[str | os.PathLike[str]],
    *,
    field: str | None = None,
    chat: str | None = None,
    split: str | None = None,
    format: str | None = None,
    skip_bad_lines: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[Example]:
    """Yield the responses of files, folders and ``-`` (see the module docstring), one at a time.

    Parameters
    ----------
    field : str, optional
        Column, key or dotted path of the response (default ``text``; ``messages`` with ``chat``).
        Refused for plain text.
    chat : {"assistant", "last-assistant"}, optional
        The field holds conversations; which assistant turns are responses.
    split : str, optional
        How plain text is cut into responses ("line", the default, "paragraph" or "file"),
        refused for other formats; any other name is the split of a DatasetDict folder to read.
    format : str, optional
        Read every input as this format instead of by its suffix.
    skip_bad_lines : bool
        Skip records that cannot be read (counted in ``stats``) instead of stopping at the first.
    stats : ReadStats, optional
        Filled in as the read goes: responses (counted a batch at a time), skipped, null and
        empty records, files.
    """
    for batch in response_batches(paths, field=field, chat=chat, split=split, format=format,
                                  skip_bad_lines=skip_bad_lines, stats=stats):
        if batch and isinstance(batch[0], str):
            yield from map(Example, cast("list[str]", batch))
        else:
            yield from cast("list[Example]", batch)
