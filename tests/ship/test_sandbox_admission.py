"""The sandbox installs the shipped admission exactly as the Helm chart renders it.

``airlock.sandbox.admission.shipped_policies`` / ``shipped_webhooks`` feed the integration
worlds (``AdmissionMode.POLICY``/``WEBHOOK``); held here to the chart's own rendering, so the
integration tests exercise the same admission the chart installs.
"""

from __future__ import annotations

import copy

from airlock.sandbox.admission import shipped_policies, shipped_webhooks
from tests.ship.test_chart import objects

CASE = "other-release-and-namespace"  # release prod in namespace ops, admin groups platform-admins and security
OPERATOR = "system:serviceaccount:ops:prod-airlock"


def test_policies_are_the_charts() -> None:
    rendered = [o for o in objects(CASE) if o["kind"].startswith("ValidatingAdmissionPolicy")]
    ours = shipped_policies(admin_groups=["platform-admins", "security"], operator=OPERATOR, fullname="prod-airlock")
    assert [(o["kind"], o["metadata"]["name"], o["spec"]) for o in ours] == [
        (o["kind"], o["metadata"]["name"], o["spec"]) for o in rendered
    ]


def test_webhooks_are_the_charts_but_called_by_url() -> None:
    rendered = {o["metadata"]["name"]: o for o in objects(CASE) if o["kind"].endswith("WebhookConfiguration")}
    ours = shipped_webhooks("https://127.0.0.1:9443", b"PEM", operator=OPERATOR, fullname="prod-airlock")
    assert {o["metadata"]["name"] for o in ours} == set(rendered)
    for config in ours:
        theirs = copy.deepcopy(rendered[config["metadata"]["name"]]["webhooks"])
        for mine, chart in zip(config["webhooks"], theirs, strict=True):
            path = chart["clientConfig"]["service"]["path"]
            assert mine["clientConfig"] == {"url": f"https://127.0.0.1:9443{path}", "caBundle": "UEVN"}
            assert {k: v for k, v in mine.items() if k != "clientConfig"} == {
                k: v for k, v in chart.items() if k != "clientConfig"
            }
