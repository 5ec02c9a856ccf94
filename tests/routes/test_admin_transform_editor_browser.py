"""The route page's transformation rows editor in a real browser: rules added as rows are saved as the blocks'
JSON, the server's errors show next to the row they name, stored rules show as rows, and the proxy applies them."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.gateway import http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]
USERNAME, PASSWORD = "ops", "an-operator-password-9"
CREDENTIALS = {"Authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()}
REQUEST, RESPONSE = "request_transformation", "response_transformation"


@pytest.fixture
def fast_password_hashing():
    """Overrides the package's fast hasher: the gateway process must verify this password with the real one."""


@pytest.fixture
def operator():
    # Created before the browser starts: Playwright's sync API runs an event loop in this thread, where the ORM
    # refuses to run; the tests then make and read routes through the API.
    return get_user_model().objects.create_superuser(username=USERNAME, password=PASSWORD)


@pytest.fixture
def gateway(tmp_path, operator):
    running = start_gateway(tmp_path)
    yield running
    assert running.stop() == 0


@pytest.fixture
def page(gateway):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto(f"{gateway.admin_url}/admin/login/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#user-tools")  # only shown once logged in
        yield page
        browser.close()
    assert script_errors == []


def make_route(gateway, port: int = 9, **blocks: Any) -> int:
    doc = {"name": "echo", "external_path": "/echo", "methods": ["GET"],
           "backends": [{"host": "http://127.0.0.1", "port": port}], **blocks}
    status, _, body = http("POST", f"{gateway.admin_url}/api/routes/", json.dumps(doc).encode(),
                           {**CREDENTIALS, "Content-Type": "application/json"})
    assert status == 201, body
    return json.loads(body)["id"]


def stored(gateway, pk: int) -> dict[str, Any]:
    status, _, body = http("GET", f"{gateway.admin_url}/api/routes/{pk}/", headers=CREDENTIALS)
    assert status == 200, body
    return json.loads(body)


def open_route(page, gateway, pk: int) -> None:
    page.goto(f"{gateway.admin_url}/admin/routes/route/{pk}/change/")
    page.wait_for_selector(".te-editor[data-block=response_transformation]")


def section(page, block: str, key: str):
    return page.locator(f'.te-editor[data-block="{block}"] .te-section[data-section="{key}"]')


def add_row(page, block: str, key: str, **inputs: str):
    """Click the section's "Add" button and fill the new row: `action` is selected, the rest typed."""
    where = section(page, block, key)
    where.locator(".te-add").click()
    row = where.locator(".te-row").last
    if "action" in inputs:
        row.locator(".te-action").select_option(inputs.pop("action"))
    for name, value in inputs.items():
        row.locator(f':scope > .te-field[data-key="{name}"] input').fill(value)
    return row


def save(page) -> None:
    page.click("input[name=_continue]")
    page.wait_for_load_state()


def test_header_rules_added_as_rows_are_saved_as_the_blocks_json(page, gateway):
    pk = make_route(gateway)
    open_route(page, gateway, pk)
    add_row(page, REQUEST, "headers", action="set", name="X-Env", value="prod")
    add_row(page, RESPONSE, "headers", action="add", name="X-Gateway", value="rusta")
    save(page)

    page.wait_for_selector(".messagelist .success")
    route = stored(gateway, pk)
    assert route[REQUEST] == {"headers": [{"action": "set", "name": "X-Env", "value": "prod"}]}
    assert route[RESPONSE] == {"headers": [{"action": "add", "name": "X-Gateway", "value": "rusta"}]}


