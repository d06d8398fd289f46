# Kafka for the local runner: Apache Kafka 4.x in KRaft mode, each process broker and controller.
# Sourced after lib.sh; defines install_kafka, start_kafka, stop_kafka (and start_kafka-N,
# stop_kafka-N for one node of the cluster mode), kafka_bootstrap, kafka_secret.
#   jars:    $ECP_LOCAL/kafka/libs (from Maven Central via deploy/local/kafka/pom.xml)
#   config:  $ECP_DATA/kafka/server.properties (rendered from deploy/local/kafka/server.properties)
#   data:    $ECP_DATA/kafka/data           log: $ECP_LOGS/kafka.log
#   secrets: $ECP_LOCAL/secrets/kafka/<principal>.password (generated, mode 600, never committed)
# Every listener authenticates (SASL: SCRAM-SHA-512 for clients on 127.0.0.1:$ECP_KAFKA_PORT, PLAIN
# for the brokers' own "ecp-broker" identity on the internal and controller listeners) and the
# StandardAuthorizer denies what schemas/topics.yaml does not grant; start_kafka provisions the
# topics, the principals' SCRAM credentials and their ACLs (python -m services.kernel.topics).
#
# Cluster mode: `make up KAFKA_NODES=3` (remembered in $ECP_RUN/kafka-nodes until `make down`,
# or until KAFKA_NODES=1 is given to `make up` / `ecp start kafka` with Kafka stopped):
# nodes kafka-1..3 in $ECP_DATA/kafka-N, node N's ports are the single node's + (N-1)*100
# (client 9092/9192/9292, controller 9093/9193/9293, internal 9094/9194/9294), replication 3,
# min.insync.replicas 2. Operators use deploy/local/bin/kafka-cli (the operator principal).

: "${ECP_KAFKA_VERSION:=4.1.1}"
: "${ECP_KAFKA_HEAP_OPTS:=-Xms256m -Xmx512m}"
ECP_KAFKA_SRC="$ECP_ROOT/deploy/local/kafka"
ECP_KAFKA_SECRETS="$ECP_LOCAL/secrets/kafka"

# Nodes: KAFKA_NODES=3 on `make up` chooses the cluster mode; later commands (ecp start, restart,
# the fault runs) keep the mode of the running cluster.
if [ -n "${KAFKA_NODES:-}" ]; then
  ECP_KAFKA_NODES="$KAFKA_NODES"
elif [ -z "${ECP_KAFKA_NODES:-}" ]; then
  ECP_KAFKA_NODES="$(cat "$ECP_RUN/kafka-nodes" 2>/dev/null || echo 1)"
fi
case "$ECP_KAFKA_NODES" in 1|3) ;; *) die "KAFKA_NODES must be 1 or 3 (got $ECP_KAFKA_NODES)" ;; esac

# Stamp content: the version and the pom's checksum, so that editing either re-fetches.
_kafka_stamp() {
  printf '%s %s\n' "$ECP_KAFKA_VERSION" "$(sha256sum "$ECP_KAFKA_SRC/pom.xml" | cut -c1-16)"
}

install_kafka() {
  local home="$ECP_LOCAL/kafka" stamp="$ECP_LOCAL/kafka/.installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(_kafka_stamp)" ] \
      && compgen -G "$home/libs/kafka_2.13-$ECP_KAFKA_VERSION.jar" >/dev/null; then
    log "kafka $ECP_KAFKA_VERSION already installed"
    return 0
  fi
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  log "installing kafka $ECP_KAFKA_VERSION jars from Maven Central into $home/libs"
  mkdir -p "$home"
  rm -rf "$home/libs.new"
  mvn -q -B -f "$ECP_KAFKA_SRC/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$ECP_KAFKA_VERSION" -DoutputDirectory="$home/libs.new" \
      >"$ECP_LOGS/kafka-install.log" 2>&1 \
    || { tail -n 20 "$ECP_LOGS/kafka-install.log" >&2; die "kafka download failed, see $ECP_LOGS/kafka-install.log"; }
  [ -f "$home/libs.new/kafka_2.13-$ECP_KAFKA_VERSION.jar" ] \
    && [ -f "$home/libs.new/kafka-tools-$ECP_KAFKA_VERSION.jar" ] \
    || die "kafka download incomplete, see $ECP_LOGS/kafka-install.log"
  rm -rf "$home/libs"
  mv "$home/libs.new" "$home/libs"
  _kafka_stamp >"$stamp"
}

