import pytest
from pilotfish.lsp_server.settings import (
    Settings,
    SettingsError,
    defaults_schema,
    layered,
    parse_settings,
    parse_settings_or_default,
    settings_to_wire,
)


def test_none_gives_defaults() -> None:
    assert parse_settings(None) == Settings()


def test_camel_case_nested_values() -> None:
    s = parse_settings(
        {"model": {"name": "x.gguf", "apiKeyEnv": "K"}, "completion": {"maxTokens": 12}}
    )
    assert s.model.name == "x.gguf"
    assert s.model.api_key_env == "K"
    assert s.completion.max_tokens == 12
    assert s.completion.max_lines == Settings().completion.max_lines


def test_pilotfish_section_is_unwrapped() -> None:
    s = parse_settings({"pilotfish": {"completion": {"enable": False}}})
    assert s.completion.enable is False


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"completion": {"maxTokens": "many"}}, "max_tokens"),
        ({"model": {"device": "tpu"}}, "device"),
        ([1, 2], "must be an object"),
        # Values of the right type but no sense: a negative budget, a prompt no model holds.
        ({"completion": {"maxTokens": -5}}, "completion.maxTokens = -5 (expected 1..4096)"),
        ({"completion": {"contextTokens": 10**9}}, "completion.contextTokens"),
    ],
)
def test_bad_values_are_reported(raw: object, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings(raw)
    assert fragment in str(info.value)


def test_unknown_keys_are_ignored_and_reported() -> None:
    settings, message = parse_settings_or_default(
        {"completion": {"maxTokens": 9, "bogus": 1}, "newerThing": True}
    )
    assert settings.completion.max_tokens == 9  # the rest still applies
    assert message is not None
    assert "completion.bogus" in message and "newerThing" in message


def test_bad_values_fall_back_to_defaults() -> None:
    settings, error = parse_settings_or_default({"completion": {"maxTokens": "many"}})
    assert settings == Settings()
    assert error


def test_wire_round_trip() -> None:
    s = parse_settings({"index": {"exclude": ["*.min.js"]}, "hover": {"budgetMs": 900}})
    assert parse_settings(settings_to_wire(s)) == s


def test_schema_lists_every_leaf_in_camel_case() -> None:
    schema = defaults_schema()
    assert schema["completion.maxTokens"] == Settings().completion.max_tokens
    assert schema["model.name"] == "qwen2.5-coder-0.5b"
    assert all("_" not in key for key in schema)


def test_later_configuration_is_laid_over_the_initialization_options() -> None:
    base = {"dataDir": "/d", "completion": {"debounceMs": 0, "maxTokens": 16}}
    over = {"pilotfish": {"completion": {"maxLines": 3, "maxTokens": 32}}}
    merged = layered(base, over)
    assert merged == {"dataDir": "/d", "completion": {"debounceMs": 0, "maxTokens": 32,
                                                      "maxLines": 3}}
    settings = parse_settings(merged)
    assert settings.data_dir == "/d" and settings.completion.max_lines == 3
    assert layered(None, over) == over["pilotfish"] and layered(base, None) == base
    assert layered(base, "bad") == "bad"  # left for the parser's error message
