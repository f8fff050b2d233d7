//! The engine's one channel to the plugin: `FromEngine` messages as JSON lines, each flushed
//! at once (the plugin waits on them), written whole under a lock (the reader thread and the
//! worker both answer).

use crate::client::protocol::{encode, FromEngine};
use parking_lot::Mutex;
use std::io::Write;
use std::sync::Arc;

#[derive(Clone)]
pub struct Outbox {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    #[cfg(test)]
    captured: Option<Arc<Mutex<Vec<u8>>>>,
}

impl Outbox {
    pub fn new(out: Box<dyn Write + Send>) -> Outbox {
        Outbox {
            out: Arc::new(Mutex::new(out)),
            #[cfg(test)]
            captured: None,
        }
    }

    /// Sends one message. A failed write means the plugin is gone; its end of our stdin then
    /// closes too, which ends the engine, so the error is only logged.
    pub fn send(&self, message: &FromEngine) {
        let mut line = encode(message);
        line.push('\n');
        let mut out = self.out.lock();
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            eprintln!("genclip-engine: cannot write to the plugin ({e}); it is probably gone");
        }
    }
}

/// For tests: a writer whose bytes the test keeps.
#[cfg(test)]
pub(crate) struct Sink(pub Arc<Mutex<Vec<u8>>>);

#[cfg(test)]
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl Outbox {
    /// An outbox that keeps what is sent, for tests.
    pub fn capture() -> Outbox {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let mut outbox = Outbox::new(Box::new(Sink(buffer.clone())));
        outbox.captured = Some(buffer);
        outbox
    }

    /// Everything sent so far.
    pub fn captured(&self) -> String {
        let buffer = self.captured.as_ref().expect("a capturing outbox");
        String::from_utf8(buffer.lock().clone()).unwrap()
    }
}
