"""Every error of the management API answers `{"errors": {path: [messages]}}`; the request as a whole is path ""."""
from __future__ import annotations

import pytest

from routes.models import Route

pytestmark = pytest.mark.django_db


def whole_request_errors(response) -> list[str]:
    """The messages about the request as a whole, after checking that they are all the body says."""
    body = response.json()
    assert set(body) == {"errors"}, body
    assert set(body["errors"]) == {""}, body
    return body["errors"][""]


def test_a_body_that_is_not_json_is_400_in_the_error_shape(api):
    response = api.post("/api/routes/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert whole_request_errors(response)[0].startswith("JSON parse error")
    assert not Route.objects.exists()


def test_truncated_json_is_400_in_the_error_shape(api):
    response = api.post("/api/routes/", '{"external_path": "/x", "methods": [', content_type="application/json")
    assert response.status_code == 400
    assert whole_request_errors(response)[0].startswith("JSON parse error")


def test_an_import_body_that_is_not_json_is_400_in_the_error_shape(api):
    response = api.post("/api/config/import/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert whole_request_errors(response)[0].startswith("JSON parse error")


def test_a_dry_run_of_a_body_that_is_not_json_is_400_in_the_error_shape(api):
    response = api.post("/api/routes/validate/", "[1,", content_type="application/json")
    assert response.status_code == 400
    assert whole_request_errors(response)[0].startswith("JSON parse error")


def test_an_unknown_route_is_404_in_the_error_shape(api):
    response = api.get("/api/routes/999/")
    assert response.status_code == 404
    assert whole_request_errors(response) == ["No Route matches the given query."]


def test_an_unknown_route_name_is_404_in_the_error_shape(api):
    response = api.delete("/api/routes/no-such-route/")
    assert response.status_code == 404
    assert whole_request_errors(response) == ["No Route matches the given query."]


def test_a_method_the_endpoint_does_not_take_is_405_in_the_error_shape(api):
    response = api.put("/api/routes/", {}, format="json")
    assert response.status_code == 405
    assert whole_request_errors(response) == ['Method "PUT" not allowed.']
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_a_form_body_is_415_in_the_error_shape(api):
    response = api.post("/api/routes/", "external_path=/x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert whole_request_errors(response) == [
        'Unsupported media type "application/x-www-form-urlencoded" in request.']


def test_an_accept_header_the_api_cannot_answer_is_406_in_the_error_shape(api):
    response = api.get("/api/routes/", HTTP_ACCEPT="text/csv")
    assert response.status_code == 406
    assert whole_request_errors(response) == ["Could not satisfy the request Accept header."]


def test_a_viewers_write_is_403_in_the_error_shape(viewer_api, route_doc):
    response = viewer_api.post("/api/routes/", route_doc(), format="json")
    assert response.status_code == 403
    assert whole_request_errors(response) == ["Changing the configuration needs the operator role."]
    assert not Route.objects.exists()


def test_a_document_that_is_not_an_object_is_400_in_the_error_shape(api):
    response = api.post("/api/routes/", [1, 2], format="json")
    assert response.status_code == 400
    assert whole_request_errors(response) == ["Send one route as a JSON object."]


def test_field_errors_keep_their_paths(api, route_doc):
    response = api.post("/api/routes/", route_doc(backends=[{"host": "http://ok", "port": 0}]), format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"backends[0].port": ["Must be a whole number from 1 to 65535."]}}
