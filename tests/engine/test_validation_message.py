"""An invalid spec is reported with the field path a human edits, in kubectl's notation."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from airlock.api.aisystem import AISystemSpec
from airlock.engine.core import _validation_message

TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"}


def _monitor(**overrides: Any) -> dict[str, Any]:
    monitor = {
        "name": "pii-leak",
        "failureMode": "privacy",
        "query": "sum(rate(pii_detections_total[1m]))",
        "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
    }
    monitor.update(overrides)
    return monitor


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        ({"monitors": [_monitor(interval="15")]}, "spec.monitors[0].interval", "invalid duration '15'"),
        ({"monitors": [_monitor()], "severities": {}}, "spec.monitors[0].thresholds[0].severity", "SEV1 is not"),
        ({"mode": "sometimes"}, "spec.mode", "'enforce' or 'dryRun'"),
    ],
)
def test_field_and_message(spec: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        AISystemSpec.model_validate({"target": TARGET, **spec})
    got_field, message = _validation_message(caught.value, "spec")
    assert got_field == field
    assert text in message
    assert not message.startswith("Value error")
