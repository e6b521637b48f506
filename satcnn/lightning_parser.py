"""The parser of ``satcnn fit|validate|test|predict``: a bad option is one line, not the whole usage.

jsonargparse prints the full usage (60 lines and more) before its error. ``SatcnnArgumentParser``
turns the error into :class:`satcnn.errors.UsageError` instead (exit status 2, one line), with the
nearest known option for a misspelt one; the usage is printed only by ``--help``.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from satcnn.errors import UsageError

__all__ = ["SatcnnArgumentParser", "one_line_error"]

_HELP = " (all options: --help)"
_UNRECOGNIZED = re.compile(r"unrecognized arguments?: (.*)", re.DOTALL)


def _options(parser: Any) -> list[str]:
    """Every option string ``parser`` knows (``--trainer.max_epochs``, ...)."""
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


def one_line_error(message: str, parser: Any) -> str:
    """jsonargparse's error ``message`` as one line; an unknown option names the nearest known one."""
    found = _UNRECOGNIZED.search(message)
    if found:
        unknown = [t.split("=")[0] for t in found.group(1).split() if t.startswith("--")]
        if unknown:
            known = _options(parser)
            parts = []
            heads = sorted({k.split(".")[0] for k in known})
            for option in unknown:
                near = difflib.get_close_matches(option, known, n=1, cutoff=0.75)
                head, dot, rest = option.partition(".")
                if not near and dot:  # --modle.init_args.lr: the misspelt part is its first name
                    near = [f"{h}.{rest}" for h in difflib.get_close_matches(head, heads, n=1)]
                parts.append(f"unknown option {option}" + (f"; did you mean {near[0]}?" if near else ""))
            return "; ".join(parts) + " (all options: --help)"
    rejected = re.fullmatch(r"Option '([^']+)' is not accepted", message.strip())
    if rejected:  # a class's own parser (data.init_args): its options without the dashes
        names = [o.removeprefix("--").removeprefix("init_args.") for o in _options(parser)]
        near = difflib.get_close_matches(rejected.group(1), names, n=1)
        return f"{rejected.group(1)!r} is not accepted" + (f"; did you mean {near[0]!r}?" if near else "")
    key = re.search(r'Parser key "([^"]+)"', message)
    items = [i.removesuffix(_HELP) for i in re.findall(r"^\s*- (.*)$", message, re.MULTILINE)]
    if key and any("is not accepted" in i for i in items):  # --data.init_args.<misspelt>
        item = next(i for i in items if "is not accepted" in i)
        return f"option --{key.group(1)}.init_args: {item}{_HELP}"
    given = re.search(r"(?:Given|Got) value: (.*)", message)
    if key and given:
        types = re.findall(r"<class '(?:\w+\.)*(\w+)'>", message.split("Given value type")[0])
        names = [{"NoneType": "null"}.get(t, t) for t in types if t != "str" or len(types) == 1]
        expected = " or ".join(dict.fromkeys(names))
        what = f"expected {expected}, got" if expected else "invalid value"
        return f"option --{key.group(1)}: {what} {given.group(1).strip()!r} (all options: --help)"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " ".join(lines[:4]) + (" ..." if len(lines) > 4 else "")
    return f"{text} (all options: --help)"


class SatcnnArgumentParser(LightningArgumentParser):
    """LightningCLI's parser whose errors are one line (:class:`UsageError`)."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        """Raise ``UsageError`` with ``message`` as one line (the subcommand's options for hints)."""
        parser = getattr(ex, "subcommand_parser", None) or self
        raise UsageError(one_line_error(message, parser)) from None
