//! `validate`: kms-core's [`ValidateLayer`](kms_core::ValidateLayer).

use serde::Deserialize;

use crate::scalar;

/// `[stores.NAME.validate]` / `validate.*`: a tighter value-size limit checked at the top of
/// the stack. Maps onto [`kms_core::ValidateLayer`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// The largest value accepted, in bytes (default: the backend's own limit).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_value_len: Option<usize>,
}

impl ValidateConfig {
    /// The layer, validated.
    pub(crate) fn layer(&self, at: &super::at::At) -> kms_core::Result<kms_core::ValidateLayer> {
        let mut layer = kms_core::ValidateLayer::new();
        if let Some(n) = self.max_value_len {
            if n == 0 {
                return Err(crate::error::config_error(
                    &at.key("validate.max_value_len"),
                    "invalid value 0: expected at least 1 byte",
                ));
            }
            layer = layer.max_value_len(n);
        }
        Ok(layer)
    }
}
