//! The command line, as clap derive types.

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::redact::{Hidden, OptSpec, Spec};

/// Inspect, copy, migrate, rotate, export and import keys in any store the `kms` facade opens
/// (Vault / OpenBao, AWS Secrets Manager, the OS keyring, memory).
///
/// Secrets are never printed unless you ask (`--reveal`), never taken from the command line
/// unless you insist (`put --value`), and files holding them are created with mode 0600.
///
/// `Debug` shows store URIs without their query values or user-info (see
/// [`crate::redact::store_spec`]) and never a `--value`.
#[derive(Parser)]
#[command(name = "kms", version, after_help = EXAMPLES)]
pub struct Cli {
    /// The store, as a URI (`vault+https://vault:8200/secret?auth.token=env:VAULT_TOKEN`,
    /// `aws-sm://eu-west-1/app`, `keyring://my-service`, `memory://`).
    ///
    /// The variable's value is never shown in help or errors: it may hold a token.
    #[arg(
        long,
        global = true,
        env = "KMS_STORE",
        hide_env_values = true,
        conflicts_with = "name"
    )]
    pub store: Option<String>,

    /// A kms configuration file (TOML, `[stores.NAME]` tables); `KMS_STORES__…` variables
    /// override it.
    #[arg(long, global = true, env = "KMS_CONFIG", hide_env_values = true)]
    pub config: Option<PathBuf>,

    /// The store's name in the configuration file (default: its `default` store).
    #[arg(long, global = true)]
    pub name: Option<String>,

    /// Machine-readable JSON: every run prints exactly one JSON document, the result on
    /// stdout, or `{"error":{…}}` on stderr when the command fails without a result (usage
    /// errors too).
    #[arg(long, global = true)]
    pub json: bool,

    /// Tracing output on stderr: -v info, -vv debug, -vvv trace. Values are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl fmt::Debug for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cli")
            .field("store", &OptSpec(self.store.as_deref()))
            .field("config", &self.config)
            .field("name", &self.name)
            .field("json", &self.json)
            .field("verbose", &self.verbose)
            .field("command", &self.command)
            .finish()
    }
}

const EXAMPLES: &str = "\
Examples:
  printf %s \"$DB_PASSWORD\" | kms --store \"$STORE\" put payments/db/password
  kms --store \"$STORE\" get payments/db/password
  kms --store \"$STORE\" ls payments/ --long
  kms --store \"$STORE\" rotate payments/signing-key --bytes 32
  kms migrate keyring://payments \"vault+https://vault:8200/secret?auth.token=env:VAULT_TOKEN\" --dry-run
  kms diff keyring://payments \"vault+https://vault:8200/secret?auth.token=env:VAULT_TOKEN\"";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a key's metadata (version, created, updated, length); the value only with
    /// --reveal or --output.
    Get(GetArgs),
    /// Write a key from stdin (or --file); prints the new version.
    Put(PutArgs),
    /// List key names under a prefix.
    Ls(LsArgs),
    /// Remove keys (asks first unless --yes).
    Rm(RmArgs),
    /// Show the versions of a key that the store can tell about.
    Versions(VersionsArgs),
    /// Replace a key's value with fresh random bytes (or stdin); prints old and new version.
    Rotate(RotateArgs),
    /// Copy one key to another name (or to another store with --to).
    Copy(CopyArgs),
    /// Copy every key under a prefix from one store to another; safe to re-run.
    Migrate(MigrateArgs),
    /// Compare the keys of two stores (names and values; values are never printed).
    Diff(DiffArgs),
    /// Write keys to an age-encrypted bundle file (mode 0600).
    Export(ExportArgs),
    /// Read keys from a bundle file written by export.
    Import(ImportArgs),
    /// Check that the store is up (exit 0) or not (exit 5, 4 …).
    Health,
    /// Print a line whenever a key's version (or value) changes, or keys under a prefix do.
    Watch(WatchArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key.
    pub key: String,
    /// Read this version instead of the current one.
    #[arg(long = "version", value_name = "V")]
    pub at_version: Option<String>,
    /// Also print the value (UTF-8 as text, anything else as base64).
    #[arg(long)]
    pub reveal: bool,
    /// Write the raw value to this new file, created with mode 0600 (never overwritten).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only this field of a JSON-object secret (as `bao kv get -field=NAME`): a string
    /// field's text, any other field's JSON.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
}

