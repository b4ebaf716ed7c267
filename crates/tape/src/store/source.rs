//! Opening a tape file of any format for the store: its header, its format's name and its
//! frames.

use std::path::Path;

use crate::{Result, TapeFormat, TapeFrame, TapeHeader};

/// An open tape: header, format name and the frames, read one at a time.
pub(crate) struct TapeSource {
    pub(crate) header: TapeHeader,
    pub(crate) format: &'static str,
    pub(crate) frames: Box<dyn Iterator<Item = Result<TapeFrame>>>,
}

/// Opens the tape at `path` (any format, detected from its first bytes) and reads its
/// header.
pub(crate) fn open_source(path: &Path) -> Result<TapeSource> {
    let reader = crate::open(path)?;
    Ok(TapeSource {
        header: reader.header().clone(),
        format: reader.format().as_str(),
        frames: Box::new(reader),
    })
}

/// Whether a file name looks like a tape the store manages (by its extension); hidden
/// files (such as the index's temporary files) never do.
pub(crate) fn is_tape_file_name(name: &str) -> bool {
    !name.starts_with('.') && TapeFormat::from_extension(name).is_some()
}
