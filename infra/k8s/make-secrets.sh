#!/usr/bin/env bash
# Creates the Secret `streamgate-secrets` that infra/k8s reads, with freshly generated values;
# none of them is ever written to the repository or to a command line (`ps`).
#
#   infra/k8s/make-secrets.sh            # create it in the namespace (kubectl's current context)
#   infra/k8s/make-secrets.sh --print    # print the Secret manifest instead (for SOPS, sealed-secrets, ...)
#
# Needs bash, openssl (3.0 or newer: Ed25519), sha256sum, od and kubectl (client only for --print).
# NAMESPACE (default streamgate) and REDIS_HOST (default redis:6379, the Service in redis.yaml;
# the SpinApp's redis_host must name the same) change what it writes. It refuses to replace an
# existing Secret: new values sign everyone out, and Redis and libSQL take the new passwords and
# key only when restarted (`kubectl -n streamgate rollout restart statefulset/redis statefulset/libsql`
# then the SpinApp and the native Deployments). Rotating one key instead: docs/operations.md.
#
# Keys (the manifests reference each of them; the tests check that):
#   session-secret, events-secret, playback-secret   the app's keys (32 random bytes, hex); the
#                                                    *-previous keys are optional, for rotation
#   redis-app-url      redis://streamgate-app:<pw>@REDIS_HOST          (SpinApp redis_address)
#   redis-worker-url   redis://streamgate-worker:<pw>@REDIS_HOST       (workers' STREAMGATE_REDIS_URL)
#   redis-kv-url       redis://streamgate-kv:<pw>@REDIS_HOST/1         (SpinApp key-value store)
#   redis-metrics-username, redis-metrics-password                     (KEDA's TriggerAuthentication)
#   redis-admin-password                                               (operators: redis-cli --user streamgate-admin)
#   redis-users.acl    the Redis ACL file: infra/redis/users.acl.template rendered with the
#                      passwords' SHA-256, plus the users streamgate-kv and streamgate-metrics
#   libsql-jwt-public-key, libsql-token   sqld's Ed25519 public key (PEM) and a JWT signed with
#                      its private key (read-write); the private key is discarded
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="$here/../redis/users.acl.template"
namespace="${NAMESPACE:-streamgate}"
redis_host="${REDIS_HOST:-redis:6379}"
name=streamgate-secrets

print=0
case "${1:-}" in
    --print) print=1 ;;
    "") ;;
    *) echo "usage: $0 [--print]" >&2; exit 2 ;;
esac

for tool in openssl sha256sum od kubectl; do
    command -v "$tool" >/dev/null || { echo "$0 needs $tool on PATH" >&2; exit 1; }
done
if [ "$print" = 0 ] && kubectl -n "$namespace" get secret "$name" >/dev/null 2>&1; then
    echo "secret $namespace/$name exists; delete it first if you mean to replace every key (see the header of $0)" >&2
    exit 1
fi

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
umask 077

random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

for key in session-secret events-secret playback-secret; do
    random > "$dir/$key"
done

admin_pw="$(random)" app_pw="$(random)" worker_pw="$(random)" kv_pw="$(random)" metrics_pw="$(random)"
printf %s "$admin_pw" > "$dir/redis-admin-password"
printf 'redis://streamgate-app:%s@%s' "$app_pw" "$redis_host" > "$dir/redis-app-url"
printf 'redis://streamgate-worker:%s@%s' "$worker_pw" "$redis_host" > "$dir/redis-worker-url"
printf 'redis://streamgate-kv:%s@%s/1' "$kv_pw" "$redis_host" > "$dir/redis-kv-url"
printf %s streamgate-metrics > "$dir/redis-metrics-username"
printf %s "$metrics_pw" > "$dir/redis-metrics-password"
{
    sed -e '/^#/d' -e '/^[[:space:]]*$/d' \
        -e "s/@ADMIN_PASSWORD_SHA256@/$(sha "$admin_pw")/" -e "s/@APP_PASSWORD_SHA256@/$(sha "$app_pw")/" \
        -e "s/@WORKER_PASSWORD_SHA256@/$(sha "$worker_pw")/" "$template"
    # The SpinApp's key-value store (Spin's Redis key-value: GET/SET/DEL/EXISTS/MGET/INCRBY, KEYS
    # for listing, WATCH/MULTI/EXEC for compare-and-swap), in database 1 as its URL selects.
    echo "user streamgate-kv on #$(sha "$kv_pw") resetkeys resetchannels -@all ~* +@read +@write +@transaction +@connection -@dangerous +keys"
    # KEDA's redis-streams scaler: the job stream's length, pending entries and group lag.
    echo "user streamgate-metrics on #$(sha "$metrics_pw") resetkeys resetchannels -@all ~streamgate:jobs +xinfo +xpending +xlen +ping +hello"
} > "$dir/redis-users.acl"
if grep -q '@[A-Z_]*_PASSWORD_SHA256@' "$dir/redis-users.acl"; then
    echo "$template has a user this script does not know; add its password here" >&2
    exit 1
fi

openssl genpkey -algorithm ed25519 -out "$dir/libsql.key" 2>/dev/null
openssl pkey -in "$dir/libsql.key" -pubout -out "$dir/libsql-jwt-public-key"
claims="$(printf '{"alg":"EdDSA","typ":"JWT"}' | b64url).$(printf '{"a":"rw","iat":%s}' "$(date +%s)" | b64url)"
printf %s "$claims" > "$dir/claims"
signature="$(openssl pkeyutl -sign -rawin -inkey "$dir/libsql.key" -in "$dir/claims" | b64url)"
printf '%s.%s' "$claims" "$signature" > "$dir/libsql-token"
rm -f "$dir/libsql.key" "$dir/claims"

manifest() {
    kubectl create secret generic "$name" --namespace "$namespace" --from-file="$dir" \
        --dry-run=client -o yaml
}
if [ "$print" = 1 ]; then
    manifest
else
    manifest | kubectl apply -f -
    echo "created secret $namespace/$name" >&2
fi