def test_a_catastrophic_pattern_is_shown_next_to_its_rows_pattern_and_nothing_is_saved(page, gateway):
    before = {"headers": [{"action": "set", "name": "X-Env", "value": "prod"}]}
    pk = make_route(gateway, request_transformation=before)
    open_route(page, gateway, pk)
    add_row(page, REQUEST, "headers", action="replace", name="User-Agent", pattern="(a+)+$", replacement="x")
    save(page)

    second = section(page, REQUEST, "headers").locator(".te-row").nth(1)
    assert second.locator('[data-key="pattern"] input').input_value() == "(a+)+$"
    assert "repetition inside another repetition" in second.locator('[data-key="pattern"] .errorlist').inner_text()
    assert section(page, REQUEST, "headers").locator(".te-row").first.locator(".errorlist").count() == 0
    assert "headers[1].pattern" in page.inner_text(".field-request_transformation > ul.errorlist")
    assert stored(gateway, pk)[REQUEST] == before


def test_stored_rules_are_shown_as_rows(page, gateway):
    pk = make_route(
        gateway,
        request_transformation={
            "headers": [{"action": "set", "name": "X-Env", "value": "prod"},
                        {"action": "rename", "name": "X-Old", "to": "X-New"}],
            "path": {"pattern": "^/echo/(.*)$", "replacement": "/$1"},
            "query_params": {"remove": ["debug"]},
        },
        response_transformation={
            "status_code_mappings": [{"from": 404, "to": 200, "condition": {
                "methods": ["GET"], "path": "^/health$", "headers": {"x-mode": "maint.*", "retry-after": True}}}],
        },
    )
    open_route(page, gateway, pk)

    rows = section(page, REQUEST, "headers").locator(".te-row")
    assert rows.count() == 2
    assert rows.nth(0).locator(".te-action").input_value() == "set"
    assert rows.nth(0).locator('[data-key="name"] input').input_value() == "X-Env"
    assert rows.nth(0).locator('[data-key="value"] input').input_value() == "prod"
    assert rows.nth(1).locator(".te-action").input_value() == "rename"
    assert rows.nth(1).locator('[data-key="to"] input').input_value() == "X-New"
    assert not rows.nth(1).locator('[data-key="value"]').is_visible()  # rename has no value
    path = section(page, REQUEST, "path").locator(".te-row")
    assert path.locator('[data-key="pattern"] input').input_value() == "^/echo/(.*)$"
    query = section(page, REQUEST, "query_params").locator(".te-row")
    assert query.locator(".te-action").input_value() == "remove"
    assert query.locator('[data-key="name"] input').input_value() == "debug"
    mapping = section(page, RESPONSE, "status_code_mappings").locator(".te-row")
    assert mapping.locator(':scope > [data-key="from"] input').input_value() == "404"
    assert mapping.locator(".te-methods input[value=GET]").is_checked()
    assert mapping.locator('.te-sublist[data-key="path"] input').input_value() == "^/health$"
    tests = mapping.locator(".te-header-condition")
    assert tests.nth(0).locator('[data-key="name"] input').input_value() == "x-mode"
    assert tests.nth(1).locator(".te-kind").input_value() == "present"
    assert not page.is_visible("textarea[name=request_transformation]")


def test_saving_without_touching_the_rows_keeps_the_blocks_as_written(page, gateway):
    request = {"query_params": {"remove": ["debug"]}, "_comment": "object form, kept as written"}
    pk = make_route(gateway, request_transformation=request)
    open_route(page, gateway, pk)
    save(page)

    page.wait_for_selector(".messagelist .success")
    assert stored(gateway, pk)[REQUEST] == request


def test_a_status_mapping_with_a_condition_is_saved_from_rows(page, gateway):
    pk = make_route(gateway)
    open_route(page, gateway, pk)
    row = add_row(page, RESPONSE, "status_code_mappings", **{"from": "404", "to": "200"})
    row.locator(".te-methods input[value=GET]").check()
    row.locator('.te-sublist[data-key="path"] .te-add-sub').click()
    row.locator('.te-sublist[data-key="path"] input').fill("^/echo$")
    row.locator('.te-sublist[data-key="headers"] .te-add-sub').click()
    row.locator('.te-header-condition [data-key="name"] input').fill("Retry-After")
    row.locator(".te-header-condition .te-kind").select_option("absent")
    save(page)

    page.wait_for_selector(".messagelist .success")
    assert stored(gateway, pk)[RESPONSE] == {"status_code_mappings": [{
        "from": 404, "to": 200, "condition": {"methods": ["GET"], "path": "^/echo$", "headers": {"Retry-After": False}},
    }]}


