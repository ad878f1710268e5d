//! The daemon's event log (`GET /events`, `docker events`).
//!
//! Every service reports what happened to the [`EventBus`]: the bus stamps the event,
//! keeps the most recent ones for clients that ask for past events (`--since`), and
//! hands each one to every live subscriber. Like Docker, the history is a bounded ring
//! (Docker keeps 256) and nothing is written to disk: events are a live feed, not an
//! audit log.
//!
//! A subscriber that falls behind by more than the channel holds loses the oldest
//! events instead of slowing the services down; publishing never blocks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::filters::Filters;

/// How many past events are kept for `since` (Docker's `eventsLimit`).
const HISTORY: usize = 256;
/// How far a live subscriber may lag before it loses events.
const CHANNEL: usize = 1024;

/// The kinds of object an event is about (Docker's `events.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A container's lifecycle.
    Container,
    /// Image pull, tag, untag, delete, load, import, save, push.
    Image,
    /// Volume create, mount, unmount, destroy.
    Volume,
    /// Network create, connect, disconnect, destroy.
    Network,
    /// Daemon reload.
    Daemon,
}

impl Kind {
    /// Docker's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
            Kind::Network => "network",
            Kind::Daemon => "daemon",
        }
    }
}

/// The object of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Actor {
    /// Container or image ID, volume or network name.
    #[serde(rename = "ID")]
    pub id: String,
    /// `name`, `image`, labels, `exitCode`, `signal`, ...
    pub attributes: BTreeMap<String, String>,
}

