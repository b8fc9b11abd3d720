"""Every command in the docs either runs offline (and the cheap ones are run here) or is marked needs-azure.

A shell code block (```bash, ```sh, ```shell, ```console) is *marked* when its first line is the comment
``# needs-azure`` or the line before the fence is ``<!-- needs-azure -->``. In unmarked blocks, every
command must start with one of ``OFFLINE_COMMANDS``: a reader can paste those on a fresh clone with no
account, and CI or these tests run each of them.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
STACKS = {p.name.split(".")[1] for p in (REPO_ROOT / "stacks").glob("Pulumi.*.yaml")}

OFFLINE_COMMANDS = (
    "make plan",
    "make test",
    "python -m slmctl",
    ".venv/bin/python -m slmctl",
    "git clone",
    "cd",
)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
MARKER_COMMENT = "# needs-azure"
MARKER_HTML = "<!-- needs-azure -->"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
HEREDOC = re.compile(r"<<-?\s*['\"]?(?P<word>\w+)['\"]?")
SLMCTL = re.compile(r"^(?:\.venv/bin/)?python -m slmctl\s+(?P<sub>\w+)(?P<rest>.*)$")
# The subcommands whose first positional argument is a stack name (`diff` takes two plan.json files).
STACK_SUBCOMMANDS = {"plan", "gate", "render"}
# A doc that introduces a stack which does not exist yet (its subject is creating it).
NEW_STACK_DOCS = {"adding-an-environment.md"}
# The documented example stack of adding-an-environment.md; checked for syntax only.
EXAMPLE_NEW_STACKS = {"qa"}


@dataclass(frozen=True)
class Command:
    """One logical shell command line from a doc (continuations joined)."""

    doc: str
    line: int
    text: str
    needs_azure: bool

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def extract_commands(markdown: str, doc: str = "<doc>") -> list[Command]:
    """The commands of every shell code block, with the block's needs-azure marking."""
    commands: list[Command] = []
    lines = markdown.splitlines()
    index = 0
    previous = ""
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        fence, language = match["fence"], match["info"].lower()
        body_start = index + 1
        end = body_start
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = [(n + 1, lines[n]) for n in range(body_start, end)]
        if language in SHELL_LANGUAGES:
            commands.extend(_block_commands(body, doc, language=language, preceded_by=previous))
        previous = ""
        index = end + 1
    return commands


def _block_commands(
    body: list[tuple[int, str]], doc: str, *, language: str, preceded_by: str
) -> list[Command]:
    first = next((text.strip() for _, text in body if text.strip()), "")
    marked = first == MARKER_COMMENT or preceded_by == MARKER_HTML
    commands: list[Command] = []
    pending: list[str] = []
    start = 0
    heredoc_end: str | None = None
    for number, raw in body:
        text = raw.strip()
        if heredoc_end is not None:
            if text == heredoc_end:
                heredoc_end = None
            continue
        if language == "console" and not pending:
            if not text.startswith("$ "):
                continue  # output, not a command
            text = text[2:]
        if not pending and (not text or text.startswith("#")):
            continue
        if not pending:
            start = number
        pending.append(text.removesuffix("\\").strip())
        if text.endswith("\\"):
            continue
        joined = " ".join(part for part in pending if part)
        pending = []
        commands.append(Command(doc, start, joined, marked))
        heredoc = HEREDOC.search(joined)
        if heredoc:
            heredoc_end = heredoc["word"]
    return commands


def is_offline(command: str) -> bool:
    return any(command == prefix or command.startswith(prefix + " ") for prefix in OFFLINE_COMMANDS)


def doc_commands() -> list[Command]:
    found: list[Command] = []
    for path in DOC_FILES:
        if path.exists():
            found.extend(extract_commands(path.read_text(), path.relative_to(REPO_ROOT).as_posix()))
    return found


def slmctl_commands() -> list[Command]:
    """Documented offline slmctl invocations, deduplicated by their text."""
    seen: dict[str, Command] = {}
    for command in doc_commands():
        if not command.needs_azure and SLMCTL.match(command.text):
            seen.setdefault(command.text, command)
    return list(seen.values())


