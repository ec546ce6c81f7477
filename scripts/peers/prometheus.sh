# Prometheus and promtool (Debian's `prometheus` package) for the monitoring assets and the
# end-to-end metrics test (sourced by scripts/test). The test starts its own Prometheus on
# 127.0.0.1 with a temporary config and storage; this file only installs it and exports where.
APT_PACKAGES+=(prometheus)
PEERS+=(prometheus)

prometheus_start() {
    export KMS_TEST_PROMETHEUS_BIN
    KMS_TEST_PROMETHEUS_BIN=$(command -v prometheus)
}

prometheus_check() {
    promtool check rules monitoring/alerts.yml
    promtool test rules monitoring/alerts.test.yml
    python3 -m json.tool monitoring/dashboard.json >/dev/null
}
