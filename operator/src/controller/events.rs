//! Kubernetes Events, published off the reconcile path.
//!
//! A reconcile hands its Event to a bounded queue and goes on; a few
//! workers create the Event objects. This is client-go's event
//! broadcaster's contract: Events are for people, so when the API server
//! cannot keep up (10,000 images found at once) the queue drops what does
//! not fit (`vmlisub_events_total{result="dropped"}`) instead of slowing
//! the reconciles that write status, which is what tools read. An Event
//! repeated for the same object (a download failing on every retry) becomes
//! a series on the first one (`series.count`), as kube's `Recorder` does,
//! but the memory of recent Events is bounded here: kube's keeps every
//! Event of the last six minutes, some 20,000 objects at that scale.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Client, ResourceExt as _};
use prometheus::IntCounterVec;
use tokio::sync::mpsc;

/// Workers creating Events; an object's Events always go to the same one,
/// so they are created in the order they happened.
const WORKERS: usize = 4;

/// Events waiting per worker (client-go queues 1,000 in all).
const QUEUE: usize = 256;

/// How long a repeated Event extends the first one's series instead of
/// creating another object (kube's `Recorder` and client-go: 6 minutes).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// Recent Events remembered per worker for series.
const REMEMBERED: usize = 512;

/// One Event to publish, with when it happened (not when a worker gets to
/// it).
struct Queued {
    regarding: ObjectReference,
    event: Event,
    at: Timestamp,
}

/// The Events' queue; [`EventSink::run`] is its workers.
pub struct EventSink {
    queues: Vec<mpsc::Sender<Queued>>,
    receivers: Mutex<Vec<mpsc::Receiver<Queued>>>,
    client: Client,
    reporter: Reporter,
    outcomes: IntCounterVec,
    /// Drops since the last warning, and when that was: one warning a
    /// minute at most, with the count.
    drops: Mutex<(u64, Option<std::time::Instant>)>,
    /// Queued or being sent.
    pending: AtomicUsize,
}

