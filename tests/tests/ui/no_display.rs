// Every type that holds a credential or a secret value implements no `Display`: a secret
// can only be shown through its redacting `Debug`, or read through `expose_secret()`.
// Each line below must fail to compile; the .stderr file lists one error per type.

fn check<T: std::fmt::Display>() {}

fn main() {
    check::<kms_core::SecretValue>();
    check::<kms_core::StoredSecret>();
    check::<kms_core::DataKey>();
    check::<kms_backend_vault::VaultAuth>();
    check::<kms_backend_vault::VaultClient>();
    check::<kms_backend_vault::VaultClientBuilder>();
    check::<kms_backend_vault::VaultStoreBuilder>();
    check::<kms_backend_aws::AwsConnection>();
    check::<kms::Config>();
    check::<kms::StoreConfig>();
    check::<kms::config::vault::VaultAuthConfig>();
    check::<kms::config::vault::VaultConnectionConfig>();
    check::<kms::config::vault::VaultConfig>();
    check::<kms::config::aws::AwsConnectionConfig>();
    check::<kms::config::aws::AwsConfig>();
    check::<kms::config::envelope::EnvelopeConfig>();
    check::<kms_cli::bundle::Bundle>();
    check::<kms_agent::token::Token>();
    check::<kms_agent::AgentConfig>();
}
