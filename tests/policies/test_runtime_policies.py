"""The runtime policies (vLLM, TGI, KServe/Knative, OpenTelemetry GenAI) against a real Prometheus.

Each shipped policy must validate, merge with an AISystem that targets a KServe
InferenceService behind an HTTPRoute (the operator's own plan build), and every one of
its monitors must return the expected value from a real Prometheus (Debian's 2.42)
backfilled with recorded-looking series in that runtime's exact metric and label names —
through the operator's own query resolution, baseline subquery, label matching and
relative-change arithmetic. Two systems share each runtime's metrics: one in an incident,
one healthy (whose error series do not even exist yet), so matching and ``sum by`` are
checked too.
"""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import yaml

from airlock.api.aisystem import AISystemSpec
from airlock.api.common import Action, FailureMode, Severity
from airlock.api.policy import ContainmentPolicy
from airlock.domain import series
from airlock.domain.evaluation import Sample
from airlock.domain.plan import Plan, ResolvedMonitor, build_plan
from airlock.sandbox.prometheus import PrometheusError, PrometheusProcess
from tests.policies import recordings as rec
from tests.policies.recordings import counter, gauge, histogram, quantile

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOUR, DAY = 3600.0, 86400.0
NS_A, NS_B = "ml-prod", "ml-staging"
GUARD = "airlock_guard_detections_total"


@dataclass(frozen=True)
class Runtime:
    policy: str  # file under policies/ and the ContainmentPolicy's name
    params: tuple[dict[str, str], dict[str, str]]  # params of system A (incident) and B (healthy)
    series: Callable[[], list[rec.Series]]
    expected: dict[str, tuple[float | None, float | None]]  # monitor -> value for A, for B (None: no data)


def _guard(namespace: str, system: str, *, leak: float, injections: float, canary: float) -> list[rec.Series]:
    def labels(detector: str, kind: str, direction: str) -> dict[str, str]:
        return {"namespace": namespace, "system": system, "detector": detector, "kind": kind, "direction": direction}

    return [
        counter(GUARD, labels("cross-customer", "email", "response"), 0, leak),
        counter(GUARD, labels("pii", "email", "response"), 0.5, 0.5),  # the system's own user's data: not a leak
        counter(GUARD, labels("prompt-injection", "instruction-override", "request"), 0, injections),
        counter(GUARD, labels("canary", "system-prompt", "response"), 0, canary),
    ]


GUARD_EXPECTED: dict[str, tuple[float | None, float | None]] = {
    "data-leak": (0.2 + 0.05, None),  # cross-customer and canary; B runs without the guard: no series, ok
    "prompt-injection": (1.5, None),
}


# ---------------------------------------------------------------------------- vLLM


def _vllm_system(namespace: str, model: str, *, incident: bool) -> list[rec.Series]:
    base = {"namespace": namespace, "model_name": model, "engine": "0"}
    pod = {**base, "pod": f"{model}-predictor-7c9f-0"}
    out: list[rec.Series] = []
    healthy = {"stop": 9.0, "length": 0.8, "abort": 0.1, "error": 0.1}
    now = {"stop": 7.0, "length": 1.0, "abort": 0.5, "error": 1.5} if incident else healthy
    for reason in ("stop", "length", "abort", "error"):
        if not incident and reason in ("abort", "error"):
            continue  # a healthy server that never had one: vLLM creates the series lazily per label set
        out.append(
            counter("vllm:request_success_total", {**pod, "finished_reason": reason}, healthy[reason], now[reason])
        )
    out += histogram(
        "vllm:e2e_request_latency_seconds",
        pod,
        rec.VLLM_E2E,
        healthy=(10, 2.5),
        incident=(10, 15.0 if incident else 2.5),
    )
    out += histogram(
        "vllm:time_to_first_token_seconds",
        pod,
        rec.VLLM_TTFT,
        healthy=(10, 0.25),
        incident=(10, 0.75 if incident else 0.25),
    )
    out += histogram(
        "vllm:request_generation_tokens", pod, rec.VLLM_TOKENS,
        healthy=(10, 100), incident=(10, 50 if incident else 100), mean=(60, 30 if incident else 60),
    )  # fmt: skip
    out.append(counter("vllm:prompt_tokens_total", pod, 150, 500 if incident else 150))
    out.append(counter("vllm:generation_tokens_total", pod, 50, 300 if incident else 50))
    for n, (waiting, kv) in enumerate([(70, 0.97), (50, 0.6)] if incident else [(1, 0.3), (2, 0.2)]):
        other = {**base, "pod": f"{model}-predictor-7c9f-{n}"}
        out.append(gauge("vllm:num_requests_waiting", other, 0, waiting))
        out.append(gauge("vllm:num_requests_running", other, 4, 4))
        # vLLM 0.9+ exports both names for a while; the policy prefers the new one.
        out.append(gauge("vllm:kv_cache_usage_perc", other, 0.3, kv))
        out.append(gauge("vllm:gpu_cache_usage_perc", other, 0.3, kv))
    return out