/// Least time between two warnings about dropped Events.
const DROP_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl EventSink {
    pub fn new(client: Client, reporter: Reporter, outcomes: IntCounterVec) -> Self {
        let (queues, receivers) = (0..WORKERS).map(|_| mpsc::channel(QUEUE)).unzip();
        Self {
            queues,
            receivers: Mutex::new(receivers),
            client,
            reporter,
            outcomes,
            drops: Mutex::new((0, None)),
            pending: AtomicUsize::new(0),
        }
    }

    /// Queues `event` about `regarding`; never waits. A full queue drops
    /// it, a Normal one already when the queue is three quarters full
    /// (counted; logged at debug level, and as a warning once a minute).
    pub fn publish(&self, regarding: ObjectReference, event: Event) {
        let worker = worker_of(&regarding, self.queues.len());
        let Some(queue) = self.queues.get(worker) else {
            return;
        };
        // The last quarter of a queue is kept for Warnings: in a burst of
        // DownloadStarted/Available, a failure is still told.
        if event.type_ == EventType::Normal && queue.capacity() <= QUEUE / 4 {
            self.dropped(&regarding, &event);
            return;
        }
        let queued = Queued {
            regarding,
            event,
            at: Timestamp::now(),
        };
        match queue.try_send(queued) {
            Ok(()) => {
                self.pending.fetch_add(1, Ordering::SeqCst);
            }
            Err(
                mpsc::error::TrySendError::Full(dropped)
                | mpsc::error::TrySendError::Closed(dropped),
            ) => self.dropped(&dropped.regarding, &dropped.event),
        }
    }

    fn dropped(&self, regarding: &ObjectReference, event: &Event) {
        self.count("dropped");
        tracing::debug!(
            object = regarding.name.as_deref().unwrap_or_default(),
            reason = %event.reason,
            "event dropped: the queue is full"
        );
        self.warn_of_drops();
    }

    /// A warning with the number of Events dropped, at most once a minute.
    fn warn_of_drops(&self) {
        let mut drops = self.drops.lock().unwrap_or_else(PoisonError::into_inner);
        drops.0 = drops.0.saturating_add(1);
        if drops
            .1
            .is_some_and(|last| last.elapsed() < DROP_WARNING_EVERY)
        {
            return;
        }
        tracing::warn!(
            dropped = drops.0,
            "events dropped: the API server does not keep up; status is written as usual"
        );
        *drops = (0, Some(std::time::Instant::now()));
    }

    /// The workers; runs until the sink is dropped. Called once (a second
    /// call finds no queues to serve and returns at once).
    pub async fn run(&self) {
        let receivers = std::mem::take(
            &mut *self
                .receivers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let workers = receivers.into_iter().map(|receiver| self.work(receiver));
        futures_util::future::join_all(workers).await;
    }

    /// Waits until every queued Event is sent, at most `grace` (at
    /// shutdown: the last downloads' `Available` go out), and logs the
    /// drops not yet warned of.
    pub async fn flush(&self, grace: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let left = self.pending.load(Ordering::SeqCst);
        let dropped = self.drops.lock().unwrap_or_else(PoisonError::into_inner).0;
        if left > 0 || dropped > 0 {
            tracing::warn!(
                unsent = left,
                dropped,
                "events lost at shutdown or dropped since the last warning"
            );
        }
    }

    async fn work(&self, mut receiver: mpsc::Receiver<Queued>) {
        let mut series = SeriesMemory::new(REMEMBERED, SERIES_WINDOW);
        while let Some(queued) = receiver.recv().await {
            let outcome = self.send(&mut series, queued).await;
            self.count(outcome);
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn send(&self, series: &mut SeriesMemory, queued: Queued) -> &'static str {
        let now = queued.at;
        let key = SeriesKey::of(&queued.regarding, &queued.event);
        let namespace = queued
            .regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        if let Some((name, count)) = series.repeat(&key, now) {
            let patch = serde_json::json!({
                "series": EventSeries {count, last_observed_time: MicroTime(now)},
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return "repeated",
                // The first one is gone (the API server's Event TTL):
                // start again with a new object.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => {
                    tracing::warn!(event = %name, error = %err, "cannot update event series");
                    return "failed";
                }
            }
        }
        let event = self.object(&queued);
        let name = event.name_any();
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                series.created(key, name, now);
                "created"
            }
            Err(err) => {
                tracing::warn!(reason = %queued.event.reason, error = %err, "cannot publish event");
                "failed"
            }
        }
    }

    /// The events.k8s.io/v1 object, as kube's `Recorder` makes it.
    fn object(&self, queued: &Queued) -> K8sEvent {
        let Queued {
            regarding,
            event,
            at: now,
        } = queued;
        let now = *now;
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            ..K8sEvent::default()
        }
    }

    fn count(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }
}

/// The worker for an object: by its uid (else namespace and name).
fn worker_of(regarding: &ObjectReference, workers: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    match &regarding.uid {
        Some(uid) => uid.hash(&mut hasher),
        None => (&regarding.namespace, &regarding.name).hash(&mut hasher),
    }
    usize::try_from(hasher.finish() % workers.max(1) as u64).unwrap_or(0)
}

/// What makes two Events the same series: the object, the type, the
/// reason and the action (not the note, as kube's `Recorder`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    object: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    warning: bool,
    reason: String,
    action: String,
}

