# Tracing backend component: Jaeger v2 (Go module github.com/jaegertracing/jaeger, cmd/jaeger
# $JAEGER_VERSION), receiving OTLP/HTTP on 127.0.0.1:$ECP_OTLP_HTTP_PORT from the services and
# serving its UI and query API on http://127.0.0.1:$ECP_JAEGER_UI_PORT.
# Sourced after lib.sh. Defines install_jaeger / start_jaeger / stop_jaeger.
# `go install module@version` refuses this module (its go.mod has a replace directive), so the
# module is downloaded through the Go module proxy and built from a writable copy, once, into
# $ECP_LOCAL/bin (about 10 minutes cold on 2 cores; Go's build cache makes later builds quick).
# Limitation, as with Mailpit: the module ships without the UI's JavaScript bundle (built by npm
# in Jaeger's release), so the page on :$ECP_JAEGER_UI_PORT is a placeholder; the HTTP API that
# the UI uses (/api/services, /api/traces?service=..., /api/traces/<trace id>) is complete.
# Config: deploy/local/observability/jaeger.yaml (ports from the environment). Traces live in
# memory only: a restart forgets them.

JAEGER_VERSION="${JAEGER_VERSION:-v1.75.0}"
JAEGER_BIN="$ECP_LOCAL/bin/jaeger"
JAEGER_CONFIG="$ECP_ROOT/deploy/local/observability/jaeger.yaml"
: "${ECP_JAEGER_MAX_TRACES:=20000}"

# `jaeger version` prints {"gitVersion":"v1.75.0",...} thanks to the -X ldflag below.
_jaeger_version_ok() {
  [ -x "$JAEGER_BIN" ] || return 1
  "$JAEGER_BIN" version 2>/dev/null | grep -q "\"gitVersion\": *\"$JAEGER_VERSION\""
}

install_jaeger() {
  _jaeger_version_ok && return 0
  local module="github.com/jaegertracing/jaeger"
  log "building Jaeger $JAEGER_VERSION from the Go module proxy (about 10 minutes cold)"
  go_build_module "$module" "$JAEGER_VERSION" ./cmd/jaeger "$JAEGER_BIN" \
    "-s -w -X $module/internal/version.latestVersion=$JAEGER_VERSION" "$ECP_LOGS/jaeger-build.log"
  _jaeger_version_ok || die "Jaeger built but '$JAEGER_BIN version' does not report $JAEGER_VERSION"
}

_jaeger_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ECP_JAEGER_UI_PORT/api/services" >/dev/null \
    && port_open "$ECP_OTLP_HTTP_PORT"
}

start_jaeger() {
  [ -x "$JAEGER_BIN" ] || install_jaeger
  if ! pid_alive jaeger; then
    local port
    for port in "$ECP_OTLP_HTTP_PORT" "$ECP_JAEGER_UI_PORT" "$ECP_JAEGER_GRPC_PORT" "$ECP_JAEGER_HEALTH_PORT" "$ECP_JAEGER_METRICS_PORT"; do
      port_open "$port" && die "port $port already in use by another process (Jaeger needs it)"
    done
  fi
  start_bg jaeger env ECP_OTLP_HTTP_PORT="$ECP_OTLP_HTTP_PORT" ECP_JAEGER_UI_PORT="$ECP_JAEGER_UI_PORT" \
    ECP_JAEGER_GRPC_PORT="$ECP_JAEGER_GRPC_PORT" ECP_JAEGER_HEALTH_PORT="$ECP_JAEGER_HEALTH_PORT" \
    ECP_JAEGER_METRICS_PORT="$ECP_JAEGER_METRICS_PORT" ECP_JAEGER_MAX_TRACES="$ECP_JAEGER_MAX_TRACES" \
    "$JAEGER_BIN" --config "file:$JAEGER_CONFIG"
  wait_for jaeger 60 _jaeger_ready
  log "jaeger ready: OTLP http://127.0.0.1:$ECP_OTLP_HTTP_PORT, UI/API http://127.0.0.1:$ECP_JAEGER_UI_PORT"
}

stop_jaeger() {
  stop_pid jaeger
}
