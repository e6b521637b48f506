"""Command-line flags derived from an options dataclass: the fields are the one list of options.

A command's options are one frozen dataclass that checks its values in ``__post_init__`` (raising
``OptionError``). Each field declares its flag with :func:`option`; ``add_options`` adds the
flags to an argparse parser and ``parse_options`` builds the dataclass from the parsed namespace.
The flag of a field is ``--`` and its name with dashes (``batch_size``: ``--batch-size``) unless
``flag`` says otherwise; a boolean field that defaults to true is turned off by ``--no-<name>``.
A pipeline stage takes the same fields as keys (``stage_keys``, ``check_keys``).

Exit statuses: a flag value that fails its check is a usage error, as argparse's own (exit 2,
``satcnn <command>: error: argument --flag: problem``); see docs/cli.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from satcnn.checks import OptionError
from satcnn.errors import ConfigError

__all__ = [
    "add_options",
    "add_subcommand",
    "check_keys",
    "command_parser",
    "flag_of",
    "option",
    "parse_options",
    "parse_subcommand",
    "satcnn_command",
    "stage_keys",
    "values",
]

T = TypeVar("T")


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    type: Callable[[str], Any] | None = None,
    choices: Sequence[Any] | None = None,
    positional: bool = False,
    nargs: str | None = None,
    append: bool = False,
    metavar: str | None = None,
    stage: bool = False,
    required: bool | None = None,
) -> Any:
    """A dataclass field that is also a command-line flag.

    Args:
        default: The default (none: the flag is required).
        help: The flag's help text.
        flag: The flag, when not ``--`` and the field name with dashes.
        type: Parses the flag's text (default: the type of ``default``, else ``str``).
        choices: The values allowed (also shown in the help).
        positional: A positional argument instead of a flag.
        nargs: argparse's ``nargs`` (``"+"``: one or more values).
        append: The flag may be repeated, collecting a list.
        metavar: argparse's ``metavar``.
        stage: A pipeline stage of this command takes the field as a key (``stage_keys``).
        required: Whether the flag must be given (default: when there is no default); ``False``
            for a field without a default that another option can stand in for (it is ``None``).
    """
    metadata = {
        "help": help,
        "flag": flag,
        "type": type,
        "choices": choices,
        "positional": positional,
        "nargs": nargs,
        "append": append,
        "metavar": metavar,
        "stage": stage,
        "required": required,
    }
    return dataclasses.field(default=default, metadata=metadata)


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The flag fields of ``cls``: its own first, then those of its bases (shared options last)."""
    own = set(vars(cls).get("__annotations__", {}))
    return sorted(
        (f for f in dataclasses.fields(cls) if "help" in f.metadata), key=lambda f: f.name not in own
    )


def flag_of(cls: type, name: str) -> str:
    """The command-line flag of field ``name`` of options class ``cls`` (``name`` if not a field)."""
    for f in _fields(cls):
        if f.name == name:
            if f.metadata["positional"]:
                return f.name
            if f.metadata["flag"]:
                return str(f.metadata["flag"])
            prefix = "--no-" if f.default is True else "--"
            return prefix + f.name.replace("_", "-")
    return name


def add_options(
    parser: argparse.ArgumentParser, cls: type, types: Mapping[str, Callable[[str], Any]] | None = None
) -> None:
    """Add one argument to ``parser`` per field of options class ``cls``.

    Args:
        parser: The parser (or subparser) of the command.
        cls: The options dataclass.
        types: Parsers of some fields' text that replace their ``type``.
    """
    for f in _fields(cls):
        meta = f.metadata
        kwargs: dict[str, Any] = {"help": meta["help"]}
        if isinstance(f.default, bool):
            kwargs["action"] = "store_false" if f.default else "store_true"
        else:
            default = None if f.default is dataclasses.MISSING else f.default
            parse = (types or {}).get(f.name) or meta["type"]
            if parse is None and isinstance(default, int | float):
                parse = type(default)
            kwargs.update({k: v for k, v in (("type", parse), ("choices", meta["choices"])) if v is not None})
            kwargs.update({k: meta[k] for k in ("nargs", "metavar") if meta[k] is not None})
            if meta["append"]:
                kwargs["action"] = "append"
            if not meta["positional"]:
                if meta["choices"] is None and meta["metavar"] is None:
                    kwargs["metavar"] = flag_of(cls, f.name).lstrip("-").upper().replace("-", "_")
                kwargs["default"] = default
                kwargs["required"] = (
                    f.default is dataclasses.MISSING if meta.get("required") is None else meta["required"]
                )
        if meta["positional"]:
            parser.add_argument(f.name, **kwargs)
        else:
            parser.add_argument(flag_of(cls, f.name), dest=f.name, **kwargs)


