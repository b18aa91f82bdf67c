"""The API docs: /openapi.json generated from the routes and their pydantic models, Swagger UI
at / and ReDoc at /redoc, open to a browser without a key, branded and filtered from the
environment, and drawn from files the gateway serves itself (a browser test checks that the
page shows the routes and asks nothing of any other host)."""

from importlib import metadata

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from admin_kit import ADMIN, admin_get, admin_post
from gatehouse.config import ConfigError
from gatehouse.ops.docs import DocsSettings


async def test_the_document_is_valid_openapi_and_public(start):
    client = await start()
    resp = await client.get("/openapi.json")  # no key
    assert resp.status == 200
    document = await resp.json()
    validate(document)
    # The gateway's own release, not the LiteLLM release its headers name.
    assert document["info"]["version"] == metadata.version("gatehouse-proxy")
    paths = document["paths"]
    chat = paths["/v1/chat/completions"]["post"]["requestBody"]["content"]
    assert chat["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatBody"}
    schemas = document["components"]["schemas"]
    assert {"model", "messages"} <= set(schemas["ChatBody"]["required"])
    # Admin bodies come from the models the routes parse them with.
    team = paths["/team/new"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "max_budget" in schemas[team["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "requestBody" not in paths["/key/info"]["get"]
    # A delete named by its query string asks for no body (Swagger's "Try it out" would).
    removal = paths["/config/pass_through_endpoint"]["delete"]
    assert "requestBody" not in removal
    assert [p["name"] for p in removal["parameters"]] == ["endpoint_id"]
    assert paths["/model/{model_id}/update"]["patch"]["parameters"][0]["name"] == "model_id"
    assert {"/key/generate", "/model_group/make_public", "/public/model_hub", "/health",
            "/v1/models/{model_id}"} <= paths.keys()
    # The pages' own files are not API routes.
    assert not any(path.startswith("/swagger/") for path in paths)


async def test_pages_need_no_key_and_their_files_are_served_locally(start):
    client = await start()
    for path in ("/", "/redoc"):
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "https://" not in await resp.text()
    for path in ("/swagger/swagger-ui-bundle.js", "/swagger/swagger-ui.css",
                 "/swagger/redoc.standalone.js"):
        resp = await client.get(path)
        assert resp.status == 200 and len(await resp.read()) > 10_000
    # Public means the docs, not the API behind them.
    assert (await client.get("/key/list")).status == 401


async def test_title_description_and_filtered_routes_from_the_environment(start, monkeypatch):
    monkeypatch.setenv("DOCS_TITLE", "Acme <AI>")
    monkeypatch.setenv("DOCS_DESCRIPTION", "Acme's gateway")
    monkeypatch.setenv("DOCS_FILTERED", "True")
    client = await start()
    document = await (await client.get("/openapi.json")).json()
    validate(document)
    assert document["info"]["title"] == "Acme <AI>"
    assert document["info"]["description"] == "Acme's gateway"
    assert set(document["paths"]) == {
        "/chat/completions", "/v1/chat/completions", "/completions", "/v1/completions",
        "/embeddings", "/v1/embeddings", "/models", "/v1/models", "/v1/models/{model_id}",
        "/openai/deployments/{model}/chat/completions",
        "/openai/deployments/{model}/completions", "/openai/deployments/{model}/embeddings"}
    assert "<title>Acme &lt;AI&gt;</title>" in await (await client.get("/")).text()
    # Hidden from the docs, not switched off.
    assert (await client.get("/key/list", headers=ADMIN)).status == 200


async def test_no_docs_gives_root_back_to_the_status_answer(start, monkeypatch):
    monkeypatch.setenv("NO_DOCS", "True")
    monkeypatch.setenv("NO_REDOC", "True")
    client = await start()
    assert await (await client.get("/")).json() == "LiteLLM: RUNNING"
    assert (await client.get("/redoc", headers=ADMIN)).status == 404
    assert (await client.get("/swagger/swagger-ui-bundle.js", headers=ADMIN)).status == 404
    # The document stays, as in LiteLLM (NO_OPENAPI hides it).
    assert (await client.get("/openapi.json")).status == 200


async def test_docs_url_moves_the_swagger_ui(start, monkeypatch):
    monkeypatch.setenv("DOCS_URL", "/docs")
    client = await start()
    assert await (await client.get("/")).json() == "LiteLLM: RUNNING"
    resp = await client.get("/docs")
    assert resp.status == 200 and "swagger-ui-bundle.js" in await resp.text()


def test_a_docs_url_that_is_not_a_path_stops_the_start():
    with pytest.raises(ConfigError, match="DOCS_URL='docs'"):
        DocsSettings.from_env({"DOCS_URL": "docs"})


async def test_the_swagger_page_in_a_browser(start, browser, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCS_TITLE", "Acme AI gateway")
    client = await start()
    base = str(client.make_url("/"))
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(base)
    await page.wait_for_selector(".opblock-summary-path")
    await page.screenshot(path=tmp_path / "docs-page.png")
    assert (await page.locator(".info .title").inner_text()).startswith("Acme AI gateway")
    shown = await page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/chat/completions" in [text.replace("\u200b", "") for text in shown]
    assert all(url.startswith(base) for url in requested), requested


async def test_admin_reads_document_their_queries_and_answers(start):
    """The query parameters and answers the document shows are the models the routes parse
    and answer with: a real answer fits its documented schema."""
    client = await start()
    document = await (await client.get("/openapi.json")).json()
    validate(document)
    paths = document["paths"]
    listing = {p["name"]: p for p in paths["/key/list"]["get"]["parameters"]}
    assert listing["page"]["schema"]["type"] == "integer" and listing["page"]["schema"][
        "minimum"] == 1
    assert listing["include_team_keys"]["schema"]["type"] == "boolean"
    assert listing["team_id"] == {"name": "team_id", "in": "query", "required": False,
                                  "schema": {"title": "Team Id", "type": "string"}}
    org_info = paths["/organization/info"]["get"]["parameters"]
    assert [(p["name"], p["required"]) for p in org_info] == [("organization_id", True)]
    user_list = {p["name"]: p for p in paths["/user/list"]["get"]["parameters"]}
    assert "internal_user" in user_list["role"]["schema"]["enum"]
    # The spend and audit reports: dates are days, limits and pages bounded.
    report = {p["name"]: p["schema"]
              for p in paths["/global/spend/report"]["get"]["parameters"]}
    assert (report["start_date"]["type"], report["start_date"]["format"]) == ("string", "date")
    assert {"group_by", "api_key", "customer_id"} <= report.keys()
    for path, limit in (("/spend/logs", "limit"), ("/global/spend/keys", "limit"),
                        ("/audit/logs", "limit"), ("/audit", "page_size")):
        shown = {p["name"]: p["schema"] for p in paths[path]["get"]["parameters"]}
        assert shown[limit]["type"] == "integer" and shown[limit]["minimum"] == 1, path
    audit = {p["name"] for p in paths["/audit"]["get"]["parameters"]}
    assert {"sort_by", "sort_order", "end_date", "object_team_id"} <= audit
    assert [p["name"] for p in paths["/global/spend/tags"]["get"]["parameters"]] == [
        "start_date", "end_date", "tags"]

    await admin_post(client, "/team/new", {"team_id": "docs-team", "members_with_roles": [
        {"role": "user", "user_id": "docs-user"}]})
    await admin_post(client, "/key/generate", {"team_id": "docs-team", "user_id": "docs-user"})
    org = (await admin_post(client, "/organization/new", {"organization_alias": "docs"}))[
        "organization_id"]
    for path, params in (("/key/list", {"return_full_object": "true"}), ("/key/list", {}),
                         ("/team/info", {"team_id": "docs-team"}), ("/team/list", {}),
                         ("/user/info", {"user_id": "docs-user"}), ("/user/list", {}),
                         ("/organization/info", {"organization_id": org}),
                         ("/organization/list", {}), ("/public/model_hub/info", {})):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, path
        answer = await admin_get(client, path, **params)
        Draft202012Validator({**schema, "components": document["components"]}).validate(answer)
    info = await admin_get(client, "/key/list", return_full_object="true")
    key_hash = info["keys"][0]["token"]
    schema = paths["/key/info"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]
    Draft202012Validator({**schema, "components": document["components"]}).validate(
        await admin_get(client, "/key/info", key=key_hash))
