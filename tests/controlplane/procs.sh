# Starting and checking the control plane's processes; sourced by `up` and `restart` (after
# lib.sh). Not run on its own.
KUBECONFIG_PATH=$RUN_DIR/admin.kubeconfig
PKI=$RUN_DIR/pki

running() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }
api_ready() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" --request-timeout=5s get --raw /readyz >/dev/null 2>&1 &&
  "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" --request-timeout=5s get namespace default >/dev/null 2>&1; }

# start_etcd [keep]: starts etcd; with `keep`, on the data it already has (a restart), else fresh.
start_etcd() {
  [ "${1:-}" = keep ] || rm -rf "$RUN_DIR/etcd-data"
  setsid "$BIN_DIR/etcd" --name gdap-test --data-dir "$RUN_DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "gdap-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true --log-level=warn >>"$RUN_DIR/etcd.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/etcd.pid"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && return 0
    running etcd || { log "etcd exited; its log:"; tail -20 "$RUN_DIR/etcd.log" >&2; exit 1; }
    sleep 0.2
  done
  log "etcd did not become healthy in 20s"; tail -20 "$RUN_DIR/etcd.log" >&2; exit 1
}

# Audit log of Secret access only (who read or wrote which Secret, never their data), so tests can
# prove which Secrets the operator touched: $RUN_DIR/audit.log, one JSON event a line.
write_audit_policy() {
  cat > "$RUN_DIR/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: None
POLICY
}

start_apiserver() {
  write_audit_policy
  setsid "$BIN_DIR/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --cert-dir "$PKI" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/client-ca.crt" --authorization-mode RBAC \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --disable-admission-plugins ServiceAccount \
    --service-account-issuer "https://127.0.0.1:$APISERVER_PORT/" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --enable-priority-and-fairness=false --storage-backend etcd3 \
    --audit-policy-file "$RUN_DIR/audit-policy.yaml" --audit-log-path "$RUN_DIR/audit.log" \
    --audit-log-maxsize 200 --audit-log-maxbackup 1 \
    >>"$RUN_DIR/kube-apiserver.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/kube-apiserver.pid"
  for _ in $(seq 1 240); do
    api_ready && return 0
    running kube-apiserver || { log "kube-apiserver exited; its log:"; tail -30 "$RUN_DIR/kube-apiserver.log" >&2; exit 1; }
    sleep 0.25
  done
  log "kube-apiserver not ready in 60s; its log:"; tail -30 "$RUN_DIR/kube-apiserver.log" >&2; exit 1
}

# stop NAME SIGNAL: sends SIGNAL to the process and waits (up to 10 s) for it to exit.
stop() {
  local pidfile=$RUN_DIR/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
