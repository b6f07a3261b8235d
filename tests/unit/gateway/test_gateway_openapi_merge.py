"""Merging the services' OpenAPI documents into the gateway's: public paths only, schemas shared or renamed,
the gateway's own error answers added in front of each service, every tag described."""

from __future__ import annotations

from gateway.openapi import TAGS, docs_page, merge

PROBLEM = {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "integer"}}}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def operation(response_schema: dict) -> dict:
    return {"responses": {"200": {"content": {"application/json": {"schema": response_schema}}}}}


GATEWAY = {
    "openapi": "3.1.0", "info": {"title": "Rehab Support API", "version": "1"},
    "paths": {"/auth/token": {"post": operation(ref("TokenResponse"))}, "/api/admin/users": {"get": operation(ref("Page"))},
              "/healthz": {"get": operation({})}},
    "components": {"schemas": {"TokenResponse": {"type": "object"}, "ProblemDoc": PROBLEM,
                               "Page": {"type": "object", "properties": {"items": {"type": "array"}}}}},
}
INTAKE = {
    "paths": {
        "/api/intake/cases": {"post": operation(ref("Case")), "get": operation(ref("Page"))},
        "/healthz": {"get": operation({})}, "/metrics": {"get": operation({})},
        "/api/referrals/smuggled": {"get": operation({})},  # not a prefix the gateway sends to intake
    },
    "components": {"schemas": {
        "Case": {"type": "object", "properties": {"error": ref("ProblemDoc"), "page": ref("Page")}},
        "ProblemDoc": PROBLEM,  # the same as the gateway's: shared
        "Page": {"type": "object", "properties": {"cases": {"type": "array"}}},  # a different one: renamed
    }},
    "tags": [{"name": "intake"}],
}
REFERRALS = {"paths": {"/api/referrals/partners": {"get": operation({})}, "/api/partner/referrals": {"get": operation({})}},
             "components": {"schemas": {}}}


def test_only_public_paths_of_each_service_are_kept():
    merged = merge(GATEWAY, {"intake": INTAKE, "referrals": REFERRALS})

    assert set(merged["paths"]) == {"/auth/token", "/api/admin/users", "/healthz", "/api/intake/cases",
                                    "/api/referrals/partners", "/api/partner/referrals"}
    assert merged["paths"]["/healthz"] == GATEWAY["paths"]["/healthz"]  # the gateway's own, not intake's


def test_equal_schemas_are_shared_and_clashing_ones_renamed_with_their_references():
    merged = merge(GATEWAY, {"intake": INTAKE})
    schemas = merged["components"]["schemas"]

    assert schemas["Page"] == GATEWAY["components"]["schemas"]["Page"]
    assert schemas["intake_Page"] == INTAKE["components"]["schemas"]["Page"]
    assert "intake_ProblemDoc" not in schemas
    assert schemas["intake_Case"]["properties"] == {"error": ref("ProblemDoc"), "page": ref("intake_Page")}
    intake_list = merged["paths"]["/api/intake/cases"]["get"]["responses"]["200"]["content"]["application/json"]
    assert intake_list["schema"] == ref("intake_Page")
    admin_list = merged["paths"]["/api/admin/users"]["get"]["responses"]["200"]["content"]["application/json"]
    assert admin_list["schema"] == ref("Page")


def test_protected_operations_carry_the_oauth2_scheme():
    merged = merge(GATEWAY, {"intake": INTAKE})

    scheme = merged["components"]["securitySchemes"]["OAuth2"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert merged["paths"]["/api/intake/cases"]["post"]["security"] == [{"OAuth2": []}]
    assert merged["paths"]["/api/admin/users"]["get"]["security"] == [{"OAuth2": []}]
    assert "security" not in merged["paths"]["/auth/token"]["post"]
    assert "security" not in merged["paths"]["/healthz"]["get"]
    assert {"name": "intake", "description": TAGS["intake"]} in merged["tags"]


def test_the_gateway_adds_the_answers_it_gives_itself_and_only_those():
    merged = merge(GATEWAY, {"intake": INTAKE})
    paths = merged["paths"]

    forwarded = paths["/api/intake/cases"]["post"]["responses"]
    assert {"401", "403", "429", "502", "503", "504"} <= set(forwarded)
    own_guarded = paths["/api/admin/users"]["get"]["responses"]
    assert {"429", "503"} <= set(own_guarded) and not {"502", "504"} & set(own_guarded)
    assert set(paths["/auth/token"]["post"]["responses"]) == {"200"}  # nothing the gateway adds to an open path
    assert set(paths["/healthz"]["get"]["responses"]) == {"200"}
    for code in ("429", "503"):
        assert "Retry-After" in forwarded[code]["headers"]
    for code, response in forwarded.items():
        if int(code) >= 400:
            assert response["content"] == {"application/problem+json": {"schema": ref("Problem")}}, code
    assert "Problem" in merged["components"]["schemas"]


def test_an_operation_id_taken_already_is_named_with_its_service():
    gateway = {**GATEWAY, "paths": {"/api/admin/users": {"get": {**operation(ref("Page")), "operationId": "list"}}}}
    intake = {**INTAKE, "paths": {"/api/intake/cases": {"get": {**operation(ref("Page")), "operationId": "list"}}}}

    merged = merge(gateway, {"intake": intake})

    assert merged["paths"]["/api/admin/users"]["get"]["operationId"] == "list"
    assert merged["paths"]["/api/intake/cases"]["get"]["operationId"] == "intake_list"


def test_every_tag_has_a_description():
    tagged = {**INTAKE, "paths": {"/api/intake/cases": {"post": {**operation({}), "tags": ["intake"]}},
                                  "/api/intake/audit": {"get": {**operation({}), "tags": ["audit"]}}}}

    merged = merge(GATEWAY, {"intake": tagged})

    assert [tag["name"] for tag in merged["tags"]] == ["intake", "audit"]  # in TAGS' order
    assert all(tag["description"] for tag in merged["tags"])


def test_the_inputs_are_not_changed():
    before = repr(GATEWAY), repr(INTAKE)

    merge(GATEWAY, {"intake": INTAKE})

    assert (repr(GATEWAY), repr(INTAKE)) == before


def test_the_docs_page_lists_operations_and_loads_nothing():
    page = docs_page(merge(GATEWAY, {"intake": INTAKE}))

    assert "/api/intake/cases" in page and "POST" in page
    assert "<script" not in page and "src=" not in page and "https://" not in page
