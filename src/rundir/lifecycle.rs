//! A run directory's life, made safe for CI: claimed before a run writes
//! into it ([`claim`]: a directory that already holds a run is refused
//! unless `--force`, which clears what baton wrote there), marked while
//! the run writes it ([`Running`]: a `running` file, removed when the run
//! finished, so a killed run's directory is not mistaken for a finished
//! one), and every report written whole or not at all ([`AtomicFile`]: a
//! temporary file in the same directory, renamed over the name when
//! complete, so a full disk leaves the old file or none, never half).
//!
//! Not for: what the files hold (the sibling modules).

use super::*;
use std::io::{self, BufWriter, Write};

/// Present while a run writes its directory; removed when it finished.
pub const RUNNING: &str = "running";

/// Files whose presence means a directory holds a run (or a matrix, or a
/// run being written).
const RUN_MARKERS: [&str; 6] = [
    RUNNING,
    RUN_JSON,
    SUMMARY_JSON,
    REQUESTS_CSV,
    EVENTS_CSV,
    MATRIX_JSON,
];

/// Every file and folder baton writes in a run or matrix directory: what
/// `--force` removes (and nothing else).
const WRITTEN: [&str; 19] = [
    RUNNING,
    PROFILE_YAML,
    REQUESTS_CSV,
    EVENTS_CSV,
    RUN_JSON,
    CLUSTER_DIR,
    STEPS_DIR,
    GROUND_TRUTH_CSV,
    POD_TRUTH_CSV,
    VARIANT_JSON,
    SUMMARY_JSON,
    SUMMARY_MD,
    JUNIT_XML,
    REPORT_HTML,
    FAILURES_CSV,
    TIMELINE_CSV,
    MATRIX_JSON,
    COMPARE_MD,
    COMPARE_HTML,
];

/// Whether `dir` holds a run: its own marker files, or those of a
/// directory right inside it (a matrix's variants, a demo's runs).
pub fn holds_run(dir: &Path) -> Option<PathBuf> {
    let own = |d: &Path| RUN_MARKERS.iter().map(|m| d.join(m)).find(|p| p.exists());
    if let Some(found) = own(dir) {
        return Some(found);
    }
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| own(&e.path()))
}

/// Make room for a new run in `dir`, creating nothing: a directory that
/// holds a run is refused ([`RunDirError::Occupied`]) unless `force`,
/// which removes everything baton writes there (its own files, and
/// sub-directories that hold runs) and leaves anything else.
pub fn make_room(dir: &Path, force: bool) -> Result<(), RunDirError> {
    match holds_run(dir) {
        None => Ok(()),
        Some(found) if !force => Err(RunDirError::Occupied {
            path: dir.to_path_buf(),
            found,
        }),
        Some(_) => clear(dir),
    }
}

/// Take `dir` for a new run: refused if it holds one (see
/// [`make_room`]), created if missing.
pub fn claim(dir: &Path) -> Result<(), RunDirError> {
    make_room(dir, false)?;
    // Not creatable is a bad --out (2), not a failed recording.
    std::fs::create_dir_all(dir)
        .map_err(|e| RunDirError::read(dir, format!("cannot create it: {e}")))
}

fn clear(dir: &Path) -> Result<(), RunDirError> {
    let entries = std::fs::read_dir(dir).map_err(|e| RunDirError::read(dir, e))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| WRITTEN.contains(&n));
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let removed = if is_dir && (ours || holds_run(&path).is_some()) {
            std::fs::remove_dir_all(&path)
        } else if ours {
            std::fs::remove_file(&path)
        } else {
            continue;
        };
        removed.map_err(|e| RunDirError::write(&path, format!("cannot remove it: {e}")))?;
    }
    Ok(())
}

/// The `running` marker of a directory being written. Dropping it leaves
/// the marker (the run did not finish); [`Running::finished`] removes it.
#[must_use = "the marker stays until `finished` is called"]
pub struct Running {
    path: PathBuf,
}