/// `put`. `Debug` never shows `--value`.
#[derive(Args)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// Read the value from this file (exact bytes) instead of stdin.
    #[arg(long, short, value_name = "FILE", conflicts_with = "value")]
    pub file: Option<PathBuf>,
    /// The value itself. Discouraged: argv is visible to every user in `ps` and lands in
    /// shell history; a warning is printed.
    #[arg(long, value_name = "VALUE")]
    pub value: Option<String>,
    /// Write only if the current version is VERSION (check-and-set; `0`: only if the key
    /// does not exist). Vault KV v2, AWS Secrets Manager and memory; other stores answer
    /// Unsupported (exit 8).
    #[arg(long, value_name = "VERSION")]
    pub cas: Option<String>,
    /// Set only this field of a JSON-object secret to the value (text), keeping the other
    /// fields. The secret must exist, unless --create is given.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    /// With --field: create a secret that does not exist as `{"NAME": value}`.
    #[arg(long, requires = "field")]
    pub create: bool,
}

impl fmt::Debug for PutArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutArgs")
            .field("key", &self.key)
            .field("file", &self.file)
            .field("value", &Hidden(self.value.is_some()))
            .field("cas", &self.cas)
            .field("field", &self.field)
            .field("create", &self.create)
            .finish()
    }
}

/// `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only names starting with this (a plain string prefix).
    #[arg(default_value = "")]
    pub prefix: String,
    /// Also show each key's version and updated time (reads each key).
    #[arg(long, short)]
    pub long: bool,
}

/// `rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The keys.
    #[arg(required = true)]
    pub keys: Vec<String>,
    /// Do not ask. Required when stdin is not a terminal.
    #[arg(long, short)]
    pub yes: bool,
}

/// `versions`.
#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The key.
    pub key: String,
    /// Look back at most this many versions before the current one.
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
}

/// How `rotate` encodes fresh random bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// URL-safe base64 without padding (the default): text every reader decodes.
    #[default]
    Base64url,
    /// Standard base64 with padding.
    Base64,
    /// Lower-case hex (2 characters a byte).
    Hex,
    /// The bytes themselves (not text: readers expecting UTF-8 cannot decode them).
    Raw,
}

/// `rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The key (must exist).
    pub key: String,
    /// Random bytes in the new value (from the OS CSPRNG), 1 to 65536.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub bytes: u32,
    /// How the random bytes are written: base64url (the default), base64, hex or raw.
    #[arg(long, value_enum)]
    pub encoding: Option<Encoding>,
    /// Take the new value from stdin instead of generating one.
    #[arg(long, conflicts_with_all = ["bytes", "encoding"])]
    pub stdin: bool,
    /// Rotate only this field of a JSON-object secret (it must exist), keeping the other
    /// fields.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    /// Replace a value that is a JSON object as a whole (refused otherwise: it would lose
    /// the other fields).
    #[arg(long, conflicts_with = "field")]
    pub whole: bool,
}

/// `copy`. `Debug` shows `--to` as [`crate::redact::store_spec`] does.
#[derive(Args)]
pub struct CopyArgs {
    /// The key to read.
    pub src_key: String,
    /// The key to write.
    pub dst_key: String,
    /// Write into this store (URI or configured name) instead of the same one.
    #[arg(long, value_name = "STORE")]
    pub to: Option<String>,
    /// Replace DST_KEY if it holds a different value.
    #[arg(long)]
    pub overwrite: bool,
}

impl fmt::Debug for CopyArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyArgs")
            .field("src_key", &self.src_key)
            .field("dst_key", &self.dst_key)
            .field("to", &OptSpec(self.to.as_deref()))
            .field("overwrite", &self.overwrite)
            .finish()
    }
}

/// `migrate`. `Debug` shows the stores as [`crate::redact::store_spec`] does.
#[derive(Args)]
pub struct MigrateArgs {
    /// The source store (URI or configured name).
    pub from: String,
    /// The destination store (URI or configured name).
    pub to: String,
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Decide and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// What to do with keys already in the destination.
    #[command(flatten)]
    pub existing: ExistingArgs,
    /// Keys in flight at once, 1 to 256.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

impl fmt::Debug for MigrateArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrateArgs")
            .field("from", &Spec(&self.from))
            .field("to", &Spec(&self.to))
            .field("prefix", &self.prefix)
            .field("dry_run", &self.dry_run)
            .field("existing", &self.existing)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// What to do with keys that exist in the destination with a different value (equal values
/// are always skipped; by default a different value fails that key with a conflict).
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ExistingArgs {
    /// Keep existing destination keys, whatever their value.
    #[arg(long)]
    pub skip_existing: bool,
    /// Replace existing destination keys whose value differs.
    #[arg(long)]
    pub overwrite: bool,
}

/// `diff`. `Debug` shows the stores as [`crate::redact::store_spec`] does.
#[derive(Args)]
pub struct DiffArgs {
    /// The first store (URI or configured name).
    pub a: String,
    /// The second store (URI or configured name).
    pub b: String,
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Exit 1 when the stores differ (like diff(1)).
    #[arg(long)]
    pub exit_code: bool,
}

impl fmt::Debug for DiffArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiffArgs")
            .field("a", &Spec(&self.a))
            .field("b", &Spec(&self.b))
            .field("prefix", &self.prefix)
            .field("exit_code", &self.exit_code)
            .finish()
    }
}