def test_edits_made_as_json_show_as_rows_after_switching_back(page, gateway):
    pk = make_route(gateway)
    open_route(page, gateway, pk)
    add_row(page, REQUEST, "headers", action="remove", name="X-Debug")
    toggle = page.locator(f'.te-editor[data-block="{REQUEST}"] .te-toggle')
    toggle.click()

    textarea = page.locator(f"textarea[name={REQUEST}]")
    assert json.loads(textarea.input_value()) == {"headers": [{"action": "remove", "name": "X-Debug"}]}
    textarea.fill('{"headers": [{"action": "remove", "name": "X-Trace"}], "max_body_bytes": 2048}')
    toggle.click()
    assert section(page, REQUEST, "headers").locator('[data-key="name"] input').input_value() == "X-Trace"
    assert section(page, REQUEST, "max_body_bytes").locator("input").input_value() == "2048"


def test_try_these_rules_runs_the_unsaved_rows_on_a_sample(page, gateway):
    stored_rule = {"action": "set", "name": "X-Env", "value": "stored"}
    pk = make_route(gateway, request_transformation={"headers": [stored_rule]})
    open_route(page, gateway, pk)
    section(page, REQUEST, "headers").locator('[data-key="value"] input').fill("edited")
    with page.context.expect_page() as opened:
        page.click(f'.te-editor[data-block="{REQUEST}"] .te-try')
    panel = opened.value
    panel.wait_for_selector("#try-request")

    assert "x-env: edited" in panel.inner_text("#try-request")
    assert stored(gateway, pk)[REQUEST]["headers"][0]["value"] == "stored"


def test_a_rule_added_as_a_row_is_applied_by_the_proxy(page, gateway):
    with UpstreamServer() as upstream:
        pk = make_route(gateway, port=upstream.port)
        open_route(page, gateway, pk)
        add_row(page, REQUEST, "headers", action="set", name="X-Env", value="prod")
        add_row(page, RESPONSE, "headers", action="add", name="X-Gateway", value="rusta")
        save(page)
        page.wait_for_selector(".messagelist .success")

        for _ in range(100):  # the gateway reloads its table every 0.2 s
            status, fields, body = http("GET", gateway.url + "/echo")
            headers = {name.lower(): value for name, value in fields.items()}
            if status == 200 and "x-gateway" in headers:
                break
            page.wait_for_timeout(50)
        assert headers.get("x-gateway") == "rusta"
        assert ["x-env", "prod"] in json.loads(body)["headers"]


def test_a_section_left_alone_keeps_its_object_form_when_another_is_changed(page, gateway):
    pk = make_route(gateway, request_transformation={"query_params": {"remove": ["debug"]}})
    open_route(page, gateway, pk)
    add_row(page, REQUEST, "headers", action="remove", name="X-Debug")
    save(page)

    page.wait_for_selector(".messagelist .success")
    assert stored(gateway, pk)[REQUEST] == {"query_params": {"remove": ["debug"]},
                                            "headers": [{"action": "remove", "name": "X-Debug"}]}


def test_a_bad_condition_pattern_is_shown_next_to_its_input(page, gateway):
    pk = make_route(gateway)
    open_route(page, gateway, pk)
    row = add_row(page, RESPONSE, "status_code_mappings", **{"from": "404", "to": "200"})
    row.locator('.te-sublist[data-key="path"] .te-add-sub').click()
    row.locator('.te-sublist[data-key="path"] input').fill("^/(a+)+$")
    save(page)

    mapping = section(page, RESPONSE, "status_code_mappings").locator(".te-row")
    error = mapping.locator('.te-sublist[data-key="path"] .te-field .errorlist')
    assert "repetition inside another repetition" in error.inner_text()
    assert stored(gateway, pk)[RESPONSE] is None