def slmctl_argv(text: str, tmp_path: Path) -> list[str]:
    """The documented command as argv for this interpreter; ``--output`` is redirected into tmp_path."""
    argv = shlex.split(text, comments=True)
    argv = [sys.executable, *argv[1:]]  # `python` / `.venv/bin/python` -> the interpreter under test
    if "--output" in argv:
        at = argv.index("--output") + 1
        argv[at] = str(tmp_path / Path(argv[at]).name)
    return argv


def words(text: str) -> list[str]:
    """Shell words of one line; a quote that closes on a later line (inline JSON) falls back to spaces."""
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return text.split()


def stack_argument(text: str) -> str | None:
    match = SLMCTL.match(text)
    if not match or match["sub"] not in STACK_SUBCOMMANDS:
        return None
    positional = [a for a in words(match["rest"]) if not a.startswith("-")]
    return positional[0] if positional else None


class TestChecker:
    """The checker itself: it must catch what it exists to catch."""

    def test_an_unmarked_cloud_command_is_not_offline(self) -> None:
        (command,) = extract_commands("```bash\naz group create -n rg -l westeurope\n```\n")
        assert not command.needs_azure
        assert not is_offline(command.text)

    def test_a_comment_marker_or_an_html_marker_marks_the_block(self) -> None:
        commented = extract_commands("```bash\n# needs-azure\npulumi up -s dev\n```\n")
        html = extract_commands("<!-- needs-azure -->\n\n```sh\npulumi up -s dev\n```\n")
        assert [c.needs_azure for c in commented + html] == [True, True]

    def test_a_marker_covers_only_its_own_block(self) -> None:
        commands = extract_commands(
            "```bash\n# needs-azure\npulumi up -s dev\n```\n\ntext\n\n```bash\npulumi destroy\n```\n"
        )
        assert [(c.text, c.needs_azure) for c in commands] == [
            ("pulumi up -s dev", True),
            ("pulumi destroy", False),
        ]

    def test_continuations_join_and_heredoc_bodies_are_not_commands(self) -> None:
        commands = extract_commands(
            "```bash\nmake \\\n  test\ncat > f <<'EOF'\nrm -rf /\nEOF\nmake plan\n```\n"
        )
        assert [c.text for c in commands] == ["make test", "cat > f <<'EOF'", "make plan"]

    def test_prefixes_match_whole_words_and_other_languages_are_ignored(self) -> None:
        assert not is_offline("make testing")
        assert not is_offline("python -m slmctlx plan")
        assert is_offline(".venv/bin/python -m slmctl gate dev --format sarif")
        assert extract_commands("```yaml\nrun: az login\n```\n") == []

    def test_console_blocks_take_only_prompt_lines(self) -> None:
        commands = extract_commands("```console\n$ make plan\nplanning dev\n```\n")
        assert [c.text for c in commands] == ["make plan"]


def test_the_delivery_docs_exist() -> None:
    names = {p.name for p in DOC_FILES if p.exists()}
    assert names >= {
        "getting-started.md",
        "delivery.md",
        "adding-a-model.md",
        "adding-an-engine.md",
        "adding-an-environment.md",
        "adding-an-edge-fleet.md",
        "README.md",
    }


@pytest.mark.parametrize("path", [p for p in DOC_FILES if p.exists()], ids=lambda p: p.name)
def test_every_command_runs_offline_or_is_marked_needs_azure(path: Path) -> None:
    commands = extract_commands(path.read_text(), path.name)
    unmarked = [str(c) for c in commands if not c.needs_azure and not is_offline(c.text)]
    assert not unmarked, (
        "commands that are neither offline nor in a block marked '# needs-azure':\n" + "\n".join(unmarked)
    )


