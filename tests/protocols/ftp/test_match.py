"""Finding the FTP route for a request: the route's path is a prefix of the request's."""
from __future__ import annotations

from protocols.prefixes import PrefixMatch, match_prefix_route
from protocols.table import BackendSpec, RouteSpec, RouteTable


def spec(route_id: int, path: str, protocol: str = "ftp", host: str = "") -> RouteSpec:
    backend = BackendSpec(id=route_id, scheme="ftp", host="127.0.0.1", port=21)
    return RouteSpec(id=route_id, name=f"r{route_id}", external_path=path, methods=("GET",), backends=(backend,),
                     protocol=protocol, match_host=host)


def match(table: RouteTable, host: str, path: str) -> PrefixMatch | None:
    """What the proxy does with the table's plan (TablePlan.ftp_routes: the ftp routes in rank order)."""
    return match_prefix_route(tuple(r for r in table.routes if r.protocol == "ftp"), host, path)


def test_the_longest_prefix_wins() -> None:
    table = RouteTable([spec(1, "/ftp"), spec(2, "/ftp/special")])
    found = match(table, "", "/ftp/special/list")
    assert found is not None and (found.route.id, found.subpath) == (2, "/list")
    found = match(table, "", "/ftp/list")
    assert found is not None and (found.route.id, found.subpath) == (1, "/list")


def test_parameters_are_captured() -> None:
    found = match(RouteTable([spec(1, "/files/{tenant}")]), "", "/files/acme/download/a.txt")
    assert found is not None and found.params == {"tenant": "acme"} and found.subpath == "/download/a.txt"


def test_a_static_route_beats_a_parameterised_one_of_the_same_length() -> None:
    table = RouteTable([spec(1, "/files/{tenant}"), spec(2, "/files/shared")])
    found = match(table, "", "/files/shared/list")
    assert found is not None and found.route.id == 2


def test_segments_must_match_whole() -> None:
    assert match(RouteTable([spec(1, "/ftp")]), "", "/ftpx/list") is None


def test_only_ftp_routes_are_considered() -> None:
    assert match(RouteTable([spec(1, "/ftp", protocol="http")]), "", "/ftp/list") is None


def test_the_host_must_match() -> None:
    table = RouteTable([spec(1, "/ftp", host="files.example")])
    assert match(table, "other.example", "/ftp/list") is None
    assert match(table, "files.example", "/ftp/list") is not None
