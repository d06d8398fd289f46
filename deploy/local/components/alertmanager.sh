# Alert routing component: Alertmanager from Debian (`prometheus-alertmanager`) on
# http://127.0.0.1:$ECP_ALERTMANAGER_PORT, mailing every alert Prometheus sends to
# $ECP_ALERT_EMAIL through the local mail catcher (Mailpit, SMTP 127.0.0.1:$ECP_SMTP_PORT).
# Sourced after lib.sh. Defines install_alertmanager / start_alertmanager / stop_alertmanager.
# Config: deploy/local/observability/alertmanager.yml rendered into $ECP_DATA/alertmanager/.
# Single instance: its gossip (cluster) listener is switched off. Debian's service is never used.

ECP_ALERTMANAGER_DIR="$ECP_DATA/alertmanager"
: "${ECP_ALERT_EMAIL:=exploitation@ecp.localhost}"

_alertmanager_bin() { command -v prometheus-alertmanager 2>/dev/null || echo /usr/bin/prometheus-alertmanager; }

install_alertmanager() {
  apt_install prometheus-alertmanager
  [ -x "$(_alertmanager_bin)" ] || die "prometheus-alertmanager not found after install"
}

_alertmanager_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ECP_ALERTMANAGER_PORT/-/ready" >/dev/null
}

start_alertmanager() {
  [ -x "$(_alertmanager_bin)" ] || install_alertmanager
  mkdir -p "$ECP_ALERTMANAGER_DIR/data"
  render_template "$ECP_ROOT/deploy/local/observability/alertmanager.yml" "$ECP_ALERTMANAGER_DIR/alertmanager.yml" \
    ECP_SMTP_PORT ECP_ALERT_EMAIL
  if pid_alive alertmanager; then
    kill -HUP "$(cat "$ECP_RUN/alertmanager.pid")" 2>/dev/null || true
    log "alertmanager already running (pid $(cat "$ECP_RUN/alertmanager.pid")), configuration reloaded"
    return 0
  fi
  port_open "$ECP_ALERTMANAGER_PORT" && die "port $ECP_ALERTMANAGER_PORT already in use by another process"
  start_bg alertmanager "$(_alertmanager_bin)" \
    --config.file="$ECP_ALERTMANAGER_DIR/alertmanager.yml" \
    --storage.path="$ECP_ALERTMANAGER_DIR/data" \
    --web.listen-address="127.0.0.1:$ECP_ALERTMANAGER_PORT" \
    --cluster.listen-address=
  wait_for alertmanager 30 _alertmanager_ready
  log "alertmanager ready: http://127.0.0.1:$ECP_ALERTMANAGER_PORT (mails $ECP_ALERT_EMAIL through Mailpit)"
}

stop_alertmanager() {
  stop_pid alertmanager
}
