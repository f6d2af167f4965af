"""Usage: help for every command, one line plus usage and exit 2 for every usage error, never a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import typer

from lora_pipeline._version import __version__
from lora_pipeline.cli import app

GROUPS = ["db", "dev", "datasets", "jobs", "artifacts", "runpod", "metrics", "baselines", "gates"]


def _command_paths() -> Iterator[list[str]]:
    root = typer.main.get_command(app)

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            if not getattr(sub, "hidden", False):
                yield from walk(sub, [*path, name])

    yield from walk(root, [])


COMMANDS = list(_command_paths())


def test_the_tree_has_every_group_and_its_commands() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"jobs create", "datasets upload", "dev user create", "gates validate", "jobs list"} <= names
    assert all(group in names for group in GROUPS)
    assert len(COMMANDS) > 35


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(cli: Callable[..., Any], path: list[str]) -> None:
    result = cli(*path, "--help")
    assert result.code == 0, result.err
    assert "Usage: lora-pipeline" in result.out and "Traceback" not in result.out + result.err


def test_no_arguments_prints_help_and_exits_0(cli_process: Callable[..., Any]) -> None:
    result = cli_process()
    assert result.code == 0
    assert "Usage: lora-pipeline" in result.out and "jobs" in result.out and result.err == ""


def test_version_option(cli_process: Callable[..., Any]) -> None:
    result = cli_process("--version")
    assert (result.code, result.out.strip()) == (0, f"lora-pipeline {__version__}")


@pytest.mark.parametrize("group", GROUPS)
def test_an_unknown_option_of_each_group_is_exit_2_with_usage(cli: Callable[..., Any], group: str) -> None:
    result = cli(group, "--no-such-flag")
    assert result.code == 2
    assert "Error: No such option: --no-such-flag" in result.err
    assert f"Usage: lora-pipeline {group}" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "create"], "Missing argument"),
        (["jobs", "create", "abcd1234"], "Missing option '--base-model'"),
        (["datasets", "upload", "x.jsonl"], "Missing option '--name'"),
        (["gates", "validate", "abcd1234"], "Missing option '--model'"),
        (["jobs", "nope"], "No such command 'nope'"),
        (["--role", "admin", "jobs", "list"], "'admin' is not one of service, user, anon"),
        (["datasets", "list", "--json", "extra"], "unexpected extra argument"),
    ],
)
def test_usage_errors_are_one_line_plus_usage_and_exit_2(
    cli: Callable[..., Any], args: list[str], message: str
) -> None:
    result = cli(*args)
    assert result.code == 2, result
    assert message in result.err and "Usage: lora-pipeline" in result.err
    assert "Traceback" not in result.err and result.out == ""


def test_the_console_script_shows_no_traceback_for_a_missing_argument(cli_process: Callable[..., Any]) -> None:
    result = cli_process("jobs", "create")
    assert result.code == 2
    assert "Missing argument 'dataset_id'" in result.err and "Traceback" not in result.err


def test_a_missing_file_is_one_line_naming_it(cli: Callable[..., Any], tmp_path: Any) -> None:
    missing = tmp_path / "nope.jsonl"
    result = cli("datasets", "validate", str(missing))
    assert result.code == 2
    assert result.err.count("\n") == 1 and str(missing) in result.err and "Traceback" not in result.err


OBJECT_COMMANDS = [
    "datasets upload",
    "datasets list",
    "datasets show",
    "jobs create",
    "jobs deploy",
    "jobs status",
    "jobs list",
    "jobs cancel",
    "jobs events",
    "artifacts list",
    "baselines add",
    "baselines list",
    "baselines deactivate",
    "runpod gpus",
    "runpod reap",
    "dev user create",
]
JSON_ONLY = [
    "datasets validate",
    "jobs estimate",
    "jobs wait",
    "gates validate",
    "gates report",
    "metrics show",
    "db status",
]


def _options(path: str) -> set[str]:
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


@pytest.mark.parametrize("path", OBJECT_COMMANDS)
def test_commands_that_print_objects_take_json_and_quiet(path: str) -> None:
    assert {"--json", "-q", "--quiet"} <= _options(path)


@pytest.mark.parametrize("path", JSON_ONLY)
def test_commands_that_print_reports_take_json(path: str) -> None:
    assert "--json" in _options(path)


def test_runpod_gpus_quiet_prints_the_keys_and_json_parses(cli: Callable[..., Any]) -> None:
    import json

    keys = cli("runpod", "gpus", "-q").lines
    assert "A40" in keys and all(" " not in key for key in keys)
    assert {g["key"] for g in json.loads(cli("runpod", "gpus", "--json").out)} == set(keys)
    table = cli("runpod", "gpus")
    assert table.lines[0].split()[:2] == ["key", "name"] and len(table.lines) == len(keys) + 1