def test_getting_started_goes_from_clone_to_gate_then_to_pulumi_up() -> None:
    commands = extract_commands((REPO_ROOT / "docs" / "getting-started.md").read_text())
    offline = [c.text for c in commands if not c.needs_azure]
    azure = " \n".join(c.text for c in commands if c.needs_azure)
    assert offline[:5] == [
        "git clone https://github.com/<org>/slm-platform.git",
        "cd slm-platform",
        "make plan",
        "make test",
        ".venv/bin/python -m slmctl gate dev",
    ]
    for step in (
        "pulumi login 'azblob://pulumi-state?storage_account=<stateacct>'",
        "pulumi stack init dev --secrets-provider 'azurekeyvault://",
        "pulumi config set --secret slm-platform:engineApiKey",
        "pulumi config set --secret slm-platform:grafanaAdminPassword",
        "pulumi preview -s dev --policy-pack policies --policy-pack-config policies/config/dev.json",
        "pulumi up -s dev --policy-pack policies --policy-pack-config policies/config/dev.json",
        "pulumi login --local",
        "kubelogin convert-kubeconfig -l azurecli",
        '"subject": "repo:<org>/<repo>:environment:dev"',
        '"subject": "repo:<org>/<repo>:pull_request"',
        "--role 'Storage Blob Data Contributor'",
        "--role 'Key Vault Crypto User'",
    ):
        assert step in azure, f"getting-started.md lost a step of the Azure path: {step}"


def test_documented_make_targets_exist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = {c.text.split()[1] for c in doc_commands() if c.text.startswith("make ")}
    assert targets
    for target in sorted(targets):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), f"no Makefile target {target!r}"


def test_documented_stacks_and_policy_configs_exist() -> None:
    for command in doc_commands():
        if Path(command.doc).name in NEW_STACK_DOCS:
            continue
        argv = words(command.text)
        for flag, value in itertools.pairwise(argv):
            if flag in ("-s", "--stack") and "<" not in value:
                assert value in STACKS, f"{command}: no stacks/Pulumi.{value}.yaml"
            if flag == "--policy-pack-config" and "<" not in value:
                assert (REPO_ROOT / value).is_file(), f"{command}: {value} does not exist"
        stack = stack_argument(command.text)
        if stack is not None:
            assert stack in STACKS, f"{command}: no stacks/Pulumi.{stack}.yaml"


def test_relative_links_in_the_docs_resolve() -> None:
    link = re.compile(r"\]\((?P<target>[^)\s]+)\)")
    for path in DOC_FILES:
        if not path.exists():
            continue
        for match in link.finditer(path.read_text()):
            target = match["target"].split("#", 1)[0]
            if not target or re.match(r"^[a-z]+:", target):
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {match['target']}"


class TestRunTheOfflineCommands:
    """The cheap documented commands are run as written (with this interpreter)."""

    @pytest.mark.parametrize(
        "command", [c for c in slmctl_commands() if SLMCTL.match(c.text)["sub"] == "schema"], ids=str
    )
    def test_documented_schema_command_prints_a_json_schema(self, command: Command, tmp_path: Path) -> None:
        result = subprocess.run(
            slmctl_argv(command.text, tmp_path), cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        schema = json.loads(result.stdout)
        assert isinstance(schema, dict)
        assert "properties" in schema or "$defs" in schema

    def test_the_schema_command_is_documented(self) -> None:
        assert any(SLMCTL.match(c.text)["sub"] == "schema" for c in slmctl_commands())

    @pytest.mark.slow
    @pytest.mark.parametrize(
        "command",
        [
            c
            for c in slmctl_commands()
            if SLMCTL.match(c.text)["sub"] == "gate" and stack_argument(c.text) not in EXAMPLE_NEW_STACKS
        ],
        ids=str,
    )
    def test_documented_gate_command_passes_on_the_shipped_stack(
        self, command: Command, tmp_path: Path
    ) -> None:
        result = subprocess.run(
            slmctl_argv(command.text, tmp_path), cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    @pytest.mark.parametrize(
        "command",
        [c for c in slmctl_commands() if SLMCTL.match(c.text)["sub"] in ("plan", "render")],
        ids=str,
    )
    def test_documented_plan_and_render_commands_name_a_real_subcommand(self, command: Command) -> None:
        sub = SLMCTL.match(command.text)["sub"]
        result = subprocess.run(
            [sys.executable, "-m", "slmctl", sub, "--help"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        stack = stack_argument(command.text)
        assert stack in STACKS | EXAMPLE_NEW_STACKS, f"{command}: unknown stack {stack!r}"
