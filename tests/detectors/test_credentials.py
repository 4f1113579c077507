"""Secrets: cloud keys, tokens, private-key blocks, JWTs, bearer tokens, credential assignments (kind ``secret``)."""

from __future__ import annotations

import base64
import json

import pytest

from airlock.domain.detectors import credentials, pii


def secrets_in(text: str) -> list[tuple[str, str]]:
    return [(f.detail, text[f.start : f.end]) for f in pii.find(text) if f.kind == "secret"]


def _jwt(header: dict[str, str]) -> str:
    def part(obj: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part(header)}.{part({'sub': '1234567890', 'name': 'Jane'})}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


JWT = _jwt({"alg": "HS256", "typ": "JWT"})
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "detail", "secret"),
    [
        ("key AKIAIOSFODNN7EXAMPLE ok", "aws-access-key", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws-secret-key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("maps key AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "gcp-api-key", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
        (
            '"private_key_id": "0123456789abcdef0123456789abcdef01234567",',
            "gcp-service-account-key",
            "0123456789abcdef0123456789abcdef01234567",
        ),
        (
            "token ghp_0123456789abcdefghijABCDEFGHIJ012345 here",
            "github-token",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        ),
        (
            "bot xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
            "slack-token",
            "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
        ),
        (
            "hook https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghij0123456789ABCD",
            "slack-webhook",
            "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghij0123456789ABCD",
        ),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        (
            "use sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345 for the API",
            "api-key",
            "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4==;EndpointSuffix=core.windows.net",
            "azure-connection-string",
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4==;EndpointSuffix=core.windows.net",
        ),
        (f"session {JWT} expired", "jwt", JWT),
        ("Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "bearer-token", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZDEyMw==", "bearer-token", "dXNlcjpwYXNzd29yZDEyMw=="),
        ('db_password: "Tr0ub4dor&3xyz"', "credential", "Tr0ub4dor&3xyz"),
        (f"key:\n{PRIVATE_KEY}\nthanks", "private-key", PRIVATE_KEY),
    ],
)
def test_each_kind_of_secret(text: str, detail: str, secret: str) -> None:
    assert secrets_in(text) == [(detail, secret)]


def test_a_jwt_after_bearer_is_one_secret() -> None:
    assert secrets_in(f"Authorization: Bearer {JWT}") == [("jwt", JWT)]


def test_a_private_key_block_without_its_end_runs_to_the_end_of_the_text() -> None:
    text = "here it is: " + PRIVATE_KEY.rsplit("\n", 1)[0]
    assert secrets_in(text) == [("private-key", text[len("here it is: ") :])]


def test_a_private_key_block_is_at_most_max_block_long() -> None:
    text = "-----BEGIN PRIVATE KEY-----\n" + "A" * (2 * credentials.MAX_BLOCK)
    (f,) = [f for f in pii.find(text) if f.kind == "secret"]
    assert (f.start, f.end) == (0, credentials.MAX_BLOCK)


@pytest.mark.parametrize(
    "text",
    [
        'password = os.environ["DB_PASSWORD"]',
        "api_key=settings.API_KEY",
        "token: ${GITHUB_TOKEN}",
        'password: "<your password>"',
        "Bearer tokens are sent in the Authorization header.",
        "Authorization: Bearer <token>",
        "We use sk-learn and sk-something-simple in examples.",
        "The secret is to restart the router first.",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "eyJhbGciOi is not a whole token",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
    ],
)
def test_code_and_prose_that_only_look_like_secrets(text: str) -> None:
    assert secrets_in(text) == []
