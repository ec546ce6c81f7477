//! [`At`]: where a store's options came from, so that every error names the key as the user
//! wrote it. A leaf: every configuration module uses it, it uses none of them.

/// Where a store's options came from, to name keys in errors: `stores.NAME.cache.ttl` in a
/// file, `cache.ttl` (and `mount` for `vault.mount`) in a URI.
#[derive(Clone, Debug)]
pub(crate) struct At {
    prefix: String,
    implicit_backend: Option<&'static str>,
}

impl At {
    pub(crate) fn store(name: &str) -> Self {
        Self {
            prefix: format!("stores.{name}."),
            implicit_backend: None,
        }
    }

    pub(crate) fn uri(backend: &'static str) -> Self {
        Self {
            prefix: String::new(),
            implicit_backend: Some(backend),
        }
    }

    /// The name of `path` (a dotted path inside the store) as the user wrote it.
    pub(crate) fn key(&self, path: &str) -> String {
        let path = match self.implicit_backend {
            Some(b) => match path.strip_prefix(b) {
                Some("") => "",
                Some(rest) if rest.starts_with('.') => &rest[1..],
                _ => path,
            },
            None => path,
        };
        if path.is_empty() {
            return self.whole();
        }
        format!("{}{path}", self.prefix)
    }

    /// The store's name in a configuration file (none for a URI).
    #[cfg(feature = "metrics")]
    pub(crate) fn store_name(&self) -> Option<&str> {
        self.prefix
            .strip_prefix("stores.")
            .and_then(|p| p.strip_suffix('.'))
    }

    /// The store itself.
    pub(crate) fn whole(&self) -> String {
        match self.prefix.strip_suffix('.') {
            Some(p) => p.to_owned(),
            None => "uri".to_owned(),
        }
    }
}