# _kafka_java ARGS...: java on the Kafka jars with the quiet CLI logging (for one-shot tools).
_kafka_java() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$ECP_KAFKA_SRC/log4j2-cli.properties" \
    -cp "$ECP_LOCAL/kafka/libs/*" "$@"
}

# _kafka_ready [PORT]: true when the broker answers a Kafka ApiVersions request (v0) with error
# code 0. The broker processes requests only once it has joined the quorum and been unfenced, so
# this proves more than an open port, and costs milliseconds instead of a JVM start.
_kafka_ready() {
  local reply
  reply="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    # size 13 | api_key 18 (ApiVersions) | api_version 0 | correlation_id 1 | client_id "ecp"
    printf "\x00\x00\x00\x0d\x00\x12\x00\x00\x00\x00\x00\x01\x00\x03ecp" >&3
    head -c 10 <&3 | od -An -tx1' "${1:-$ECP_KAFKA_PORT}" 2>/dev/null)" || return 1
  reply="${reply//[[:space:]]/}"
  # bytes 4..9 of the response: correlation_id 1, error_code 0
  [ "${reply:8:12}" = "000000010000" ]
}

# kafka_secret PRINCIPAL: its local password, generated on first use (never leaves .local).
kafka_secret() {
  local file="$ECP_KAFKA_SECRETS/$1.password"
  if [ ! -s "$file" ]; then
    (umask 077; mkdir -p "$ECP_KAFKA_SECRETS"
     head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$file.tmp" && mv "$file.tmp" "$file")
  fi
  cat "$file"
}

# _kafka_node_name N / _kafka_port BASE N: the single node keeps its historical name and ports.
_kafka_node_name() { if [ "$ECP_KAFKA_NODES" = 1 ]; then echo kafka; else echo "kafka-$1"; fi; }
_kafka_port() { echo $(($1 + ($2 - 1) * 100)); }

# kafka_bootstrap [PORT_BASE]: the clients' bootstrap list of the running mode.
kafka_bootstrap() {
  local base="${1:-$ECP_KAFKA_PORT}" n list=()
  for ((n = 1; n <= ECP_KAFKA_NODES; n++)); do list+=("127.0.0.1:$(_kafka_port "$base" "$n")"); done
  (IFS=,; echo "${list[*]}")
}

# _kafka_client_properties PRINCIPAL: a Java client config (kafka-cli) authenticating as PRINCIPAL.
_kafka_client_properties() {
  local file="$ECP_KAFKA_SECRETS/$1.properties" password
  password="$(kafka_secret "$1")"
  (umask 077; cat >"$file.tmp" <<PROPS
# Generated by deploy/local/components/kafka.sh: the $1 principal on the local broker.
bootstrap.servers=$(kafka_bootstrap)
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$1" password="$password";
PROPS
  mv "$file.tmp" "$file")
}

# _kafka_render N: node N's server.properties (mode 600: it holds the broker's password).
_kafka_render() {
  local n="$1" dir="$2" quorum voters=() i
  if [ "$ECP_KAFKA_NODES" = 1 ]; then
    quorum="controller.quorum.bootstrap.servers=127.0.0.1:$ECP_KAFKA_CONTROLLER_PORT"
  else
    for ((i = 1; i <= ECP_KAFKA_NODES; i++)); do voters+=("$i@127.0.0.1:$(_kafka_port "$ECP_KAFKA_CONTROLLER_PORT" "$i")"); done
    quorum="controller.quorum.voters=$(IFS=,; echo "${voters[*]}")"
  fi
  local replication=1 min_isr=1
  [ "$ECP_KAFKA_NODES" = 3 ] && { replication=3; min_isr=2; }
  (umask 077; sed -e "s|@NODE_ID@|$n|g" -e "s|@QUORUM@|$quorum|g" \
      -e "s|@KAFKA_PORT@|$(_kafka_port "$ECP_KAFKA_PORT" "$n")|g" \
      -e "s|@CONTROLLER_PORT@|$(_kafka_port "$ECP_KAFKA_CONTROLLER_PORT" "$n")|g" \
      -e "s|@INTERNAL_PORT@|$(_kafka_port "$ECP_KAFKA_INTERNAL_PORT" "$n")|g" \
      -e "s|@BROKER_PASSWORD@|$(kafka_secret ecp-broker)|g" \
      -e "s|@REPLICATION@|$replication|g" -e "s|@MIN_ISR@|$min_isr|g" \
      -e "s|@LOG_DIRS@|$dir/data|g" \
      "$ECP_KAFKA_SRC/server.properties" >"$dir/server.properties")
}

# _kafka_launch N: formats node N's storage the first time, then starts it (does not wait).
_kafka_launch() {
  local n="$1" name home="$ECP_LOCAL/kafka" dir
  name="$(_kafka_node_name "$n")"
  dir="$ECP_DATA/$name"
  pid_alive "$name" && { log "$name already running (pid $(cat "$ECP_RUN/$name.pid"))"; return 0; }
  local base
  for base in "$ECP_KAFKA_PORT" "$ECP_KAFKA_CONTROLLER_PORT" "$ECP_KAFKA_INTERNAL_PORT"; do
    port_open "$(_kafka_port "$base" "$n")" \
      && die "port $(_kafka_port "$base" "$n") is already in use by a process this runner did not start"
  done
  mkdir -p "$dir/data"
  _kafka_render "$n" "$dir"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # One cluster id for every node of the mode.
    local ids="$ECP_DATA/kafka-cluster.id" cluster_id
    [ "$ECP_KAFKA_NODES" = 1 ] && ids="$dir/cluster.id"
    [ -s "$ids" ] || _kafka_java kafka.tools.StorageTool random-uuid >"$ids"
    cluster_id="$(cat "$ids")"
    log "formatting $name storage (cluster $cluster_id) in $dir/data"
    local standalone=()
    [ "$ECP_KAFKA_NODES" = 1 ] && standalone=(--standalone)
    _kafka_java kafka.tools.StorageTool format "${standalone[@]}" -t "$cluster_id" -c "$dir/server.properties" \
        >>"$ECP_LOGS/$name.log" 2>&1 \
      || { tail -n 20 "$ECP_LOGS/$name.log" >&2; die "$name storage format failed, see $ECP_LOGS/$name.log"; }
  fi
  log "starting $name on 127.0.0.1:$(_kafka_port "$ECP_KAFKA_PORT" "$n")"
  # shellcheck disable=SC2086  # heap options are a word list
  start_bg "$name" java $ECP_KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ECP_KAFKA_SRC/log4j2.properties" \
    -cp "$home/libs/*" kafka.Kafka "$dir/server.properties"
}

_kafka_wait() {
  local name port
  name="$(_kafka_node_name "$1")"
  port="$(_kafka_port "$ECP_KAFKA_PORT" "$1")"
  wait_for "$name" 120 _kafka_ready "$port"
  log "$name ready on 127.0.0.1:$port"
}

# provision_kafka: topics, SCRAM users and ACLs from schemas/topics.yaml, as the broker's own
# identity on the internal listener (the only one that exists before any SCRAM user does).
provision_kafka() {
  local name
  for name in ecp-operator $(cd "$ECP_ROOT" && "$ECP_PYTHON" -m services.kernel.topics --principals); do
    kafka_secret "$name" >/dev/null
  done
  _kafka_client_properties ecp-operator
  local replication=()
  [ "$ECP_KAFKA_NODES" = 3 ] && replication=(ECP_TOPICS_REPLICATION_FACTOR=3)
  log "provisioning Kafka topics, principals and ACLs from schemas/topics.yaml"
  (cd "$ECP_ROOT" && env "${replication[@]}" ECP_KAFKA_BOOTSTRAP="$(kafka_bootstrap "$ECP_KAFKA_INTERNAL_PORT")" \
      ECP_KAFKA_USERNAME=ecp-broker ECP_KAFKA_PASSWORD="$(kafka_secret ecp-broker)" ECP_KAFKA_SASL_MECHANISM=PLAIN \
      ECP_KAFKA_SECRETS_DIR="$ECP_KAFKA_SECRETS" "$ECP_PYTHON" -m services.kernel.topics) >>"$ECP_LOGS/topics.log" 2>&1 \
    || { tail -n 20 "$ECP_LOGS/topics.log" >&2; die "Kafka provisioning failed, see $ECP_LOGS/topics.log"; }
}

start_kafka() {
  [ -f "$ECP_LOCAL/kafka/.installed" ] || die "kafka is not installed (run install_kafka)"
  echo "$ECP_KAFKA_NODES" >"$ECP_RUN/kafka-nodes"
  local n
  # Launch every node before waiting: a node answers only once a quorum of controllers runs.
  for ((n = 1; n <= ECP_KAFKA_NODES; n++)); do _kafka_launch "$n"; done
  for ((n = 1; n <= ECP_KAFKA_NODES; n++)); do _kafka_wait "$n"; done
  provision_kafka
}

stop_kafka() {
  local n name
  # Every node at once: one by one, the last ones wait for a quorum that is gone (15 s, then KILL).
  for ((n = 1; n <= ECP_KAFKA_NODES; n++)); do
    name="$(_kafka_node_name "$n")"
    pid_alive "$name" && { kill -TERM -- "-$(cat "$ECP_RUN/$name.pid")" 2>/dev/null || true; }
  done
  for ((n = ECP_KAFKA_NODES; n >= 1; n--)); do stop_pid "$(_kafka_node_name "$n")"; done
}

# forget_kafka_mode: `ecp down` ends the cluster mode (a stop/start of Kafka alone keeps it).
forget_kafka_mode() { rm -f "$ECP_RUN/kafka-nodes"; }

# One node of the cluster mode: `ecp start|stop kafka-2` (the fault runs kill and restart one).
for _n in 1 2 3; do
  eval "start_kafka-$_n() { _kafka_launch $_n; _kafka_wait $_n; }; stop_kafka-$_n() { stop_pid kafka-$_n; }"
done
unset _n
