//! Replay: tapes prepared for playing back as a mock server ([`ReplayScript`],
//! [`Matcher`]), canonical request keys ([`CanonicalKey`]), structural differences
//! ([`diff_values`]) and replay pacing ([`Timing`]).

mod diff;
mod key;
mod matcher;
mod script;
mod timing;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use diff::{Difference, diff_values, path_matches};
pub use key::{CanonicalKey, canonical_params, canonical_value};
pub use matcher::{Closest, Emit, Matcher, Miss, Reaction};
pub use script::{Output, RecordedMessage, RecordedSession, ReplayScript, Step, Trigger};
pub use timing::{SPEED_RANGE, Timing};

use crate::{Result, TapeFrame, TapeHeader};

/// Reads the tape at `path` (any format) for replay: its header and every frame. A torn tail (the
/// incomplete last line a crash leaves) ends the frames without an error; any other
/// problem is an error naming its position.
pub fn read_tape(path: impl AsRef<Path>) -> Result<(TapeHeader, Vec<TapeFrame>)> {
    let reader = crate::open(path)?;
    let header = reader.header().clone();
    let mut frames = Vec::new();
    for frame in reader {
        match frame {
            Ok(frame) => frames.push(frame),
            Err(e) if e.is_torn_tail() => break,
            Err(e) => return Err(e),
        }
    }
    Ok((header, frames))
}
