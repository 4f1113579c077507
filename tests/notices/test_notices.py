"""Notices: every default template for every failure mode (golden files), overrides, and the sandbox.

The golden files under ``tests/notices/golden/`` were read as their audience
reads them (a regulator, a user, an on-call engineer); regenerate them
deliberately with ``AIRLOCK_UPDATE_GOLDEN=1 pytest tests/notices`` and read the
diff before committing it.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from airlock.api.aisystem import AISystemSpec
from airlock.api.common import Audience, FailureMode
from airlock.api.errors import describe
from airlock.api.matrix import NoticeTemplate
from airlock.domain import deadlines, notices
from tests.notices.builders import T0, incident, system

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AIRLOCK_UPDATE_GOLDEN") == "1"
NOW = T0 + datetime.timedelta(minutes=10)

# A harm category a responder might plausibly set for each failure mode.
HARM = {
    FailureMode.SUDDEN: ["b"],
    FailureMode.DRIFT: [],
    FailureMode.ADVERSARIAL: ["c"],
    FailureMode.PRIVACY: ["c"],
    FailureMode.FAIRNESS: ["c"],
    FailureMode.SAFETY: ["a"],
    FailureMode.COST: [],
}


def rendered() -> dict[str, str]:
    out: dict[str, str] = {}
    spec = system()
    for mode in FailureMode:
        case = incident(mode.value, harm=HARM[mode], worked=True)
        context = notices.build_context(case, "support-chatbot", spec, deadlines.obligations(case, spec), now=NOW)
        for audience in Audience:
            for notice in notices.render(audience, context):
                out[f"{mode.value}.{notice.kind.value}.md"] = f"Subject: {notice.subject}\n\n{notice.body}"
    # A fresh, unacknowledged incident on a system that declares nothing: every placeholder shows.
    bare = AISystemSpec.model_validate({"target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m"}})
    fresh = incident("drift")
    context = notices.build_context(fresh, "bare-model", bare, [], now=NOW)
    for audience in Audience:
        for notice in notices.render(audience, context):
            out[f"bare.{notice.kind.value}.md"] = f"Subject: {notice.subject}\n\n{notice.body}"
    return out


RENDERED = rendered()


def test_every_failure_mode_gets_every_audience() -> None:
    for mode in FailureMode:
        kinds = {name.split(".")[1] for name in RENDERED if name.startswith(f"{mode.value}.")}
        expected = {"regulator-eu-ai-act-art73", "users", "internal"}
        if mode is FailureMode.PRIVACY:
            expected.add("regulator-gdpr-art33")  # personal data declared: the GDPR clock runs
        assert kinds == expected, mode


@pytest.mark.parametrize("golden", sorted(RENDERED))
def test_matches_golden(golden: str) -> None:
    path = GOLDEN / golden
    if UPDATE:
        path.write_text(RENDERED[golden], encoding="utf-8")
    assert path.exists(), f"{path} missing: run with AIRLOCK_UPDATE_GOLDEN=1 and read the result"
    assert RENDERED[golden] == path.read_text(encoding="utf-8"), (
        f"{golden} changed: if intended, regenerate with AIRLOCK_UPDATE_GOLDEN=1 and read the diff"
    )


def test_no_stale_golden_files() -> None:
    assert {p.name for p in GOLDEN.glob("*.md")} == set(RENDERED)


def test_regulator_draft_has_what_an_authority_needs() -> None:
    text = RENDERED["safety.regulator-eu-ai-act-art73.md"]
    for needed in (
        "initial report",
        "Example Support AI GmbH",
        "EU-AIDB-000123",
        "Occurrence",
        "Awareness",
        "Causal link",
        "DE, AT",
        "(a) death of a person",
        "Persons affected",
        "Causal analysis",
        "Corrective measures",
        "Other authorities notified",
        "due 2026-12-06 13:30 UTC",  # 10 days on death
    ):
        assert needed in text, needed
    assert "[to be completed by the provider" in text


def test_users_notice_is_plain_language() -> None:
    for mode in FailureMode:
        text = RENDERED[f"{mode.value}.users.md"].lower()
        for jargon in ("sev1", "monitor", "query", "failure mode", "art.", "incident", "rollout", "pod", "utc"):
            assert jargon not in text, (mode, jargon)
        assert "what happened" in text
        assert "what we did" in text
        assert "what you should do" in text


def test_internal_update_says_who_is_on_it_and_what_is_due() -> None:
    text = RENDERED["privacy.internal.md"]
    assert "alice@example.com" in text
    assert "GDPR Art. 33 personal-data breach notification: due 2026-11-29 13:30 UTC - pending" in text
    assert "Time to contain: 2.1 s" in text
    assert "NOBODY HAS ACKNOWLEDGED YET - responders: none declared" in RENDERED["bare.internal.md"]


def test_drill_notices_say_so_first() -> None:
    spec = system()
    drill = incident("privacy", drill=True)
    context = notices.build_context(drill, "support-chatbot", spec, deadlines.obligations(drill, spec), now=NOW)
    for audience in Audience:
        for notice in notices.render(audience, context):
            assert notice.body.startswith(("DRILL", "[DRILL]", "THIS IS A PRACTICE RUN")), notice.kind
            assert notice.subject.startswith(("[DRILL]", "[PRACTICE]")), notice.kind


def context() -> dict[str, object]:
    spec = system()
    case = incident("privacy", harm=["c"], worked=True)
    return notices.build_context(case, "support-chatbot", spec, deadlines.obligations(case, spec), now=NOW)


def test_inline_override_wins_for_subject_and_body() -> None:
    template = NoticeTemplate(subject="[{{ incident.severity }}] {{ system.name }}", body="Owner: {{ system.owner }}\n")
    (notice,) = notices.render(Audience.INTERNAL, context(), template)
    assert notice.subject == "[SEV1] support-chatbot"
    assert notice.body == "Owner: support-ml\n"


def test_config_map_body_is_used_when_referenced() -> None:
    template = NoticeTemplate.model_validate({"configMapRef": {"name": "notices", "key": "users"}})
    (notice,) = notices.render(Audience.USERS, context(), template, config_map_body="Hi from {{ system.name }}")
    assert notice.body == "Hi from support-chatbot"
    assert notice.subject.startswith("A problem with our service")  # default subject kept


def test_regulator_override_renders_once_per_regime() -> None:
    template = NoticeTemplate(body="{{ regime }}")
    bodies = [n.body for n in notices.render(Audience.REGULATOR, context(), template)]
    assert bodies == ["eu-ai-act-art73", "gdpr-art33"]


@pytest.mark.parametrize(
    ("audience", "text", "expected"),
    [
        (
            Audience.REGULATOR,
            "ok\n{{ incident.nmae }}\n",
            "templates.regulator.body: line 2: 'dict object' has no attribute 'nmae'",
        ),
        (
            Audience.USERS,
            "a\nb\n{% if incident.drill %}\n",
            "templates.users.body: line 3: syntax error: Unexpected end of template",
        ),
        (Audience.INTERNAL, "{{ owner }}", "templates.internal.body: line 1: 'owner' is undefined"),
        (Audience.INTERNAL, "{{ incident.timeline[5].at }}", "templates.internal.body: line 1:"),
        (
            Audience.USERS,
            "{{ incident.severity | nosuchfilter }}",
            "templates.users.body: line 1: syntax error: No filter named 'nosuchfilter'",
        ),
    ],
)
def test_broken_override_names_audience_and_line(audience: Audience, text: str, expected: str) -> None:
    error = notices.validate_template(text, audience)
    assert error is not None
    assert error.startswith(expected), error
    # The same text from a ConfigMap (no admission-time syntax check there) fails at render, named too.
    from_config_map = NoticeTemplate.model_validate({"configMapRef": {"name": "notices", "key": audience.value}})
    with pytest.raises(notices.NoticeError) as caught:
        notices.render(audience, context(), from_config_map, config_map_body=text)
    assert str(caught.value).startswith(f"templates.{audience.value}.configMapRef: line ")


def test_broken_subject_is_named_as_the_subject() -> None:
    assert notices.validate_templates({Audience.USERS: NoticeTemplate(subject="{{ nope }}", body="fine")}) == [
        "templates.users.subject: line 1: 'nope' is undefined"
    ]


def test_good_overrides_validate() -> None:
    assert (
        notices.validate_template("{{ incident.name }} {{ reporting | length }} {{ regime }}", Audience.REGULATOR)
        is None
    )
    for kind in notices.NoticeKind:
        audience = Audience.REGULATOR if kind.value.startswith("regulator") else Audience(kind.value)
        assert notices.validate_template(notices.default_body(kind), audience) is None, kind


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ incident.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ incident.items.__self__ }}",
        "{{ 'x' * 100000000 }}",
        "{{ 2 ** 100000000 }}",
        "{{ ((9 ** 60) ** 60) ** 60 }}",
        "{% for i in range(10000000) %}{% endfor %}",
        "{{ ().__class__.__base__.__subclasses__() }}",
    ],
)
def test_sandbox_escapes_are_errors_not_data(escape: str) -> None:
    error = notices.validate_template(f"line one\n{escape}", Audience.INTERNAL)
    assert error is not None
    assert error.startswith("templates.internal.body: line 2:"), error
    with pytest.raises(notices.NoticeError):
        notices.render(Audience.INTERNAL, context(), NoticeTemplate(body=escape))


def test_api_rejects_template_syntax_errors_at_apply_time() -> None:
    manifest = {
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m"},
        "templates": {"regulator": {"body": "Report\n{% for x in y %}\n"}},
    }
    with pytest.raises(ValidationError) as caught:
        AISystemSpec.model_validate(manifest)
    (line,) = describe(caught.value)
    assert line.startswith("templates.regulator.body: line 2: Jinja2 syntax error:"), line
