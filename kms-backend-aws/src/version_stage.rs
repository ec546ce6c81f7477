//! [`VersionStage`]: which version of a secret a read returns.

use std::fmt;

/// A Secrets Manager staging label. Rotation moves `AWSCURRENT` to the new version and
/// `AWSPREVIOUS` to the one before, so a service can accept both during the grace period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VersionStage {
    /// `AWSCURRENT`: the version `get` returns by default.
    #[default]
    Current,
    /// `AWSPREVIOUS`: the version before the current one (rotation grace).
    Previous,
    /// `AWSPENDING`: the version a rotation is testing.
    Pending,
    /// A custom staging label.
    Custom(String),
}

impl VersionStage {
    /// The label AWS uses.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Current => "AWSCURRENT",
            Self::Previous => "AWSPREVIOUS",
            Self::Pending => "AWSPENDING",
            Self::Custom(label) => label,
        }
    }
}

impl fmt::Display for VersionStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
