//! Progress messages for one job, throttled: the plugin redraws a progress bar, it does not
//! need every decoded frame of a fast model. At most one message per [`MIN_INTERVAL`], except
//! that the first and the last message of every stage always go out (a stage that starts and
//! ends is never invisible, and the bar always reaches the end of a stage).

use super::outbox::Outbox;
use crate::client::protocol::{FromEngine, Stage};
use crate::engine::pipeline;
use std::time::{Duration, Instant};

/// 50 ms: about 20 messages a second at most.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

pub struct Progress<'a> {
    job: u64,
    outbox: &'a Outbox,
    last: Option<(Stage, Instant)>,
}

impl<'a> Progress<'a> {
    pub fn new(job: u64, outbox: &'a Outbox) -> Progress<'a> {
        Progress {
            job,
            outbox,
            last: None,
        }
    }

    /// `step` of `of` in `stage`; sent if it is the stage's first or last, or if the previous
    /// message is old enough.
    pub fn report(&mut self, stage: Stage, step: usize, of: usize) {
        let now = Instant::now();
        let send = match self.last {
            None => true,
            Some((previous, at)) => {
                previous != stage || step >= of || now.duration_since(at) >= MIN_INTERVAL
            }
        };
        if send {
            self.last = Some((stage, now));
            self.outbox.send(&FromEngine::Progress {
                job: self.job,
                stage,
                step,
                of,
            });
        }
    }

    /// A stage as the pipeline reports it.
    pub fn pipeline(&mut self, stage: pipeline::Stage) {
        match stage {
            pipeline::Stage::EncodingText => self.report(Stage::EncodingText, 0, 1),
            pipeline::Stage::Denoising { step, of } => self.report(Stage::Denoising, step, of),
            pipeline::Stage::Decoding { frame, of } => self.report(Stage::Decoding, frame, of),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::protocol::decode;

    fn sent(outbox: &Outbox) -> Vec<(Stage, usize, usize)> {
        outbox
            .captured()
            .lines()
            .map(|l| match decode::<FromEngine>(l).unwrap() {
                FromEngine::Progress {
                    stage, step, of, ..
                } => (stage, step, of),
                other => panic!("not progress: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_burst_keeps_the_first_and_last_of_each_stage() {
        let outbox = Outbox::capture();
        let mut p = Progress::new(3, &outbox);
        for step in 0..=1000 {
            p.report(Stage::Denoising, step, 1000);
        }
        for frame in 1..=500 {
            p.report(Stage::Decoding, frame, 500);
        }
        let got = sent(&outbox);
        assert_eq!(got.first(), Some(&(Stage::Denoising, 0, 1000)));
        assert!(got.contains(&(Stage::Denoising, 1000, 1000)));
        assert!(got.contains(&(Stage::Decoding, 1, 500)));
        assert_eq!(got.last(), Some(&(Stage::Decoding, 500, 500)));
        // 1501 reports in well under a second: only the ends (and a few timed ones) go out.
        assert!(got.len() < 20, "{} messages: {got:?}", got.len());
    }

    #[test]
    fn slow_reports_all_go_out() {
        let outbox = Outbox::capture();
        let mut p = Progress::new(3, &outbox);
        for step in 0..4 {
            p.report(Stage::Denoising, step, 10);
            std::thread::sleep(MIN_INTERVAL + Duration::from_millis(5));
        }
        assert_eq!(sent(&outbox).len(), 4);
    }
}