VLLM = Runtime(
    policy="vllm-runtime",
    params=({"model": "llama-3-1-8b"}, {"model": "llama-3-1-8b"}),
    series=lambda: [
        *_vllm_system(NS_A, "llama-3-1-8b", incident=True),
        *_vllm_system(NS_B, "llama-3-1-8b", incident=False),
        *_guard(NS_A, "support-chatbot", leak=0.2, injections=1.5, canary=0.05),
    ],
    expected={
        "request-errors": (0.2, 0.0),  # (abort 0.5 + error 1.5) / 10 per second; B has no error series at all
        "e2e-latency-p95": (quantile(rec.VLLM_E2E, 15.0, 0.95), quantile(rec.VLLM_E2E, 2.5, 0.95)),
        "queue-depth": (120, 3),
        "kv-cache-saturation": (0.97, 0.3),
        "token-spend": ((500 + 300 - 200) / 200, 0.0),
        "answer-length-drift": ((30 - 60) / 60, 0.0),
        "finish-reason-drift": ((0.3 - 0.1) / 0.1, 0.0),  # non-stop share 3/10 against 1/10 a week ago
        "ttft-drift": (
            (quantile(rec.VLLM_TTFT, 0.75, 0.95) - quantile(rec.VLLM_TTFT, 0.25, 0.95))
            / quantile(rec.VLLM_TTFT, 0.25, 0.95),
            0.0,
        ),
        **GUARD_EXPECTED,
    },
)


# ---------------------------------------------------------------------------- TGI


def _tgi_system(namespace: str, service: str, *, incident: bool) -> list[rec.Series]:
    scrape = {"namespace": namespace, "service": service, "pod": f"{service}-6d5f-0", "job": service}
    out = [
        counter("tgi_request_count", scrape, 10, 10),
        counter("tgi_request_success", scrape, 9.9, 7.5 if incident else 9.9),
        counter("tgi_request_failure", {**scrape, "err": "validation"}, 0.1, 0.5 if incident else 0.1),
    ]
    if incident:
        out.append(counter("tgi_request_failure", {**scrape, "err": "generation"}, 0, 1.5))
        out.append(counter("tgi_request_failure", {**scrape, "err": "overloaded"}, 0, 0.5))
    slow, fast = rec.TGI_DURATION[30], rec.TGI_DURATION[25]  # ~28.8 s and ~3.8 s
    out += histogram(
        "tgi_request_duration",
        scrape,
        rec.TGI_DURATION,
        healthy=(9.9, fast),
        incident=(7.5 if incident else 9.9, slow if incident else fast),
    )
    per_token_h, per_token_i = rec.TGI_DURATION[10], rec.TGI_DURATION[13]
    out += histogram(
        "tgi_request_mean_time_per_token_duration", scrape, rec.TGI_DURATION,
        healthy=(9.9, per_token_h), incident=(9.9, per_token_i if incident else per_token_h),
    )  # fmt: skip
    out += histogram(
        "tgi_request_generated_tokens", scrape, rec.TGI_TOKENS,
        healthy=(9.9, rec.TGI_TOKENS[4]), incident=(9.9, rec.TGI_TOKENS[1] if incident else rec.TGI_TOKENS[4]),
        mean=(90, 30 if incident else 90),
    )  # fmt: skip
    out += histogram(
        "tgi_request_input_length", scrape, rec.TGI_TOKENS,
        healthy=(10, rec.TGI_TOKENS[9]), incident=(10, rec.TGI_TOKENS[29] if incident else rec.TGI_TOKENS[9]),
        mean=(200, 600 if incident else 200),
    )  # fmt: skip
    out.append(gauge("tgi_queue_size", scrape, 0, 64 if incident else 0))
    out.append(gauge("tgi_batch_current_size", scrape, 8, 32 if incident else 8))
    return out


