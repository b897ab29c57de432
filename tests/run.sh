#!/usr/bin/env bash
# Every test of the project, from a fresh clone: formatting, lints, unit tests of the guest
# core (native), host tests, end-to-end tests with the real .wasm, and the demo itself.
# One cargo profile (release) throughout, so the host compiles once.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  rustup target add wasm32-wasip2
fi

# The delivery tests run a real MQTT broker.
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  echo "== installing mosquitto (MQTT broker for the delivery tests)"
  as_root=""
  if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq mosquitto >/dev/null
fi

# The benchmark's backlog row publishes with mosquitto_pub and drains with mosquitto_sub.
if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null; then
  echo "== installing mosquitto-clients (the broker's own clients, for the benchmark's backlog row)"
  as_root=""
  if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq mosquitto-clients >/dev/null
fi

# The broker-security tests build a mosquitto auth plugin (service account tokens) against
# mosquitto's plugin headers (mosquitto-dev) and the client header they include
# (mosquitto.h, from libmosquitto-dev).
if [ ! -f /usr/include/mosquitto_broker.h ] || [ ! -f /usr/include/mosquitto.h ]; then
  echo "== installing mosquitto-dev, libmosquitto-dev (plugin headers for the token-authentication tests)"
  as_root=""
  if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq mosquitto-dev libmosquitto-dev >/dev/null
fi

# One test reads the local endpoint with Microsoft's Python Kusto client, in a virtual
# environment it makes under target/.
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  echo "== installing python3 with venv (for the official Kusto client test)"
  as_root=""
  if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq python3 python3-venv >/dev/null
fi

# The page test opens the local endpoint's page in Debian's Chromium.
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (the local endpoint's page in a headless browser)"
  as_root=""
  if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium >/dev/null
fi

echo "== format"
cargo fmt --all --check

echo "== lints"
cargo clippy --release --workspace --all-targets --locked -- -D warnings
cargo clippy --release --target wasm32-wasip2 -p adx-destination -p wasi-outbound -p http-probe --locked -- -D warnings

echo "== tests"
cargo test --release --workspace --locked

echo "== benchmark, short"
# With the official Python client the tests installed (tests/all/kql_and_mappings.rs), the
# short benchmark compares the whole host with it too.
sdk_python=target/official-kusto-ingest/bin/python
if [ -x "$sdk_python" ]; then
  cargo run --release --locked -p dataflow-host -- bench --quick --python "$sdk_python"
else
  cargo run --release --locked -p dataflow-host -- bench --quick
fi

echo "== demo"
cargo run --release --locked -p dataflow-host -- demo --messages 5000 --rows 3
