//! Server-side HTTP helpers the emulator and the gateway share (so neither
//! depends on the other): reading a request body under a size limit.

use http_body_util::BodyExt;
use hyper::body::{Body as _, Bytes, Incoming};

/// A request body as far as it could be read.
#[derive(Debug)]
pub enum ReadBody {
    Full(Bytes),
    /// Above the limit (nothing of it is kept).
    TooLarge,
    /// The client broke off mid-body or sent something hyper could not frame.
    Broken(String),
}

/// Reads up to `limit` bytes. Beyond it, keeps reading (and discarding) up to
/// `drain_cap` bytes, so the client finishes sending and sees the answer (a 413)
/// instead of a reset mid-upload; a body announced or sent beyond `drain_cap`
/// is `TooLarge` at once.
pub async fn read_body(mut body: Incoming, limit: usize, drain_cap: u64) -> ReadBody {
    if body.size_hint().lower() > drain_cap {
        return ReadBody::TooLarge;
    }
    let mut buf = Vec::new();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return ReadBody::Broken(e.to_string()),
        };
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len() as u64);
            if total <= limit as u64 {
                buf.extend_from_slice(&data);
            } else if total > drain_cap {
                return ReadBody::TooLarge;
            }
        }
    }
    if total > limit as u64 {
        ReadBody::TooLarge
    } else {
        ReadBody::Full(Bytes::from(buf))
    }
}
