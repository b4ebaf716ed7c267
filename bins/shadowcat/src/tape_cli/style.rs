//! Terminal output: colour when stdout is a terminal (and `NO_COLOR` is unset), progress
//! bars on stderr when it is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// ANSI styles used by the tape tools.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Paint {
    Dim,
    Bold,
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Self::Dim => "2",
            Self::Bold => "1",
            Self::Red => "31",
            Self::Green => "32",
            Self::Yellow => "33",
            Self::Blue => "34",
            Self::Magenta => "35",
            Self::Cyan => "36",
        }
    }
}

/// Output settings: JSON or text, and whether text is coloured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
    color: bool,
    progress: bool,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            json,
            color: !json && !no_color && std::io::stdout().is_terminal(),
            progress: std::io::stderr().is_terminal(),
        }
    }

    /// `text` in the style, when colour is on.
    pub(crate) fn paint(&self, style: Paint, text: &str) -> String {
        if self.color {
            format!("\x1b[{}m{text}\x1b[0m", style.code())
        } else {
            text.to_owned()
        }
    }

    /// Prints an error line to stderr.
    pub(crate) fn error(&self, message: &str) {
        let _ = writeln!(std::io::stderr(), "shadowcat tape: {message}");
    }

    /// A progress bar for reading `total` bytes, drawn on stderr only when it is a terminal.
    pub(crate) fn progress(&self, label: &str, total: u64) -> Progress {
        Progress {
            on: self.progress && total >= 8 << 20,
            label: label.to_owned(),
            total: total.max(1),
            last: Instant::now(),
            drawn: false,
        }
    }
}

/// A progress bar on stderr, redrawn at most ten times a second.
#[derive(Debug)]
pub(crate) struct Progress {
    on: bool,
    label: String,
    total: u64,
    last: Instant,
    drawn: bool,
}

impl Progress {
    /// Shows that `done` of the total bytes are read.
    pub(crate) fn set(&mut self, done: u64) {
        if !self.on || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let ratio = (done.min(self.total) as f64) / (self.total as f64);
        let width = 30;
        let filled = (ratio * f64::from(width)) as usize;
        let bar: String = (0..width as usize)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let _ = write!(
            std::io::stderr(),
            "\r{} [{bar}] {:>3}% {}",
            self.label,
            (ratio * 100.0) as u32,
            super::units::bytes(done)
        );
        self.drawn = true;
    }

    /// Clears the bar.
    pub(crate) fn finish(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
