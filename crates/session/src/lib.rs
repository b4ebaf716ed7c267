//! Sessions for Shadowcat, the MCP proxy.
//!
//! One session model for every client transport, kept in plain synchronous data structures
//! (no runtime; time is passed in as [`std::time::Instant`]):
//!
//! - [`SessionId`]: the proxy's own `Mcp-Session-Id`, 128 unguessable random bits.
//! - [`SessionInfo`]: what the proxy knows about a session (transport, era, negotiated
//!   revision, client and server info and capabilities, upstream binding, activity).
//! - [`Registry`]: the open sessions with their [`Limits`] (maximum count, idle timeout,
//!   pending requests), idle eviction and [`RegistryStats`].
//! - [`SessionStore`]: the seam for keeping session records outside the process so several
//!   gateway instances can serve the same sessions; [`MemoryStore`] is the default.
//! - [`EventStore`]: a session's recent server-sent events, bounded, so a client that
//!   reconnects with `Last-Event-ID` gets what it missed.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use shadowcat_session::{Limits, Registry, SessionId, TransportKind};
//!
//! let registry: Registry<&str> =
//!     Registry::new(Limits::default().with_idle_timeout(Some(Duration::from_secs(60))));
//! let start = Instant::now();
//! let id = registry
//!     .create("upstream #1", |info| info.transport = TransportKind::LegacySse, start)
//!     .unwrap();
//!
//! // A later request carries the id in `Mcp-Session-Id`.
//! let header = SessionId::parse(id.as_str()).unwrap();
//! assert_eq!(registry.get(&header, start), Some("upstream #1"));
//!
//! // Two idle minutes later the session is evicted; its id is remembered as ended.
//! let evicted = registry.expire(start + Duration::from_secs(120));
//! assert_eq!(evicted, vec![(id.clone(), "upstream #1")]);
//! assert!(registry.was_removed(&id));
//! assert_eq!(registry.stats().evicted_idle, 1);
//! ```

mod error;
mod events;
mod id;
mod info;
mod registry;
mod store;

pub use error::{Error, Result};
pub use events::{EventId, EventStore, Replay, ReplayError, StreamId};
pub use id::SessionId;
pub use info::{Implementation, SessionInfo, TransportKind};
pub use registry::{Limits, Registry, RegistryStats};
pub use store::{MemoryStore, SessionStore};
