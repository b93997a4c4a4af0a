"""The reference `make bench` compares the tenant import with: what a user would write instead.

Microsoft's Graph SDK for Python (msgraph-sdk, with azure-identity's client-secret credential)
reads every user of one tenant with the SDK's PageIterator, the same `$select` and page size as
the operator's import, and writes each user as one JSON line with the SDK's own serializer.

Usage: python graph_sdk_users.py BASE TENANT CLIENT_ID CLIENT_SECRET SELECT OUT
(BASE: the sandbox, https://127.0.0.1:PORT; SELECT: comma-separated properties; trust the
sandbox's CA with SSL_CERT_FILE). Prints one JSON object: users, seconds, peakRssKiB.
"""

import asyncio
import json
import resource
import sys
import time

from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import PageIterator

PAGE_SIZE = 999


def client(base, credential):
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1", "localhost"]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{base}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def json_line(user):
    writer = JsonSerializationWriter()
    writer.write_object_value(None, user)
    return writer.get_serialized_content()


async def read_users(base, tenant, client_id, secret, select, out):
    credential = ClientSecretCredential(tenant, client_id, secret, authority=base, disable_instance_discovery=True)
    async with credential:
        graph = client(base, credential)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=PAGE_SIZE, select=select)
        first = await graph.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        count = 0

        def write(user):
            nonlocal count
            out.write(json_line(user))
            out.write(b"\n")
            count += 1
            return True

        await PageIterator(first, graph.request_adapter).iterate(write)
        return count


def main():
    base, tenant, client_id, secret, select, path = sys.argv[1:7]
    started = time.monotonic()
    with open(path, "wb") as out:
        users = asyncio.run(read_users(base, tenant, client_id, secret, select.split(","), out))
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"users": users, "seconds": seconds, "peakRssKiB": peak}))


if __name__ == "__main__":
    main()
