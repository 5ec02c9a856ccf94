"""protocols.tracing.config: OTLP export switched on, shaped and refused by the standard OTEL_* variables."""
from __future__ import annotations

import logging

import pytest

from protocols.tracing.config import DEFAULT_ENDPOINT, OtlpConfig, OtlpConfigError

BASE = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


def config(**env: str) -> OtlpConfig:
    found = OtlpConfig.from_env({**BASE, **env})
    assert found is not None
    return found


def test_export_is_off_without_any_variable():
    assert OtlpConfig.from_env({}) is None


def test_the_endpoint_gets_the_traces_path_appended():
    assert config().endpoint == "http://collector:4318/v1/traces"
    assert config(OTEL_EXPORTER_OTLP_ENDPOINT="https://collector/otlp/").endpoint == "https://collector/otlp/v1/traces"


def test_the_traces_endpoint_is_used_as_is_and_wins():
    found = config(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://other:9999/custom")
    assert found.endpoint == "http://other:9999/custom"
    assert OtlpConfig.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other/x"}).endpoint == "http://other/x"


def test_asking_for_otlp_without_an_endpoint_uses_the_standard_one():
    assert OtlpConfig.from_env({"OTEL_TRACES_EXPORTER": "otlp"}).endpoint == DEFAULT_ENDPOINT


@pytest.mark.parametrize("env", [
    {"OTEL_SDK_DISABLED": "true"},
    {"OTEL_SDK_DISABLED": "TRUE"},
    {"OTEL_TRACES_EXPORTER": "none"},
])
def test_export_can_be_switched_off_with_an_endpoint_set(env):
    assert OtlpConfig.from_env({**BASE, **env}) is None


def test_sdk_disabled_false_or_empty_keeps_export_on():
    assert config(OTEL_SDK_DISABLED="false") is not None
    assert config(OTEL_SDK_DISABLED="") is not None


def test_headers_are_parsed_and_url_decoded():
    found = config(OTEL_EXPORTER_OTLP_HEADERS="api-key=abc%3D%3D, x-tenant = team%20a,,")
    assert found.headers == (("api-key", "abc=="), ("x-tenant", "team a"))


def test_trace_headers_replace_the_general_ones():
    found = config(OTEL_EXPORTER_OTLP_HEADERS="a=1", OTEL_EXPORTER_OTLP_TRACES_HEADERS="b=2")
    assert found.headers == (("b", "2"),)


def test_timeouts_are_milliseconds_and_the_trace_one_wins():
    assert config().timeout_s == 10.0
    assert config(OTEL_EXPORTER_OTLP_TIMEOUT="2500").timeout_s == 2.5
    assert config(OTEL_EXPORTER_OTLP_TIMEOUT="2500", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="100").timeout_s == 0.1


def test_http_json_is_spoken_quietly(caplog):
    assert config(OTEL_EXPORTER_OTLP_PROTOCOL="http/json") is not None
    assert not caplog.records


def test_http_protobuf_is_warned_about_once_and_exported_as_json(caplog):
    with caplog.at_level(logging.WARNING):
        found = config(OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    assert found is not None
    (record,) = caplog.records
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in record.getMessage()
    assert "JSON" in record.getMessage()


def test_grpc_turns_export_off_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert OtlpConfig.from_env({**BASE, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}) is None
    (record,) = caplog.records
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc" in record.getMessage()
    assert "OFF" in record.getMessage()


def test_the_service_name_defaults_to_rusta_and_can_be_set_two_ways():
    assert config().resource == (("service.name", "rusta"),)
    assert config(OTEL_RESOURCE_ATTRIBUTES="service.name=edge").resource == (("service.name", "edge"),)
    found = config(OTEL_SERVICE_NAME="gw", OTEL_RESOURCE_ATTRIBUTES="service.name=edge,deployment.environment=prod")
    assert found.resource == (("service.name", "gw"), ("deployment.environment", "prod"))


def test_the_batch_processor_limits_are_read():
    found = config(OTEL_BSP_MAX_QUEUE_SIZE="100", OTEL_BSP_SCHEDULE_DELAY="250", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10")
    assert (found.max_queue_size, found.schedule_delay_s, found.max_export_batch_size) == (100, 0.25, 10)
    default = config()
    assert (default.max_queue_size, default.schedule_delay_s, default.max_export_batch_size) == (2048, 5.0, 512)


@pytest.mark.parametrize("sampler", ["always_on", "always_off", "parentbased_always_on", "parentbased_always_off"])
def test_supported_samplers_are_kept(sampler):
    assert config(OTEL_TRACES_SAMPLER=sampler).sampler == sampler


def test_the_ratio_samplers_read_their_argument():
    found = config(OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0.25")
    assert (found.sampler, found.ratio) == ("traceidratio", 0.25)
    assert config(OTEL_TRACES_SAMPLER="parentbased_traceidratio").ratio == 1.0


def test_an_unsupported_sampler_is_warned_about_and_the_default_used(caplog):
    with caplog.at_level(logging.WARNING):
        found = config(OTEL_TRACES_SAMPLER="jaeger_remote")
    assert found.sampler == "parentbased_always_on"
    assert "OTEL_TRACES_SAMPLER=jaeger_remote" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("env", "named"), [
    ({"OTEL_SDK_DISABLED": "yes please"}, "OTEL_SDK_DISABLED"),
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:port"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "api-key"}, "OTEL_EXPORTER_OTLP_HEADERS"),
    ({"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "bad name=1"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1%0d%0aInjected: yes"}, "OTEL_EXPORTER_OTLP_HEADERS"),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "ten seconds"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
    ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0"}, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/xml"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "team"}, "OTEL_RESOURCE_ATTRIBUTES"),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
    ({"OTEL_BSP_SCHEDULE_DELAY": "-5"}, "OTEL_BSP_SCHEDULE_DELAY"),
    ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "many"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "20"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG"),
])
def test_a_value_rusta_cannot_use_is_refused_naming_the_variable(env, named):
    with pytest.raises(OtlpConfigError, match=named):
        OtlpConfig.from_env({**BASE, **env})