def _ratio_change(after: float, before: float) -> float:
    return (after - before) / before


TGI = Runtime(
    policy="tgi-runtime",
    params=({"service": "chatbot-predictor"}, {"service": "chatbot-predictor"}),
    series=lambda: [
        *_tgi_system(NS_A, "chatbot-predictor", incident=True),
        *_tgi_system(NS_B, "chatbot-predictor", incident=False),
        *_guard(NS_A, "support-chatbot", leak=0.2, injections=1.5, canary=0.05),
    ],
    expected={
        "request-errors": (0.2, 0.0),  # generation 1.5 + overloaded 0.5 of 10/s; validation errors are the client's
        "e2e-latency-p95": (
            quantile(rec.TGI_DURATION, rec.TGI_DURATION[30], 0.95),
            quantile(rec.TGI_DURATION, rec.TGI_DURATION[25], 0.95),
        ),
        "queue-depth": (64, 0),
        "token-spend": (_ratio_change(10 * 600 + 9.9 * 30, 10 * 200 + 9.9 * 90), 0.0),
        "answer-length-drift": ((30 - 90) / 90, 0.0),
        "time-per-token-drift": (
            _ratio_change(
                quantile(rec.TGI_DURATION, rec.TGI_DURATION[13], 0.95),
                quantile(rec.TGI_DURATION, rec.TGI_DURATION[10], 0.95),
            ),
            0.0,
        ),
        **GUARD_EXPECTED,
    },
)


# ---------------------------------------------------------------------------- KServe on Knative


def _kserve_system(namespace: str, isvc: str, model: str, *, incident: bool) -> list[rec.Series]:
    revision = f"{isvc}-predictor-00003"
    knative = {
        "namespace": namespace,  # added by the scrape
        "namespace_name": namespace,
        "service_name": f"{isvc}-predictor",
        "configuration_name": f"{isvc}-predictor",
        "revision_name": revision,
        "pod_name": f"{revision}-deployment-5c8b9-x2x7q",
        "container_name": "queue-proxy",
    }
    out: list[rec.Series] = []
    codes = {("200", "2xx"): (20, 12 if incident else 20), ("400", "4xx"): (0.5, 0.5)}
    if incident:
        codes[("503", "5xx")] = (0, 4)
        codes[("500", "5xx")] = (0, 1)
    for (code, klass), (h, i) in codes.items():
        labels = {**knative, "response_code": code, "response_code_class": klass}
        out.append(counter("revision_app_request_count", labels, h, i))
        out.append(counter("revision_request_count", labels, h, i))
    latency = {**knative, "response_code": "200", "response_code_class": "2xx"}
    out += histogram(
        "revision_app_request_latencies",
        latency,
        rec.KNATIVE_LATENCY_MS,
        healthy=(20, 250),
        incident=(12 if incident else 20, 20000 if incident else 250),
    )
    server = {"namespace": namespace, "model_name": model, "pod": knative["pod_name"]}
    out += histogram(
        "request_predict_seconds",
        server,
        rec.PROMETHEUS_DEFAULT,
        healthy=(20, 0.1),
        incident=(20, 0.5 if incident else 0.1),
    )
    out += histogram(
        "request_preprocess_seconds", server, rec.PROMETHEUS_DEFAULT, healthy=(20, 0.005), incident=(20, 0.005)
    )
    return out


KSERVE = Runtime(
    policy="kserve-knative",
    params=({"model": "fraud-xgb"}, {"model": "fraud-xgb"}),
    series=lambda: [
        *_kserve_system(NS_A, "fraud-scorer", "fraud-xgb", incident=True),
        *_kserve_system(NS_B, "fraud-scorer", "fraud-xgb", incident=False),
        *_guard(NS_A, "support-chatbot", leak=0.2, injections=1.5, canary=0.05),
    ],
    expected={
        "request-errors": (5 / 17.5, 0.0),  # 503 4/s + 500 1/s of 17.5/s
        "latency-p95": (quantile(rec.KNATIVE_LATENCY_MS, 20000, 0.95), quantile(rec.KNATIVE_LATENCY_MS, 250, 0.95)),
        "request-volume": (_ratio_change(17.5, 20.5), 0.0),
        "predict-latency-drift": (
            _ratio_change(quantile(rec.PROMETHEUS_DEFAULT, 0.5, 0.95), quantile(rec.PROMETHEUS_DEFAULT, 0.1, 0.95)),
            0.0,
        ),
        **GUARD_EXPECTED,
    },
)