def parse_options(parser: argparse.ArgumentParser, cls: type[T], args: argparse.Namespace) -> T:
    """The options ``cls`` built from ``args``; a value that fails its check is ``parser.error``.

    The error names the flag: ``argument --window: must be >= 1, got 0`` (exit status 2).
    """
    given = {f.name: getattr(args, f.name) for f in _fields(cls)}
    try:
        return cls(**given)
    except OptionError as err:
        parser.error(f"argument {flag_of(cls, err.option)}: {err.problem}")


def command_parser(
    prog: str,
    description: str,
    *,
    epilog: str | None = None,
    options: type | None = None,
    types: Mapping[str, Callable[[str], Any]] | None = None,
) -> argparse.ArgumentParser:
    """The parser of command ``prog``: the flags of options class ``options``, if given.

    ``epilog`` (examples, outputs) is printed as written, after the flags.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
    )
    if options is not None:
        add_options(parser, options, types)
    return parser


def add_subcommand(
    subparsers: Any,
    name: str,
    cls: type,
    *,
    help: str,
    types: Mapping[str, Callable[[str], Any]] | None = None,
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` whose flags are the fields of ``cls`` (see ``parse_subcommand``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help)
    add_options(parser, cls, types)
    parser.set_defaults(options_parser=parser, options_class=cls)
    return parser


def parse_subcommand(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Any:
    """The options object of the subcommand ``argv`` names (added by ``add_subcommand``), checked.

    A value that fails its check is the subcommand's usage error, naming the flag (exit status 2).
    """
    args = parser.parse_args(argv)
    return parse_options(args.options_parser, args.options_class, args)


def values(options: Any, *leave_out: str) -> dict[str, Any]:
    """The flag fields of ``options`` by name, but ``leave_out``: keyword arguments of a library call."""
    return {f.name: getattr(options, f.name) for f in _fields(type(options)) if f.name not in leave_out}


def stage_keys(cls: type) -> tuple[str, ...]:
    """The fields of ``cls`` a pipeline stage takes as keys."""
    return tuple(f.name for f in _fields(cls) if f.metadata["stage"])


def check_keys(keys: Iterable[str], known: Sequence[str], where: str) -> None:
    """Raise ``ConfigError`` if any of ``keys`` is not in ``known``, naming the nearest valid keys."""
    unknown = sorted(set(keys) - set(known))
    if unknown:
        near = [m for key in unknown for m in difflib.get_close_matches(key, known, n=1)]
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}{hint}"
        )


def satcnn_command(*words: str | os.PathLike[str]) -> str:
    """A ``satcnn`` command line as the user can run it from this shell, for the hints a command prints.

    ``satcnn ...`` when the ``satcnn`` on ``PATH`` is this environment's (an activated virtual
    environment), else ``python -m satcnn ...`` when ``python`` on ``PATH`` is this interpreter, else
    this interpreter's path and ``-m satcnn`` (``.venv/bin/python -m satcnn ...``). The words are
    shell-quoted.
    """
    bin_dir = os.path.dirname(os.path.abspath(sys.executable))

    def here(program: str) -> bool:  # on PATH and in this interpreter's folder, not merely the same binary
        found = shutil.which(program)
        return found is not None and os.path.dirname(os.path.abspath(found)) == bin_dir

    if here("satcnn"):
        head = "satcnn"
    elif here("python"):
        head = "python -m satcnn"
    else:
        head = f"{shlex.quote(sys.executable)} -m satcnn"
    return " ".join([head, *(shlex.quote(os.fspath(w)) for w in words)])
