"""Microsoft's official Python clients against the sandbox over HTTPS.

MSAL acquires client-credentials and refresh-token tokens, with a client secret and with a
certificate (signed client assertions); azure-identity's ClientSecretCredential
and the Microsoft Graph SDK (kiota) list and create GDAP relationships and page through users with
the SDK's PageIterator: a small tenant to its last page, and a few thousand users of the generated
100,000-user tenant (all of them are `make bench`'s reference: bench/graph_sdk_users.py).
"""

import asyncio
import base64
import json
import os
import time

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.delegated_admin_access_details import DelegatedAdminAccessDetails
from msgraph.generated.models.delegated_admin_relationship import DelegatedAdminRelationship
from msgraph.generated.models.delegated_admin_relationship_customer_participant import (
    DelegatedAdminRelationshipCustomerParticipant,
)
from msgraph.generated.models.unified_role import UnifiedRole
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import PageIterator

from conftest import (
    advance_clock,
    CLIENT_CERTIFICATE_PEM,
    CLIENT_ID,
    CLIENT_KEY_PEM,
    CLIENT_SECRET,
    CONTOSO_TENANT_ID,
    DIRECTORY_READERS,
    FABRIKAM_TENANT_ID,
    GRAPH_DEFAULT,
    NORTHWIND_TENANT_ID,
    NO_MFA_REFRESH_TOKEN,
    PAGED_USERS,
    PARTNER_TENANT_ID,
    msal_app,
)


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def graph_client(base, credential):
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_DEFAULT], allowed_hosts=["127.0.0.1", "localhost"])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{base}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


class ChainCredential:
    """An async TokenCredential over MSAL's refresh-token grant (app + user, partner tenant)."""

    def __init__(self, chain, tenant):
        self.chain, self.tenant = chain, tenant

    async def get_token(self, *scopes, **kwargs):
        result = self.chain.acquire(self.tenant, list(scopes))
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *args):
        pass


# --- MSAL -------------------------------------------------------------------------------------


def test_msal_client_credentials_gets_an_app_token_for_a_consented_customer(base):
    result = msal_app(base, CONTOSO_TENANT_ID).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    c = claims(result["access_token"])
    assert c["tid"] == CONTOSO_TENANT_ID
    assert c["appid"] == CLIENT_ID
    assert sorted(c["roles"]) == ["LicenseAssignment.Read.All", "Organization.Read.All", "User.Read.All"]


def test_msal_reports_entra_errors(base):
    bad = msal_app(base, CONTOSO_TENANT_ID, secret="not-the-secret").acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert bad["error"] == "invalid_client"
    assert 7000215 in bad["error_codes"]
    unconsented = msal_app(base, FABRIKAM_TENANT_ID).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert unconsented["error"] == "unauthorized_client"
    assert 7000229 in unconsented["error_codes"]


def test_msal_refresh_token_grant_rotates_the_refresh_token(base, chain, ca):
    old = chain.token
    result = chain.acquire(PARTNER_TENANT_ID, [GRAPH_DEFAULT])
    assert result["refresh_token"] != old
    c = claims(result["access_token"])
    assert c["tid"] == PARTNER_TENANT_ID and c["idtyp"] == "user"
    assert "DelegatedAdminRelationship.ReadWrite.All" in c["scp"].split(" ")
    # As on Entra, the redeemed token is not revoked: it still works after the new one was used.
    chain.acquire(PARTNER_TENANT_ID, [GRAPH_DEFAULT])
    reused = msal_app(base, PARTNER_TENANT_ID).acquire_token_by_refresh_token(old, scopes=[GRAPH_DEFAULT])
    assert "access_token" in reused, reused
    # With strict refresh tokens (a sandbox option, stricter than Entra) a redeemed token dies
    # once its successor is used.
    strict = requests.put(f"{base}/_sandbox/consistency", json={"strictRefreshTokens": True}, verify=ca, timeout=10)
    assert strict.status_code == 200, strict.text
    try:
        before = chain.token
        chain.acquire(PARTNER_TENANT_ID, [GRAPH_DEFAULT])  # `before` is redeemed …
        chain.acquire(PARTNER_TENANT_ID, [GRAPH_DEFAULT])  # … and its successor used
        again = msal_app(base, PARTNER_TENANT_ID).acquire_token_by_refresh_token(before, scopes=[GRAPH_DEFAULT])
        assert again["error"] == "invalid_grant" and 70000 in again["error_codes"], again
    finally:
        requests.put(f"{base}/_sandbox/consistency", json={"strictRefreshTokens": False}, verify=ca, timeout=10)


# --- MSAL with the certificate credential ------------------------------------------------------

# MSAL Python's SHA-256 form: with `public_certificate` and no `thumbprint` it computes the
# certificate's SHA-256 thumbprint, sends header `x5t#S256` (plus `x5c`) and signs with PS256.
SHA256_CERTIFICATE = {"private_key": CLIENT_KEY_PEM, "public_certificate": CLIENT_CERTIFICATE_PEM}


def sha1_thumbprint():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(CLIENT_CERTIFICATE_PEM.encode()).fingerprint(hashes.SHA1()).hex()


def test_msal_certificate_credential_gets_app_tokens(base):
    result = msal_app(base, CONTOSO_TENANT_ID, SHA256_CERTIFICATE).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    c = claims(result["access_token"])
    assert c["appidacr"] == "2" and c["tid"] == CONTOSO_TENANT_ID
    assert sorted(c["roles"]) == ["LicenseAssignment.Read.All", "Organization.Read.All", "User.Read.All"]
    # The legacy form (a SHA-1 `thumbprint`: header x5t, RS256) is accepted too.
    legacy = {"private_key": CLIENT_KEY_PEM, "thumbprint": sha1_thumbprint()}
    result = msal_app(base, CONTOSO_TENANT_ID, legacy).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result


