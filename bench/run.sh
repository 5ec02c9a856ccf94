#!/usr/bin/env bash
# Entry point of `make bench`: installs what the bench needs when it is missing, then runs bench/harness.py.
# Arguments are passed on to the harness (try: bash bench/run.sh --help, --only rusta --seconds 5, or --groups tls,h2).
# Every process the bench starts listens on 127.0.0.1 only, every load run is bounded by wrk -d, and all of
# them are stopped on exit, whatever the exit.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=.venv

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v dnsperf >/dev/null 2>&1 || need_apt+=(dnsperf)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)  # the JWT + Redis rate-limit scenario
[[ -x /usr/bin/caddy ]] || need_apt+=(caddy)  # the peer of issue 17's runs (Debian's build, run on one Go thread)
command -v h2load >/dev/null 2>&1 || need_apt+=(nghttp2-client)  # the HTTP/2 runs
if ((${#need_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bench: missing ${need_apt[*]}; install them (apt-get install -y ${need_apt[*]}) or run as root" >&2
        exit 1
    fi
    echo "bench: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The Debian packages start a system nginx (port 80) and redis-server (6379); the bench runs its own
    # instances and needs no other.
    if [[ " ${need_apt[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
    if [[ " ${need_apt[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
    if [[ " ${need_apt[*]} " == *" caddy "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now caddy >/dev/null 2>&1 || true
    fi
fi

if [[ ! -x $VENV/bin/python ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 || { echo "bench: Rusta needs $PYTHON" >&2; exit 1; }
    echo "bench: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import django, uvicorn, uvloop, httptools' >/dev/null 2>&1; then
    echo "bench: installing requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
fi

harness_pid=""
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    # The harness stops its own servers; this covers the case where it is still running when we leave.
    if [[ -n $harness_pid ]] && kill -0 "$harness_pid" 2>/dev/null; then
        kill -TERM "$harness_pid" 2>/dev/null || true
        wait "$harness_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# In the background so that the traps above run at once on a signal instead of after the harness ends.
"$VENV/bin/python" -m bench.harness "$@" &
harness_pid=$!
status=0
wait "$harness_pid" || status=$?
harness_pid=""

# The DNS forwarder against dnsperf, the upstream alone as its reference (skipped with --only or --groups).
subset=""
[[ " $* " == *" --only "* || " $* " == *" --groups "* || " $* " == *" --only="* || " $* " == *" --groups="* ]] && subset=1
if [[ -z $subset ]]; then
    "$VENV/bin/python" -m bench.dns_bench --seconds 10 &
    harness_pid=$!
    wait "$harness_pid" || status=$?
    harness_pid=""
fi
# AI routing's content_analysis against a 300 ms stub LLM: accuracy, LLM call rate, and the p99 it adds.
if [[ -z $subset ]]; then
    "$VENV/bin/python" -m bench.ai_bench || status=$?
fi
# What metrics recording adds to each request (protocols.recorder, traceparent), against the 5% budget.
"$VENV/bin/python" -m bench.recorder_bench || status=$?
exit "$status"