impl SeriesKey {
    fn of(regarding: &ObjectReference, event: &Event) -> Self {
        Self {
            object: (
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
            warning: event.type_ == EventType::Warning,
            reason: event.reason.clone(),
            action: event.action.clone(),
        }
    }
}

/// The Events created lately, at most `capacity` of them (the least
/// recently seen forgotten first), each for `window` after it was last
/// seen.
#[derive(Debug)]
struct SeriesMemory {
    seen: HashMap<SeriesKey, Seen>,
    order: VecDeque<SeriesKey>,
    capacity: usize,
    window: SignedDuration,
}

#[derive(Debug)]
struct Seen {
    name: String,
    count: i32,
    last: Timestamp,
}

impl SeriesMemory {
    fn new(capacity: usize, window: SignedDuration) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            window,
        }
    }

    /// The Event to extend, with its new count, if `key` was seen within
    /// the window; the count is recorded as if the update succeeded.
    fn repeat(&mut self, key: &SeriesKey, now: Timestamp) -> Option<(String, i32)> {
        let window = self.window;
        let seen = self.seen.get_mut(key)?;
        if seen.last + window <= now {
            return None;
        }
        // The first occurrence is count 1: its first repeat makes 2.
        seen.count = seen.count.saturating_add(1);
        seen.last = now;
        let repeated = (seen.name.clone(), seen.count);
        // A live series is the last to be forgotten.
        self.order.retain(|k| k != key);
        self.order.push_back(key.clone());
        Some(repeated)
    }

    /// Remembers a newly created Event.
    fn created(&mut self, key: SeriesKey, name: String, now: Timestamp) {
        if self.seen.contains_key(&key) {
            self.order.retain(|k| k != &key);
        }
        while self.order.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&oldest);
        }
        self.seen.insert(
            key.clone(),
            Seen {
                name,
                count: 1,
                last: now,
            },
        );
        self.order.push_back(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("ImageSubscription".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    fn event(type_: EventType, reason: &str, note: &str) -> Event {
        Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Download".into(),
            secondary: None,
        }
    }

    fn key(name: &str, reason: &str) -> SeriesKey {
        SeriesKey::of(
            &reference(name, &format!("uid-{name}")),
            &event(EventType::Warning, reason, "note"),
        )
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_repeat_within_the_window_extends_the_series_from_two() {
        let mut memory = SeriesMemory::new(8, SERIES_WINDOW);
        let k = key("a", "DownloadFailed");
        assert_eq!(memory.repeat(&k, at(0)), None, "first: create");
        memory.created(k.clone(), "a.1".into(), at(0));
        assert_eq!(memory.repeat(&k, at(10)), Some(("a.1".into(), 2)));
        assert_eq!(memory.repeat(&k, at(20)), Some(("a.1".into(), 3)));
    }

    #[test]
    fn the_window_runs_from_the_last_occurrence() {
        let mut memory = SeriesMemory::new(8, SignedDuration::from_mins(6));
        let k = key("a", "DownloadFailed");
        memory.created(k.clone(), "a.1".into(), at(0));
        assert!(memory.repeat(&k, at(300)).is_some());
        assert!(memory.repeat(&k, at(600)).is_some(), "300 s after the last");
        assert_eq!(
            memory.repeat(&k, at(960)),
            None,
            "exactly 6 min later: a new Event"
        );
        memory.created(k.clone(), "a.2".into(), at(960));
        assert_eq!(memory.repeat(&k, at(961)), Some(("a.2".into(), 2)));
        assert_eq!(memory.len(), 1);
    }

    #[test]
    fn other_reasons_types_and_objects_are_other_series_but_the_note_is_not() {
        let r = reference("a", "uid-a");
        let failed = SeriesKey::of(&r, &event(EventType::Warning, "Failed", "one"));
        assert_eq!(
            failed,
            SeriesKey::of(&r, &event(EventType::Warning, "Failed", "two"))
        );
        assert_ne!(
            failed,
            SeriesKey::of(&r, &event(EventType::Normal, "Failed", "one"))
        );
        assert_ne!(
            failed,
            SeriesKey::of(&r, &event(EventType::Warning, "Available", "one"))
        );
        assert_ne!(
            failed,
            SeriesKey::of(
                &reference("a", "uid-recreated"),
                &event(EventType::Warning, "Failed", "one")
            ),
            "a recreated object (new uid) starts its own series"
        );
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest_first() {
        let mut memory = SeriesMemory::new(3, SERIES_WINDOW);
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            let i = i64::try_from(i).unwrap_or_default();
            memory.created(key(name, "R"), format!("{name}.1"), at(i));
        }
        assert_eq!(memory.len(), 3);
        assert_eq!(
            memory.repeat(&key("a", "R"), at(5)),
            None,
            "a was forgotten"
        );
        assert!(memory.repeat(&key("d", "R"), at(5)).is_some());
        // Re-creating a remembered key does not leave a stale entry behind.
        memory.created(key("d", "R"), "d.2".into(), at(6));
        memory.created(key("e", "R"), "e.1".into(), at(7));
        assert_eq!(memory.len(), 3);
        assert_eq!(
            memory.repeat(&key("d", "R"), at(8)),
            Some(("d.2".into(), 2))
        );
        for n in 0..10_000 {
            memory.created(key(&format!("x{n}"), "R"), format!("x{n}.1"), at(9));
        }
        assert_eq!((memory.len(), memory.order.len()), (3, 3));
    }

    #[test]
    fn a_live_series_outlives_quieter_ones() {
        let mut memory = SeriesMemory::new(3, SERIES_WINDOW);
        for name in ["a", "b", "c"] {
            memory.created(key(name, "R"), format!("{name}.1"), at(0));
        }
        assert!(memory.repeat(&key("a", "R"), at(1)).is_some());
        memory.created(key("d", "R"), "d.1".into(), at(2));
        assert_eq!(
            memory.repeat(&key("b", "R"), at(3)),
            None,
            "b was the quietest"
        );
        assert_eq!(
            memory.repeat(&key("a", "R"), at(3)),
            Some(("a.1".into(), 3))
        );
        assert_eq!((memory.len(), memory.order.len()), (3, 3));
    }

    #[tokio::test]
    async fn flush_waits_for_the_queue_at_most_its_grace() {
        let (sink, _) = stalled_sink();
        let started = std::time::Instant::now();
        sink.flush(std::time::Duration::from_secs(60)).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "nothing queued: no wait for the grace"
        );
        sink.publish(
            reference("a", "uid-a"),
            event(EventType::Normal, "Available", "x"),
        );
        let started = std::time::Instant::now();
        sink.flush(std::time::Duration::from_millis(300)).await;
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(300)
                && waited < std::time::Duration::from_secs(30),
            "{waited:?}"
        );
    }

    /// A sink whose workers never run: what `publish` does when the API
    /// server does not answer.
    fn stalled_sink() -> (EventSink, IntCounterVec) {
        let outcomes = IntCounterVec::new(prometheus::Opts::new("events", "test"), &["result"])
            .unwrap_or_else(|e| panic!("{e}"));
        let url = "https://127.0.0.1:1"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let client = Client::try_from(kube::Config::new(url)).unwrap_or_else(|e| panic!("{e}"));
        let reporter = Reporter {
            controller: "vmlisub".into(),
            instance: None,
        };
        (EventSink::new(client, reporter, outcomes.clone()), outcomes)
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting_and_keeps_room_for_warnings() {
        let (sink, outcomes) = stalled_sink();
        let one = reference("a", "uid-a");
        let extra = 10;
        let dropped = || outcomes.with_label_values(&["dropped"]).get();
        let started = std::time::Instant::now();
        for n in 0..QUEUE - QUEUE / 4 + extra {
            let note = n.to_string();
            sink.publish(one.clone(), event(EventType::Normal, "Available", &note));
        }
        assert_eq!(dropped(), extra as u64, "Normal Events fill three quarters");
        for n in 0..QUEUE / 4 + extra {
            let note = n.to_string();
            sink.publish(one.clone(), event(EventType::Warning, "Failed", &note));
        }
        assert_eq!(dropped(), 2 * extra as u64, "Warnings the rest");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "publish never waits"
        );
        // Another object's worker has room.
        let other = (0..100)
            .map(|n| reference(&format!("b{n}"), &format!("uid-b{n}")))
            .find(|r| worker_of(r, WORKERS) != worker_of(&one, WORKERS))
            .unwrap_or_else(|| panic!("all on one worker"));
        sink.publish(other, event(EventType::Normal, "Available", "x"));
        assert_eq!(dropped(), 2 * extra as u64);
    }

    #[test]
    fn an_objects_events_always_go_to_the_same_worker_and_all_workers_are_used() {
        let mut used = [false; WORKERS];
        for n in 0..200 {
            let r = reference(&format!("image-{n}"), &format!("uid-{n}"));
            let worker = worker_of(&r, WORKERS);
            assert_eq!(worker, worker_of(&r, WORKERS));
            used[worker] = true;
        }
        assert!(used.iter().all(|u| *u), "{used:?}");
        assert_eq!(
            worker_of(&reference("a", "b"), 0),
            0,
            "no workers: no panic"
        );
    }
}
