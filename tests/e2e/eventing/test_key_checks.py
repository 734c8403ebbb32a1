"""System checks on keys: W005 (client = signing secret), E005 (development secret), E006."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys

import pytest

from eventing.checks import check_keys, check_settings
from eventing.webhooks.signing import DEVELOPMENT_SIGNING_SECRET
from tests.processes import ROOT

GOOD = "g" * 40
CLIENT = "c" * 40


def ids(problems) -> list[str]:
    return [problem.id for problem in problems]


def ed25519_pem(public: bool = False) -> str:
    """A fresh Ed25519 key as PEM: the private key, or its public half."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    if public:
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_separate_keys_pass(settings):
    settings.EVENTING = {"SECRETS": [GOOD], "CLIENT_SECRETS": [CLIENT]}
    assert check_keys() == []


def test_client_secret_equal_to_a_signing_secret_warns(settings):
    settings.EVENTING = {"SECRETS": [GOOD, "old" * 15], "CLIENT_SECRETS": [CLIENT, "old" * 15]}
    problems = check_keys()
    assert ids(problems) == ["eventing.W005"]
    assert "receiver" in problems[0].msg


@pytest.mark.parametrize("key", ["SECRETS", "CLIENT_SECRETS"])
def test_development_secret_is_an_error_with_debug_off(settings, key):
    # One assignment: settings are re-read on setting_changed, which an in-place edit never sends.
    settings.EVENTING = {
        "SECRETS": [GOOD],
        "CLIENT_SECRETS": [CLIENT],
        key: [DEVELOPMENT_SIGNING_SECRET],
    }
    settings.DEBUG = False
    problems = check_keys()
    assert ids(problems) == ["eventing.E005"]
    assert key in problems[0].msg
    settings.DEBUG = True
    assert check_keys() == []


def test_config_settings_use_the_constant_from_eventing():
    """Host projects have no `config`: the check compares with eventing's own literal."""
    assert "DEVELOPMENT_SIGNING_SECRET = " not in (ROOT / "config" / "settings.py").read_text()
    from config import settings as project_settings

    assert project_settings.DEVELOPMENT_SIGNING_SECRET == DEVELOPMENT_SIGNING_SECRET


def test_bad_key_material_is_an_error(settings):
    settings.EVENTING = {
        "SECRETS": [GOOD],
        "SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        "CLIENT_PUBLIC_KEYS": [
            ed25519_pem(public=True),
            "garbage",
            "https://issuer.example/.well-known/jwks.json",  # a JWKS URL: accepted
        ],
        "CLIENT_JWKS_URLS": ["https://issuer.example/jwks", "ftp://issuer.example/jwks.json"],
    }
    problems = check_keys()
    assert ids(problems) == ["eventing.E006"] * 3
    assert "SIGNING_KEY" in problems[0].msg
    assert 'CLIENT_PUBLIC_KEYS"][1]' in problems[1].msg
    assert 'CLIENT_JWKS_URLS"][1] must be an absolute http:// or https:// URL' in problems[2].msg
    # Not a list: refused when the settings are read, reported by check_settings.
    settings.EVENTING = {"SECRETS": [GOOD], "CLIENT_PUBLIC_KEYS": ed25519_pem(public=True)}
    assert ids(check_settings()) == ["eventing.E006"]
    assert "CLIENT_PUBLIC_KEYS" in check_settings()[0].msg
    assert check_keys() == []


def test_jwks_url_resolving_to_an_internal_address_is_a_warning(settings):
    settings.EVENTING = {"SECRETS": [GOOD], "CLIENT_JWKS_URLS": ["http://127.0.0.1:9/jwks"]}
    [problem] = check_keys()
    assert problem.id == "eventing.W007"
    assert "a loopback address" in problem.msg
    settings.EVENTING = {"SECRETS": [GOOD], "CLIENT_JWKS_URLS": "https://issuer.example/jwks"}
    assert ids(check_settings()) == ["eventing.E006"]


def test_signing_key_replaces_secrets(settings):
    settings.EVENTING = {"SECRETS": [], "SIGNING_KEY": ed25519_pem()}
    assert check_keys() == []
    assert "eventing.E002" not in ids(check_settings())


def run_check(var_dir, **env: str) -> subprocess.CompletedProcess:
    """`manage.py check` of the standalone project with DEBUG off and no secrets in the env."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EVENTING_SECRETS", "EVENTING_CLIENT_SECRETS", "DATABASE_URL", "DEBUG")
    }
    clean.update(
        {"DJANGO_SETTINGS_MODULE": "config.settings", "EVENTING_VAR_DIR": str(var_dir), **env}
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_make_run_generates_local_secrets_so_checks_pass(tmp_path):
    """From a fresh clone with DEBUG off the development secret stops `check`; the secrets
    `make run` writes into var/ (owner-only) replace it."""
    refused = run_check(tmp_path)
    assert refused.returncode != 0
    assert "eventing.E005" in refused.stderr
    spec = importlib.util.spec_from_file_location("run_script", ROOT / "scripts" / "run.py")
    run_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_script)
    run_script.ensure_local_secrets(tmp_path)
    for name in ("signing-secret.txt", "client-secret.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert (tmp_path / "signing-secret.txt").read_text() != (
        tmp_path / "client-secret.txt"
    ).read_text()
    passed = run_check(tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "eventing.E005" not in passed.stderr