# ---------------------------------------------------------------------------- OpenTelemetry GenAI


def _otel_system(job: str, model: str, *, incident: bool) -> list[rec.Series]:
    base = {
        "job": job,
        "instance": f"{job}-5f7d8-abcde",
        "gen_ai_operation_name": "chat",
        "gen_ai_system": "openai",
        "gen_ai_request_model": model,
        "gen_ai_response_model": f"{model}-2025-04-14",
        "server_address": "api.openai.com",
        "server_port": "443",
        "otel_scope_name": "opentelemetry.instrumentation.openai_v2",
    }
    out: list[rec.Series] = []
    out += histogram(
        "gen_ai_client_operation_duration_seconds", base, rec.OTEL_DURATION,
        healthy=(4, 2.56), incident=(3 if incident else 4, 81.92 if incident else 2.56),
    )  # fmt: skip
    if incident:
        errored = {**base, "error_type": "RateLimitError"}
        errored.pop("gen_ai_response_model")  # a failed call has no response model
        out += histogram(
            "gen_ai_client_operation_duration_seconds",
            errored,
            rec.OTEL_DURATION,
            healthy=(0, 0.32),
            incident=(1, 0.32),
        )
    out += histogram(
        "gen_ai_client_token_usage", {**base, "gen_ai_token_type": "input"}, rec.OTEL_TOKENS,
        healthy=(4, 1024), incident=(3 if incident else 4, 4096 if incident else 1024), mean=(500, 2000 if incident else 500),
    )  # fmt: skip
    out += histogram(
        "gen_ai_client_token_usage", {**base, "gen_ai_token_type": "output"}, rec.OTEL_TOKENS,
        healthy=(4, 256), incident=(3 if incident else 4, 64 if incident else 256), mean=(200, 40 if incident else 200),
    )  # fmt: skip
    return out


OTEL = Runtime(
    policy="otel-genai",
    params=({"service": "support-backend", "model": "gpt-4.1"}, {"service": "faq-backend", "model": "gpt-4.1"}),
    series=lambda: [
        *_otel_system("support-backend", "gpt-4.1", incident=True),
        *_otel_system("faq-backend", "gpt-4.1", incident=False),
        *_guard(NS_A, "support-chatbot", leak=0.2, injections=1.5, canary=0.05),
    ],
    expected={
        "operation-errors": (1 / 4, 0.0),  # 1 failed of 4 operations per second
        # The p95 falls among the successful operations' bucket: 3.8 of 4 per second lie at or below 81.92 s.
        "operation-latency-p95": (
            40.96 + (81.92 - 40.96) * (0.95 * 4 - 1) / 3,
            quantile(rec.OTEL_DURATION, 2.56, 0.95),
        ),
        "token-spend": (_ratio_change(3 * 2000 + 3 * 40, 4 * 500 + 4 * 200), 0.0),
        "answer-length-drift": ((40 - 200) / 200, 0.0),
        "prompt-length-drift": ((2000 - 500) / 500, 0.0),
        **GUARD_EXPECTED,
    },
)

RUNTIMES = {r.policy: r for r in (VLLM, TGI, KSERVE, OTEL)}


# ---------------------------------------------------------------------------- the systems


def policy(name: str) -> ContainmentPolicy:
    return ContainmentPolicy.model_validate(yaml.safe_load((ROOT / "policies" / f"{name}.yaml").read_text()))


def system_spec(policy_name: str, params: dict[str, str]) -> AISystemSpec:
    """An AISystem as the README shows it: a KServe InferenceService behind a Gateway API HTTPRoute."""
    return AISystemSpec.model_validate(
        {
            "owner": "support-ml",
            "policyRef": {"name": policy_name},
            "target": {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "name": "fraud-scorer" if policy_name == "kserve-knative" else "chatbot",
            },
            "fallback": {
                "httpRoute": {
                    "name": "chatbot",
                    "backend": {
                        "name": "chatbot-fallback",
                        "group": "inference.networking.k8s.io",
                        "kind": "InferencePool",
                    },
                }
            },
            "params": params,
        }
    )


def plan_for(policy_name: str, which: int) -> Plan:
    runtime = RUNTIMES[policy_name]
    namespace = NS_A if which == 0 else NS_B
    return build_plan(
        namespace, "support-chatbot", system_spec(policy_name, runtime.params[which]), policy(policy_name).spec
    )