def test_msal_certificate_credential_redeems_refresh_tokens_with_their_mfa_fact(base, chain):
    app = msal_app(base, PARTNER_TENANT_ID, SHA256_CERTIFICATE)
    result = app.acquire_token_by_refresh_token(chain.token, scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    chain.token = result["refresh_token"]
    c = claims(result["access_token"])
    assert c["appidacr"] == "2" and c["amr"] == ["pwd", "mfa"]
    no_mfa = app.acquire_token_by_refresh_token(NO_MFA_REFRESH_TOKEN, scopes=[GRAPH_DEFAULT])
    assert "access_token" in no_mfa, no_mfa
    assert claims(no_mfa["access_token"])["amr"] == ["pwd"]


# --- azure-identity + Graph SDK ---------------------------------------------------------------


def test_graph_sdk_lists_and_creates_relationships(base, chain, ca):
    async def scenario():
        client = graph_client(base, ChainCredential(chain, PARTNER_TENANT_ID))
        rels = client.tenant_relationships.delegated_admin_relationships
        body = DelegatedAdminRelationship(
            display_name="conformance-1",
            duration="P730D",
            auto_extend_duration="PT0S",
            customer=DelegatedAdminRelationshipCustomerParticipant(tenant_id=CONTOSO_TENANT_ID),
            access_details=DelegatedAdminAccessDetails(unified_roles=[UnifiedRole(role_definition_id=DIRECTORY_READERS)]),
        )
        created = await rels.post(body)
        assert created.status.value == "created"
        assert created.id.endswith(PARTNER_TENANT_ID)
        assert created.duration.days == 730
        assert created.customer.display_name == "Contoso Ltd"
        # The SDK serialises a bare timedelta as "730 days, 0:00:00", which is not ISO 8601:
        # Graph (and the sandbox) refuse it, so clients must send ISO strings.
        import datetime

        body.display_name = "conformance-timedelta"
        body.duration = datetime.timedelta(days=730)
        with pytest.raises(APIError) as refused:
            await rels.post(body)
        assert refused.value.response_status_code == 400
        # Graph's reads lag its writes (so do the sandbox's): move the clock through the lag.
        advance_clock(base, ca, 10)
        listed = await rels.get()
        assert [r.display_name for r in listed.value] == ["conformance-1"]
        one = await rels.by_delegated_admin_relationship_id(created.id).get()
        assert one.display_name == "conformance-1"

    asyncio.run(scenario())


def test_app_only_graph_sdk_write_is_refused(base):
    async def scenario():
        credential = ClientSecretCredential(
            PARTNER_TENANT_ID, CLIENT_ID, CLIENT_SECRET, authority=base, disable_instance_discovery=True
        )
        async with credential:
            client = graph_client(base, credential)
            body = DelegatedAdminRelationship(
                display_name="app-only",
                duration="P30D",
                access_details=DelegatedAdminAccessDetails(unified_roles=[UnifiedRole(role_definition_id=DIRECTORY_READERS)]),
            )
            with pytest.raises(APIError) as refused:
                await client.tenant_relationships.delegated_admin_relationships.post(body)
            # The partner app holds no application permission in its own tenant (the built-in
            # fixture's partnerAppRoles is empty): Graph refuses a token without scp or roles
            # outright, before looking at the call.
            assert refused.value.response_status_code == 401
            assert "Either scp or roles claim" in str(refused.value)

    asyncio.run(scenario())


def vm_hwm_kib():
    pid = os.environ.get("SANDBOX_PID")
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


async def page_users(base, tenant, top, limit=None):
    """Pages a tenant's users with the SDK's PageIterator; stops after `limit` users if given.
    Returns (ids seen, users/s)."""
    credential = ClientSecretCredential(tenant, CLIENT_ID, CLIENT_SECRET, authority=base, disable_instance_discovery=True)
    async with credential:
        client = graph_client(base, credential)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=top, select=["id", "userPrincipalName"])
        started = time.monotonic()
        first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert first.odata_next_link.startswith(base)
        seen = []

        def collect(user):
            seen.append(user.id)
            return limit is None or len(seen) < limit

        await PageIterator(first, client.request_adapter).iterate(collect)
        return seen, len(seen) / (time.monotonic() - started)


def test_page_iterator_follows_next_links_to_the_last_page(base):
    seen, _ = asyncio.run(page_users(base, CONTOSO_TENANT_ID, top=4))
    assert len(seen) == 25 and len(set(seen)) == 25, "7 pages of at most 4, each user once"


def test_page_iterator_pages_a_few_thousand_users_of_the_generated_tenant(base):
    seen, rate = asyncio.run(page_users(base, NORTHWIND_TENANT_ID, top=999, limit=PAGED_USERS))
    assert len(seen) == PAGED_USERS and len(set(seen)) == PAGED_USERS
    print(f"\nGraph SDK paged {PAGED_USERS} users at {rate:,.0f} users/s")
    hwm = vm_hwm_kib()
    if hwm is not None:
        assert hwm < 256 * 1024, f"sandbox peak RSS {hwm} KiB"


def test_control_api_is_reachable_over_https(base, ca):
    r = requests.get(f"{base}/_sandbox/requests", verify=ca, timeout=10)
    assert r.status_code == 200
    posts = [x for x in r.json()["requests"] if x["method"] == "POST" and x["path"].endswith("delegatedAdminRelationships")]
    assert len(posts) >= 1
