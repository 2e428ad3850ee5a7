"""Compatibility check: the public `aepp` package, unchanged, against the emulator.

Usage: check.py http://127.0.0.1:PORT
Exercises FlowService: create, list with paging and filters, get, patch with etag,
test and delete, and asserts the answers. Exit 0 when everything holds.
"""

import sys

import aepp
from aepp import flowservice

ORG = "0123456789ABCDEF01234567@AdobeOrg"
SPEC = "ecde33f2-c56f-46cc-bdea-ad151c16cd69"
KEY = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVlLTEyMzQ1Njc4OTA="


def connection(name):
    return {
        "name": name,
        "description": f"made by aepp: {name}",
        "auth": {
            "specName": "Connection String Based Authentication",
            "params": {
                "connectionString": f"DefaultEndpointsProtocol=https;AccountName={name};AccountKey={KEY}"
            },
        },
        "connectionSpec": {"id": SPEC, "version": "1.0"},
    }


def main(base):
    aepp.configure(
        org_id=ORG,
        client_id="aepp-client",
        secret="aepp-secret",
        scopes="openid,AdobeID,read_organizations",
        sandbox="prod",
        environment="prod",
    )
    # Point aepp at the emulator: its endpoints are module-level settings.
    aepp.config.endpoints["global"] = base
    aepp.config.config_object["imsEndpoint"] = base
    aepp.config.config_object["oauthTokenEndpointV2"] = f"{base}/ims/token/v3"
    fs = flowservice.FlowService()

    created = {}
    for i in range(25):
        name = f"aepp-{i:02d}"
        res = fs.createConnection(data=connection(name))
        assert set(res) == {"id", "etag"}, res
        assert res["etag"].startswith('"') and res["etag"].endswith('"'), res
        created[res["id"]] = name

    # List with paging: 10 per page, follow _links.next.href to the end.
    items = fs.getConnections(limit=10, n_results="inf")
    assert isinstance(items, list), items
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "no item twice"
    assert set(created) <= set(ids), "every created connection listed"
    assert all(KEY not in str(item) for item in items), "secrets masked"
    # aepp's default stops after n_results (100); here 7 per page and n_results 14.
    assert len(fs.getConnections(limit=7, n_results=14)) == 14

    # Filter through kwargs.
    found = fs.getConnections(property="name==aepp-03")
    assert [item["name"] for item in found] == ["aepp-03"], found

    some_id = next(i for i, n in created.items() if n == "aepp-05")
    item = fs.getConnection(some_id)
    assert item["id"] == some_id and item["name"] == "aepp-05", item
    assert item["connectionSpec"]["id"] == SPEC
    assert item["etag"] == item["version"]
    assert KEY not in str(item)

    # Patch: aepp reads the etag and sends it as If-Match.
    res = fs.patchConnection(
        some_id, [{"op": "replace", "path": "/description", "value": "patched by aepp"}]
    )
    assert res["id"] == some_id and res["etag"] != item["etag"], res
    after = fs.getConnection(some_id)
    assert after["description"] == "patched by aepp", after
    assert after["etag"] == res["etag"]

    assert fs.connectionTest(some_id) == {"result": True}

    for cid in created:
        assert fs.deleteConnection(cid) == 204
    assert fs.getConnection(some_id) == {}, "gone after delete"
    left = fs.getConnections(limit=10, n_results="inf")
    assert not set(created) & {item["id"] for item in left}
    print(f"aepp {aepp.__version__}: FlowService create, list+paging, get, patch, test, delete OK")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"))
