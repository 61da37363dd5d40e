"""The `template` driver: renders a text template into a file in the workspace.

A drover driver written in Python and built into a WebAssembly component
with componentize-py (see build.sh). The `wit_world` package is generated
from wit/driver.wit at build time; it is not in this folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import wit_world
from wit_world.imports import log
from wit_world.imports.types import (
    Capabilities,
    Description,
    Input,
    Outcome,
    Problem,
    Status,
    Task,
)

DRIVER = "template"
VERSION = "1.0.0"

# The reserved arg naming the file to write; every other `key=value` arg is a variable.
OUT = "out"

# A name is what drover allows in node and output names (no whitespace, no
# braces), so that `{{ NODE.KEY }}` can name any upstream output.
NAME = re.compile(r"[^\s{}]+")
PLACEHOLDER = re.compile(r"\{\{\s*(" + NAME.pattern + r")\s*\}\}")


@dataclass(frozen=True)
class Placeholder:
    name: str
    line: int

    def __str__(self) -> str:
        return f"`{{{{ {self.name} }}}}` (line {self.line})"


# A parsed template: literal text and placeholders, in order.
Piece = str | Placeholder


def parse_template(text: str) -> tuple[list[Piece], list[str]]:
    """Splits `text` into pieces; returns them and one message per syntax error."""
    pieces: list[Piece] = []
    errors: list[str] = []
    pos = 0
    while (start := text.find("{{", pos)) != -1:
        if start > 0 and text[start - 1] == "$":
            # `${{ nodes.N.outputs.K }}` is drover's own syntax: the host checks
            # it and substitutes it before `run`, so `validate` leaves it be.
            end = text.find("}}", start)
            stop = len(text) if end == -1 else end + 2
            pieces.append(text[pos:stop])
            pos = stop
            continue
        pieces.append(text[pos:start])
        line = text.count("\n", 0, start) + 1
        if match := PLACEHOLDER.match(text, start):
            pieces.append(Placeholder(match.group(1), line))
            pos = match.end()
            continue
        end = text.find("}}", start)
        if end == -1:
            errors.append(f"`{{{{` on line {line} has no closing `}}}}`")
            pieces.append(text[start:])
            pos = len(text)
        else:
            errors.append(
                f"`{text[start : end + 2]}` on line {line} is not a placeholder: "
                "write `{{ NAME }}`, a name without whitespace or braces"
            )
            pieces.append(text[start : end + 2])
            pos = end + 2
    pieces.append(text[pos:])
    return [p for p in pieces if p != ""], errors


@dataclass
class Args:
    out: str | None
    variables: dict[str, str]
    problems: list[str]


def parse_args(args: list[str]) -> Args:
    """Splits args into `out=`, the variables and one message per faulty arg."""
    parsed = Args(out=None, variables={}, problems=[])
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if not eq:
            parsed.problems.append(f"args[{i}] `{arg}` is not `key=value`")
        elif not key:
            parsed.problems.append(f"args[{i}] `{arg}` has no name before `=`")
        elif NAME.fullmatch(key) is None:
            parsed.problems.append(
                f"args[{i}] `{arg}`: a variable name has no whitespace nor braces"
            )
        elif (key == OUT and parsed.out is not None) or key in parsed.variables:
            parsed.problems.append(f"args[{i}]: `{key}` is given twice")
        elif key == OUT:
            parsed.out = value
        else:
            parsed.variables[key] = value
    if parsed.out is None:
        parsed.problems.append(
            "`out=PATH` is required: the file to write, relative to the workspace"
        )
    elif (problem := check_out_path(parsed.out)) is not None:
        parsed.problems.append(problem)
    return parsed


def check_out_path(path: str) -> str | None:
    """Why `path` may not be written, or None: it must stay inside the workspace."""
    pure = PurePosixPath(path)
    if pure.is_absolute():
        return f"out `{path}` is absolute: give a path relative to the workspace"
    if ".." in pure.parts:
        return f"out `{path}` has a `..` component: it must stay inside the workspace"
    if not pure.parts or path.endswith("/"):
        return f"out `{path}` does not name a file"
    return None


def is_input_ref(name: str) -> bool:
    """Whether `name` has the form NODE.KEY (node names may hold dots themselves)."""
    node, dot, key = name.rpartition(".")
    return bool(dot and node and key)


def render(pieces: list[Piece], values: dict[str, str]) -> tuple[str, list[Placeholder]]:
    """Fills the placeholders; returns the text and the placeholders left without a value."""
    out: list[str] = []
    missing: list[Placeholder] = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif piece.name in values:
            out.append(values[piece.name])
        else:
            missing.append(piece)
    return "".join(out), missing


def input_values(inputs: list[Input]) -> dict[str, str]:
    return {f"{i.node}.{i.key}": i.value for i in inputs}


def count_lines(text: str) -> int:
    # A last line without a trailing newline still counts.
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def failure(message: str) -> Outcome:
    return Outcome(status=Status.FAILURE, exit_code=None, outputs=[], message=message)


class WitWorld(wit_world.WitWorld):
    """The exports of the `driver` world; componentize-py looks this class up by name."""

    def describe(self) -> Description:
        return Description(
            name=DRIVER,
            version=VERSION,
            summary="Renders a text template into a file in the node's workspace.",
            artifact=(
                "The template text. `{{ NAME }}` (spaces inside the braces optional) is "
                "replaced by the arg variable NAME, and `{{ NODE.KEY }}` by output KEY of "
                "upstream node NODE. Any other `{{` is an error; `${{ ... }}` is drover's "
                "own substitution and is left to the host."
            ),
            args=(
                "`out=PATH` (required): the file to write, relative to the workspace, "
                "without `..`; its folders are created. Every other arg is a variable "
                "`key=value`. Variables win over upstream outputs of the same name."
            ),
            outputs=(
                "`file` (the path written), `bytes` (its size), `lines` (its line count) "
                "and `sha256` (the hex digest of its content)."
            ),
            capabilities=Capabilities(
                exec=[], workspace=True, network=False, container=False, secrets=False
            ),
        )

    def validate(self, task: Task) -> list[Problem]:
        args = parse_args(task.args)
        problems = [Problem("args", message) for message in args.problems]
        pieces, errors = parse_template(task.artifact)
        problems += [Problem("artifact", message) for message in errors]
        # Upstream outputs only arrive with `run`, so NODE.KEY passes unchecked here.
        unknown: dict[str, Placeholder] = {}
        for piece in pieces:
            if (
                isinstance(piece, Placeholder)
                and piece.name not in args.variables
                and not is_input_ref(piece.name)
            ):
                unknown.setdefault(piece.name, piece)
        problems += [
            Problem(
                "artifact",
                f"{p} names no variable: pass it as arg `{p.name}=VALUE`, "
                "or write `{{ NODE.KEY }}` for an upstream output",
            )
            for p in unknown.values()
        ]
        return problems

    def run(self, task: Task) -> Outcome:
        args = parse_args(task.args)
        pieces, errors = parse_template(task.artifact)
        if args.problems or errors or args.out is None:
            # The host validates before running, so this only guards against a
            # host that does not (and narrows `args.out` for type checkers).
            return failure("; ".join(args.problems + errors))

        text, missing = render(pieces, input_values(task.inputs) | args.variables)
        if missing:
            have = ", ".join(sorted(input_values(task.inputs))) or "none"
            return failure(
                "no value for " + ", ".join(map(str, missing)) + f" (upstream outputs: {have})"
            )

        data = text.encode("utf-8")
        path = str(PurePosixPath(args.out))  # drops `./` and doubled slashes
        try:
            # The workspace is WASI's preopened `.`, so relative paths land in it.
            if parent := os.path.dirname(path):
                os.makedirs(parent, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        except OSError as e:
            return failure(f"cannot write {path}: {e.strerror or e}")

        message = f"wrote {path} ({len(data)} bytes)"
        log.write(log.Level.INFO, message)
        return Outcome(
            status=Status.SUCCESS,
            exit_code=None,
            outputs=[
                ("file", path),
                ("bytes", str(len(data))),
                ("lines", str(count_lines(text))),
                ("sha256", hashlib.sha256(data).hexdigest()),
            ],
            message=message,
        )
