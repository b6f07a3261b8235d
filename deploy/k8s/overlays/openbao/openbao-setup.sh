#!/bin/sh
# Prepares an OpenBao (or Vault) for Rehab Support's key custody, once, as its operator (BAO_ADDR, BAO_TOKEN set;
# VAULT_ADDR/VAULT_TOKEN and BAO=vault work too). Safe to run again: it creates what is missing and rewrites the
# policies and roles to what is in this folder.
#
#   the Transit engine at $REHAB_OPENBAO_TRANSIT_MOUNT (default transit), and in it one aes256-gcm96 key per
#     service: rehab-intake, rehab-referrals, rehab-funds (not exportable, not deletable);
#   a policy per service (policies/rehab-<service>.hcl): encrypt, decrypt, rewrap with its own key, read its versions;
#   the Kubernetes auth method, and a role per service bound to the ServiceAccount rehab-<service> in the namespace
#     $REHAB_NAMESPACE (default rehab), for tokens of the audience `openbao`, with that policy only;
#   the policy rehab-keys-admin (policies/rehab-keys-admin.hcl) for the operator's `rehab keys rotate | retire`:
#     give it to the people who rotate keys (a token of theirs, not a ServiceAccount's).
#
# KUBERNETES_HOST: the API server OpenBao asks to review ServiceAccount tokens (default https://kubernetes.default.svc,
# right when OpenBao runs in the same cluster, with its own ServiceAccount's CA and token). For an OpenBao outside
# the cluster also set KUBERNETES_CA_CERT (a file: the API server's CA) and TOKEN_REVIEWER_JWT (a file: a token of a
# ServiceAccount bound to system:auth-delegator).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BAO=${BAO:-bao}
MOUNT=${REHAB_OPENBAO_TRANSIT_MOUNT:-transit}
NAMESPACE=${REHAB_NAMESPACE:-rehab}
KUBERNETES_HOST=${KUBERNETES_HOST:-https://kubernetes.default.svc}
SERVICES="intake referrals funds"

if ! "$BAO" secrets list -format=json | grep -q "\"$MOUNT/\""; then
  "$BAO" secrets enable -path="$MOUNT" transit
fi
if ! "$BAO" auth list -format=json | grep -q '"kubernetes/"'; then
  "$BAO" auth enable kubernetes
fi
set -- kubernetes_host="$KUBERNETES_HOST"
if [ -n "${KUBERNETES_CA_CERT:-}" ]; then set -- "$@" kubernetes_ca_cert=@"$KUBERNETES_CA_CERT"; fi
if [ -n "${TOKEN_REVIEWER_JWT:-}" ]; then set -- "$@" token_reviewer_jwt=@"$TOKEN_REVIEWER_JWT"; fi
"$BAO" write auth/kubernetes/config "$@" >/dev/null

# The policies name the mount `transit/`: written for the mount in use.
policy() {
  sed "s|\"transit/|\"$MOUNT/|" "$HERE/policies/$1.hcl" | "$BAO" policy write "$1" - >/dev/null
}

for service in $SERVICES; do
  key="rehab-$service"
  if ! "$BAO" read "$MOUNT/keys/$key" >/dev/null 2>&1; then
    "$BAO" write -f "$MOUNT/keys/$key" type=aes256-gcm96 >/dev/null
  fi
  policy "$key"
  "$BAO" write "auth/kubernetes/role/$key" \
    bound_service_account_names="$key" \
    bound_service_account_namespaces="$NAMESPACE" \
    audience=openbao \
    token_policies="$key" \
    token_no_default_policy=true \
    token_ttl=1h token_max_ttl=4h >/dev/null
  echo "rehab-$service: Transit key $MOUNT/keys/$key, policy $key, Kubernetes role $key ($NAMESPACE/$key)"
done
policy rehab-keys-admin
echo "rehab-keys-admin: policy written (for the operators who rotate and retire keys)"
