//! The engine's job journal (`GENCLIP_ENGINE_JOURNAL`: one line per job event,
//! `pid=… job=… key=… event=start|done|failed|aborted`), read by the tests that count engine
//! calls across the plugin, its engine process and other processes.

use std::path::Path;
use std::time::{Duration, Instant};

/// One line of a journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub pid: u32,
    pub job: u64,
    pub key: String,
    pub event: String,
}

/// Every event in `file` so far (none if it does not exist yet).
pub fn read(file: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .unwrap_or_else(|| panic!("journal line without {name}: {line:?}"))
                    .to_string()
            };
            Event {
                pid: field("pid=").parse().unwrap(),
                job: field("job=").parse().unwrap(),
                key: field("key="),
                event: field("event="),
            }
        })
        .collect()
}

/// The first event of `file` from line `since` on that satisfies `pred`; panics after `limit`.
pub fn wait_for(
    file: &Path,
    since: usize,
    limit: Duration,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let started = Instant::now();
    loop {
        if let Some(e) = read(file).into_iter().skip(since).find(|e| pred(e)) {
            return e;
        }
        assert!(
            started.elapsed() < limit,
            "no such event in {} after {limit:?}:\n{:#?}",
            file.display(),
            read(file)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