@pytest.mark.parametrize("name", RUNTIMES)
def test_the_policy_validates_and_merges_with_an_inference_service_system(name: str) -> None:
    found = policy(name)
    assert found.metadata.name == name
    plan = plan_for(name, 0)
    assert [m.name for m in plan.monitors] == list(RUNTIMES[name].expected), "every monitor has an expected value below"
    # Fit for an InferenceService: nothing pauses a rollout, the worst severity reroutes and stops the model.
    assert all(Action.PAUSE_ROLLOUT not in p.actions for p in plan.severities.values())
    assert plan.severities[Severity.SEV1].actions == [Action.REROUTE, Action.SCALE_TO_ZERO]
    modes = {m.monitor.failure_mode for m in plan.monitors}
    assert {
        FailureMode.SUDDEN,
        FailureMode.COST,
        FailureMode.DRIFT,
        FailureMode.PRIVACY,
        FailureMode.ADVERSARIAL,
    } <= modes
    for resolved in plan.monitors:
        assert resolved.match is not None, f"{resolved.name} is not shared"
        assert "{{" not in resolved.query
        assert all("{{" not in v for v in resolved.match.values())
    drift = [m for m in plan.monitors if m.monitor.failure_mode is FailureMode.DRIFT]
    assert drift
    assert all(m.baseline_query is not None for m in drift)


# ---------------------------------------------------------------------------- a real Prometheus

T = float(int(datetime.datetime.now(datetime.UTC).timestamp() // 3600 * 3600) - 2 * 3600)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    """One Prometheus holding every runtime's recording: a week-ago day, yesterday's hour, the last two hours."""
    windows = [
        rec.Window(T - 8 * DAY - 2 * HOUR, T - 7 * DAY, 300, incident=False),  # 7d/1d baselines (1h and 15m rates)
        rec.Window(T - DAY - 2 * HOUR, T - DAY, 60, incident=False),  # 1d/1h baselines (5m rates)
        rec.Window(T - 2 * HOUR, T, 60, incident=True),  # now
    ]
    unique = {(s.name, tuple(sorted(s.labels.items()))): s for r in RUNTIMES.values() for s in r.series()}
    text = rec.openmetrics(unique.values(), windows)  # the guard's series are part of every runtime's
    try:
        prom = PrometheusProcess([], data_dir=tmp_path_factory.mktemp("prometheus"))
        prom.backfill(text)
        prom.start()
    except PrometheusError as exc:  # not installed: fail, never skip (CI installs it)
        pytest.fail(str(exc), pytrace=False)
    yield prom
    prom.close()


def _value(prom: PrometheusProcess, resolved: ResolvedMonitor) -> Sample:
    """What the operator's scheduler would hand the evaluation: the system's series, relative if baselined."""

    def pick(query: str) -> series.Picked:
        found = prom.query(query, time=T)
        chosen = series.pick(resolved.match, found, lambda s: s["metric"])
        if chosen is None:
            return None
        return _Point(float(chosen["value"][1]), datetime.datetime.fromtimestamp(T, datetime.UTC))

    current = pick(resolved.query)
    baseline = pick(resolved.baseline_query) if resolved.baseline_query else None
    at = datetime.datetime.fromtimestamp(T, datetime.UTC)
    return series.sample(current, baseline, at, with_baseline=resolved.baseline_query is not None)


@dataclass(frozen=True)
class _Point:
    value: float
    at: datetime.datetime


@pytest.mark.integration
@pytest.mark.parametrize(("name", "which"), [(n, w) for n in RUNTIMES for w in (0, 1)], ids=lambda v: str(v))
def test_every_monitor_returns_the_recorded_value(prometheus: PrometheusProcess, name: str, which: int) -> None:
    plan = plan_for(name, which)
    seen: dict[str, float | None] = {}
    for resolved in plan.monitors:
        sample = _value(prometheus, resolved)
        assert sample.error is None, f"{resolved.name}: {sample.error}"
        seen[resolved.name] = sample.value
    expected = {monitor: values[which] for monitor, values in RUNTIMES[name].expected.items()}
    assert seen.keys() == expected.keys()
    for monitor, want in expected.items():
        got = seen[monitor]
        if want is None:
            assert got is None, f"{monitor}: expected no data, got {got}"
        else:
            assert got == pytest.approx(want, rel=1e-6, abs=1e-9), f"{monitor}: {got} != {want}"
