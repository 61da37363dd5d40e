//! Where drover's own log lines go: stderr, written by a thread of its own.
//! A busy server formats a line per request (the access log) but does not
//! wait on a write for each, and lines that come together leave in one
//! write.

use std::io::Write;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long [`StderrThread::flush`] waits for the lines before it.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Message {
    Line(Vec<u8>),
    /// Answered once every line sent before it is written.
    Flush(SyncSender<()>),
}

/// The writer thread, as tracing's fmt layer sees it: cheap to share.
#[derive(Clone)]
pub struct StderrThread {
    tx: Sender<Message>,
}

impl StderrThread {
    /// Starts the thread; `None` when it cannot start (log straight to
    /// stderr then).
    pub fn start() -> Option<StderrThread> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("drover-log".into())
            .spawn(move || write_lines(&rx))
            .ok()?;
        Some(StderrThread { tx })
    }

    /// Waits (a little) until every line logged so far is written: call
    /// before the process exits.
    pub fn flush(&self) {
        let (done, written) = sync_channel(1);
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = written.recv_timeout(FLUSH_WAIT);
        }
    }
}

/// Writes whatever has queued up in one go, then waits for more.
fn write_lines(rx: &Receiver<Message>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut flushed = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => batch.extend_from_slice(&line),
                Message::Flush(done) => flushed.push(done),
            }
            next = rx.try_recv().ok();
        }
        // Nowhere to report a failed write of the log itself.
        let _ = std::io::stderr().write_all(&batch);
        batch.clear();
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

/// One event's line, sent to the thread when the fmt layer is done with it.
pub struct Line {
    buf: Vec<u8>,
    tx: Sender<Message>,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.tx.send(Message::Line(std::mem::take(&mut self.buf)));
        }
    }
}

impl<'a> MakeWriter<'a> for StderrThread {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            buf: Vec::with_capacity(256),
            tx: self.tx.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_sent_whole_when_the_writer_is_dropped() {
        let (tx, rx) = channel();
        let thread = StderrThread { tx };
        {
            let mut line = thread.make_writer();
            line.write_all(b"one ").unwrap();
            line.write_all(b"line\n").unwrap();
            assert!(
                rx.try_recv().is_err(),
                "nothing leaves before the line is done"
            );
        }
        match rx.try_recv() {
            Ok(Message::Line(bytes)) => assert_eq!(bytes, b"one line\n"),
            _ => panic!("the line was not sent"),
        }
        drop(thread.make_writer());
        assert!(rx.try_recv().is_err(), "an empty line is not sent");
    }
}
