# The project's own services, each its own process: python -m services.<name>.main.
ECP_SERVICES=(identity household documents notifier enrolment insights web)

# The port of a service comes from lib.sh (ECP_<NAME>_PORT), the one place the runner sets ports.
service_port() { local var="ECP_${1^^}_PORT"; echo "${!var}"; }

service_healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"; }

# Cluster mode (`make up KAFKA_NODES=3`): two replicas of every service. The second, pid name
# "svc-<name>-2", listens on the first's port + 100 behind the same gateway upstream
# (add_replica_upstreams); outbox relay leases and Kafka consumer groups share the work.
# service_replicas [NAME]: insights stays one process (its faust tables are in memory and its API
# reads them: a second worker would hold half the partitions; docs/services/insights.md).
service_replicas() { if [ "${ECP_KAFKA_NODES:-1}" = 3 ] && [ "${1:-}" != insights ]; then echo 2; else echo 1; fi; }
_replica_name() { if [ "$2" = 1 ]; then echo "svc-$1"; else echo "svc-$1-$2"; fi; }
_replica_port() { echo $(($(service_port "$1") + ($2 - 1) * 100)); }

# add_replica_upstreams NGINX_CONF: in cluster mode, each upstream also names the second replica.
add_replica_upstreams() {
  [ "$(service_replicas)" = 2 ] || return 0
  local name port
  for name in "${ECP_SERVICES[@]}"; do
    [ "$(service_replicas "$name")" = 2 ] || continue
    port="$(service_port "$name")"
    sed -i "s|server 127.0.0.1:$port;|server 127.0.0.1:$port; server 127.0.0.1:$(_replica_port "$name" 2);|" "$1"
  done
}

# Every local browser and test reaches identity as 127.0.0.1, so the per-ADDRESS limits (20
# registrations an hour, 50 logins in 15 minutes in production) would count a developer's whole
# test runs as one visitor. Locally they are raised (override with these variables); the
# per-account limits, which the tests exercise, stay as in production.
: "${ECP_LOCAL_REGISTRATIONS_PER_ADDRESS_PER_HOUR:=2000}"
: "${ECP_LOCAL_LOGIN_ATTEMPTS_PER_ADDRESS:=2000}"

# _kafka_principal_env NAME: the service's own principal on the broker (kafka.sh generates its
# password), once the broker authenticates; the web pages never talk to Kafka. In cluster mode
# the topics a service creates itself (faust's changelogs) are replicated like the others.
_kafka_principal_env() {
  [ "${ECP_KAFKA_NODES:-1}" = 3 ] && echo "ECP_TOPICS_REPLICATION_FACTOR=3"
  [ "$1" != web ] && [ -s "$ECP_KAFKA_SECRETS/ecp-broker.password" ] || return 0
  echo "ECP_KAFKA_USERNAME=$1"
  echo "ECP_KAFKA_PASSWORD=$(kafka_secret "$1")"
}

# launch_service NAME [REPLICA]: starts one replica (1 by default) without waiting.
launch_service() {
  local name="$1" replica="${2:-1}" kafka_env
  mapfile -t kafka_env < <(_kafka_principal_env "$name")
  (cd "$ECP_ROOT" && start_bg "$(_replica_name "$name" "$replica")" env ECP_HTTP_PORT="$(_replica_port "$name" "$replica")" "${kafka_env[@]}" \
    ECP_IDENTITY_URL="http://127.0.0.1:$ECP_IDENTITY_PORT" ECP_HOUSEHOLD_URL="http://127.0.0.1:$ECP_HOUSEHOLD_PORT" \
    ECP_DOCUMENTS_URL="http://127.0.0.1:$ECP_DOCUMENTS_PORT" ECP_NOTIFIER_URL="http://127.0.0.1:$ECP_NOTIFIER_PORT" \
    ECP_ENROLMENT_URL="http://127.0.0.1:$ECP_ENROLMENT_PORT" ECP_INSIGHTS_URL="http://127.0.0.1:$ECP_INSIGHTS_PORT" ECP_MONGO_URL="mongodb://127.0.0.1:$ECP_MONGO_PORT/?directConnection=true" \
    ECP_KAFKA_BOOTSTRAP="$(kafka_bootstrap)" ECP_S3_ENDPOINT="127.0.0.1:$ECP_S3_PORT" \
    ECP_CLAMD_PORT="$ECP_CLAMD_PORT" ECP_SMTP_PORT="$ECP_SMTP_PORT" \
    ECP_PUBLIC_BASE_URL="http://127.0.0.1:$ECP_GATEWAY_PORT" \
    ECP_PDFJS_DIR="$PDFJS_DIR" \
    ECP_JWKS_URL="http://127.0.0.1:$ECP_IDENTITY_PORT/.well-known/jwks.json" \
    ECP_REGISTRATIONS_PER_ADDRESS_PER_HOUR="$ECP_LOCAL_REGISTRATIONS_PER_ADDRESS_PER_HOUR" \
    ECP_LOGIN_ATTEMPTS_PER_ADDRESS="$ECP_LOCAL_LOGIN_ATTEMPTS_PER_ADDRESS" \
    "$ECP_PYTHON" -m "services.$name.main")
}

_wait_replicas() {
  local r
  for ((r = 1; r <= $(service_replicas "$1"); r++)); do
    wait_for "$(_replica_name "$1" "$r")" 60 service_healthy "$(_replica_port "$1" "$r")"
  done
}

# Every replica (those already running are left alone: `ecp start` after a crash of one).
start_service() {
  local r
  for ((r = 1; r <= $(service_replicas "$1"); r++)); do launch_service "$1" "$r"; done
  _wait_replicas "$1"
}

stop_service() { stop_pid "svc-$1"; stop_pid "svc-$1-2"; }

start_services() {
  local name r
  # Launch all first, then wait: the processes boot in parallel.
  for name in "${ECP_SERVICES[@]}"; do
    for ((r = 1; r <= $(service_replicas "$name"); r++)); do launch_service "$name" "$r"; done
  done
  for name in "${ECP_SERVICES[@]}"; do _wait_replicas "$name"; done
}

stop_services() {
  local name
  for name in "${ECP_SERVICES[@]}"; do stop_service "$name"; done
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
