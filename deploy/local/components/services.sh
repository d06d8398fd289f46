# The project's own services, each its own process: python -m services.<name>.main.
ECP_SERVICES=(identity household documents notifier enrolment web)
declare -A ECP_SERVICE_PORTS=([web]=8100 [identity]=8101 [household]=8102 [documents]=8103 [notifier]=8104 [enrolment]=8105)

service_healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"; }

start_service() {
  local name="$1"
  (cd "$ECP_ROOT" && start_bg "svc-$name" "$ECP_PYTHON" -m "services.$name.main")
  wait_for "svc-$name" 60 service_healthy "${ECP_SERVICE_PORTS[$name]}"
}

stop_service() { stop_pid "svc-$1"; }

start_services() {
  local name
  # Start all first, then wait: the processes boot in parallel.
  for name in "${ECP_SERVICES[@]}"; do
    (cd "$ECP_ROOT" && start_bg "svc-$name" "$ECP_PYTHON" -m "services.$name.main")
  done
  for name in "${ECP_SERVICES[@]}"; do
    wait_for "svc-$name" 60 service_healthy "${ECP_SERVICE_PORTS[$name]}"
  done
}

stop_services() {
  local name
  for name in "${ECP_SERVICES[@]}"; do stop_pid "svc-$name"; done
}

ready_through_gateway() {
  local name
  for name in "${ECP_SERVICES[@]}"; do
    [ "$name" = web ] && continue
    curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$ECP_GATEWAY_PORT/api/$name/readyz" || return 1
  done
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$ECP_GATEWAY_PORT/"
}

wait_services_ready_through_gateway() {
  local deadline=$((SECONDS + 90)) name
  until ready_through_gateway; do
    if [ $SECONDS -ge $deadline ]; then
      for name in "${ECP_SERVICES[@]}"; do
        [ "$name" = web ] && continue
        echo "$name: $(curl -s --max-time 3 "http://127.0.0.1:$ECP_GATEWAY_PORT/api/$name/readyz")" >&2
      done
      die "services not ready through the gateway after 90 s; see $ECP_LOGS/svc-*.log"
    fi
    sleep 0.5
  done
}

# `ecp start|stop identity` and friends.
for _svc in "${ECP_SERVICES[@]}"; do
  eval "start_$_svc() { start_service $_svc; }; stop_$_svc() { stop_service $_svc; }"
done
unset _svc
