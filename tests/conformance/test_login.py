"""MSAL for Python signs a partner user in against the sandbox, as `gdap-operator login` will.

The device code flow: MSAL starts it at the discovered `device_authorization_endpoint`, polls the
token endpoint through `authorization_pending` while a thread completes the sign-in through the
control API (`POST /_sandbox/sign-ins`, as a person on `/devicelogin` would), and gets access and
refresh tokens whose `amr` says whether the sign-in used MFA; Partner Center accepts the refresh
token's access tokens only after MFA. The partner app is a confidential client, and MSAL Python
offers the device flow only on `PublicClientApplication`; the tests lend those two methods (MSAL's
own code) to a `ConfidentialClientApplication`, which then authenticates the client with its secret
on every poll, as Entra requires of a confidential client.

The authorization code flow with PKCE: `initiate_auth_code_flow` on a loopback redirect URI, the
sign-in page followed like a browser (GET the auth URI, POST the page's form, read `Location`) or
completed through the control API, then `acquire_token_by_auth_code_flow`, which checks `state`
and the ID token's `nonce` and sends the PKCE verifier.
"""

import base64
import json
import threading
import time
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlparse

import msal
import requests

from conftest import CLIENT_ID, CLIENT_SECRET, PARTNER_TENANT_ID, msal_app

PC_SCOPE = "https://api.partnercenter.microsoft.com/user_impersonation"
ADMIN = "admin@partner.example"
REDIRECT = "http://localhost:8400"


class DeviceFlowApp(msal.ConfidentialClientApplication):
    """The partner app with MSAL's device flow (defined on PublicClientApplication only)."""

    DEVICE_FLOW_CORRELATION_ID = msal.PublicClientApplication.DEVICE_FLOW_CORRELATION_ID
    initiate_device_flow = msal.PublicClientApplication.initiate_device_flow
    acquire_token_by_device_flow = msal.PublicClientApplication.acquire_token_by_device_flow


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def partner_center_status(base, ca, refresh_token):
    """Redeems the refresh token for a Partner Center token and lists one customer with it."""
    result = msal_app(base, PARTNER_TENANT_ID).acquire_token_by_refresh_token(refresh_token, scopes=[PC_SCOPE])
    assert "access_token" in result, result
    r = requests.get(
        f"{base}/v1/customers?size=1",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        verify=ca,
        timeout=10,
    )
    return r.status_code, r.json()


def complete_once_polled(base, ca, body):
    """Completes a device sign-in from a thread once MSAL has polled and been told to wait."""
    outcome = {}

    def run():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = requests.get(f"{base}/_sandbox/requests", verify=ca, timeout=10).json()["requests"]
            if any(e["path"].endswith("/oauth2/v2.0/token") and e["status"] == 400 for e in log):
                break
            time.sleep(0.1)
        r = requests.post(f"{base}/_sandbox/sign-ins", json=body, verify=ca, timeout=10)
        outcome["status"], outcome["body"] = r.status_code, r.json()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def device_sign_in(base, ca, mfa):
    app = DeviceFlowApp(
        CLIENT_ID, client_credential=CLIENT_SECRET, authority=f"{base}/{PARTNER_TENANT_ID}", instance_discovery=False
    )
    flow = app.initiate_device_flow(scopes=[PC_SCOPE])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{base}/devicelogin"
    assert flow["interval"] >= 1
    requests.delete(f"{base}/_sandbox/requests", verify=ca, timeout=10)
    thread, outcome = complete_once_polled(base, ca, {"userCode": flow["user_code"], "user": ADMIN, "mfa": mfa})
    flow["expires_at"] = time.time() + 60  # the test's deadline, not the code's 15 minutes
    result = app.acquire_token_by_device_flow(flow)
    thread.join()
    assert outcome["status"] == 200, outcome
    assert "access_token" in result, result
    assert "refresh_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ADMIN
    return result


def test_msal_device_flow_with_mfa(base, ca):
    result = device_sign_in(base, ca, mfa=True)
    access = claims(result["access_token"])
    assert access["aud"] == "https://api.partnercenter.microsoft.com"
    assert access["amr"] == ["pwd", "mfa"]
    status, body = partner_center_status(base, ca, result["refresh_token"])
    assert status == 200, body


def test_msal_device_flow_without_mfa_is_refused_by_partner_center(base, ca):
    result = device_sign_in(base, ca, mfa=False)
    assert claims(result["access_token"])["amr"] == ["pwd"]
    status, body = partner_center_status(base, ca, result["refresh_token"])
    assert (status, body["code"]) == (401, "900421"), body


class SignInForm(HTMLParser):
    """The sign-in page's form: its action and its hidden fields."""

    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs["action"]
        if tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value", "")


def test_msal_auth_code_flow_through_the_sign_in_page(base, ca):
    app = msal_app(base, PARTNER_TENANT_ID)
    flow = app.initiate_auth_code_flow([PC_SCOPE], redirect_uri=REDIRECT, login_hint=ADMIN)
    page = requests.get(flow["auth_uri"], verify=ca, timeout=10)
    assert page.status_code == 200, page.text
    form = SignInForm()
    form.feed(page.text)
    assert form.fields, page.text
    answer = requests.post(
        urljoin(base, form.action),
        data=dict(form.fields, login=ADMIN, mfa="1", action="signin"),
        allow_redirects=False,
        verify=ca,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    location = urlparse(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == REDIRECT
    result = app.acquire_token_by_auth_code_flow(flow, dict(parse_qsl(location.query)))
    assert "access_token" in result, result
    assert claims(result["access_token"])["amr"] == ["pwd", "mfa"]
    assert result["id_token_claims"]["preferred_username"] == ADMIN
    status, body = partner_center_status(base, ca, result["refresh_token"])
    assert status == 200, body


def test_msal_auth_code_flow_completed_through_the_control_api(base, ca):
    app = msal_app(base, PARTNER_TENANT_ID)
    flow = app.initiate_auth_code_flow([PC_SCOPE], redirect_uri=REDIRECT)
    assert requests.get(flow["auth_uri"], verify=ca, timeout=10).status_code == 200
    r = requests.post(
        f"{base}/_sandbox/sign-ins", json={"state": flow["state"], "mfa": False}, verify=ca, timeout=10
    )
    assert r.status_code == 200, r.text
    redirect = urlparse(r.json()["redirect"])
    result = app.acquire_token_by_auth_code_flow(flow, dict(parse_qsl(redirect.query)))
    assert "access_token" in result, result
    assert claims(result["access_token"])["amr"] == ["pwd"]
    # The code is single-use: MSAL's second redemption gets Entra's AADSTS54005.
    again = app.acquire_token_by_auth_code_flow(flow, dict(parse_qsl(redirect.query)))
    assert again.get("error") == "invalid_grant" and 54005 in again.get("error_codes", []), again
