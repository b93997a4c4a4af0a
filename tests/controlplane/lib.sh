# Shared settings for tests/controlplane/{build,up,down}. Sourced, not run.
CP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$CP_DIR/versions.env"
# Where built binaries are cached between runs (CI reuses it on the same machine).
CACHE_ROOT=${GDAP_CACHE_DIR:-$HOME/.cache/gdap-operator}
BIN_DIR=$CACHE_ROOT/controlplane/kube-$KUBE_VERSION-etcd-$ETCD_VERSION/bin
# Where a running control plane keeps its state (certs, data, logs, pids, kubeconfig).
RUN_DIR=${GDAP_CONTROLPLANE_DIR:-${TMPDIR:-/tmp}/gdap-operator-controlplane}
ETCD_PORT=${GDAP_ETCD_PORT:-23791}
ETCD_PEER_PORT=${GDAP_ETCD_PEER_PORT:-23792}
APISERVER_PORT=${GDAP_APISERVER_PORT:-26443}
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "controlplane: $*" >&2; }
