//! Where a run's events go: a tokio channel, nothing, or anything implementing [`EventSink`].

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Event;

/// Receives a run's events, one at a time, in order.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event. The run waits for the returned future, so a slow
    /// sink slows the run down rather than losing events.
    fn emit(&self, event: Event) -> impl Future<Output = ()> + Send;
}

/// Sends events to a channel; once the receiver is gone, events are dropped.
impl EventSink for mpsc::Sender<Event> {
    async fn emit(&self, event: Event) {
        // A closed channel means nobody is listening any more.
        let _ = self.send(event).await;
    }
}

/// Sends events to an unbounded channel; once the receiver is gone, events are dropped.
impl EventSink for mpsc::UnboundedSender<Event> {
    fn emit(&self, event: Event) -> impl Future<Output = ()> + Send {
        // A closed channel means nobody is listening any more.
        let _ = self.send(event);
        std::future::ready(())
    }
}

impl<T: EventSink> EventSink for Arc<T> {
    fn emit(&self, event: Event) -> impl Future<Output = ()> + Send {
        T::emit(self, event)
    }
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}
