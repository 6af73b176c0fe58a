"""The offline configuration: ``configs/*.toml`` -> frozen dataclasses -> constructors.

A TOML file has one table per stage (``[log]``, ``[privacy]``, ``[features]``, ``[tree]``,
``[training]``, ``[search]``, ``[eval]``, ``[serve]``); a missing table means that stage's defaults,
an unknown table or key is an error. ``--set section.key=value`` overrides one value. The
``[serve]`` table is read by ``autocomplete.config``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from indexer.params import (
    ConfigError,
    ContextParams,
    EvalParams,
    FeatureParams,
    FuzzyParams,
    LanguageParams,
    LiveParams,
    LogParams,
    PrivacyParams,
    RankerParams,
    SearchParams,
    TrainParams,
    TreeParams,
    from_mapping,
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything ``autocomplete train`` and ``eval`` read; saved into the model folder."""

    log: LogParams = LogParams()
    privacy: PrivacyParams = PrivacyParams()
    features: FeatureParams = FeatureParams()
    tree: TreeParams = TreeParams()
    training: TrainParams = TrainParams()
    search: SearchParams = SearchParams()
    language: LanguageParams = LanguageParams()
    ranker: RankerParams = RankerParams()
    fuzzy: FuzzyParams = FuzzyParams()
    context: ContextParams = ContextParams()
    eval: EvalParams = EvalParams()
    live: LiveParams = LiveParams()
    model: str = "xmr"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_TRAIN_SECTIONS: dict[str, type] = {
    "log": LogParams,
    "privacy": PrivacyParams,
    "features": FeatureParams,
    "tree": TreeParams,
    "training": TrainParams,
    "search": SearchParams,
    "language": LanguageParams,
    "ranker": RankerParams,
    "fuzzy": FuzzyParams,
    "context": ContextParams,
    "eval": EvalParams,
    "live": LiveParams,
}


def read_toml(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Parse a TOML file (or nothing) and apply ``section.key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. tree.trie_depth=2")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word is taken as a string
        data.setdefault(section, {})[name] = value
    return data


def load_train_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """The training/evaluation configuration; the ``[serve]`` table, if any, is ignored here."""
    data = read_toml(path, overrides)
    return train_config_from_mapping(data)


def train_config_from_mapping(data: Mapping[str, Any]) -> TrainConfig:
    unknown = sorted(set(data) - set(_TRAIN_SECTIONS) - {"serve", "model"})
    if unknown:
        raise ConfigError(f"unknown config table(s) {unknown}; known: {sorted(_TRAIN_SECTIONS)}")
    sections: dict[str, Any] = {
        name: from_mapping(cls, data.get(name), name) for name, cls in _TRAIN_SECTIONS.items()
    }
    model = data.get("model", "xmr")
    if model not in ("xmr", "mpc"):
        raise ConfigError(f"model must be 'xmr' or 'mpc', got {model!r}")
    return TrainConfig(model=model, **sections)
