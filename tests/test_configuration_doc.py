"""docs/configuration.md against the code: every key of every table, with its real default."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from autocomplete.config import ServeConfig
from indexer.config import _TRAIN_SECTIONS, TrainConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
# Every table a config file may have -> its dataclass (one line to change when a class moves).
SECTIONS: dict[str, type] = {**_TRAIN_SECTIONS, "serve": ServeConfig}
_HEADING = re.compile(r"^## `\[(\w+)\]`")
_ROW = re.compile(r"^\| `(\w+)` \| `(.*?)` \| (.+) \|$")


def documented_tables(text: str = "") -> dict[str, dict[str, str]]:
    """{table: {key: default as written}} of the doc; top-level keys under the table ""."""
    tables: dict[str, dict[str, str]] = {}
    current: str | None = None
    for line in (text or DOC.read_text(encoding="utf-8")).splitlines():
        if line.startswith("## "):
            heading = _HEADING.match(line)
            current = heading.group(1) if heading else ("" if line == "## Top level" else None)
            continue
        row = _ROW.match(line)
        if row and current is not None:
            key, default, meaning = row.groups()
            assert key not in tables.setdefault(current, {}), f"[{current}] {key} is documented twice"
            assert len(meaning) > 10, f"[{current}] {key} has no real meaning written"
            tables[current][key] = default
    return tables


def as_toml(literal: str):
    return tomllib.loads(f"v = {literal}")["v"]


def same(documented, default) -> bool:
    if isinstance(default, tuple):
        return (
            isinstance(documented, list)
            and len(documented) == len(default)
            and all(same(d, v) for d, v in zip(documented, default))
        )
    return type(documented) is type(default) and documented == default


def test_every_table_of_the_config_is_documented_and_no_other():
    assert set(documented_tables()) == set(SECTIONS) | {""}


def problems(table: str, documented: dict[str, str]) -> list[str]:
    """What the doc's table gets wrong about the dataclass of ``table``."""
    cls = SECTIONS[table]
    defaults = cls()
    fields = [f.name for f in dataclasses.fields(cls)]
    found = [f"[{table}] {key} is not documented" for key in fields if key not in documented]
    found += [f"[{table}] {key} is documented but does not exist" for key in documented if key not in fields]
    for key in fields:
        if key in documented and not same(as_toml(documented[key]), getattr(defaults, key)):
            found.append(
                f"[{table}] {key}: documented {documented[key]}, the code's {getattr(defaults, key)!r}"
            )
    return found


@pytest.mark.parametrize("table", sorted(SECTIONS))
def test_every_key_is_documented_with_its_real_default_and_no_key_that_does_not_exist(table):
    assert problems(table, documented_tables()[table]) == []


def test_the_check_catches_a_wrong_default_a_missing_key_and_an_invented_one():
    text = DOC.read_text(encoding="utf-8")
    text = text.replace("| `session_gap_seconds` | `1800` |", "| `session_gap_seconds` | `3600` |")
    text = text.replace(
        "| `session_gap_seconds` |", "| `colour` | `1` | a made-up key |\n| `session_gap_seconds` |"
    )
    text = re.sub(r"^\| `quote` .*\n", "", text, flags=re.M)
    assert problems("log", documented_tables(text)["log"]) == [
        "[log] quote is not documented",
        "[log] colour is documented but does not exist",
        "[log] session_gap_seconds: documented 3600, the code's 1800",
    ]


def test_the_top_level_model_key_is_documented_with_its_default():
    top = documented_tables()[""]
    assert set(top) == {f.name for f in dataclasses.fields(TrainConfig)} - set(_TRAIN_SECTIONS)
    assert as_toml(top["model"]) == TrainConfig().model


def test_the_shipped_configs_use_only_documented_keys():
    tables = documented_tables()
    for path in sorted((DOC.parent.parent / "configs").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for name, value in data.items():
            if isinstance(value, dict):
                assert set(value) <= set(tables[name]), f"{path.name} [{name}] uses undocumented keys"
            else:
                assert name in tables[""], f"{path.name}: undocumented top-level key {name}"
