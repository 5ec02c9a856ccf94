"""The transformation rows editor's server side: the widget that carries it, and the form's errors by path."""
from __future__ import annotations

import json

import pytest
from django import forms
from django.urls import reverse

from routes.models import Route
from routes.widgets import TransformationEditorWidget, split_message, transformation_errors
from tests.routes.conftest import PASSWORD
from tests.routes.test_admin import TWO_BACKENDS, route_form

ADD_URL = reverse("admin:routes_route_add")
REQUEST_KEYS = frozenset({"headers", "path", "query_params", "body", "max_body_bytes"})


class BlocksForm(forms.Form):
    request_transformation = forms.CharField(required=False)
    response_transformation = forms.CharField(required=False)


def form_with(**errors: list[str]) -> BlocksForm:
    form = BlocksForm(data={})
    assert form.is_valid()
    for field, messages in errors.items():
        for message in messages:
            form.add_error(field, message)
    return form


def test_a_rule_error_is_exposed_under_its_path_inside_the_block():
    form = form_with(request_transformation=["headers[2].pattern: Not a regular expression."])
    assert transformation_errors(form) == {"request_transformation": {"headers[2].pattern": ["Not a regular "
                                                                                            "expression."]}}


def test_a_condition_error_keeps_its_whole_path():
    form = form_with(response_transformation=[
        "status_code_mappings[0].condition.headers.x-mode: Bad pattern: it backtracks."])
    assert transformation_errors(form) == {"response_transformation": {
        "status_code_mappings[0].condition.headers.x-mode": ["Bad pattern: it backtracks."]}}


def test_a_message_about_the_whole_block_is_under_the_empty_path():
    form = form_with(request_transformation=["Enter a valid JSON."])
    assert transformation_errors(form) == {"request_transformation": {"": ["Enter a valid JSON."]}}


def test_a_colon_in_a_block_level_message_is_not_taken_for_a_path():
    assert split_message("Must be one of: add, set.", REQUEST_KEYS) == ("", "Must be one of: add, set.")
    assert split_message("Note: not a key of the block.", REQUEST_KEYS) == ("", "Note: not a key of the block.")


def test_two_messages_on_one_path_are_both_kept():
    form = form_with(request_transformation=["headers[0].name: First.", "headers[0].name: Second."])
    assert transformation_errors(form)["request_transformation"]["headers[0].name"] == ["First.", "Second."]


def test_other_fields_and_unbound_forms_have_no_transformation_errors():
    form = form_with(response_transformation=[])
    form.add_error(None, "Something else.")
    assert transformation_errors(form) == {}
    assert transformation_errors(BlocksForm()) == {}


def test_the_widget_marks_its_textarea_for_the_editor_and_brings_its_script():
    widget = TransformationEditorWidget("request_transformation")
    html = widget.render("request_transformation", '{"headers": []}')
    assert 'data-transform-block="request_transformation"' in html
    assert "routes/transform_editor.js" in str(widget.media)


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


@pytest.mark.django_db
def test_the_route_page_carries_the_errors_by_path_as_json(admin_client):
    bad = json.dumps({"headers": [{"action": "replace", "name": "User-Agent", "pattern": "(a+)+$"}]})
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, request_transformation=bad))

    assert not Route.objects.exists()
    page = response.content.decode()
    start = page.index('<script id="rusta-transform-errors" type="application/json">')
    data = json.loads(page[page.index(">", start) + 1:page.index("</script>", start)])
    assert list(data["request_transformation"]) == ["headers[0].pattern"]
    assert "repetition" in data["request_transformation"]["headers[0].pattern"][0]


@pytest.mark.django_db
def test_the_route_page_loads_the_editor_without_errors_when_there_are_none(admin_client):
    response = admin_client.get(ADD_URL)
    page = response.content.decode()
    assert "routes/transform_editor.js" in page
    assert 'data-transform-block="response_transformation"' in page
    assert '<script id="rusta-transform-errors" type="application/json">{}</script>' in page
