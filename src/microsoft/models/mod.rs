//! Wire models of the Graph GDAP API, Graph directory reads, Partner Center consents and
//! Partner Center webhook registrations.
//!
//! Contract: every documented field is typed; optional or server-set fields are `Option`.
//! Enums are *open*: a value this client does not know deserialises to `Unknown(text)` and
//! serialises back verbatim, so a new Microsoft enum member is never fatal. Timestamps accept
//! Graph's 7-digit fractions, a missing zone (UTC assumed) and the empty string (as `None`).

pub mod directory;
pub mod gdap;
pub mod partner_center;
pub mod webhooks;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Defines an open string enum: known variants plus `Unknown(String)`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this client does not know, preserved verbatim.
            Unknown(String),
        }

        impl $name {
            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unknown(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($wire => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<str>::deserialize(d)?;
                Ok($name::from(s.as_ref()))
            }
        }
    };
}
pub(crate) use open_enum;

/// A page of a Graph collection. `value` is required: a 200 answer without it (a proxy's page,
/// a truncated body) is an `InvalidResponse` error, never an empty page — a listing that could
/// not be read must not look like "nothing exists".
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub value: Vec<T>,
    /// The next page, if any.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// The delta link (last page of a delta round).
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// Deserialises an optional Graph timestamp leniently (see the module docs).
pub fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|n| Some(n.and_utc()))
        .map_err(|e| serde::de::Error::custom(format!("bad timestamp {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "lenient_time")]
        at: Option<DateTime<Utc>>,
    }

    #[test]
    fn a_page_without_value_is_an_error_not_an_empty_page() {
        assert!(
            serde_json::from_str::<Page<serde_json::Value>>(r#"{"@odata.context":"x"}"#).is_err()
        );
        assert!(serde_json::from_str::<Page<serde_json::Value>>("{}").is_err());
        let empty: Page<serde_json::Value> = serde_json::from_str(r#"{"value":[]}"#).unwrap();
        assert!(empty.value.is_empty() && empty.next_link.is_none());
    }

    #[test]
    fn timestamps_are_lenient() {
        let t: T = serde_json::from_str(r#"{"at":"2022-02-10T11:24:42.3148266Z"}"#).unwrap();
        assert_eq!(t.at.unwrap().timestamp_subsec_micros(), 314826);
        let t: T = serde_json::from_str(r#"{"at":""}"#).unwrap();
        assert!(t.at.is_none());
        let t: T = serde_json::from_str(r#"{"at":null}"#).unwrap();
        assert!(t.at.is_none());
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert!(t.at.is_none());
        let t: T = serde_json::from_str(r#"{"at":"2020-08-18T12:51:51"}"#).unwrap();
        assert_eq!(t.at.unwrap().to_rfc3339(), "2020-08-18T12:51:51+00:00");
        assert!(serde_json::from_str::<T>(r#"{"at":"yesterday"}"#).is_err());
    }
}
