"""Remote names never decide where bytes land (issue 12, item 2): one rule, for every download."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_pipeline import ConfigError
from lora_pipeline._paths import contained_path, download_target

ESCAPES = [
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "a/../../x",
    "C:\\x",
    "\\\\server\\share",
    "a\x00b",
    "",
    ".",
    "..",
    "a//b",
    "sub/../../x",
]


@pytest.mark.parametrize("name", ESCAPES)
def test_a_name_that_leaves_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="outside"):
        contained_path(tmp_path, name, what="dataset d")
    if name:  # an empty remote name means "none": the fallback we choose is used
        with pytest.raises(ConfigError):
            download_target(tmp_path, name, "fallback.jsonl", what="dataset d")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["data.jsonl", "my data (v2).jsonl", "adapter/adapter_config.json", "..a", "a..b"])
def test_plain_and_nested_names_land_inside(tmp_path: Path, name: str) -> None:
    target = contained_path(tmp_path, name, what="artifact a")
    assert tmp_path.resolve() in target.parents


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "link").symlink_to(outside)
    with pytest.raises(ConfigError):
        contained_path(folder, "link/x", what="artifact a")


def test_a_file_destination_is_used_as_given(tmp_path: Path) -> None:
    assert download_target(tmp_path / "mine.jsonl", "../x", "f", what="d") == tmp_path / "mine.jsonl"
    assert download_target(tmp_path, None, "fallback.jsonl", what="d") == (tmp_path / "fallback.jsonl").resolve()
