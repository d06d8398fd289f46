# The project's own services, each its own process: python -m services.<name>.main.
ECP_SERVICES=(identity household documents notifier enrolment web)

# The port of a service comes from lib.sh (ECP_<NAME>_PORT), the one place the runner sets ports.
service_port() { local var="ECP_${1^^}_PORT"; echo "${!var}"; }

service_healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"; }

# Every local browser and test reaches identity as 127.0.0.1, so the per-ADDRESS limits (20
# registrations an hour, 50 logins in 15 minutes in production) would count a developer's whole
# test runs as one visitor. Locally they are raised (override with these variables); the
# per-account limits, which the tests exercise, stay as in production.
: "${ECP_LOCAL_REGISTRATIONS_PER_ADDRESS_PER_HOUR:=2000}"
: "${ECP_LOCAL_LOGIN_ATTEMPTS_PER_ADDRESS:=2000}"

# _kafka_principal_env NAME: the service's own principal on the broker (kafka.sh generates its
# password), once the broker authenticates; the web pages never talk to Kafka.
_kafka_principal_env() {
  [ "$1" != web ] && [ -s "$ECP_KAFKA_SECRETS/ecp-broker.password" ] || return 0
  echo "ECP_KAFKA_USERNAME=$1"
  echo "ECP_KAFKA_PASSWORD=$(kafka_secret "$1")"
}

launch_service() {
  local name="$1" kafka_env
  mapfile -t kafka_env < <(_kafka_principal_env "$name")
  (cd "$ECP_ROOT" && start_bg "svc-$name" env ECP_HTTP_PORT="$(service_port "$name")" "${kafka_env[@]}" \
    ECP_IDENTITY_URL="http://127.0.0.1:$ECP_IDENTITY_PORT" ECP_HOUSEHOLD_URL="http://127.0.0.1:$ECP_HOUSEHOLD_PORT" \
    ECP_DOCUMENTS_URL="http://127.0.0.1:$ECP_DOCUMENTS_PORT" ECP_NOTIFIER_URL="http://127.0.0.1:$ECP_NOTIFIER_PORT" \
    ECP_ENROLMENT_URL="http://127.0.0.1:$ECP_ENROLMENT_PORT" ECP_MONGO_URL="mongodb://127.0.0.1:$ECP_MONGO_PORT/?directConnection=true" \
    ECP_KAFKA_BOOTSTRAP="$(kafka_bootstrap)" ECP_S3_ENDPOINT="127.0.0.1:$ECP_S3_PORT" \
    ECP_CLAMD_PORT="$ECP_CLAMD_PORT" ECP_SMTP_PORT="$ECP_SMTP_PORT" \
    ECP_PUBLIC_BASE_URL="http://127.0.0.1:$ECP_GATEWAY_PORT" \
    ECP_JWKS_URL="http://127.0.0.1:$ECP_IDENTITY_PORT/.well-known/jwks.json" \
    ECP_REGISTRATIONS_PER_ADDRESS_PER_HOUR="$ECP_LOCAL_REGISTRATIONS_PER_ADDRESS_PER_HOUR" \
    ECP_LOGIN_ATTEMPTS_PER_ADDRESS="$ECP_LOCAL_LOGIN_ATTEMPTS_PER_ADDRESS" \
    "$ECP_PYTHON" -m "services.$name.main")
}

start_service() {
  launch_service "$1"
  wait_for "svc-$1" 60 service_healthy "$(service_port "$1")"
}

stop_service() { stop_pid "svc-$1"; }

start_services() {
  local name
  # Launch all first, then wait: the processes boot in parallel.
  for name in "${ECP_SERVICES[@]}"; do launch_service "$name"; done
  for name in "${ECP_SERVICES[@]}"; do
    wait_for "svc-$name" 60 service_healthy "$(service_port "$name")"
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
