//! The gateway's say over what enters a session: who the caller is ([`Grant`]), and whether
//! each message it posts may go on ([`MessageAdmission`]).
//!
//! The transport knows nothing of tokens or policies. Whoever serves the HTTP requests
//! (the gateway) authenticates a request first and puts a [`Grant`] into its extensions;
//! the handler then binds new sessions to the grant's owner (a session id alone never
//! admits anybody), and asks the [`MessageAdmission`] about every message before it enters
//! the session.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use shadowcat_mcp::Message;
use shadowcat_raw_transport::HttpBody;

use crate::TransportKind;

/// Who sent an HTTP request, as the gateway established it: put into the request's
/// extensions before the [`HttpHandler`](crate::HttpHandler) sees it.
#[derive(Clone)]
pub struct Grant {
    owner: Arc<str>,
    data: Arc<dyn Any + Send + Sync>,
}

impl Grant {
    /// A grant for `owner` (the subject a session is bound to), carrying `data` (for
    /// example the authenticated principal) to the [`MessageAdmission`].
    pub fn new(owner: impl Into<Arc<str>>, data: Arc<dyn Any + Send + Sync>) -> Self {
        Self {
            owner: owner.into(),
            data,
        }
    }

    /// The subject sessions opened under this grant belong to.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The data, when it is a `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.data.downcast_ref::<T>()
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Rewrites the answer to one admitted request before it reaches the client (for
/// example, a `tools/list` result cut down to the tools the caller may call).
pub trait AnswerFilter: Send + Sync {
    /// The bytes to send instead of `answer`; `None` keeps it as it is.
    fn filter(&self, answer: &Message) -> Option<Bytes>;
}

/// What the [`MessageAdmission`] decided about one message.
#[non_exhaustive]
pub enum Admitted {
    /// It goes on.
    Yes,
    /// It goes on, and its answer passes through the filter.
    Filtered(Arc<dyn AnswerFilter>),
    /// It is refused: this response goes to the client instead (a JSON-RPC error, a 403
    /// asking for more scopes, a 429 with `Retry-After`).
    No(Response<HttpBody>),
}

impl fmt::Debug for Admitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yes => f.write_str("Yes"),
            Self::Filtered(_) => f.write_str("Filtered"),
            Self::No(r) => write!(f, "No({})", r.status()),
        }
    }
}

/// What the gateway knows about a message it is asked to admit.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AdmissionContext<'a> {
    /// The request's grant, when the gateway authenticated it.
    pub grant: Option<&'a Grant>,
    /// The proxy's session id.
    pub session: &'a str,
    /// The client-side transport.
    pub transport: TransportKind,
}

/// Decides, for every message a client posts, whether it enters the session. Called once
/// per message of a batch. The default admits everything.
pub trait MessageAdmission: Send + Sync {
    /// Admits `message` (a single message, never a batch) or refuses it.
    fn admit(&self, context: &AdmissionContext<'_>, message: &Message) -> Admitted {
        let _ = (context, message);
        Admitted::Yes
    }
}

/// The latest [`Grant`] a session's requests came with: the gateway updates it on every
/// request, so what acts for the session upstream (a token exchange, for example) uses the
/// caller's current credentials, not those it opened the session with.
#[derive(Debug, Clone, Default)]
pub struct SessionGrant(Arc<std::sync::Mutex<Option<Grant>>>);

impl SessionGrant {
    /// The grant of the session's latest request.
    pub fn current(&self) -> Option<Grant> {
        self.0.lock().expect("never poisoned").clone()
    }

    pub(crate) fn set(&self, grant: Option<&Grant>) {
        if let Some(grant) = grant {
            *self.0.lock().expect("never poisoned") = Some(grant.clone());
        }
    }
}
