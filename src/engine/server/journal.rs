//! The job journal: with `GENCLIP_ENGINE_JOURNAL=FILE`, one line per job start and end,
//! `pid=… job=… key=… event=start|done|failed|aborted`, for tests and support ("did the
//! engine run this window, and how did it end?").
//!
//! The file is opened for appending and each line goes out in one `write`, so engines of
//! several host processes (or farm nodes on a shared disk that honours `O_APPEND`) can share
//! one file without interleaving inside a line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// The environment variable naming the journal file.
pub const JOURNAL_ENV: &str = "GENCLIP_ENGINE_JOURNAL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    Done,
    Failed,
    Aborted,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Done => "done",
            Event::Failed => "failed",
            Event::Aborted => "aborted",
        }
    }
}

/// Writes nothing when no journal is configured.
pub struct Journal {
    file: Option<File>,
}

impl Journal {
    /// The journal `GENCLIP_ENGINE_JOURNAL` names, if any. A journal that cannot be opened is
    /// reported on stderr and skipped: it must never stop generation.
    pub fn from_env() -> Journal {
        match std::env::var_os(JOURNAL_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Journal::open(Path::new(&path)),
            None => Journal { file: None },
        }
    }

    pub fn open(path: &Path) -> Journal {
        match OpenOptions::new().append(true).create(true).open(path) {
            Ok(file) => Journal { file: Some(file) },
            Err(e) => {
                eprintln!(
                    "genclip-engine: cannot open the job journal {} ({e}); not journaling",
                    path.display()
                );
                Journal { file: None }
            }
        }
    }

    pub fn record(&self, job: u64, key: &str, event: Event) {
        let Some(mut file) = self.file.as_ref() else {
            return;
        };
        // The key is the plugin's text: keep the line one line whatever it holds.
        let key: String = key
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let line = format!(
            "pid={} job={job} key={key} event={}\n",
            std::process::id(),
            event.name()
        );
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("genclip-engine: cannot write the job journal ({e})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_append_across_handles() {
        let dir = std::env::temp_dir().join(format!("genclip-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.log");
        let _ = std::fs::remove_file(&path);
        let (a, b) = (Journal::open(&path), Journal::open(&path));
        a.record(1, "ab", Event::Start);
        b.record(2, "c d", Event::Start);
        a.record(1, "ab", Event::Done);
        let text = std::fs::read_to_string(&path).unwrap();
        let pid = std::process::id();
        assert_eq!(
            text,
            format!(
                "pid={pid} job=1 key=ab event=start\npid={pid} job=2 key=c_d event=start\n\
                 pid={pid} job=1 key=ab event=done\n"
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