impl Running {
    /// Write `dir/running`: which baton, which process, since when.
    pub fn start(dir: &Path) -> Result<Running, RunDirError> {
        let path = dir.join(RUNNING);
        let text = format!(
            "baton {} (pid {}) has been writing this directory since {}; \
             if no baton runs now, the run did not finish and its files are partial\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        );
        std::fs::write(&path, text).map_err(|e| RunDirError::write(&path, e))?;
        Ok(Running { path })
    }

    /// Every file is written: remove the marker.
    pub fn finished(self) -> Result<(), RunDirError> {
        std::fs::remove_file(&self.path).map_err(|e| RunDirError::write(&self.path, e))
    }

    /// The run stopped on an error it reported. Before any request was
    /// recorded (bad input, no cluster) the marker goes: what was written
    /// (the resolved profile) does not make a run. After, it stays: the
    /// directory holds a run whose files did not all get written.
    pub fn ended_early(self) {
        let measured = self
            .path
            .parent()
            .is_some_and(|dir| dir.join(REQUESTS_CSV).exists());
        if !measured {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A file written whole or not at all: into a temporary file beside
/// `path`, renamed over it by [`AtomicFile::commit`]. Dropped without a
/// commit, the temporary file is removed and `path` is untouched.
pub struct AtomicFile {
    path: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile, RunDirError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // The mode a plain `File::create` gets (0666 less the umask), not
        // tempfile's private 0600: a report is for whoever reads the
        // directory, as the record files beside it are.
        use std::os::unix::fs::PermissionsExt;
        let file = tempfile::Builder::new()
            .prefix(".baton-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| RunDirError::write(path, e))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
        })
    }

    /// Flush, sync and rename over the target.
    pub fn commit(self) -> Result<(), RunDirError> {
        let path = self.path;
        let file = self
            .file
            .into_inner()
            .map_err(|e| RunDirError::write(&path, e.error()))?;
        file.as_file()
            .sync_all()
            .map_err(|e| RunDirError::write(&path, e))?;
        file.persist(&path)
            .map_err(|e| RunDirError::write(&path, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Write `bytes` to `path` whole or not at all.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)
        .map_err(|e| RunDirError::write(path, e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_whole_gets_the_mode_a_plain_create_gets() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let atomic = tmp.path().join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

    #[test]
    fn a_new_or_empty_directory_is_claimed_and_one_holding_a_run_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        make_room(&dir, false).unwrap();
        assert!(!dir.exists(), "making room creates nothing");
        claim(&dir).unwrap();
        assert!(dir.is_dir());
        claim(&dir).unwrap();
        std::fs::write(dir.join(SUMMARY_JSON), "{}").unwrap();
        let e = claim(&dir).unwrap_err();
        assert!(matches!(e, RunDirError::Occupied { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("--force") && msg.contains(SUMMARY_JSON),
            "{msg}"
        );
    }

    #[test]
    fn force_removes_what_baton_wrote_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for f in [SUMMARY_JSON, REQUESTS_CSV, REPORT_HTML, "notes.txt"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        std::fs::create_dir_all(dir.join(CLUSTER_DIR)).unwrap();
        std::fs::create_dir_all(dir.join("variant-a")).unwrap();
        std::fs::write(dir.join("variant-a").join(RUN_JSON), "{}").unwrap();
        std::fs::create_dir_all(dir.join("mine")).unwrap();
        std::fs::write(dir.join("mine/keep.txt"), "x").unwrap();
        make_room(dir, true).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["mine", "notes.txt"]);
        assert!(holds_run(dir).is_none());
    }

    #[test]
    fn a_matrix_or_demo_directory_holds_runs_one_level_down() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("preStop-0s")).unwrap();
        assert!(holds_run(tmp.path()).is_none());
        std::fs::write(tmp.path().join("preStop-0s").join(RUNNING), "").unwrap();
        assert!(holds_run(tmp.path()).is_some());
    }

    #[test]
    fn the_running_marker_stays_until_the_run_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = Running::start(tmp.path()).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(RUNNING)).unwrap();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        marker.finished().unwrap();
        assert!(!tmp.path().join(RUNNING).exists());
    }

    #[test]
    fn a_run_that_ended_early_keeps_its_marker_only_if_it_recorded_requests() {
        let tmp = tempfile::tempdir().unwrap();
        Running::start(tmp.path()).unwrap().ended_early();
        assert!(holds_run(tmp.path()).is_none(), "nothing was measured");
        std::fs::write(tmp.path().join(REQUESTS_CSV), "seq\n").unwrap();
        Running::start(tmp.path()).unwrap().ended_early();
        assert!(tmp.path().join(RUNNING).exists(), "its files are partial");
    }

    #[test]
    fn an_atomic_file_appears_whole_on_commit_and_not_at_all_without() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("summary.json");
        std::fs::write(&path, "old").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
