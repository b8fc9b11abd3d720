"""The one error boundary of ``slmctl``: every failure becomes short lines on stderr and an exit code.

Exit codes (README): 0 ok, 1 a mandatory policy finding (only the gate returns it), 2 bad input or
usage, 3 an internal error, 130 interrupted. Nothing else reaches the user: no traceback, no exit 1
for a failure that is not a policy finding. ``SlmTyper`` applies this to every command registered
on the app, including the ones added later, so a new subcommand cannot forget it.

Set ``SLMCTL_TRACEBACK=1`` to see the Python traceback of an internal error.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import typer
from rich.console import Console
from rich.text import Text

EXIT_OK: Final = 0
EXIT_POLICY: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERNAL: Final = 3
EXIT_INTERRUPTED: Final = 130
TRACEBACK_ENV: Final = "SLMCTL_TRACEBACK"


class UsageError(Exception):
    """Bad input or usage: one or more problems, each a single line naming the fix (exit 2)."""

    def __init__(self, problems: Iterable[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def _console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_problems(problems: Iterable[str], *, label: str = "error", console: Console | None = None) -> None:
    """One line per problem, the text printed literally (never parsed as rich markup)."""
    console = console or _console()
    for problem in problems:
        console.print(Text.assemble((label, "bold red"), " ", problem), soft_wrap=True)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (the SDK wraps the program's own exception)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def _is_input_error(exc: BaseException) -> bool:
    """Errors that describe the user's input or environment, not a bug in slmctl."""
    from pulumi.config import ConfigMissingError, ConfigTypeError

    if isinstance(exc, UsageError | ConfigMissingError | ConfigTypeError | UnicodeDecodeError):
        return True
    if isinstance(exc, OSError) and exc.filename is not None:
        return True  # a path the user gave: unwritable, a folder, missing
    return type(exc) is ValueError  # components refuse bad settings with a plain ValueError


def _input_lines(exc: BaseException) -> list[str]:
    if isinstance(exc, UsageError):
        return exc.problems
    if isinstance(exc, UnicodeDecodeError):
        return [f"a file is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset "
                f"{exc.start}); save it as UTF-8"]
    if isinstance(exc, OSError) and exc.filename is not None:
        what = exc.strerror or type(exc).__name__
        return [f"{exc.filename}: {what}; give a path you can write to (or read)"]
    from pulumi.config import ConfigMissingError

    if isinstance(exc, ConfigMissingError):
        return [f"missing required configuration key {exc.key!r}; set it with "
                f"`pulumi config set --secret {exc.key} <value>` (offline: add it to the stack file's config)"]
    return [line.strip().removeprefix("- ") for line in str(exc).splitlines() if line.strip()]


def _short_path(filename: str) -> str:
    path = Path(filename)
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return filename


def classify(exc: BaseException) -> tuple[int, list[str]]:
    """(exit code, lines) for an exception that escaped a command."""
    chain = _chain(exc)
    for candidate in chain:
        if _is_input_error(candidate):
            return EXIT_USAGE, _input_lines(candidate) or [type(candidate).__name__]
    root = chain[-1]
    where = ""
    frames = traceback.extract_tb(root.__traceback__) if root.__traceback__ else []
    if frames:
        last = frames[-1]
        where = f" at {_short_path(last.filename)}:{last.lineno}"
    detail = str(root).splitlines()[0] if str(root) else ""
    line = (f"internal error: {type(root).__name__}{': ' + detail if detail else ''}{where}; "
            f"this is a bug in slmctl, please report it (set {TRACEBACK_ENV}=1 for the traceback)")
    return EXIT_INTERNAL, [line]


def _usage_line(exc: typer.TyperException) -> str:
    """Click's usage error as one line: the problem, then where the help is."""
    ctx = getattr(exc, "ctx", None)
    where = f"; see `{ctx.command_path} -h`" if ctx is not None else ""
    return f"{exc.format_message()}{where}"


def run(command: Any, args: Sequence[str] | None = None, prog_name: str | None = None) -> int:
    """Invoke the click ``command`` and map every outcome to an exit code (see the module docstring)."""
    try:
        result: Any = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.TyperException as exc:  # click's usage errors: unknown option, bad value, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # the help text itself
        else:
            print_problems([_usage_line(exc)])
        return EXIT_USAGE
    except (typer.Abort, KeyboardInterrupt, EOFError):
        _console().print("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `slmctl plan --json | head`: the reader left; nothing to report
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:
        return _report(exc)
    return int(result) if isinstance(result, int) else EXIT_OK


def _report(exc: Exception) -> int:
    try:
        code, lines = classify(exc)
    except Exception:  # the boundary itself must never be the traceback a user sees
        code, lines = EXIT_INTERNAL, [f"internal error: {type(exc).__name__}; set {TRACEBACK_ENV}=1"]
    if code == EXIT_INTERNAL and os.environ.get(TRACEBACK_ENV):
        traceback.print_exception(exc)
    print_problems(lines)
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class SlmTyper(typer.Typer):
    """A Typer app whose every command runs inside the error boundary (``run``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the app like ``Typer.__call__`` (``args``, ``prog_name``), then exit with the mapped code."""
        argv = args[0] if args else kwargs.get("args")
        code = run(typer.main.get_command(self), argv, kwargs.get("prog_name"))
        sys.exit(code)
