"""The sandbox's admission CEL: the Kubernetes libraries, property escaping, lazy variables, error wording."""

from __future__ import annotations

from typing import Any

import pytest

from airlock.sandbox._k8s_cel import CelError, activation_with_variables, compile_expression, from_cel, to_cel


def evaluate(source: str, **bindings: Any) -> Any:
    return from_cel(compile_expression(source).evaluate({k: to_cel(v) for k, v in bindings.items()}))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'a,b,c'.split(',')", ["a", "b", "c"]),
        ("'a,b,c'.split(',', 2)", ["a", "b,c"]),
        ("'a,b'.split(',', 0)", []),
        ("'AbC-é'.lowerAscii()", "abc-é"),
        ("'abc'.upperAscii()", "ABC"),
        ("'aaa'.replace('a', 'b')", "bbb"),
        ("'aaa'.replace('a', 'b', 2)", "bba"),
        ("'  x \\n'.trim()", "x"),
        ("['a', 'b'].join('-')", "a-b"),
        ("['a', 'b'].join()", "ab"),
        ("'hello'.indexOf('l')", 2),
        ("'hello'.indexOf('l', 3)", 3),
        ("'hello'.lastIndexOf('l')", 3),
        ("'hello'.indexOf('z')", -1),
        ("'hello'.substring(1, 3)", "el"),
        ("'hello'.substring(2)", "llo"),
        ("'hello'.charAt(4)", "o"),
        ("'abc'.reverse()", "cba"),
        ("[1, 2, 3].isSorted()", True),
        ("['b', 'a'].isSorted()", False),
        ("[1, 2, 3].sum()", 6),
        ("[3, 1, 2].min()", 1),
        ("[3, 1, 2].max()", 3),
        ("[1, 2, 3].indexOf(3)", 2),
        ("[1, 2, 1].lastIndexOf(1)", 2),
        ("'v1.2.3'.find('[0-9]+')", "1"),
        ("'v1.2.3'.findAll('[0-9]+')", ["1", "2", "3"]),
        ("'v1.2.3'.findAll('[0-9]+', 2)", ["1", "2"]),
        ("[1, 2].exists(x, x == 2) && [1, 2].all(x, x > 0) && [1, 2].exists_one(x, x > 1)", True),
        ("[1, 2].map(x, x * 2).filter(x, x > 2)", [4]),
        ("has(o.spec.x) && !has(o.spec.y)", True),
    ],
)
def test_kubernetes_libraries(source: str, expected: Any) -> None:
    assert evaluate(source, o={"spec": {"x": 1}}) == expected


def test_reserved_words_are_escaped_except_in_maps() -> None:
    obj = {"spec": {"namespace": "ns", "in": 1}, "metadata": {"labels": {"namespace": "label"}}}
    assert evaluate("o.spec.__namespace__ + o.metadata.labels['namespace']", o=obj) == "nslabel"
    assert evaluate("o.spec.__in__", o=obj) == 1
    with pytest.raises(CelError):
        evaluate("o.spec['namespace']", o=obj)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("o.spec.missing", "expression 'o.spec.missing' resulted in error: no such member in mapping: 'missing'"),
        ("'abc'.substring(5)", "expression ''abc'.substring(5)' resulted in error: index out of range"),
        ("nothing(1)", "expression 'nothing(1)' resulted in error: undeclared reference to 'nothing'"),
        # No authorizer library in the sandbox: an expression using it errs (and failurePolicy decides).
        ("authorizer.group('').resource('x').check('get').allowed()", "expression 'authorizer.group("),
    ],
)
def test_errors_are_worded_as_the_api_server_does(source: str, error: str) -> None:
    with pytest.raises(CelError) as raised:
        evaluate(source, o={"spec": {}})
    assert raised.value.message.startswith(error)


def test_a_syntax_error_is_a_compilation_error() -> None:
    with pytest.raises(CelError, match=r"^compilation failed"):
        compile_expression("o.spec ==")
    with pytest.raises(CelError, match=r"^compilation failed"):
        compile_expression("object.?spec.orValue(1)")  # optional types are not supported


def test_errors_do_not_leak_through_logical_operators() -> None:
    assert evaluate("o.spec.missing == 1 || true", o={"spec": {}}) is True
    assert evaluate("false && o.spec.missing == 1", o={"spec": {}}) is False


def test_variables_are_evaluated_lazily_and_errors_stay_local() -> None:
    programs = {
        "a": compile_expression("o.n + 1"),
        "b": compile_expression("variables.a * 10"),
        "broken": compile_expression("o.missing"),
    }
    activation = activation_with_variables({"o": to_cel({"n": 1})}, programs)
    assert from_cel(compile_expression("variables.b + variables.a").evaluate(activation)) == 22
    assert from_cel(compile_expression("has(variables.broken) || variables.a == 2").evaluate(activation)) is True
    with pytest.raises(CelError, match="no such member"):
        compile_expression("variables.broken == 1").evaluate(activation)


def test_programs_are_compiled_once_per_text() -> None:
    assert compile_expression("1 + 1") is compile_expression("1 + 1")
