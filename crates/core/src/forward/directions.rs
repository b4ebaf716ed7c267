//! The two direction tasks of a connection: read a burst, pass it through the session
//! (and the interceptor chain), write it out.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use shadowcat_mcp::{Effect, Message, Peer};
use shadowcat_transport::{FrameReader, FrameWriter, Received, StreamFault, WRITE_HIGH_WATER};
use tokio::sync::mpsc;

use super::{ClientSideEnd, Parsed, ServerSideEnd, Shared, parse, queue};
use crate::intercept::{Hooks, Next};

/// Handles one burst: `first` and every frame already buffered behind it, under one lock
/// of the session and one clock reading. Forwarded messages are queued on `writer`, or,
/// with interception, collected in `intercepted` for the chain (which runs after the lock
/// is released); the burst stops early when the writer's buffer is full, so the caller
/// writes it out.
fn handle_burst(
    from: Peer,
    first: Received,
    reader: &mut dyn FrameReader,
    writer: &mut dyn FrameWriter,
    reply: &mpsc::Sender<Bytes>,
    shared: &Shared,
    mut intercepted: Option<&mut Vec<Parsed>>,
) {
    let now = Instant::now();
    let mut session = shared
        .session
        .lock()
        .expect("session lock is never poisoned");
    let mut item = Some(first);
    while let Some(received) = item.take() {
        if let Some(mut parsed) = parse(from, received, reply) {
            let msg = &parsed.message;
            trace(from, msg);
            if intercepted.is_some() && msg.is_response() {
                parsed.request_method = msg
                    .id()
                    .and_then(|id| session.pending_request(from.other(), id))
                    .map(|p| p.method().to_owned());
            }
            match session.on_message(from, &parsed.message, now) {
                Effect::Forward => match intercepted.as_deref_mut() {
                    Some(list) => {
                        parsed.era = session.era();
                        list.push(parsed);
                    }
                    None => writer.enqueue_message(
                        &parsed.message,
                        parsed.related.as_ref(),
                        parsed.headers.as_deref(),
                    ),
                },
                Effect::Reply(answer) => queue(reply, from, answer),
                _ => {}
            }
        }
        if writer.buffered() >= WRITE_HIGH_WATER {
            break;
        }
        item = reader.next_buffered();
    }
}

/// Runs the chain on what a burst collected; `false` when the connection must end.
async fn intercept_all(
    hooks: &mut Hooks,
    list: &mut Vec<Parsed>,
    writer: &mut dyn FrameWriter,
    reply: &mpsc::Sender<Bytes>,
    shared: &Shared,
) -> bool {
    let mut open = true;
    for parsed in list.drain(..) {
        if hooks.intercept(parsed, writer, reply, shared).await == Next::Close {
            open = false;
        }
    }
    hooks.reap();
    open
}

/// After the source closed: carries out what interception still holds (each wait is
/// bounded by its delay or pause timeout), then flushes.
async fn drain_hooks(
    hooks: &mut Option<Hooks>,
    writer: &mut dyn FrameWriter,
    reply: &mpsc::Sender<Bytes>,
    shared: &Shared,
) {
    let Some(hooks) = hooks.as_mut() else {
        return;
    };
    while hooks.waiting() {
        let Some(deferred) = hooks.rx.recv().await else {
            break;
        };
        let _ = hooks.resume(deferred, writer, reply, shared);
        hooks.reap();
        if writer.buffered() > 0 && writer.flush().await.is_err() {
            break;
        }
    }
}

/// Writes out what `writer` holds once the burst is over (nothing more buffered to read,
/// nothing waiting in the side queue) or the buffer is full.
async fn flush_if_due(
    more_to_read: bool,
    writer: &mut dyn FrameWriter,
    side: &mpsc::Receiver<Bytes>,
) -> shadowcat_transport::Result<()> {
    let pending = writer.buffered();
    if pending > 0 && ((!more_to_read && side.is_empty()) || pending >= WRITE_HIGH_WATER) {
        writer.flush().await?;
    }
    Ok(())
}

