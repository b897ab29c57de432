//! Reading the files a user points the host at (configuration, CA bundles, plugins): regular
//! files only, and only up to a size that such a file can sensibly have. A FIFO would block
//! the reader forever and a device such as `/dev/zero` would grow it until memory runs out.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// Resources of a deployment: the largest AIO configuration is far below this.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// PEM bundles of CA certificates.
pub const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;
/// A plugin component (the bundled one is well under 1 MiB).
pub const MAX_PLUGIN_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// A FIFO, a socket, a device or a directory: not something to read as a document.
    NotRegular(&'static str),
    TooLarge {
        limit: u64,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read: {e}"),
            Self::NotRegular(kind) => write!(f, "cannot read: it is a {kind}, not a regular file"),
            Self::TooLarge { limit } => write!(
                f,
                "cannot read: it is larger than the {limit} bytes this host reads from such a file"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

fn kind_of(file_type: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("directory")
    } else if file_type.is_fifo() {
        Some("FIFO")
    } else if file_type.is_socket() {
        Some("socket")
    } else if file_type.is_char_device() || file_type.is_block_device() {
        Some("device")
    } else {
        Some("special file")
    }
}

/// Reads a regular file (symbolic links followed) of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // Checked before opening: opening a FIFO for reading blocks until a writer comes.
    if let Some(kind) = kind_of(std::fs::metadata(path).map_err(ReadError::Io)?.file_type()) {
        return Err(ReadError::NotRegular(kind));
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    // And again on what was opened, in case the path changed in between.
    if let Some(kind) = kind_of(file.metadata().map_err(ReadError::Io)?.file_type()) {
        return Err(ReadError::NotRegular(kind));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// `read_regular` for text.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_regular(path, limit)?;
    String::from_utf8(bytes).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = scratch("fifo");
        let fifo = dir.join("x.yaml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let error = read_regular(&fifo, MAX_CONFIG_BYTES).unwrap_err();
        assert!(matches!(error, ReadError::NotRegular("FIFO")), "{error}");
        assert_eq!(
            error.to_string(),
            "cannot read: it is a FIFO, not a regular file"
        );
    }

    #[test]
    fn a_link_to_a_device_is_refused_and_a_large_file_stops_at_the_limit() {
        let dir = scratch("device");
        let link = dir.join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_regular(&link, MAX_CONFIG_BYTES).unwrap_err();
        assert!(matches!(error, ReadError::NotRegular("device")), "{error}");

        let big = dir.join("big.yaml");
        std::fs::write(&big, vec![b'#'; 1001]).unwrap();
        let error = read_regular(&big, 1000).unwrap_err();
        assert!(
            matches!(error, ReadError::TooLarge { limit: 1000 }),
            "{error}"
        );
        assert_eq!(read_regular(&big, 1001).unwrap().len(), 1001);
    }
}
