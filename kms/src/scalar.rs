//! Numbers and booleans in configuration, given natively (TOML `5`, `0.5`, `true`) or as text
//! (URI query values and environment variables are always text: `"5"`, `"0.5"`, `"true"`).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// A scalar a configuration option can hold.
pub(crate) trait Scalar: Sized {
    /// What the error messages say is accepted.
    const EXPECTED: &'static str;
    /// From an integer, if it fits.
    fn from_int(v: i128) -> Option<Self>;
    /// From a float, if this type takes one.
    fn from_float(_: f64) -> Option<Self> {
        None
    }
    /// From a boolean, if this type takes one.
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    /// From text.
    fn from_text(v: &str) -> Option<Self>;
}

macro_rules! unsigned {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl Scalar for $t {
            const EXPECTED: &'static str = $what;
            fn from_int(v: i128) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_text(v: &str) -> Option<Self> {
                v.parse().ok()
            }
        }
    )*};
}

unsigned!(
    u8 => "an integer from 0 to 255",
    u32 => "a non-negative integer (32-bit)",
    u64 => "a non-negative integer",
    usize => "a non-negative integer",
);

impl Scalar for f64 {
    const EXPECTED: &'static str = "a number such as 0.5";
    #[allow(clippy::cast_precision_loss)]
    fn from_int(v: i128) -> Option<Self> {
        Some(v as f64)
    }
    fn from_float(v: f64) -> Option<Self> {
        v.is_finite().then_some(v)
    }
    fn from_text(v: &str) -> Option<Self> {
        v.parse::<f64>().ok().filter(|f| f.is_finite())
    }
}

impl Scalar for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_int(_: i128) -> Option<Self> {
        None
    }
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
    fn from_text(v: &str) -> Option<Self> {
        match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

struct ScalarVisitor<T>(PhantomData<T>);

impl<T: Scalar> ScalarVisitor<T> {
    fn bad<E: de::Error>(shown: impl fmt::Display) -> E {
        E::custom(format_args!(
            "invalid value {shown}: expected {}",
            T::EXPECTED
        ))
    }
}

impl<'de, T: Scalar> Visitor<'de> for ScalarVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::from_int(i128::from(v)).ok_or_else(|| Self::bad(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_int(i128::from(v)).ok_or_else(|| Self::bad(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        T::from_float(v).ok_or_else(|| Self::bad(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        T::from_bool(v).ok_or_else(|| Self::bad(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_text(v.trim()).ok_or_else(|| Self::bad(format_args!("{v:?}")))
    }
}

/// `#[serde(default, deserialize_with = "scalar::opt")]` for an `Option<T>`.
pub(crate) fn opt<'de, D: Deserializer<'de>, T: Scalar>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_any(ScalarVisitor::<T>(PhantomData)).map(Some)
}
