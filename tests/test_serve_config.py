"""``[serve]`` configuration: defaults, TOML, environment overrides, loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from autocomplete.config import ServeConfig, load_serve_config
from indexer.params import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_serve_toml_is_valid_and_matches_the_defaults() -> None:
    assert load_serve_config(ROOT / "configs" / "serve.toml", environ={}) == ServeConfig()


def test_toml_values_then_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text('[serve]\nk = 5\nallowed_origins = ["https://a.example"]\n[training]\ncp = 2.0\n')
    config = load_serve_config(path, environ={})
    assert (config.k, config.allowed_origins) == (5, ("https://a.example",))
    env = {
        "AUTOCOMPLETE_K": "7",
        "AUTOCOMPLETE_REDIS_URL": "redis://h:1/0",
        "AUTOCOMPLETE_COOKIE_SECURE": "true",
        "AUTOCOMPLETE_ALLOWED_ORIGINS": "https://a, https://b",
        "AUTOCOMPLETE_STORE_TIMEOUT_SECONDS": "0.5",
    }
    config = load_serve_config(path, environ=env)
    assert config.k == 7 and config.redis_url == "redis://h:1/0" and config.cookie_secure is True
    assert config.allowed_origins == ("https://a", "https://b") and config.store_timeout_seconds == 0.5


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[serve]\nkk = 5\n", {}, "unknown key"),
        ('[serve]\nk = "5"\n', {}, "serve.k"),
        ("[serve]\nk = 5.5\n", {}, "serve.k"),
        ("[serve]\ncookie_secure = 1\n", {}, "serve.cookie_secure"),
        ("[serve]\nallowed_origins = [1]\n", {}, "serve.allowed_origins"),
        ("[serve]\nk = 30\n", {}, "max_k"),
        ("[serve]\nmax_frame_bytes = 0\n", {}, "max_frame_bytes"),
        ('[serve]\nallowed_hosts = ["shop.*"]\n', {}, "allowed_hosts"),
        ('[serve]\nallowed_hosts = ["*shop.example"]\n', {}, "allowed_hosts"),
        ("", {"AUTOCOMPLETE_K": "ten"}, "AUTOCOMPLETE_K"),
        ("", {"AUTOCOMPLETE_COOKIE_SECURE": "maybe"}, "AUTOCOMPLETE_COOKIE_SECURE"),
    ],
)
def test_malformed_config_fails_loudly_naming_the_key(
    tmp_path: Path, toml: str, env: dict, message: str
) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_serve_config(path, environ=env)
