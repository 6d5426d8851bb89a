//! How setting values are written, in the file, the environment and on the command line:
//! durations (`14d`, `12h`, `30m`, `90s`), settings counted in seconds, lists, secrets
//! and the few named choices.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::tuf::crypto::KeyAlgorithm;

const DURATION_FORM: &str = "a duration such as 14d, 12h, 30m or 90s";

/// `14d`, `12h`, `30m`, `90s`. Zero is allowed here; the settings that must be positive
/// say so when they are checked.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not {DURATION_FORM}"))?;
    let scale = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        "" => return Err(format!("{text:?} needs a unit: d, h, m or s")),
        _ => return Err(format!("{text:?}: the unit must be d, h, m or s")),
    };
    n.checked_mul(scale).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long"))
}

/// A number of seconds (`300`), or a duration with its unit (`5m`): for the settings that
/// have always been given in seconds.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => parse_duration(text),
    }
}

/// The shortest exact form in days, hours or seconds: `14d`, `12h`, `120s`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{s}s"),
    }
}

/// Checks a flag's duration and passes its text on, to be read like the file's and the
/// environment's (clap `value_parser`).
pub fn duration_text(text: &str) -> Result<String, String> {
    parse_duration(text).map(|_| text.to_owned())
}

/// As [`duration_text`], for the settings counted in seconds.
pub fn seconds_text(text: &str) -> Result<String, String> {
    parse_seconds(text).map(|_| text.to_owned())
}

/// A duration written with its unit (`"14d"`); the file may not leave the unit out.
pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor { bare_seconds: false })
    }
}

/// A duration in seconds: a bare number (`300`) or a duration with its unit (`"5m"`).
pub mod seconds {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor { bare_seconds: true })
    }
}

struct DurationVisitor {
    bare_seconds: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.bare_seconds { write!(f, "a number of seconds or {DURATION_FORM}") } else { f.write_str(DURATION_FORM) }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        let parsed = if self.bare_seconds { parse_seconds(text) } else { parse_duration(text) };
        parsed.map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
        if self.bare_seconds {
            Ok(Duration::from_secs(seconds))
        } else {
            Err(E::custom(format!("{seconds} needs a unit: write \"{seconds}s\" for seconds")))
        }
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        match u64::try_from(n) {
            Ok(seconds) => self.visit_u64(seconds),
            Err(_) => Err(E::custom(format!("{n}: a duration cannot be negative"))),
        }
    }
}

/// A list: an array in the file and from repeated flags, comma-separated in the
/// environment (`NOTARIUS_GUN_PREFIXES=docker.io/acme/,example.com/`).
pub mod list {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Vec<String>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings, or one comma-separated string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<String>, E> {
                Ok(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(items)
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// `ecdsa` or `ed25519`.
pub mod key_algorithm {
    use super::*;

    pub fn serialize<S: Serializer>(value: &KeyAlgorithm, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<KeyAlgorithm, D::Error> {
        let name = String::deserialize(deserializer)?;
        KeyAlgorithm::parse(&name)
            .ok_or_else(|| de::Error::custom(format!("{name:?}: the key algorithm is ecdsa or ed25519")))
    }
}

/// Visibility of new repositories once accounts exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Readable anonymously.
    Public,
    /// Readable by the users and teams granted access.
    Private,
}

/// How `notarius serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per event, with the fields of the request span, for log collectors.
    Json,
}

/// The text shown for every secret, in `config print` and in debug output.
pub const MASK: &str = "********";

/// A secret setting: wiped from memory when dropped, and masked wherever the
/// configuration is shown (`Debug`, `Serialize`). Only [`Secret::expose`] reveals it.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret mounted as a file (a Kubernetes or Docker secret): its text without the
    /// trailing newline that editors and `echo` add.
    pub fn read_file(path: &Path) -> std::io::Result<Secret> {
        let mut text = Zeroizing::new(std::fs::read_to_string(path)?);
        let kept = text.trim_end_matches(['\n', '\r']).len();
        // Truncating in place: the one buffer is wiped when dropped.
        text.truncate(kept);
        if text.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"));
        }
        Ok(Secret(text))
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        // Any scalar is taken as its text (`key_passphrase = 1234` in the file), and what
        // is refused is refused without repeating the value: serde's own messages would
        // quote it.
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Secret, E> {
                Ok(Secret::new(text))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Secret, E> {
                Ok(Secret::new(n.to_string()))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Secret, E> {
                Ok(Secret::new(n.to_string()))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("a secret must be a string (put it in quotes)"))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("a secret must be a string (put it in quotes)"))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("14").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("3w").unwrap_err().contains("unit must be"));
        assert!(parse_duration("99999999999999999d").is_err());
        assert_eq!(parse_seconds("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_seconds("5m"), Ok(Duration::from_secs(300)));
        for (seconds, text) in [(14 * 86_400, "14d"), (7_200, "2h"), (120, "120s"), (300, "300s"), (0, "0s")] {
            assert_eq!(format_duration(Duration::from_secs(seconds)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(seconds)));
        }
    }

    #[test]
    fn secrets_are_masked_and_files_lose_their_newline() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(serde_json::to_string(&secret).unwrap(), format!("\"{MASK}\""));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "pass word \r\n").unwrap();
        assert_eq!(Secret::read_file(&path).unwrap().expose(), "pass word ");
        std::fs::write(&path, "\n").unwrap();
        assert!(Secret::read_file(&path).is_err());
    }
}
