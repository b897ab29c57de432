//! A directory standing in for Azure IoT Operations' state store, for the datasets of
//! transformations: the records of key `K` are the JSON Lines of `DIR/K.jsonl`. As the state
//! store's change notifications do for Azure IoT Operations ("state store updates are reflected
//! in processing", howto-dataflow-graphs-enrich), a file that changes is read again, at most
//! once a second, while the dataflow runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use dataflow_transform::DatasetRecords;
use serde_json::Value as Json;

/// How often the files are looked at.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// When a file last changed, and its length: a change to either is a change.
type Stamp = Option<(SystemTime, u64)>;

pub struct StateStoreDir {
    /// (key, file, stamp when last read)
    files: Vec<(String, PathBuf, Stamp)>,
    checked: Instant,
}

impl StateStoreDir {
    /// Reads the records of every key; a key without its file is an error that names both.
    pub fn open(dir: &Path, keys: &[String]) -> Result<(Self, DatasetRecords)> {
        let mut files = Vec::with_capacity(keys.len());
        for key in keys {
            if key.contains(['/', '\\']) || key.starts_with('.') {
                bail!("dataset key `{key}` cannot name a file in the --state-store directory (no `/`, no leading `.`)");
            }
            files.push((key.clone(), dir.join(format!("{key}.jsonl")), None));
        }
        let mut store = Self {
            files,
            checked: Instant::now(),
        };
        let records = store.read_all()?;
        Ok((store, records))
    }

    /// The records again when a file changed since the last read (checked at most once a
    /// second); `None` when nothing changed. A file that no longer reads is an error, and the
    /// caller keeps the records it has.
    pub fn refresh(&mut self) -> Option<Result<DatasetRecords>> {
        if self.checked.elapsed() < CHECK_INTERVAL {
            return None;
        }
        self.checked = Instant::now();
        let changed = self
            .files
            .iter()
            .any(|(_, file, stamp)| stamp_of(file) != *stamp);
        changed.then(|| self.read_all())
    }

    fn read_all(&mut self) -> Result<DatasetRecords> {
        let mut records = DatasetRecords::new();
        for (key, file, stamp) in &mut self.files {
            *stamp = stamp_of(file);
            records.insert(key.clone(), read(file, key)?);
        }
        Ok(records)
    }
}

fn stamp_of(file: &Path) -> Stamp {
    let metadata = std::fs::metadata(file).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn read(file: &Path, key: &str) -> Result<Vec<Json>> {
    let text = crate::files::read_regular_text(file, crate::files::MAX_CONFIG_BYTES)
        .with_context(|| format!("the records of dataset `{key}`"))?;
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Json>(line) {
            Ok(record @ Json::Object(_)) => records.push(record),
            Ok(_) => bail!(
                "{}:{}: a dataset record is a JSON object",
                file.display(),
                number + 1
            ),
            Err(e) => bail!("{}:{}: not JSON: {e}", file.display(), number + 1),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_read_again_and_a_broken_one_is_an_error() {
        let dir = std::env::temp_dir().join(format!("state-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("devices.jsonl"), "{\"id\": 1}\n\n{\"id\": 2}\n").unwrap();
        let (mut store, records) = StateStoreDir::open(&dir, &["devices".into()]).unwrap();
        assert_eq!(records["devices"].len(), 2);
        store.checked -= CHECK_INTERVAL;
        assert!(store.refresh().is_none(), "nothing changed");
        std::fs::write(
            dir.join("devices.jsonl"),
            "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3}\n",
        )
        .unwrap();
        assert!(store.refresh().is_none(), "checked less than a second ago");
        store.checked -= CHECK_INTERVAL;
        assert_eq!(store.refresh().unwrap().unwrap()["devices"].len(), 3);
        std::fs::write(dir.join("devices.jsonl"), "[1]\n").unwrap();
        store.checked -= CHECK_INTERVAL;
        let error = store.refresh().unwrap().unwrap_err().to_string();
        assert!(
            error.ends_with("devices.jsonl:1: a dataset record is a JSON object"),
            "{error}"
        );
        let missing = StateStoreDir::open(&dir, &["other".into()]).err().unwrap();
        assert!(
            format!("{missing:#}").contains("the records of dataset `other`"),
            "{missing:#}"
        );
        assert!(StateStoreDir::open(&dir, &["../x".into()]).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
