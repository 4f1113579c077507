#!/usr/bin/env bash
# Starts an envtest-style control plane — etcd and kube-apiserver only, no controllers, no nodes —
# and writes a kubeconfig for it, for running the integration suite against a real API server:
#
#   bin=$(setup-envtest use 1.31.x -p path)            # sigs.k8s.io/controller-runtime/tools/setup-envtest
#   scripts/envtest-control-plane.sh "$bin" /tmp/envtest   # prints the kubeconfig's path when ready
#   AIRLOCK_TEST_KUBECONFIG=/tmp/envtest/kubeconfig .venv/bin/python -m pytest -m integration tests/integration
#   kill $(cat /tmp/envtest/pids)
#
# The API server authenticates one static token (user airlock-test-admin, group system:masters)
# and authorizes with RBAC, so impersonated responders get only what tests bind to them.
# Without a controller manager, Deployments never get Pods and deleted namespaces stay
# Terminating; the tests assume neither. Used by .github/workflows/integration-real.yaml;
# it has not run on the development machine (no kube-apiserver binary there).
set -euo pipefail

bin="${1:?usage: envtest-control-plane.sh BIN_DIR WORK_DIR}"
work="${2:?usage: envtest-control-plane.sh BIN_DIR WORK_DIR}"
mkdir -p "$work/certs" "$work/etcd"
port="${ENVTEST_APISERVER_PORT:-6443}"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
printf '%s,airlock-test-admin,airlock-test-admin,system:masters\n' "$token" > "$work/tokens.csv"
chmod 600 "$work/tokens.csv" "$work/sa.key"

"$bin/etcd" --data-dir "$work/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 > "$work/etcd.log" 2>&1 &
echo $! > "$work/pids"

"$bin/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=127.0.0.1 --secure-port="$port" --cert-dir="$work/certs" \
  --token-auth-file="$work/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$work/sa.key" --service-account-signing-key-file="$work/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
  --disable-admission-plugins=ServiceAccount > "$work/kube-apiserver.log" 2>&1 &
echo $! >> "$work/pids"

for _ in $(seq 1 120); do
  if curl -ksf -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" >/dev/null; then
    cat > "$work/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: envtest
  cluster:
    server: https://127.0.0.1:$port
    # The API server's own self-signed serving certificate, on loopback, for a throwaway control plane.
    insecure-skip-tls-verify: true
users:
- name: envtest-admin
  user:
    token: $token
contexts:
- name: envtest
  context: {cluster: envtest, user: envtest-admin, namespace: default}
current-context: envtest
KUBECONFIG
    chmod 600 "$work/kubeconfig"
    echo "$work/kubeconfig"
    exit 0
  fi
  sleep 1
done
echo "envtest-control-plane: kube-apiserver not ready after 120 s; its log:" >&2
tail -n 50 "$work/kube-apiserver.log" >&2
exit 1
