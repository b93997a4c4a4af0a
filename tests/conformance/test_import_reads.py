"""What the tenant import reads, through Microsoft's Graph SDK: subscriptions and licence states,
throttling handled by the SDK's own retry handler (whole-second Retry-After), and a users delta
round (the SDK calls `/users/delta()`) followed by changes made through the sandbox's control API.

Runs after test_clients.py; the delta test changes Contoso's users, so it comes last.
"""

import asyncio

import requests
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware import RetryHandler
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import PageIterator

from conftest import CLIENT_ID, CLIENT_SECRET, CONTOSO_TENANT_ID, NORTHWIND_TENANT_ID, advance_clock
from test_clients import graph_client

OTHER_PARTNER_TENANT_ID = "5e0c6c4e-3d5a-4b8e-9f61-2a7d0c9b1e42"


def app_credential(base, tenant):
    return ClientSecretCredential(tenant, CLIENT_ID, CLIENT_SECRET, authority=base, disable_instance_discovery=True)


def test_sdk_reads_subscriptions_and_licence_states(base):
    async def scenario():
        async with app_credential(base, NORTHWIND_TENANT_ID) as credential:
            client = graph_client(base, credential)
            subs = (await client.directory.subscriptions.get()).value
            skus = (await client.subscribed_skus.get()).value
            query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                top=200, select=["id", "assignedLicenses", "licenseAssignmentStates"]
            )
            users = (await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))).value
            return subs, skus, users

    subs, skus, users = asyncio.run(scenario())
    assert len(subs) == 7 and len(skus) == 3
    assert any(s.owner_tenant_id == OTHER_PARTNER_TENANT_ID for s in subs)
    assert any(s.is_trial for s in subs)
    for sku in skus:
        enabled = sum(s.total_licenses for s in subs if s.sku_id == str(sku.sku_id) and s.status == "Enabled")
        assert sku.prepaid_units.enabled == enabled, sku.sku_part_number
        assert all(s.next_lifecycle_date_time is not None for s in subs if s.sku_id == str(sku.sku_id))
    sources = {st.assigned_by_group is None for u in users for st in u.license_assignment_states}
    assert sources == {True, False}, "direct and group-assigned licences"


def test_sdk_retry_handler_waits_out_throttling_with_retry_after(base, ca, monkeypatch):
    """A budget of 3 requests per 3 s: paging 25 users 2 at a time needs 13 requests, so the SDK
    gets 429s and must retry them itself, reading the sandbox's Retry-After."""
    delays = []
    original = RetryHandler._get_retry_after

    def spy(self, response):
        value = original(self, response)
        if response is not None and response.status_code == 429:
            delays.append((response.headers.get("retry-after"), value))
        return value

    monkeypatch.setattr(RetryHandler, "_get_retry_after", spy)
    r = requests.put(f"{base}/_sandbox/throttle", json={"budget": 3, "windowSeconds": 3}, verify=ca, timeout=10)
    assert r.status_code == 204
    try:
        async def scenario():
            async with app_credential(base, CONTOSO_TENANT_ID) as credential:
                client = graph_client(base, credential)
                query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=2, select=["id"])
                first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
                seen = []
                await PageIterator(first, client.request_adapter).iterate(lambda u: seen.append(u.id) or True)
                return seen

        seen = asyncio.run(scenario())
    finally:
        requests.put(f"{base}/_sandbox/throttle", json={"budget": 2000, "windowSeconds": 10}, verify=ca, timeout=10)
    assert len(set(seen)) == 25
    assert delays, "the sandbox throttled the SDK"
    for header, parsed in delays:
        assert header.isdigit() and int(header) >= 1, header
        assert parsed == int(header), f"the SDK read Retry-After {header!r} as {parsed!r}"


def test_sdk_delta_round_then_the_changes_made_through_the_control_api(base, ca):
    users_url = f"{base}/_sandbox/tenants/{CONTOSO_TENANT_ID}/users"

    async def whole_round(client, page):
        users = []
        while True:
            users.extend(page.value)
            if not page.odata_next_link:
                return users, page.odata_delta_link
            assert page.odata_delta_link is None, "a page never carries both links"
            page = await client.users.delta.with_url(page.odata_next_link).get()

    async def scenario():
        async with app_credential(base, CONTOSO_TENANT_ID) as credential:
            client = graph_client(base, credential)
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["id", "displayName", "department"])
            first = await client.users.delta.get(request_configuration=RequestConfiguration(query_parameters=query))
            users, link = await whole_round(client, first)
            assert len(users) == 25 and link.startswith(base) and "deltatoken=" in link
            # Changes through the sandbox's control API: one user added, one removed.
            removed_id = users[3].id
            added = requests.post(
                users_url,
                json={"userPrincipalName": "delta.new@contoso.example", "displayName": "Delta New", "department": "Sales"},
                verify=ca,
                timeout=10,
            )
            assert added.status_code == 201
            assert requests.delete(f"{users_url}/{removed_id}", verify=ca, timeout=10).status_code == 204
            advance_clock(base, ca, 10)  # the sandbox shows user changes after its read lag, like Graph
            changes, next_link = await whole_round(client, await client.users.delta.with_url(link).get())
            return added.json()["id"], removed_id, changes, link, next_link

    added_id, removed_id, changes, link, next_link = asyncio.run(scenario())
    assert next_link and next_link != link
    by_id = {u.id: u for u in changes}
    assert set(by_id) == {added_id, removed_id}, "exactly the two changes"
    assert by_id[added_id].display_name == "Delta New"
    assert by_id[removed_id].additional_data.get("@removed") == {"reason": "deleted"}
