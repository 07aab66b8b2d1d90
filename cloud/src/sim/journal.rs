//! A simulated account's changes on disk, so that they survive the process.
//!
//! The simulated world lives in memory and is regenerated from its seed at every start.
//! With a journal ([`super::SimCloud::with_journal`]) every change the clean-up batches make
//! — snapshots taken, volumes and snapshots deleted, instances terminated — is appended as
//! one JSON line before the call returns, and replayed onto the regenerated world at the
//! next start: a server killed in the middle of a batch finds the account as the cloud
//! would have left it, and the file says what the cloud did, once per line (the crash
//! tests count it per resource). Other changes (launches, Auto Scaling updates) are not
//! journaled: they start from the seed again.
//!
//! A line torn by a kill (the last one, half written) is ignored: the call it belongs to
//! never returned, so for the caller it did not happen either way.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One change, as applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// A new snapshot (a repeat of a client token is not a change and is not recorded).
    CreateSnapshot {
        volume_id: String,
        snapshot_id: String,
        client_token: String,
        at: DateTime<Utc>,
    },
    DeleteVolume {
        volume_id: String,
        at: DateTime<Utc>,
    },
    DeleteSnapshot {
        snapshot_id: String,
        at: DateTime<Utc>,
    },
    /// Instances that went from running (or stopped) to terminated.
    Terminate {
        instance_ids: Vec<String>,
        at: DateTime<Utc>,
    },
}

impl Entry {
    /// The resource the change acted on (the volume of a snapshot).
    pub fn resources(&self) -> Vec<&str> {
        match self {
            Entry::CreateSnapshot { volume_id, .. } | Entry::DeleteVolume { volume_id, .. } => {
                vec![volume_id]
            }
            Entry::DeleteSnapshot { snapshot_id, .. } => vec![snapshot_id],
            Entry::Terminate { instance_ids, .. } => {
                instance_ids.iter().map(String::as_str).collect()
            }
        }
    }
}

/// The append-only file of one simulated account.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and returns the changes recorded so far.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Vec<Entry>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let entries = if path.exists() {
            read(path)?
        } else {
            Vec::new()
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // A line torn by a kill must not swallow the next one.
        let torn = std::fs::read(path)?.last().is_some_and(|b| *b != b'\n');
        if torn {
            file.write_all(b"\n")?;
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            entries,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one change as a single write (the kernel keeps it if the process dies).
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

/// The changes recorded in a journal file; a torn or unreadable line is skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
    let f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            out.push(e);
        }
    }
    Ok(out)
}

/// The journal file of an account and region under `dir`.
pub fn path_for(dir: &Path, account_id: &str, region: &str) -> PathBuf {
    dir.join(format!("{account_id}-{region}.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_torn_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("sim-journal-{}", std::process::id()));
        let path = dir.join("a.jsonl");
        let _ = std::fs::remove_file(&path);
        let at = Utc::now();
        let (mut j, none) = Journal::open(&path).expect("open");
        assert!(none.is_empty());
        let e = Entry::DeleteVolume {
            volume_id: "vol-1".into(),
            at,
        };
        j.append(&e).expect("append");
        drop(j);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("reopen");
        f.write_all(b"{\"op\":\"delete_snap").expect("torn");
        let (mut j, back) = Journal::open(&path).expect("open again");
        assert_eq!(back, vec![e.clone()]);
        j.append(&e).expect("append after the torn line");
        drop(j);
        assert_eq!(read(&path).expect("read"), vec![e.clone(), e.clone()]);
        assert_eq!(back[0].resources(), vec!["vol-1"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
