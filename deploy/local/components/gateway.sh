# API gateway component: nginx from Debian on 127.0.0.1:$ECP_GATEWAY_PORT.
# Sourced after lib.sh. Defines install_gateway / start_gateway / stop_gateway (and
# reload_gateway). The template deploy/local/gateway/nginx.conf is rendered into
# $ECP_DATA/gateway/nginx.conf; nginx runs in the foreground with that directory as its prefix,
# so its pid file and temp files stay there. Access log (JSON): $ECP_LOGS/gateway-access.log;
# error log: stderr, i.e. $ECP_LOGS/gateway.log. Debian's nginx service is never used.

# Upstream ports (override from the environment if a service moves).
# Rate limit of /api/identity/auth/ per client address: sustained rate and burst (nodelay).
: "${ECP_GATEWAY_AUTH_RATE:=10r/s}"
: "${ECP_GATEWAY_AUTH_BURST:=20}"

GATEWAY_DIR="$ECP_DATA/gateway"
GATEWAY_TEMPLATE="$ECP_ROOT/deploy/local/gateway/nginx.conf"

install_gateway() {
  apt_install nginx
  [ -x "$(_gateway_nginx)" ] || die "nginx not found after install"
}

_gateway_nginx() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

_gateway_render() {
  mkdir -p "$GATEWAY_DIR/tmp"/{client_body,proxy,fastcgi,uwsgi,scgi}
  local ECP_NGINX_USER_DIRECTIVE="# (not root: workers run as the current user)" ECP_NGINX_WORKERS=2
  local ECP_GATEWAY_DIR="$GATEWAY_DIR"
  # As root the workers would switch to www-data and could not use our temp dirs: keep root.
  [ "$(id -u)" -eq 0 ] && ECP_NGINX_USER_DIRECTIVE="user root;"
  render_template "$GATEWAY_TEMPLATE" "$GATEWAY_DIR/nginx.conf" \
    ECP_NGINX_USER_DIRECTIVE ECP_NGINX_WORKERS ECP_GATEWAY_DIR ECP_LOGS ECP_GATEWAY_PORT \
    ECP_WEB_PORT ECP_IDENTITY_PORT ECP_HOUSEHOLD_PORT ECP_DOCUMENTS_PORT \
    ECP_NOTIFIER_PORT ECP_ENROLMENT_PORT ECP_INSIGHTS_PORT ECP_GATEWAY_AUTH_RATE ECP_GATEWAY_AUTH_BURST
  add_replica_upstreams "$GATEWAY_DIR/nginx.conf"  # services.sh: the cluster mode's second replicas
  "$(_gateway_nginx)" -t -q -p "$GATEWAY_DIR" -e stderr -c "$GATEWAY_DIR/nginx.conf" \
    -g 'daemon off;' >>"$ECP_LOGS/gateway.log" 2>&1 \
    || { tail -n 5 "$ECP_LOGS/gateway.log" >&2; die "invalid nginx config $GATEWAY_DIR/nginx.conf"; }
}

_gateway_ready() {
  [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$ECP_GATEWAY_PORT/nginx-health")" = 200 ]
}

start_gateway() {
  [ -x "$(_gateway_nginx)" ] || install_gateway
  if pid_alive gateway; then
    log "gateway already running (pid $(cat "$ECP_RUN/gateway.pid"))"
    return 0
  fi
  port_open "$ECP_GATEWAY_PORT" && die "port $ECP_GATEWAY_PORT already in use by another process"
  _gateway_render
  start_bg gateway "$(_gateway_nginx)" -p "$GATEWAY_DIR" -e stderr -c "$GATEWAY_DIR/nginx.conf" \
    -g 'daemon off;'
  wait_for gateway 30 _gateway_ready
  log "gateway ready on http://127.0.0.1:$ECP_GATEWAY_PORT"
}

# reload_gateway: re-renders the template and makes the running nginx load it (SIGHUP).
reload_gateway() {
  pid_alive gateway || { start_gateway; return; }
  _gateway_render
  kill -HUP "$(cat "$ECP_RUN/gateway.pid")"
}

stop_gateway() {
  stop_pid gateway
  rm -f "$GATEWAY_DIR/nginx.pid"
}
