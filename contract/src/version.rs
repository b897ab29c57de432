//! The contract version a component implements, read from its exports, and whether a host of
//! this contract runs it: the same major version (a 1.x host runs every 1.y plugin, calling
//! it through the bindings of the newest version both know).

use std::fmt;

/// The exported interface a destination plugin implements.
pub const DESTINATION_INTERFACE: &str = "dataflow:destination/destination";

/// The newest contract this crate describes; the versions before it are all supported.
pub const NEWEST: Version = Version::new(1, 2, 0);

/// Every version whose WIT and bindings this crate holds, oldest first.
pub const SUPPORTED: [Version; 3] = [
    Version::new(1, 0, 0),
    Version::new(1, 1, 0),
    Version::new(1, 2, 0),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// `major.minor.patch`, with any pre-release or build suffix ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let version = Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(version)
    }

    /// The version an export name such as `dataflow:destination/destination@1.2.0` names.
    pub fn of_export(name: &str) -> Option<Self> {
        Self::parse(
            name.strip_prefix(DESTINATION_INTERFACE)?
                .strip_prefix('@')?,
        )
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a component cannot run as a destination plugin here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// It does not export the destination interface at all.
    NotADestination { exports: Vec<String> },
    /// It implements another major version.
    OtherMajor { found: Version },
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotADestination { exports } => write!(
                f,
                "the component does not export {DESTINATION_INTERFACE} (it exports: {})",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            ),
            Self::OtherMajor { found } => write!(
                f,
                "the plugin implements contract {DESTINATION_INTERFACE}@{found}; this host runs {}.x (built with {NEWEST})",
                NEWEST.major
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// The version of the destination interface among `exports`, and whether it runs here.
pub fn check(exports: &[String]) -> Result<Version, VersionError> {
    match exports.iter().find_map(|name| Version::of_export(name)) {
        None => Err(VersionError::NotADestination {
            exports: exports.to_vec(),
        }),
        Some(found) if found.major != NEWEST.major => Err(VersionError::OtherMajor { found }),
        Some(found) => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_semver() {
        assert_eq!(Version::parse("1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(Version::parse("2.0.0-rc1").map(|v| v.major), Some(2));
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(
            Version::of_export("dataflow:destination/destination@1.1.0"),
            Some(Version::new(1, 1, 0))
        );
        assert_eq!(Version::of_export("acme:other/destination@1.1.0"), None);
    }

    #[test]
    fn another_major_version_is_refused_naming_both_versions() {
        let names = |n: &str| vec![n.to_string()];
        let error = check(&names("dataflow:destination/destination@2.0.0")).unwrap_err();
        assert_eq!(
            error,
            VersionError::OtherMajor {
                found: Version::new(2, 0, 0)
            }
        );
        let text = error.to_string();
        assert!(
            text.contains("@2.0.0") && text.contains("this host runs 1.x (built with 1.2.0)"),
            "{text}"
        );
        // A later minor runs (through the newest bindings this host has).
        assert_eq!(
            check(&names("dataflow:destination/destination@1.4.0")),
            Ok(Version::new(1, 4, 0))
        );
        let error = check(&names("acme:other/thing@1.0.0")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("it exports: acme:other/thing@1.0.0"),
            "{error}"
        );
    }

    #[test]
    fn every_supported_version_has_its_wit() {
        for version in SUPPORTED {
            let wit = super::super::wit_dir(&version.to_string()).join("destination.wit");
            let text = std::fs::read_to_string(&wit).unwrap();
            assert!(
                text.contains(&format!("package dataflow:destination@{version};")),
                "{}",
                wit.display()
            );
        }
        assert_eq!(SUPPORTED.last(), Some(&NEWEST));
    }
}