pub(super) async fn client_to_server(
    mut reader: Box<dyn FrameReader>,
    mut writer: Box<dyn FrameWriter>,
    mut side: mpsc::Receiver<Bytes>,
    reply: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    mut hooks: Option<Hooks>,
) -> ClientSideEnd {
    let mut intercepted = Vec::new();
    loop {
        let deadline = if shared.timers {
            shared
                .session
                .lock()
                .expect("session lock is never poisoned")
                .poll_timeout()
        } else {
            None
        };
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let deferred = async {
            match hooks.as_mut() {
                Some(h) => h.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(bytes) = side.recv() => writer.enqueue(&bytes),
            Some(deferred) = deferred => {
                if let Some(h) = hooks.as_mut()
                    && h.resume(deferred, &mut *writer, &reply, &shared) == Next::Close
                {
                    return ClientSideEnd::Closed(writer);
                }
            }
            () = sleep => {
                let effects = shared
                    .session
                    .lock()
                    .expect("session lock is never poisoned")
                    .on_timeout(Instant::now());
                for effect in effects {
                    match effect {
                        Effect::Send { to: Peer::Server, message } => writer.enqueue(message.as_bytes()),
                        Effect::Send { to: Peer::Client, message } => queue(&reply, Peer::Client, message),
                        Effect::Close { reason } => {
                            tracing::info!("session closed: {reason}");
                            return ClientSideEnd::Closed(writer);
                        }
                        _ => {}
                    }
                }
            }
            item = reader.recv() => match item {
                Ok(None) => {
                    drain_hooks(&mut hooks, &mut *writer, &reply, &shared).await;
                    if writer.buffered() > 0 && writer.flush().await.is_err() {
                        return ClientSideEnd::ServerGone;
                    }
                    return ClientSideEnd::Eof(writer);
                }
                Err(e) => return ClientSideEnd::ReadFailed(writer, e),
                Ok(Some(first)) => {
                    let list = hooks.is_some().then_some(&mut intercepted);
                    handle_burst(Peer::Client, first, &mut *reader, &mut *writer, &reply, &shared, list);
                    if let Some(h) = hooks.as_mut()
                        && !intercept_all(h, &mut intercepted, &mut *writer, &reply, &shared).await
                    {
                        return ClientSideEnd::Closed(writer);
                    }
                }
            },
        }
        if flush_if_due(reader.has_buffered(), &mut *writer, &side)
            .await
            .is_err()
        {
            return ClientSideEnd::ServerGone;
        }
    }
}

pub(super) async fn server_to_client(
    mut reader: Box<dyn FrameReader>,
    mut writer: Box<dyn FrameWriter>,
    mut side: mpsc::Receiver<Bytes>,
    reply: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    mut hooks: Option<Hooks>,
    mut expire: Option<mpsc::Receiver<Message>>,
) -> ServerSideEnd {
    let mut intercepted = Vec::new();
    loop {
        let deferred = async {
            match hooks.as_mut() {
                Some(h) => h.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let expiring = async {
            match expire.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(bytes) = side.recv() => writer.enqueue(&bytes),
            Some(request) = expiring => {
                if !writer.fault(StreamFault::ExpireSession, &request, None) {
                    break;
                }
            }
            Some(deferred) = deferred => {
                if let Some(h) = hooks.as_mut()
                    && h.resume(deferred, &mut *writer, &reply, &shared) == Next::Close
                {
                    break;
                }
            }
            item = reader.recv() => match item {
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("{e}");
                    break;
                }
                Ok(Some(first)) => {
                    let list = hooks.is_some().then_some(&mut intercepted);
                    handle_burst(Peer::Server, first, &mut *reader, &mut *writer, &reply, &shared, list);
                    if let Some(h) = hooks.as_mut()
                        && !intercept_all(h, &mut intercepted, &mut *writer, &reply, &shared).await
                    {
                        break;
                    }
                }
            },
        }
        if flush_if_due(reader.has_buffered(), &mut *writer, &side)
            .await
            .is_err()
        {
            return ServerSideEnd::ClientGone;
        }
    }
    drain_hooks(&mut hooks, &mut *writer, &reply, &shared).await;
    if writer.buffered() > 0 && writer.flush().await.is_err() {
        return ServerSideEnd::ClientGone;
    }
    ServerSideEnd::Eof(writer, side)
}

fn trace(from: Peer, msg: &Message) {
    tracing::trace!(
        from = from.as_str(),
        kind = msg.kind().as_str(),
        id = msg.id().map(ToString::to_string),
        method = msg.method(),
        bytes = msg.as_bytes().len(),
        "message"
    );
}
