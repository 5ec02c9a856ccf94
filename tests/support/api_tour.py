"""A scripted tour of Rusta's management API over real HTTP: every endpoint family (routes, consumers and their
keys, certificates, settings, config, audit, backends' health, cache, metrics, plugins, advice, learned docs) read,
created, changed and deleted with the calls the API tests make. Used to drive traffic through a gateway to the
admin API (tests/metrics/test_apidocs_acceptance.py); anything else needing realistic API traffic can reuse it.

`ApiTour(base_url, token).run()` returns every call it made (method, path, status). It leaves the configuration as
it found it: what it creates it deletes, config imports and applies are dry runs, settings are written back as
read.
"""
from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import trustme

from routes.block_keys import BLOCKS, defaults
from routes.schema import BLOCK_NAMES
from routes.settings_blocks import SETTINGS_BLOCKS
from tests.support.block_samples import PROTOCOL, VALID
from tests.support.certificates import issued

Json = Any


def full_block(block: str) -> Any:
    """A block with every key that has a default, at its default (and what it needs to be valid)."""
    value = {**defaults(block), **VALID.get(block, {})}
    return [value] if BLOCKS[block].listed else value


@dataclass
class Call:
    method: str
    path: str
    status: int
    body: Json


class ApiTour:
    """See the module docstring. `prefix` names the tour's own objects, so two tours never collide."""

    def __init__(self, base_url: str, token: str, prefix: str = "tour") -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.prefix = prefix
        self.calls: list[Call] = []

    def call(self, method: str, path: str, body: Json = None, query: dict[str, Any] | None = None,
             expect: int | tuple[int, ...] = (200, 201, 204)) -> Json:
        """One API call with the token; the answer's JSON (None when empty). An unexpected status fails."""
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        answer = json.loads(raw) if raw.strip() else None
        self.calls.append(Call(method, path, status, answer))
        wanted = (expect,) if isinstance(expect, int) else expect
        assert status in wanted, f"{method} {path} answered {status}: {raw[:500]!r}"
        return answer

    def run(self) -> list[Call]:
        routes = self.routes() + self.blocks()
        self.call("GET", "/api/routes/")  # with every route the tour made
        self.config()
        for url in routes:
            self.call("DELETE", url)
        self.consumers()
        self.certificates()
        self.reads()
        self.verdicts()
        return self.calls

    # --- the families -----------------------------------------------------------------------------------------

    def route_document(self, name: str, port: int) -> dict[str, Any]:
        return {"name": name, "external_path": f"/{name}/{{item}}", "methods": ["GET", "POST"],
                "backends": [{"host": "http://127.0.0.1", "port": port, "weight": 2, "description": "first"},
                             {"host": "https://127.0.0.1", "port": port + 1000, "enabled": False,
                              "health_check_path": "/health", "tls": {"verify": False, "server_name": "backend"}}],
                "retry": {"max_retries": 1}, "connect_timeout_ms": 2000, "rate_limit": None}

    def routes(self) -> list[str]:
        """Routes made, checked, read, replaced, changed, their backends' health read and overridden, their
        learned docs read; answers the URLs of the routes it left (with the clone of the first, made from what
        the API answered for it)."""
        names = [f"{self.prefix}-{n}" for n in ("one", "two", "three")]
        self.call("GET", "/api/routes/", query={"limit": 2, "offset": 0})
        self.call("POST", "/api/routes/validate/", self.route_document(names[0], 9))
        self.call("POST", "/api/routes/validate/", {"name": names[0], "external_path": "no-slash"}, expect=400)
        self.call("POST", "/api/routes/", {"name": names[0], "external_path": "nope"}, expect=400)
        created = [self.call("POST", "/api/routes/", self.route_document(name, 9 + index), expect=201)
                   for index, name in enumerate(names)]
        urls = []
        for route in created:
            url = f"/api/routes/{route['id']}/"
            urls.append(url)
            read = self.call("GET", url)
            document = {key: value for key, value in read.items() if key not in ("id", "created_at", "updated_at")}
            self.call("PUT", url, {**document, "priority": 3})
            self.call("PATCH", url, {"priority": 5, "enabled": True})
            backend = read["backends"][0]["id"]
            self.call("GET", f"/api/backends/{backend}/health/")
            self.call("POST", f"/api/backends/{backend}/health/", {"override": "down"})
            self.call("GET", f"/api/backends/{backend}/health/")
            self.call("POST", f"/api/backends/{backend}/health/", {"override": None})
            self.call("GET", f"{url}learned-openapi/")
            self.call("GET", f"{url}learned-openapi/drift/")
            self.call("POST", "/api/cache/purge/", {"route": route["name"]}, expect=(200, 201, 202))
        clone = {key: value for key, value in self.call("GET", urls[0]).items() if key != "id"}
        clone.update(name=f"{self.prefix}-clone", external_path=f"/{self.prefix}-clone")
        clone["backends"] = [{k: v for k, v in backend.items() if k != "id"} for backend in clone["backends"]]
        self.call("POST", "/api/routes/validate/", clone)
        urls.append(f"/api/routes/{self.call('POST', '/api/routes/', clone, expect=201)['id']}/")
        return urls

    def blocks(self) -> list[str]:
        """A route per block, the block with every key it accepts: checked, created, read, replaced and changed;
        answers their URLs. AI routing's block once per strategy (each takes keys of its own)."""
        variants = [(block, full_block(block)) for block in BLOCK_NAMES if block != "ai_policy"]
        variants += [("ai_policy", {**full_block("ai_policy"), "strategy": strategy})
                     for strategy in ("content_analysis", "latency_prediction", "anomaly_detection")]
        urls = []
        for index, (block, value) in enumerate(variants):
            protocol, host = PROTOCOL.get(block, ("http", "http://127.0.0.1"))
            document = {"name": f"{self.prefix}-block-{index}", "external_path": f"/{self.prefix}-block-{index}",
                        "protocol": protocol, "methods": ["GET"], block: value,
                        "backends": [{"host": host, "port": 9}] if host else []}
            checked = self.call("POST", "/api/routes/validate/", document, expect=(200, 400))
            if not checked["valid"]:  # keys that do not apply with the others: left out
                refused = {path.split(".")[1] for path in checked["errors"] if path.startswith(block + ".")}
                document[block] = {key: item for key, item in value.items() if key not in refused}
                self.call("POST", "/api/routes/validate/", document)
            created = self.call("POST", "/api/routes/", document, expect=201)
            url = f"/api/routes/{created['id']}/"
            read = self.call("GET", url)
            self.call("PUT", url, {k: v for k, v in read.items() if k not in ("id", "created_at", "updated_at")})
            self.call("PATCH", url, {block: read[block]})
            urls.append(url)
        return urls

    def consumers(self) -> None:
        urls = []
        for index in range(3):
            name = f"{self.prefix}-consumer-{index}"
            consumer = self.call("POST", "/api/consumers/", {"name": name, "jwt_subjects": [f"{name}-sub"]},
                                 expect=201)
            self.call("POST", "/api/consumers/", {"name": name}, expect=400)  # taken
            url = f"/api/consumers/{consumer['id']}/"
            read = self.call("GET", url)
            self.call("PUT", url, {"name": read["name"], "jwt_subjects": read["jwt_subjects"], "enabled": True,
                                   "tags": ["tour"]})
            self.call("PATCH", url, {"tags": ["tour", "patched"]})
            self.call("GET", url + "keys/")
            key = self.call("POST", url + "keys/", {"ttl_s": 3600})
            self.call("POST", f"{url}keys/{key['id']}/rotate/", {"overlap_s": 60})
            self.call("GET", url + "keys/")
            self.call("DELETE", f"{url}keys/{key['id']}/")
            self.call("POST", url + "keys/", {})
            urls.append(url)
        self.call("GET", "/api/consumers/")
        for url in urls:
            self.call("DELETE", url)

    def certificates(self) -> None:
        ca = trustme.CA()
        urls = []
        for index in range(3):
            name = f"{self.prefix}-cert-{index}"
            host = f"{name}.example.com"
            pair = issued(ca, host, f"*.{host}")
            created = self.call("POST", "/api/certificates/", {"name": name, "certificate": pair.chain,
                                                               "key": pair.key}, expect=201)
            url = f"/api/certificates/{created['id']}/"
            self.call("GET", url)
            self.call("PUT", url, {"name": name, "certificate": pair.chain, "hosts": [host],
                                   "default": False})
            self.call("PATCH", url, {"hosts": [host, f"*.{host}"]})
            self.call("POST", "/api/certificates/", {"name": f"{name}-bad", "certificate": "not a PEM"},
                      expect=400)
            urls.append(url)
        self.call("GET", "/api/certificates/")
        for url in urls:
            self.call("DELETE", url)

    def config(self) -> None:
        self.call("GET", "/api/config/")
        self.call("GET", "/api/config/status/")
        self.call("POST", "/api/config/reload/")
        exported = self.call("GET", "/api/config/export/")
        self.call("POST", "/api/config/import/", exported, query={"dry_run": "true"})
        document = {"routes": {f"{self.prefix}-config": {
            "external_path": f"/{self.prefix}-config", "methods": ["GET"],
            "backends": [{"host": "http://127.0.0.1", "port": 9}]}}}
        self.call("POST", "/api/config/diff/", document)
        self.call("POST", "/api/config/apply/", document, query={"dry_run": "true"})
        self.call("POST", "/api/config/apply/", {"routes": {f"{self.prefix}-config": {"methods": "GET"}}},
                  query={"dry_run": "true"}, expect=400)
        settings = self.call("GET", "/api/config/settings/")
        # Every settings block with all its keys, then the settings as they were: the gateway serves the tour
        # meanwhile, so the gateway-wide rate limit stays far above what the tour sends.
        full = {block: full_block(block) for block in SETTINGS_BLOCKS if block not in ("ai", "plugins")}
        full["rate_limit"] = {**full["rate_limit"], "limit": 1_000_000}
        self.call("PATCH", "/api/config/settings/", full)
        self.call("PUT", "/api/config/settings/", self.call("GET", "/api/config/settings/"))
        self.call("PUT", "/api/config/settings/", settings)
        self.call("PATCH", "/api/config/settings/", {key: value for key, value in settings.items()
                                                     if key in ("ip_rules", "security_headers")})

    def verdicts(self) -> None:
        """The abuse verdicts the detection recorded (the caller stores some first: no API makes them): read, then
        lifted, twice."""
        listed = self.call("GET", "/api/verdicts/")
        self.call("GET", "/api/verdicts/", query={"active": "true", "kind": "burst"})
        for verdict in listed["results"][:3]:
            url = f"/api/verdicts/{verdict['id']}/"
            self.call("GET", url)
            self.call("POST", f"{url}lift/", {"reason": "a known load test"})
            self.call("POST", f"{url}lift/", {}, expect=409)

    def reads(self) -> None:
        self.call("GET", "/api/plugins/")
        entries = self.call("GET", "/api/audit/", query={"limit": 20})
        for entry in entries["results"][:5]:
            self.call("GET", f"/api/audit/{entry['id']}/")
        self.call("GET", "/api/metrics/")
        for name in ("requests", "latency", "errors", "bytes"):
            self.call("GET", "/api/metrics/history/", query={"name": name, "interval": "1m"})
        self.call("GET", "/api/metrics/history/", query={"name": "nope"}, expect=400)
        self.call("GET", "/api/metrics/consumers/")
        self.call("GET", "/api/metrics/llm/spend/", query={"interval": "1h"})
        self.call("GET", "/api/metrics/llm/spend/summary/")
        self.call("GET", "/api/advice/")
        self.call("GET", "/api/advice/forecast/")
        for index in range(3):  # ids shaped like the advice's own (rule:route:digest), of advice nobody offered
            digest = hashlib.sha256(f"{self.prefix}{index}".encode()).hexdigest()[:12]
            self.call("POST", f"/api/advice/timeout:{self.prefix}-one:{digest}/apply/", expect=(404, 409))

