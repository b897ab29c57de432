//! The contract version a component implements, read from its exports, and whether this host
//! runs it: the same major version (a 1.x host runs 1.y plugins whose shape it knows; the
//! shape is then checked export by export when the component is linked).

use anyhow::{bail, Result};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The exported interface a destination plugin implements.
pub const DESTINATION_INTERFACE: &str = "dataflow:destination/destination";
/// The contract version this host was built with (wit/destination.wit): it calls 1.0's
/// functions through bindings of wit/1.0.0, and 1.1's `accept-batch` when a plugin has it.
pub const HOST_CONTRACT: Version = Version {
    major: 1,
    minor: 1,
    patch: 0,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
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
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What a component exports and imports, and its contract version.
#[derive(Debug, Clone)]
pub struct ComponentSummary {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// The version of `dataflow:destination/destination` it exports, if it does.
    pub contract: Option<Version>,
    /// Whether it takes packed batches (`accept-batch`, contract 1.1).
    pub accepts_batches: bool,
}

impl ComponentSummary {
    pub fn of(engine: &Engine, component: &Component) -> Self {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let imports: Vec<String> = ty
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let contract = exports.iter().find_map(|name| {
            let version = name
                .strip_prefix(DESTINATION_INTERFACE)?
                .strip_prefix('@')?;
            Version::parse(version)
        });
        Self {
            exports,
            imports,
            contract,
            accepts_batches: super::batch::find(component).is_some(),
        }
    }

    /// Whether this host can run the component, and if not, why.
    pub fn check(&self) -> Result<Version> {
        match self.contract {
            None => bail!(
                "the component does not export {DESTINATION_INTERFACE} (it exports: {})",
                if self.exports.is_empty() {
                    "nothing".to_string()
                } else {
                    self.exports.join(", ")
                }
            ),
            Some(version) if version.major != HOST_CONTRACT.major => bail!(
                "the plugin implements contract {DESTINATION_INTERFACE}@{version}; this host runs {}.x (built with {HOST_CONTRACT})",
                HOST_CONTRACT.major
            ),
            Some(version) => Ok(version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(wat: &str) -> ComponentSummary {
        let engine = Engine::default();
        let component = Component::new(&engine, wat).unwrap();
        ComponentSummary::of(&engine, &component)
    }

    #[test]
    fn versions_parse_as_semver() {
        assert_eq!(
            Version::parse("1.2.3"),
            Some(Version {
                major: 1,
                minor: 2,
                patch: 3
            })
        );
        assert_eq!(Version::parse("2.0.0-rc1").map(|v| v.major), Some(2));
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
    }

    #[test]
    fn another_major_version_is_refused_naming_both_versions() {
        let two = summary(
            r#"(component
                (instance $i)
                (export "dataflow:destination/destination@2.0.0" (instance $i)))"#,
        );
        assert_eq!(two.contract.map(|v| v.major), Some(2));
        let error = two.check().unwrap_err().to_string();
        assert!(
            error.contains("@2.0.0") && error.contains("this host runs 1.x (built with 1.1.0)"),
            "{error}"
        );
        let later_minor = summary(
            r#"(component
                (instance $i)
                (export "dataflow:destination/destination@1.4.0" (instance $i)))"#,
        );
        assert_eq!(later_minor.check().unwrap().minor, 4);
        let none = summary(
            r#"(component
                (instance $i)
                (export "acme:other/thing@1.0.0" (instance $i)))"#,
        );
        let error = none.check().unwrap_err().to_string();
        assert!(
            error.contains("it exports: acme:other/thing@1.0.0"),
            "{error}"
        );
    }
}
