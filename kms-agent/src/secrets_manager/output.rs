//! The body of a successful request: the JSON of Secrets Manager's `GetSecretValue`, field for
//! field as the AWS agent writes it: `ARN`, `Name`, `VersionId` (null when unknown),
//! `SecretString` (a UTF-8 value) or `SecretBinary` (any other value, base64), `VersionStages`,
//! `CreatedDate` (Unix seconds with fraction, as a string, null when unknown).

use std::time::SystemTime;

use base64::Engine;
use kms::SecretValue;
use serde::ser::{Serialize, Serializer};
use zeroize::Zeroizing;

/// A secret's value as `SecretString` text, serialised without a copy.
struct Text<'a>(&'a str);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Output<'a> {
    #[serde(rename = "ARN")]
    arn: &'a str,
    name: &'a str,
    version_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_string: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_binary: Option<Text<'a>>,
    version_stages: &'a [&'a str],
    created_date: Option<String>,
}

/// `CreatedDate` as the AWS agent writes it: seconds since the epoch with their fraction, as
/// a decimal string (`"1569534789.046"`, `"1569534789"`).
pub fn created_date(t: SystemTime) -> Option<String> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64().to_string())
}

/// The response body of a secret.
pub struct Secret<'a> {
    /// `ARN`.
    pub arn: &'a str,
    /// `Name`.
    pub name: &'a str,
    /// `VersionId`.
    pub version_id: Option<&'a str>,
    /// The value.
    pub value: &'a SecretValue,
    /// `VersionStages`.
    pub stages: &'a [&'a str],
    /// `CreatedDate`.
    pub created: Option<SystemTime>,
}

impl Secret<'_> {
    /// The JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let binary;
        let (secret_string, secret_binary) = match std::str::from_utf8(self.value.expose_secret()) {
            Ok(text) => (Some(Text(text)), None),
            Err(_) => {
                binary = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(self.value.expose_secret()),
                );
                (None, Some(Text(binary.as_str())))
            }
        };
        let out = Output {
            arn: self.arn,
            name: self.name,
            version_id: self.version_id,
            secret_string,
            secret_binary,
            version_stages: self.stages,
            created_date: self.created.and_then(created_date),
        };
        serde_json::to_vec(&out).expect("serialising plain fields cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_aws_agents_fields() {
        let value = SecretValue::from("hunter2");
        let body = Secret {
            arn: "arn:kms:secretsmanager:s:000000000000:secret:MyTest",
            name: "MyTest",
            version_id: Some("5767290c"),
            value: &value,
            stages: &["AWSCURRENT"],
            created: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_569_534_789_046)),
        }
        .to_json();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["ARN"],
            "arn:kms:secretsmanager:s:000000000000:secret:MyTest"
        );
        assert_eq!(v["Name"], "MyTest");
        assert_eq!(v["VersionId"], "5767290c");
        assert_eq!(v["SecretString"], "hunter2");
        assert!(v.get("SecretBinary").is_none());
        assert_eq!(v["VersionStages"], serde_json::json!(["AWSCURRENT"]));
        assert_eq!(v["CreatedDate"], "1569534789.046");
        // Field order as the AWS agent writes them.
        let text = String::from_utf8(body).unwrap();
        let order: Vec<usize> = [
            "\"ARN\"",
            "\"Name\"",
            "\"VersionId\"",
            "\"SecretString\"",
            "\"VersionStages\"",
            "\"CreatedDate\"",
        ]
        .iter()
        .map(|f| text.find(f).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn binary_values_are_base64_and_unknowns_null() {
        let value = SecretValue::from(vec![0xff, 0x00, 0x01]);
        let body = Secret {
            arn: "a",
            name: "n",
            version_id: None,
            value: &value,
            stages: &[],
            created: None,
        }
        .to_json();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["SecretBinary"], "/wAB");
        assert!(v.get("SecretString").is_none());
        assert!(v["VersionId"].is_null());
        assert!(v["CreatedDate"].is_null());
        assert_eq!(v["VersionStages"], serde_json::json!([]));
    }

    #[test]
    fn whole_seconds_have_no_fraction() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_569_534_789);
        assert_eq!(created_date(t).unwrap(), "1569534789");
    }
}
