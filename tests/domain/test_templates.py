"""Query templates: every variable resolves, every substituted value stays a string literal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.api.query_template import TemplateError
from airlock.domain import templates

CONTEXT = templates.TemplateContext(
    namespace="ml-prod", name="support-chatbot", target="chatbot-v7", params={"app": "chatbot", "tier": "gold"}
)

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_ESCAPE_DIGITS = {"x": (2, 16), "u": (4, 16), "U": (8, 16)}


class PromQLLexError(ValueError):
    pass


def split_literals(query: str) -> tuple[str, list[str]]:
    """Cut every string literal out of ``query`` the way Prometheus's lexer reads it.

    Returns the query with each literal emptied (its shape) and the decoded
    literals.  Like Prometheus (promql/parser/lex.go), only the escapes
    ``\\a \\b \\f \\n \\r \\t \\v \\\\``, the opening quote, octal, ``\\x``,
    ``\\u`` and ``\\U`` are accepted; anything else is a parse error.
    """
    shape: list[str] = []
    literals: list[str] = []
    i = 0
    while i < len(query):
        quote = query[i]
        if quote not in "\"'`":
            shape.append(quote)
            i += 1
            continue
        i += 1
        text: list[str] = []
        while True:
            if i >= len(query):
                raise PromQLLexError("unterminated quoted string")
            char = query[i]
            if char == quote:
                i += 1
                break
            if quote == "`" or char != "\\":
                if char == "\n" and quote != "`":
                    raise PromQLLexError("newline in a quoted string")
                text.append(char)
                i += 1
                continue
            escape = query[i + 1 : i + 2]
            if escape in _SIMPLE_ESCAPES:
                text.append(_SIMPLE_ESCAPES[escape])
                i += 2
            elif escape == quote:
                text.append(quote)
                i += 2
            elif escape and (escape in _ESCAPE_DIGITS or escape in "01234567"):
                count, base = _ESCAPE_DIGITS.get(escape, (3, 8))
                start = i + 1 if base == 8 else i + 2
                digits = query[start : start + count]
                try:
                    code = int(digits, base)
                except ValueError:
                    raise PromQLLexError(f"bad escape {query[i : start + count]!r}") from None
                if len(digits) != count:
                    raise PromQLLexError("escape sequence not terminated")
                text.append(chr(code))
                i = start + count
            else:
                raise PromQLLexError(f"unknown escape sequence \\{escape}")
        shape.append(quote * 2)
        literals.append("".join(text))
    return "".join(shape), literals


# Plain text() rarely draws the characters that matter; mix them in.
VALUES = st.text(st.one_of(st.sampled_from("\"'`\\\n\r\t\x00\x7f{}#=~,"), st.characters()), max_size=40)


def with_app(value: str) -> templates.TemplateContext:
    return templates.TemplateContext(
        namespace="ml-prod", name="support-chatbot", target="chatbot-v7", params={"app": value}
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ namespace }}", "ml-prod"),
        ("{{ name }}", "support-chatbot"),
        ("{{ target }}", "chatbot-v7"),
        ("{{ params.app }}", "chatbot"),
        ("{{ params.tier }}", "gold"),
        ("{{namespace}}", "ml-prod"),
        ("{{   params.app\t}}", "chatbot"),
    ],
)
def test_every_variable_resolves(template: str, expected: str) -> None:
    assert templates.render(template, CONTEXT) == expected


def test_renders_the_spec_example_query() -> None:
    query = 'sum(rate(pii_detections_total{namespace="{{ namespace }}",app="{{ params.app }}"}[1m]))'
    assert templates.render(query, CONTEXT) == 'sum(rate(pii_detections_total{namespace="ml-prod",app="chatbot"}[1m]))'


def test_text_without_placeholders_is_unchanged() -> None:
    query = 'sum by (app) (rate(x{job="a\\"b"}[5m]))'
    assert templates.render(query, CONTEXT) == query


def test_repeated_variables_all_resolve() -> None:
    assert (
        templates.render("{{ name }}/{{ name }}/{{ target }}", CONTEXT) == "support-chatbot/support-chatbot/chatbot-v7"
    )


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ('say "hi"', 'say \\"hi\\"'),
        ("C:\\models", "C:\\\\models"),
        ("line1\nline2", "line1\\nline2"),
        ("tab\there", "tab\\there"),
        ("cr\rhere", "cr\\rhere"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f", "del\\x7f"),
        ("o'brien", "o\\x27brien"),
        ("ünïcødé ✓", "ünïcødé ✓"),
        ("", ""),
    ],
)
def test_escapes_values_for_promql_string_literals(value: str, escaped: str) -> None:
    rendered = templates.render('up{app="{{ params.app }}"}', with_app(value))
    assert rendered == f'up{{app="{escaped}"}}'
    assert split_literals(rendered) == ('up{app=""}', [value])


def test_injection_attempt_stays_a_harmless_string() -> None:
    attack = 'a"} or vector(1) #'
    rendered = templates.render('sum(rate(pii_total{app="{{ params.app }}"}[1m])) > 0', with_app(attack))

    assert rendered == 'sum(rate(pii_total{app="a\\"} or vector(1) #"}[1m])) > 0'
    shape, literals = split_literals(rendered)
    assert shape == 'sum(rate(pii_total{app=""}[1m])) > 0'
    assert literals == [attack]


def test_single_quoted_template_is_safe_against_apostrophes() -> None:
    rendered = templates.render("up{app='{{ params.app }}'}", with_app("x'} or vector(1) #"))
    assert split_literals(rendered) == ("up{app=''}", ["x'} or vector(1) #"])


@given(VALUES)
def test_any_value_round_trips_through_a_double_quoted_literal(value: str) -> None:
    rendered = templates.render('up{namespace="{{ namespace }}",app="{{ params.app }}"} offset 5m', with_app(value))
    assert split_literals(rendered) == ('up{namespace="",app=""} offset 5m', ["ml-prod", value])


@given(VALUES)
def test_no_value_escapes_a_single_quoted_literal(value: str) -> None:
    # `"` inside '...' is escaped as \" which PromQL rejects: the query fails
    # (an `error` state), it never changes shape.
    rendered = templates.render("up{app='{{ params.app }}'}", with_app(value))
    try:
        shape, literals = split_literals(rendered)
    except PromQLLexError:
        assert '"' in value
    else:
        assert (shape, literals) == ("up{app=''}", [value])


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{{ nope }}", "nope"),
        ("{{ params.missing }}", "missing"),
        ('up{app="{{ params.App }}"}', "App"),
        ("{{ params.app }}{{ Namespace }}", "Namespace"),
    ],
)
def test_unknown_variable_is_an_error_naming_it(template: str, named: str) -> None:
    with pytest.raises(TemplateError, match=named):
        templates.render(template, CONTEXT)


@pytest.mark.parametrize("template", ["{{ namespace }", "{{ name target }}", "up}}", "{{"])
def test_malformed_template_is_an_error(template: str) -> None:
    with pytest.raises(TemplateError, match="malformed template"):
        templates.render(template, CONTEXT)


def test_render_match_resolves_without_escaping() -> None:
    # Match values are compared with series labels, never embedded in PromQL.
    context = with_app('we"ird\\app\n')
    match = {"namespace": "{{ namespace }}", "app": "{{ params.app }}", "job": "static"}

    assert templates.render_match(match, context) == {
        "namespace": "ml-prod",
        "app": 'we"ird\\app\n',
        "job": "static",
    }


def test_render_match_rejects_unknown_variables() -> None:
    with pytest.raises(TemplateError, match="other"):
        templates.render_match({"app": "{{ params.other }}"}, CONTEXT)


def test_render_without_escape_keeps_values_raw() -> None:
    assert templates.render("{{ params.app }}", with_app('a"b'), escape=False) == 'a"b'


def test_baseline_query_is_an_offset_subquery_average() -> None:
    query = 'avg(rate(answer_helpful_total{app="chatbot"}[1h]))'
    assert templates.baseline_query(query, "7d", "1d") == (
        'avg_over_time((avg(rate(answer_helpful_total{app="chatbot"}[1h])))[1d:1m] offset 7d)'
    )
    assert templates.baseline_query("up", "1h", "30m", step="30s") == "avg_over_time((up)[30m:30s] offset 1h)"


@pytest.mark.parametrize(
    ("window", "step"), [("1d", "1m"), ("10m", "1m"), ("5m", "30s"), ("1m", "6s"), ("10s", "1s"), ("3s", "1s")]
)
def test_baseline_step_fits_the_window(window: str, step: str) -> None:
    # Subquery points sit on multiples of the step: a step longer than the window finds none.
    assert templates.baseline_query("up", "20s", window) == f"avg_over_time((up)[{window}:{step}] offset 20s)"


def test_test_lexer_rejects_what_prometheus_rejects() -> None:
    # The helper must be strict, or the round-trip tests above prove nothing.
    with pytest.raises(PromQLLexError, match="unknown escape"):
        split_literals('up{a="\\\'"}')
    with pytest.raises(PromQLLexError, match="unterminated"):
        split_literals('up{a="x}')
    with pytest.raises(PromQLLexError, match="newline"):
        split_literals('up{a="x\ny"}')