/// One event in the Engine API's shape (`events.Message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Deprecated mirror of `Action`, still set for containers and images (clients
    /// from API 1.21 and docker-py read it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Deprecated mirror of `Actor.ID` for containers and images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Deprecated: the container's image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `container`, `image`, ...
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `tag`, ...
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local` here (swarm has `swarm`).
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.time_nano)
    }
}

/// The daemon's event bus; one per daemon, shared by every service.
pub struct EventBus {
    history: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            live: broadcast::channel(CHANNEL).0,
        }
    }
}

impl EventBus {
    /// Records an event about `id` with `attributes`, now.
    pub fn publish(
        &self,
        kind: Kind,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = Utc::now();
        let legacy = matches!(kind, Kind::Container | Kind::Image);
        let event = Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if kind == Kind::Container {
                attributes.get("image").cloned()
            } else {
                None
            },
            kind: kind.as_str().to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".to_string(),
            time: now.timestamp(),
            time_nano: now.timestamp_nanos_opt().unwrap_or(i64::MAX),
        };
        // The history lock is held while sending, so a subscriber that snapshots the
        // history under the same lock sees every event exactly once: either in the
        // snapshot or on its channel.
        let mut history = self.history.lock().expect("events lock");
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        let _ = self.live.send(event);
    }

    /// The kept events at or after `since` (and at or before `until`) that pass
    /// `filter`, and a receiver for every later event.
    pub fn subscribe(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        filter: &EventFilter,
    ) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.history.lock().expect("events lock");
        let past = match since {
            None => Vec::new(),
            Some(since) => history
                .iter()
                .filter(|e| e.at() >= since && until.is_none_or(|u| e.at() <= u))
                .filter(|e| filter.includes(e))
                .cloned()
                .collect(),
        };
        (past, self.live.subscribe())
    }
}

/// `GET /events?filters=`: which events a client wants (moby's events filter).
#[derive(Debug, Clone, Default)]
pub struct EventFilter(Filters);

impl EventFilter {
    /// Checks the filter names.
    ///
    /// # Errors
    /// `InvalidArgument` for an unknown filter, in Docker's words.
    pub fn new(filters: Filters) -> Result<Self, crate::DaemonError> {
        filters.validate(&[
            "container",
            "daemon",
            "event",
            "image",
            "label",
            "network",
            "type",
            "volume",
            "scope",
            "plugin",
            "node",
            "service",
            "secret",
            "config",
        ])?;
        Ok(EventFilter(filters))
    }

    /// Whether `event` passes every filter given.
    pub fn includes(&self, event: &Event) -> bool {
        let f = &self.0;
        let exact = |name: &str, value: &str| !f.contains(name) || f.get(name).any(|v| v == value);
        // Names and IDs match by prefix, as Docker's FuzzyMatch.
        let fuzzy = |name: &str, value: &str| {
            !f.contains(name) || f.get(name).any(|v| value.starts_with(v))
        };
        let name = event
            .actor
            .attributes
            .get("name")
            .map_or("", String::as_str);
        // As Docker: `container=`, `network=`, … compare with the actor of every
        // event, whatever its type, so `container=web` leaves out the network
        // events that name web only in an attribute.
        let by_name = |kind: Kind| {
            !f.contains(kind.as_str())
                || fuzzy(kind.as_str(), &event.actor.id)
                || fuzzy(kind.as_str(), name)
        };
        // Some actions carry a suffix (`exec_start: sh -c ...`, `health_status: healthy`):
        // a filter naming the bare action matches them by prefix.
        let action_ok = if f
            .get("event")
            .any(|v| matches!(v, "health_status" | "exec_create" | "exec_start"))
        {
            fuzzy("event", &event.action)
        } else {
            exact("event", &event.action)
        };
        action_ok
            && exact("type", &event.kind)
            && exact("scope", &event.scope)
            && self.image_ok(event)
            && [Kind::Container, Kind::Volume, Kind::Network, Kind::Daemon]
                .into_iter()
                .all(by_name)
            && f.match_labels("label", Some(&event.actor.attributes))
    }

    /// `image=` matches an image event's ID or name, or a container event's image,
    /// with or without the tag.
    fn image_ok(&self, event: &Event) -> bool {
        let f = &self.0;
        if !f.contains("image") {
            return true;
        }
        let attr = if event.kind == Kind::Image.as_str() {
            "name"
        } else {
            "image"
        };
        let name = event.actor.attributes.get(attr).map_or("", String::as_str);
        let strip = |s: &str| -> String {
            berth_oci::reference::Reference::parse_normalized(s)
                .map(|r| r.familiar_name())
                .unwrap_or_else(|_| s.to_string())
        };
        let candidates = [
            event.actor.id.clone(),
            name.to_string(),
            strip(&event.actor.id),
            strip(name),
        ];
        f.get("image").any(|v| candidates.iter().any(|c| c == v))
    }
}

/// The attributes Docker puts on a container's events: its labels, `image` (as the
/// user named it) and `name` (without the slash).
pub fn container_attributes(
    labels: Option<&BTreeMap<String, String>>,
    image: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let mut attributes = labels.cloned().unwrap_or_default();
    attributes.insert("image".into(), image.to_string());
    attributes.insert("name".into(), name.trim_start_matches('/').to_string());
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(json: &str) -> EventFilter {
        EventFilter::new(Filters::parse(json).unwrap()).unwrap()
    }

    fn container_event(bus: &EventBus, action: &str) -> Event {
        bus.publish(
            Kind::Container,
            action,
            "abc123",
            container_attributes(None, "busybox:latest", "/web"),
        );
        bus.history.lock().unwrap().back().unwrap().clone()
    }

    #[test]
    fn container_events_carry_the_legacy_fields() {
        let bus = EventBus::default();
        let e = container_event(&bus, "start");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["status"], "start");
        assert_eq!(v["id"], "abc123");
        assert_eq!(v["from"], "busybox:latest");
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["scope"], "local");
        assert_eq!(
            v["time"].as_i64().unwrap(),
            v["timeNano"].as_i64().unwrap() / 1_000_000_000
        );
        bus.publish(Kind::Volume, "create", "data", BTreeMap::new());
        let v = serde_json::to_value(bus.history.lock().unwrap().back().unwrap()).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none());
    }

    #[test]
    fn filters_match_like_dockers() {
        let bus = EventBus::default();
        let e = container_event(&bus, "exec_start: sh -c true");
        assert!(filter(r#"{"event":["exec_start"]}"#).includes(&e));
        assert!(!filter(r#"{"event":["start"]}"#).includes(&e));
        assert!(filter(r#"{"container":["we"]}"#).includes(&e));
        assert!(filter(r#"{"container":["abc"]}"#).includes(&e));
        assert!(!filter(r#"{"container":["db"]}"#).includes(&e));
        assert!(filter(r#"{"image":["busybox"]}"#).includes(&e));
        assert!(filter(r#"{"image":["busybox:latest"]}"#).includes(&e));
        assert!(!filter(r#"{"image":["hello-world"]}"#).includes(&e));
        assert!(filter(r#"{"type":["container"]}"#).includes(&e));
        assert!(!filter(r#"{"type":["image"]}"#).includes(&e));
        // Docker compares a volume (network, ...) filter with every event's actor,
        // so it leaves out container events (daemon/events/filter.go).
        assert!(!filter(r#"{"volume":["x"]}"#).includes(&e));
        assert!(!filter(r#"{"network":["x"]}"#).includes(&e));
        assert!(filter(r#"{"label":["image=busybox:latest"]}"#).includes(&e));
        assert!(EventFilter::new(Filters::parse(r#"{"colour":["x"]}"#).unwrap()).is_err());
    }

    #[test]
    fn history_is_bounded_and_replayed_from_since() {
        let bus = EventBus::default();
        let start = Utc::now();
        for _ in 0..HISTORY + 10 {
            container_event(&bus, "create");
        }
        let (past, _) = bus.subscribe(Some(start), None, &EventFilter::default());
        assert_eq!(past.len(), HISTORY);
        let (none, mut live) = bus.subscribe(None, None, &EventFilter::default());
        assert!(none.is_empty());
        container_event(&bus, "die");
        assert_eq!(live.try_recv().unwrap().action, "die");
    }
}
