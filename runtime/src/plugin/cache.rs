//! Compiled components on disk, so that a restart does not compile again. An entry is keyed
//! by the component's SHA-256 and the engine's compatibility hash (wasmtime version, target,
//! settings), so a different plugin or engine never loads a stale artifact.
//!
//! Loading an artifact runs native code that was written to this directory: the directory
//! must be as trusted as the host binary (it is created readable by its owner only).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Compiled from its `.wasm` (and stored, when there is a cache).
    Compiled,
    /// Loaded from the cache, without compiling.
    FromCache,
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/dataflow-host/components`, or `~/.cache/…`; none without a home.
    pub fn default_location() -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
        Some(Self::new(base.join("dataflow-host").join("components")))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut engine_hash = std::hash::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let digest = Sha256::digest(wasm);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
    }

    /// The component from the cache, or compiled and then stored. A damaged or unreadable
    /// entry is compiled again and replaced.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, Loaded)> {
        let entry = self.entry(engine, wasm);
        if entry.exists() {
            ensure_private(&self.dir)?;
            // Read into memory rather than mapped: a file changed under a mapping would
            // crash the host (SIGBUS); a copy is immune, for about a millisecond more.
            let bytes =
                std::fs::read(&entry).with_context(|| format!("reading {}", entry.display()))?;
            // SAFETY: entries are written only by `store` below from `Component::serialize`,
            // into a directory only this user can write (see the module comment); wasmtime
            // checks the header and the engine compatibility before using them.
            if let Ok(component) = unsafe { Component::deserialize(engine, &bytes) } {
                return Ok((component, Loaded::FromCache));
            }
        }
        let component = compile(engine, wasm)?;
        if let Err(e) = self.store(&entry, &component) {
            tracing::warn!(
                "could not cache the compiled plugin in {}: {e:#}",
                self.dir.display()
            );
        }
        Ok((component, Loaded::Compiled))
    }

    fn store(&self, entry: &Path, component: &Component) -> Result<()> {
        create_private_dir(&self.dir)?;
        let bytes = component.serialize()?;
        // Written aside and renamed, so a reader never sees half an artifact.
        let partial = entry.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, entry).with_context(|| format!("renaming to {}", entry.display()))
    }
}

pub fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component> {
    Component::new(engine, wasm)
        .map_err(anyhow::Error::from)
        .context("compiling the plugin component")
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    ensure_private(dir)
}

fn ensure_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    anyhow::ensure!(
        mode & 0o022 == 0,
        "{} is writable by others: compiled plugins are native code, keep it private",
        dir.display()
    );
    Ok(())
}
