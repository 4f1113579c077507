"""Query templates: placeholders are found exactly, typos are errors, never silent empty strings."""

from __future__ import annotations

import pytest

from airlock.api import query_template
from airlock.api.query_template import TemplateError, check_variables, parse


def test_parse_finds_placeholders_with_spans() -> None:
    text = 'rate(x{namespace="{{ namespace }}",app="{{params.app}}"}[1m])'
    found = parse(text)
    assert [p.variable for p in found] == ["namespace", "params.app"]
    for placeholder in found:
        assert text[placeholder.start : placeholder.end].startswith("{{")
        assert text[placeholder.start : placeholder.end].endswith("}}")


def test_plain_promql_has_no_placeholders() -> None:
    assert parse('sum by (app) (rate(x{code=~"5.."}[1m]))') == []


@pytest.mark.parametrize(
    "text",
    [
        'x{a="{{ namespace }"}',
        'x{a="{ namespace }}"}',
        'x{a="{{ name space }}"}',
        'x{a="{{ }}"}',
        "{{ params. }}",
        "}}",
        "{{",
        "{{ params.app.extra }}",
    ],
)
def test_malformed_templates(text: str) -> None:
    with pytest.raises(TemplateError, match="malformed template"):
        parse(text)


def test_builtins_and_params() -> None:
    text = "{{ namespace }} {{ name }} {{ target }} {{ params.app }} {{ params.model-id }}"
    assert check_variables(text, {"app": "x", "model-id": "y"}) == [
        "namespace",
        "name",
        "target",
        "params.app",
        "params.model-id",
    ]


def test_unknown_builtin() -> None:
    with pytest.raises(TemplateError, match=r"unknown variable \{\{ nmespace \}\}"):
        check_variables("{{ nmespace }}", {})


def test_unknown_param_names_the_available_keys() -> None:
    with pytest.raises(TemplateError, match=r"params has no key 'model' \(app, team\)"):
        check_variables("{{ params.model }}", {"team": "a", "app": "b"})
    with pytest.raises(TemplateError, match=r"\(none\)"):
        check_variables("{{ params.model }}", {})


def test_params_unknown_yet_in_a_policy() -> None:
    # A ContainmentPolicy does not know the params of the systems that will use it.
    assert check_variables("{{ params.anything }}", None) == ["params.anything"]
    with pytest.raises(TemplateError):
        check_variables("{{ cluster }}", None)


def test_builtin_names() -> None:
    assert query_template.BUILTIN_VARIABLES == ("namespace", "name", "target")
