#!/usr/bin/env bash
# Start the local control plane: etcd, kube-apiserver (TLS, RBAC, test users),
# kube-controller-manager, kube-scheduler and kwok with fake nodes.
#
# Idempotent: when the cluster in $ADROIT_CLUSTER_DIR (default .cluster/) is
# already up, it returns at once. Writes $ADROIT_CLUSTER_DIR/kubeconfig with
# the contexts admin (default), alice, carol and bob.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${ADROIT_CLUSTER_DIR:-$repo/.cluster}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
kubectl="${KUBECTL:-kubectl}"
kubeconfig="$dir/kubeconfig"

log() { printf '[cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
start=$SECONDS

# shellcheck source=../lib/processes.sh
source "$here/../lib/processes.sh"

components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
running=0
for c in "${components[@]}"; do alive "$c" && running=$((running + 1)); done
if ((running == ${#components[@]})) \
   && "$kubectl" --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
  log "already running (KUBECONFIG=$kubeconfig)"
  exit 0
fi
if ((running > 0)); then
  log "a partial cluster is running: stopping it first"
  "$here/down.sh"
fi

"$here/build.sh"
eval "$("$here/build.sh" --print)"

read -r etcd_port etcd_peer_port api_port kcm_port sched_port kwok_port <<<"$(free_ports 6)"

rm -rf "$dir/etcd" "$dir/pki" "$dir/pids" "$dir/logs"
mkdir -p "$dir/pki" "$dir/pids" "$dir/logs" "$dir/etcd"
pki="$dir/pki"

# --- certificates: one local CA, a serving certificate, client certificates --
log "creating certificates and users"
openssl_quiet() { openssl "$@" 2>/dev/null; }
key() { openssl_quiet ecparam -name prime256v1 -genkey -noout -out "$pki/$1.key"; }
key ca
openssl_quiet req -x509 -new -key "$pki/ca.key" -subj "/CN=adroit-local-ca" -days 3650 \
  -out "$pki/ca.crt"
sign() {  # sign NAME SUBJECT EXTENSIONS
  key "$1"
  openssl_quiet req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr"
  openssl_quiet x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 3650 -out "$pki/$1.crt" -extfile <(printf '%b' "$3")
}
sign apiserver "/CN=kube-apiserver" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment"
client_ext="extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature"
sign admin "/O=system:masters/CN=admin" "$client_ext"
sign controller-manager "/CN=system:kube-controller-manager" "$client_ext"
sign scheduler "/CN=system:kube-scheduler" "$client_ext"
# kwok plays every kubelet and the node lifecycle: it gets full rights, here only.
sign kwok "/O=system:masters/CN=kwok" "$client_ext"
key service-account
openssl_quiet ec -in "$pki/service-account.key" -pubout -out "$pki/service-account.pub"

# Test users authenticate with bearer tokens: token,user,uid,"groups".
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
declare -A tokens=([alice]="$(token)" [carol]="$(token)" [bob]="$(token)")
{
  echo "${tokens[alice]},alice,alice,\"adroit:approvers\""
  echo "${tokens[carol]},carol,carol,\"adroit:approvers\""
  echo "${tokens[bob]},bob,bob,\"adroit:developers\""
} >"$pki/tokens.csv"

b64() { base64 -w0 <"$1"; }
server="https://127.0.0.1:$api_port"
component_kubeconfig() {  # component_kubeconfig NAME
  cat >"$dir/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: $(b64 "$pki/ca.crt")}}]
users: [{name: $1, user: {client-certificate-data: $(b64 "$pki/$1.crt"), client-key-data: $(b64 "$pki/$1.key")}}]
contexts: [{name: $1, context: {cluster: local, user: $1}}]
current-context: $1
KC
}
for c in controller-manager scheduler kwok; do component_kubeconfig "$c"; done
cat >"$kubeconfig.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: adroit-local
  cluster: {server: "$server", certificate-authority-data: $(b64 "$pki/ca.crt")}
users:
- name: admin
  user: {client-certificate-data: $(b64 "$pki/admin.crt"), client-key-data: $(b64 "$pki/admin.key")}
- {name: alice, user: {token: ${tokens[alice]}}}
- {name: carol, user: {token: ${tokens[carol]}}}
- {name: bob, user: {token: ${tokens[bob]}}}
contexts:
- {name: admin, context: {cluster: adroit-local, user: admin, namespace: adroit}}
- {name: alice, context: {cluster: adroit-local, user: alice, namespace: adroit}}
- {name: carol, context: {cluster: adroit-local, user: carol, namespace: adroit}}
- {name: bob, context: {cluster: adroit-local, user: bob, namespace: adroit}}
current-context: admin
KC
mv "$kubeconfig.tmp" "$kubeconfig"

# --- processes --------------------------------------------------------------
wait_for() {  # wait_for NAME SECONDS COMMAND...: or stop everything and fail
  wait_until "$@" || { "$here/down.sh" >/dev/null 2>&1 || true; exit 1; }
}

log "starting etcd"
launch etcd "$ETCD_BIN/etcd" --name=adroit --data-dir="$dir/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster="adroit=http://127.0.0.1:$etcd_peer_port" \
  --unsafe-no-fsync=true --log-level=warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

log "starting kube-apiserver on $server"
launch kube-apiserver "$KUBE_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
  --cert-dir="$pki" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
  --authorization-mode=RBAC --allow-privileged=true \
  --service-cluster-ip-range=10.96.0.0/16 \
  --service-account-issuer="$server" \
  --service-account-key-file="$pki/service-account.pub" \
  --service-account-signing-key-file="$pki/service-account.key" \
  --endpoint-reconciler-type=none --v=1
wait_for kube-apiserver 60 "$kubectl" --kubeconfig "$kubeconfig" get --raw /readyz

log "starting kube-controller-manager, kube-scheduler, kwok"
# The fake nodes never fail, but their heartbeats stop while the API server is away: a
# grace period (default 50 s) longer than any restart the tests make keeps the node
# lifecycle controller from marking every pod unready when it comes back.
launch kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
  --kubeconfig="$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$dir/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$kcm_port" --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/service-account.key" \
  --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --kube-api-qps=200 --kube-api-burst=400 \
  --concurrent-deployment-syncs=20 --concurrent-replicaset-syncs=20 \
  --node-monitor-grace-period=2m \
  --v=1
launch kube-scheduler "$KUBE_BIN/kube-scheduler" \
  --kubeconfig="$dir/scheduler.kubeconfig" \
  --authentication-kubeconfig="$dir/scheduler.kubeconfig" \
  --authorization-kubeconfig="$dir/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$sched_port" --leader-elect=false \
  --kube-api-qps=200 --kube-api-burst=400 --v=1
launch kwok "$KWOK_BIN/kwok" --kubeconfig="$dir/kwok.kubeconfig" \
  --manage-all-nodes=true --cidr=10.244.0.1/16 \
  --node-ip=127.0.0.1 --node-port="$kwok_port" --server-address="127.0.0.1:$kwok_port" \
  --node-lease-duration-seconds=40

k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }
log "creating namespaces, fake nodes and user roles"
for manifest in "$repo/deploy/namespaces.yaml" "$repo/deploy/rbac/user-roles.yaml" \
                "$here/test-users.yaml" "$here/nodes.yaml"; do
  k apply --server-side --field-manager=adroit-local -f "$manifest" >/dev/null
done
log "installing the Gateway API and Istio CRDs"
for manifest in $("$here/router-crds.sh"); do
  k apply --server-side --force-conflicts --field-manager=adroit-local -f "$manifest" >/dev/null
done
wait_for kwok 60 k wait --for=condition=Ready node --all --timeout=1s
# Pods can be created once the service account controller has made `default`.
wait_for kube-controller-manager 60 k -n adroit-staging get serviceaccount default
log "ready in $((SECONDS - start)) s: export KUBECONFIG=$kubeconfig"
