//! Where an endpoint's plugin comes from: a `.wasm` path, or `name@version` looked up in a
//! plugin directory laid out as `<dir>/<name>/<version>.wasm`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use dataflow_contract::version::Version;

/// The plugin directory when `--plugin-dir` is not given.
pub const DEFAULT_PLUGIN_DIR: &str = "plugins";

/// The file a plugin reference names.
pub fn resolve(reference: &str, dir: &Path) -> Result<PathBuf> {
    let reference = reference.trim();
    if reference.ends_with(".wasm") || reference.contains('/') {
        return Ok(PathBuf::from(reference));
    }
    let Some((name, version)) = reference.split_once('@') else {
        bail!("plugin `{reference}`: expected a .wasm path or name@version (for example adx-destination@1.0.0)");
    };
    if Version::parse(version).is_none() {
        bail!("plugin `{reference}`: `{version}` is not a version (major.minor.patch)");
    }
    let path = dir.join(name).join(format!("{version}.wasm"));
    if path.is_file() {
        return Ok(path);
    }
    let mut available: Vec<String> = std::fs::read_dir(dir.join(name))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().to_string();
            file.strip_suffix(".wasm").map(|v| format!("{name}@{v}"))
        })
        .collect();
    available.sort();
    if available.is_empty() {
        bail!(
            "plugin {reference} is not in {} (no versions of {name} there; expected {})",
            dir.display(),
            path.display()
        );
    }
    bail!(
        "plugin {reference} is not in {} (available: {})",
        dir.display(),
        available.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_versions_in_the_directory() {
        let dir = std::env::temp_dir().join(format!("plugin-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("adx-destination")).unwrap();
        for version in ["1.0.0", "1.1.0"] {
            std::fs::write(dir.join(format!("adx-destination/{version}.wasm")), b"").unwrap();
        }
        assert_eq!(
            resolve("adx-destination@1.1.0", &dir).unwrap(),
            dir.join("adx-destination/1.1.0.wasm")
        );
        assert_eq!(
            resolve("/opt/p.wasm", &dir).unwrap(),
            PathBuf::from("/opt/p.wasm")
        );
        let missing = resolve("adx-destination@2.0.0", &dir)
            .unwrap_err()
            .to_string();
        assert!(
            missing.ends_with("(available: adx-destination@1.0.0, adx-destination@1.1.0)"),
            "{missing}"
        );
        let unknown = resolve("other@1.0.0", &dir).unwrap_err().to_string();
        assert!(unknown.contains("no versions of other there"), "{unknown}");
        assert!(resolve("adx-destination@latest", &dir)
            .unwrap_err()
            .to_string()
            .contains("is not a version"));
        assert!(resolve("adx-destination", &dir)
            .unwrap_err()
            .to_string()
            .contains("name@version"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
