"""A value of the wrong JSON type is answered as such (`Must be a string, not a number.`), not with a message
that assumes the right type (`The path is required.`), in every API call that takes route documents."""
from __future__ import annotations

import pytest

from routes.models import Route

pytestmark = pytest.mark.django_db


def errors_of(api, doc, url="/api/routes/"):
    response = api.post(url, doc, format="json")
    assert response.status_code == 400, response.json()
    return response.json()["errors"]


def test_a_number_for_external_path_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(external_path=5))
    assert errors == {"external_path": ["Must be a string, not a number."]}


def test_a_string_for_methods_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(methods="GET"))
    assert errors == {"methods": ['Must be a list like ["GET"], not a string.']}


def test_a_string_for_backends_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(backends="http://10.0.0.5:8080"))
    assert errors == {"backends": ["Must be a list of objects, not a string."]}


def test_an_object_for_backends_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(backends={"host": "http://10.0.0.5", "port": 8080}))
    assert errors == {"backends": ["Must be a list of objects, not an object."]}


def test_a_string_for_a_backend_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(backends=["http://10.0.0.5"]))
    assert errors == {"backends[0]": ["Must be an object with host and port, not a string."]}


def test_a_string_for_a_backends_port_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(backends=[{"host": "http://10.0.0.5", "port": "8080"}]))
    assert errors == {"backends[0].port": ["Must be a whole number, not a string."]}


def test_a_number_for_a_backends_host_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(backends=[{"host": 10, "port": 8080}]))
    assert errors == {"backends[0].host": ["Must be a string, not a number."]}


def test_a_string_for_the_legacy_port_is_named_at_the_backend_it_makes(api):
    doc = {"host": "http://10.0.0.5", "port": "8080", "external_path": "/x", "methods": ["GET"]}
    assert errors_of(api, doc) == {"backends[0].port": ["Must be a whole number, not a string."]}


def test_legacy_host_and_port_beside_backends_are_not_checked(api, route_doc):
    # They are ignored when `backends` is there, as before.
    response = api.post("/api/routes/", route_doc(host=5, port="x"), format="json")
    assert response.status_code == 201, response.json()


def test_a_string_for_a_flag_is_named_as_a_wrong_type(api, route_doc):
    assert errors_of(api, route_doc(enabled="yes")) == {"enabled": ["Must be true or false, not a string."]}


def test_true_for_a_number_is_named_as_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(priority=True))
    assert errors == {"priority": ["Must be a whole number, not true or false."]}


def test_a_wrong_type_hides_the_messages_about_its_inside(api, route_doc):
    # Validation would also ask for `cors.origins`, inside a block that is not an object at all.
    assert errors_of(api, route_doc(cors=5)) == {"cors": ["Must be an object, not a number."]}


def test_other_fields_are_still_checked_beside_a_wrong_type(api, route_doc):
    errors = errors_of(api, route_doc(methods="GET", external_path="no-slash"))
    assert errors["methods"] == ['Must be a list like ["GET"], not a string.']
    assert errors["external_path"] == ["The path must start with '/'."]
    assert not Route.objects.exists()


def test_null_is_left_to_validation(api, route_doc):
    # Null means "the default" for some fields: only validation knows which.
    response = api.post("/api/routes/", route_doc(internal_path=None, match_host=None), format="json")
    assert response.status_code == 201, response.json()


def test_a_replacement_names_a_wrong_type(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    response = api.put(f"/api/routes/{route_id}/", route_doc(methods="GET"), format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"methods": ['Must be a list like ["GET"], not a string.']}}
    assert Route.objects.get().methods == ["GET", "PUT"]


def test_a_partial_change_names_a_wrong_type(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    response = api.patch(f"/api/routes/{route_id}/", {"external_path": 5}, format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"external_path": ["Must be a string, not a number."]}}


def test_the_dry_run_names_a_wrong_type(api, route_doc):
    response = api.post("/api/routes/validate/", route_doc(methods="GET"), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["valid"] is False
    assert body["errors"] == {"methods": ['Must be a list like ["GET"], not a string.']}


def test_an_import_names_a_wrong_type_by_its_routers_path(api, route_doc):
    routers = [route_doc(), route_doc(name="b", external_path="/b", backends="x")]
    response = api.post("/api/config/import/", {"routers": routers}, format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"routers[1].backends": ["Must be a list of objects, not a string."]}}
    assert not Route.objects.exists()
