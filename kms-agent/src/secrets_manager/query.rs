//! The request forms of the AWS agent, parsed as it parses them:
//! `/secretsmanager/get?secretId=…&versionId=…&versionStage=…&refreshNow=…&roleArn=…` and
//! `<path_prefix><secretId>?versionId=…&versionStage=…&refreshNow=…&roleArn=…`.
//!
//! Errors are the AWS agent's: status 400 with its plain-text message (`missing parameter
//! secretId`, `unknown parameter: abc`, `invalid refreshNow value`, `missing secret ID`, the
//! `roleArn` format message). Query values are form-decoded; the path form's secret id is the
//! normalised path after the prefix, not percent-decoded (as the AWS agent takes it).

use std::borrow::Cow;

/// A `GetSecretValue` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetQuery {
    /// The secret's name or ARN.
    pub secret_id: String,
    /// A version id.
    pub version_id: Option<String>,
    /// A staging label.
    pub version_stage: Option<String>,
    /// Bypass the cache.
    pub refresh_now: bool,
    /// A role to assume (validated, then refused: not supported).
    pub role_arn: Option<String>,
}

/// A 400 with the AWS agent's plain-text message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError(pub String);

fn parse_refresh(v: &str) -> Result<bool, QueryError> {
    match v.to_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(QueryError("invalid refreshNow value".into())),
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<name>`, the AWS agent's check.
fn valid_role_arn(arn: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let Some(rest) = arn.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    if partition.is_empty() || !partition.chars().all(|c| word(c) || c == '-') {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(name) = rest.strip_prefix("role/") else {
        return false;
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| word(c) || matches!(c, '+' | '=' | ',' | '.' | '@' | '/' | '-'))
}

fn parse_url(path_and_query: &str) -> Result<url::Url, QueryError> {
    // Only the path and query matter; the host is a placeholder.
    url::Url::parse(&format!("http://localhost{path_and_query}"))
        .map_err(|e| QueryError(e.to_string()))
}

impl GetQuery {
    fn apply(
        &mut self,
        k: &str,
        v: Cow<'_, str>,
        secret_id_allowed: bool,
    ) -> Result<(), QueryError> {
        match k {
            "secretId" if secret_id_allowed => self.secret_id = v.into_owned(),
            "versionId" => self.version_id = Some(v.into_owned()),
            "versionStage" => self.version_stage = Some(v.into_owned()),
            "refreshNow" => self.refresh_now = parse_refresh(&v)?,
            "roleArn" => self.role_arn = Some(v.into_owned()),
            other => return Err(QueryError(format!("unknown parameter: {other}"))),
        }
        Ok(())
    }

    fn check_role(&self) -> Result<(), QueryError> {
        match &self.role_arn {
            Some(arn) if !valid_role_arn(arn) => Err(QueryError(
                "invalid roleArn format, expected arn:<partition>:iam::<account>:role/<name>"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// `/secretsmanager/get?…` (`path_and_query` as received).
    ///
    /// # Errors
    ///
    /// The AWS agent's 400 messages.
    pub fn from_query(path_and_query: &str) -> Result<Self, QueryError> {
        let url = parse_url(path_and_query)?;
        let mut q = Self::default();
        for (k, v) in url.query_pairs() {
            q.apply(&k, v, true)?;
        }
        if q.secret_id.is_empty() {
            return Err(QueryError("missing parameter secretId".into()));
        }
        q.check_role()?;
        Ok(q)
    }

    /// `<prefix><secretId>?…`.
    ///
    /// # Errors
    ///
    /// The AWS agent's 400 messages.
    pub fn from_path(path_and_query: &str, prefix: &str) -> Result<Self, QueryError> {
        let url = parse_url(path_and_query)?;
        let secret_id = match url.path().get(prefix.len()..) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => return Err(QueryError("missing secret ID".into())),
        };
        let mut q = Self {
            secret_id,
            ..Self::default()
        };
        for (k, v) in url.query_pairs() {
            q.apply(&k, v, false)?;
        }
        q.check_role()?;
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_form() {
        let q = GetQuery::from_query("/secretsmanager/get?secretId=MyTest").unwrap();
        assert_eq!(q.secret_id, "MyTest");
        assert_eq!(
            (q.version_id, q.version_stage, q.refresh_now),
            (None, None, false)
        );
        let q = GetQuery::from_query(
            "/secretsmanager/get?secretId=a%2Fb+c&versionId=v&versionStage=AWSPENDING&refreshNow=TRUE",
        )
        .unwrap();
        assert_eq!(q.secret_id, "a/b c");
        assert_eq!(q.version_id.as_deref(), Some("v"));
        assert_eq!(q.version_stage.as_deref(), Some("AWSPENDING"));
        assert!(q.refresh_now);
        assert!(
            !GetQuery::from_query("/secretsmanager/get?secretId=x&refreshNow=0")
                .unwrap()
                .refresh_now
        );
    }

    #[test]
    fn query_errors_are_the_aws_agents() {
        let e = |s| GetQuery::from_query(s).unwrap_err().0;
        assert_eq!(e("/secretsmanager/get"), "missing parameter secretId");
        assert_eq!(
            e("/secretsmanager/get?versionStage=AWSPENDING"),
            "missing parameter secretId"
        );
        assert_eq!(
            e("/secretsmanager/get?secretId=x&abc=1"),
            "unknown parameter: abc"
        );
        assert_eq!(
            e("/secretsmanager/get?secretId=x&refreshNow=123"),
            "invalid refreshNow value"
        );
        assert_eq!(
            e("/secretsmanager/get?secretId=x&roleArn=not-a-valid-arn"),
            "invalid roleArn format, expected arn:<partition>:iam::<account>:role/<name>"
        );
    }

    #[test]
    fn path_form() {
        let q = GetQuery::from_path("/v1/MyTest?versionId=v&versionStage=dev", "/v1/").unwrap();
        assert_eq!(q.secret_id, "MyTest");
        assert_eq!(q.version_id.as_deref(), Some("v"));
        let q = GetQuery::from_path("/v1/app/db/password", "/v1/").unwrap();
        assert_eq!(q.secret_id, "app/db/password");
        let q = GetQuery::from_path(
            "/v1/arn:aws:secretsmanager:us-east-1:987654321098:secret:MySecret-AbCdEf",
            "/v1/",
        )
        .unwrap();
        assert!(q.secret_id.starts_with("arn:aws:"));
        let e = |s| GetQuery::from_path(s, "/v1/").unwrap_err().0;
        assert_eq!(e("/v1/"), "missing secret ID");
        assert_eq!(e("/v1/?versionId=x"), "missing secret ID");
        assert_eq!(e("/v1/x?abc=1"), "unknown parameter: abc");
        assert_eq!(e("/v1/x?secretId=y"), "unknown parameter: secretId");
    }

    #[test]
    fn role_arns() {
        assert!(valid_role_arn(
            "arn:aws:iam::987654321098:role/SecretAccessRole"
        ));
        assert!(valid_role_arn(
            "arn:aws-us-gov:iam::987654321098:role/path/R+=,.@-"
        ));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:user/SomeUser"));
        assert!(!valid_role_arn("arn:aws:iam::12345:role/R"));
        assert!(!valid_role_arn(
            "arn:aws:iam::987654321098:role/test\",\"injected\":\"value"
        ));
        assert!(!valid_role_arn("garbage"));
    }
}
