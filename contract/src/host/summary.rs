//! What a component exports and imports, and which contract it implements
//! (`dataflow-host plugin inspect`).

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::version::{self, Version, VersionError};

#[derive(Debug, Clone)]
pub struct ComponentSummary {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// The version of `dataflow:destination/destination` it exports, if it does.
    pub contract: Option<Version>,
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
        let contract = exports.iter().find_map(|name| Version::of_export(name));
        Self {
            exports,
            imports,
            contract,
        }
    }

    /// Whether a host of this contract runs the component, and if not, why.
    pub fn check(&self) -> Result<Version, VersionError> {
        version::check(&self.exports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_exports() {
        let engine = Engine::default();
        let component = Component::new(
            &engine,
            r#"(component
                (instance $i)
                (export "dataflow:destination/destination@2.0.0" (instance $i)))"#,
        )
        .unwrap();
        let summary = ComponentSummary::of(&engine, &component);
        assert_eq!(summary.contract, Some(Version::new(2, 0, 0)));
        assert!(matches!(
            summary.check(),
            Err(VersionError::OtherMajor { .. })
        ));
    }
}