/// How export and import protect the bundle.
#[derive(Debug, Args)]
pub struct ProtectionArgs {
    /// Read the passphrase from this file (first line) instead of KMS_PASSPHRASE or a prompt.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Write (export) or read (import) an unencrypted bundle. The file holds every value in
    /// the clear.
    #[arg(long = "plaintext-i-understand")]
    pub plaintext: bool,
}

/// `export`. `Debug` shows a `--recipient` only when it looks like one (`age1…`): a pasted
/// identity is a secret key.
#[derive(Args)]
pub struct ExportArgs {
    /// The bundle file to create (never overwritten; mode 0600).
    pub file: PathBuf,
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Encrypt to this age recipient (`age1…`) instead of a passphrase; repeatable.
    #[arg(long, short, value_name = "AGE_RECIPIENT", conflicts_with_all = ["passphrase_file", "plaintext"])]
    pub recipient: Vec<String>,
    /// How the bundle is protected.
    #[command(flatten)]
    pub protection: ProtectionArgs,
}

impl fmt::Debug for ExportArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recipients: Vec<&str> = self
            .recipient
            .iter()
            .map(|r| {
                if r.starts_with("age1") {
                    r.as_str()
                } else {
                    "<not a recipient: hidden>"
                }
            })
            .collect();
        f.debug_struct("ExportArgs")
            .field("file", &self.file)
            .field("prefix", &self.prefix)
            .field("recipient", &recipients)
            .field("protection", &self.protection)
            .finish()
    }
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle file.
    pub file: PathBuf,
    /// An age identity file (`AGE-SECRET-KEY-1…` lines) for a bundle encrypted to a recipient.
    #[arg(long, short, value_name = "FILE", conflicts_with_all = ["passphrase_file", "plaintext"])]
    pub identity: Option<PathBuf>,
    /// How the bundle is protected.
    #[command(flatten)]
    pub protection: ProtectionArgs,
    /// Decide and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// What to do with keys already in the destination.
    #[command(flatten)]
    pub existing: ExistingArgs,
    /// Keys in flight at once, 1 to 256.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

/// `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The key (with --prefix: the prefix).
    pub key: String,
    /// Watch every key whose name starts with KEY instead of one key.
    #[arg(long)]
    pub prefix: bool,
    /// Time between reads (`500ms`, `5s`, `1m`); each wait varies by up to 10 %.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Exit after this many changes (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    pub changes: Option<u64>,
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn skip_existing_and_overwrite_exclude_each_other() {
        let err =
            Cli::try_parse_from(["kms", "migrate", "a", "b", "--skip-existing", "--overwrite"])
                .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let ok = Cli::try_parse_from(["kms", "get", "k", "--version", "3"]).unwrap();
        let Command::Get(get) = ok.command else {
            panic!()
        };
        assert_eq!(get.at_version.as_deref(), Some("3"));
    }

    #[test]
    fn debug_never_shows_a_uri_credential_or_a_value() {
        let uri = "vault+http://u:T0P@h:8200/secret?auth.token=T0P";
        for args in [
            &["kms", "--store", uri, "put", "k", "--value", "s3cret"][..],
            &["kms", "migrate", uri, uri],
            &["kms", "diff", uri, uri],
            &["kms", "copy", "a", "b", "--to", uri],
            &["kms", "export", "f", "--recipient", "AGE-SECRET-KEY-1T0P"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let debug = format!("{cli:?}");
            assert!(!debug.contains("T0P"), "{debug}");
            assert!(!debug.contains("s3cret"), "{debug}");
            assert!(
                debug.contains("auth.token=") || debug.contains("hidden"),
                "{debug}"
            );
        }
    }
}
