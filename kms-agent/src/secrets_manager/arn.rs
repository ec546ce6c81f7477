//! ARNs: the ones the agent writes into responses, and the ones it accepts as `secretId`.
//!
//! A store's API does not return an ARN, so the agent synthesises one for every store, AWS
//! included: `arn:kms:secretsmanager:<store>:000000000000:secret:<name>`. The partition `kms`
//! says it is not AWS's; the region field is the store's name, so such an ARN given back as
//! `secretId` reads that store (any configured store, not only the default one).
//!
//! A real AWS ARN (`arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random
//! characters>`) reads `<name>` in the default store: the six-character suffix AWS appends is
//! removed when it is there. (As with AWS's own partial ARNs, a name that itself ends in `-`
//! and six letters or digits is ambiguous; use the name.)

/// The account field of synthesised ARNs.
pub const ACCOUNT: &str = "000000000000";

/// The ARN the agent reports for `name` in `store`.
pub fn synthesize(store: &str, name: &str) -> String {
    format!("arn:kms:secretsmanager:{store}:{ACCOUNT}:secret:{name}")
}

/// What a `secretId` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A name in the default store.
    Default(&'a str),
    /// A name in the store of that name (from a `kms`-partition ARN).
    Store {
        /// The store.
        store: &'a str,
        /// The name.
        name: &'a str,
    },
}

/// Where `secret_id` points.
pub fn target(secret_id: &str) -> Target<'_> {
    let Some(rest) = secret_id.strip_prefix("arn:") else {
        return Target::Default(secret_id);
    };
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    let [
        partition,
        "secretsmanager",
        region,
        _account,
        "secret",
        name,
    ] = parts.as_slice()
    else {
        return Target::Default(secret_id);
    };
    if *partition == "kms" {
        return Target::Store {
            store: region,
            name,
        };
    }
    Target::Default(strip_random_suffix(name))
}

/// `name-AbCdEf` → `name`.
fn strip_random_suffix(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() > 7
        && b[b.len() - 7] == b'-'
        && b[b.len() - 6..].iter().all(u8::is_ascii_alphanumeric)
    {
        &name[..name.len() - 7]
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesised_arns_round_trip() {
        let arn = synthesize("vault", "app/db");
        assert_eq!(
            arn,
            "arn:kms:secretsmanager:vault:000000000000:secret:app/db"
        );
        assert_eq!(
            target(&arn),
            Target::Store {
                store: "vault",
                name: "app/db"
            }
        );
    }

    #[test]
    fn aws_arns_name_the_secret_in_the_default_store() {
        assert_eq!(
            target("arn:aws:secretsmanager:us-west-2:123456789012:secret:MySecret-AbCdEf"),
            Target::Default("MySecret")
        );
        assert_eq!(
            target("arn:aws:secretsmanager:us-west-2:123456789012:secret:app/db-x1y2z3"),
            Target::Default("app/db")
        );
        assert_eq!(
            target("arn:aws:secretsmanager:us-west-2:123456789012:secret:short"),
            Target::Default("short")
        );
    }

    #[test]
    fn names_and_other_arns_are_names() {
        assert_eq!(target("MyTest"), Target::Default("MyTest"));
        assert_eq!(
            target("arn:aws:ssm:x:y:parameter/p"),
            Target::Default("arn:aws:ssm:x:y:parameter/p")
        );
    }
}
