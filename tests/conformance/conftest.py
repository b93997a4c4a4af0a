"""Shared fixtures of the sandbox conformance suite.

The suite runs Microsoft's official Python clients (MSAL, azure-identity, the Microsoft Graph
SDK) against a sandbox started by `tests/conformance/run` over HTTPS with the sandbox's CA.
Environment: SANDBOX_BASE (https://127.0.0.1:PORT), SANDBOX_CA (path of ca.pem), SANDBOX_PID.
The identifiers below are the built-in fixture's (`gdap_operator::sandbox::defaults`).
"""

import os

import msal
import pytest
import requests

PARTNER_TENANT_ID = "8777b240-c6f0-4469-9e98-a3205431b836"
CLIENT_ID = "57667d41-992a-49b0-99d8-ddf68328373f"
CLIENT_SECRET = "sandbox-client-secret"
REFRESH_TOKEN = "sandbox-refresh-token-1"
CONTOSO_TENANT_ID = "11111111-2222-3333-4444-555555555555"
FABRIKAM_TENANT_ID = "dd0f64f5-1f5b-4090-aaad-3cda60bc160d"
NORTHWIND_TENANT_ID = "41d114a3-d683-450f-86d8-99b973aa70d1"
# Users the suite pages through the SDK (paging is proven; all 100,000 take minutes and are
# `make bench`'s reference, bench/graph_sdk_users.py).
PAGED_USERS = 2_000
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
NO_MFA_REFRESH_TOKEN = "sandbox-refresh-token-no-mfa"

# The TEST-ONLY certificate registered on the built-in app next to its secret.
_SANDBOX_SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src", "sandbox")
with open(os.path.join(_SANDBOX_SRC, "client-cert.pem")) as f:
    CLIENT_CERTIFICATE_PEM = f.read()
with open(os.path.join(_SANDBOX_SRC, "client-key.pem")) as f:
    CLIENT_KEY_PEM = f.read()


@pytest.fixture(scope="session")
def base():
    return os.environ["SANDBOX_BASE"]


@pytest.fixture(scope="session")
def ca():
    return os.environ["SANDBOX_CA"]


@pytest.fixture(scope="session", autouse=True)
def reset(base, ca):
    """Starts the session from the fixture's state (the refresh token is single-use)."""
    r = requests.post(f"{base}/_sandbox/reset", verify=ca, timeout=10)
    assert r.status_code == 204


def advance_clock(base, ca, seconds):
    """Moves the sandbox's clock: its writes lag like Microsoft's, and the clock moves through the lag."""
    r = requests.post(f"{base}/_sandbox/clock", json={"advanceSeconds": seconds}, verify=ca, timeout=10)
    assert r.status_code == 200, r.text


def msal_app(base, tenant, secret=CLIENT_SECRET):
    """An MSAL confidential client; `secret` is a client secret or an MSAL certificate dict."""
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=secret,
        authority=f"{base}/{tenant}",
        instance_discovery=False,
    )


class RefreshChain:
    """Holds the admin's current refresh token and rotates it on every use, like the operator."""

    def __init__(self, base):
        self.base = base
        self.token = REFRESH_TOKEN

    def acquire(self, tenant, scopes):
        result = msal_app(self.base, tenant).acquire_token_by_refresh_token(self.token, scopes=scopes)
        assert "access_token" in result, result
        self.token = result["refresh_token"]
        return result


@pytest.fixture(scope="session")
def chain(base):
    return RefreshChain(base)
