# Supply-chain and parser checks (sourced by scripts/test; nothing listens anywhere):
# `cargo deny check licenses bans` with the policy in deny.toml, then every fuzz target for
# 15 s on its committed corpus (scripts/fuzz). cargo-deny and cargo-fuzz are installed into
# $KMS_TOOLS when missing; the fuzz targets need the nightly toolchain.
PEERS+=(hygiene)

hygiene_check() {
    export PATH="$KMS_TOOLS/bin:$PATH"
    if ! command -v cargo-deny >/dev/null; then
        log "cargo install cargo-deny (into $KMS_TOOLS)"
        cargo install --locked --root "$KMS_TOOLS" cargo-deny@0.20.2
    fi
    log "cargo deny check licenses bans"
    cargo deny --log-level error check licenses bans
    scripts/fuzz
}
