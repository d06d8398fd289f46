# Metrics component: Prometheus from Debian (`prometheus`, with `promtool`) on
# http://127.0.0.1:$ECP_PROMETHEUS_PORT, scraping every service's /metrics and evaluating
# deploy/observability/alerts.yml; alerts go to Alertmanager (alertmanager.sh).
# Sourced after lib.sh. Defines install_prometheus / start_prometheus / stop_prometheus.
# Config: deploy/local/observability/prometheus.yml rendered into $ECP_DATA/prometheus/, with the
# service targets written from ECP_SERVICES (services.sh) into services.json: a service added to
# that list is scraped without another edit. Data (7 days): $ECP_DATA/prometheus/data. Debian's
# own prometheus service is never used.

ECP_PROMETHEUS_DIR="$ECP_DATA/prometheus"
# Seconds between scrapes and between rule evaluations: short locally so alerts show quickly.
: "${ECP_PROMETHEUS_INTERVAL:=5s}"

install_prometheus() {
  apt_install prometheus
  command -v promtool >/dev/null 2>&1 || die "promtool not found after installing prometheus"
}

_prometheus_targets() {
  local name first=1
  printf '['
  for name in "${ECP_SERVICES[@]}"; do
    [ -n "$(service_port "$name")" ] || continue
    [ $first -eq 1 ] || printf ','
    first=0
    printf '\n  {"targets": ["127.0.0.1:%s"], "labels": {"job": "%s"}}' "$(service_port "$name")" "$name"
  done
  printf '\n]\n'
}

_prometheus_render() {
  mkdir -p "$ECP_PROMETHEUS_DIR/data"
  _prometheus_targets >"$ECP_PROMETHEUS_DIR/services.json.tmp"
  mv "$ECP_PROMETHEUS_DIR/services.json.tmp" "$ECP_PROMETHEUS_DIR/services.json"
  render_template "$ECP_ROOT/deploy/local/observability/prometheus.yml" "$ECP_PROMETHEUS_DIR/prometheus.yml" \
    ECP_PROMETHEUS_INTERVAL ECP_ROOT ECP_ALERTMANAGER_PORT ECP_PROMETHEUS_DIR ECP_JAEGER_METRICS_PORT ECP_PROMETHEUS_PORT
  promtool check config --syntax-only "$ECP_PROMETHEUS_DIR/prometheus.yml" >>"$ECP_LOGS/prometheus.log" 2>&1 \
    || { tail -n 5 "$ECP_LOGS/prometheus.log" >&2; die "invalid Prometheus config $ECP_PROMETHEUS_DIR/prometheus.yml"; }
}

_prometheus_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ECP_PROMETHEUS_PORT/-/ready" >/dev/null
}

start_prometheus() {
  command -v prometheus >/dev/null 2>&1 || install_prometheus
  _prometheus_render
  if pid_alive prometheus; then
    # Running already: re-read the targets and rules (services or alerts may have changed).
    kill -HUP "$(cat "$ECP_RUN/prometheus.pid")" 2>/dev/null || true
    log "prometheus already running (pid $(cat "$ECP_RUN/prometheus.pid")), configuration reloaded"
    return 0
  fi
  port_open "$ECP_PROMETHEUS_PORT" && die "port $ECP_PROMETHEUS_PORT already in use by another process"
  start_bg prometheus prometheus \
    --config.file="$ECP_PROMETHEUS_DIR/prometheus.yml" \
    --storage.tsdb.path="$ECP_PROMETHEUS_DIR/data" \
    --storage.tsdb.retention.time=7d \
    --web.listen-address="127.0.0.1:$ECP_PROMETHEUS_PORT" \
    --web.enable-lifecycle
  wait_for prometheus 60 _prometheus_ready
  log "prometheus ready: http://127.0.0.1:$ECP_PROMETHEUS_PORT (alerts: /alerts)"
}

stop_prometheus() {
  stop_pid prometheus
}
