//! Long text output through a pager (`$PAGER`, else `less`) when standard output is a
//! terminal, as `git log` does.

use std::io::{IsTerminal, Write};
use std::process::{Child, Command, Stdio};

use clap::ValueEnum;

/// When to page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PagerMode {
    /// When standard output is a terminal.
    Auto,
    /// Always (the pager decides what to do without a terminal).
    Always,
    /// Never.
    Never,
}

/// The pager command line to run, if any: `$PAGER` (empty or `cat`: none), else `less`.
fn pager_command(mode: PagerMode, terminal: bool, pager: Option<&str>) -> Option<String> {
    let wanted = match mode {
        PagerMode::Never => false,
        PagerMode::Always => true,
        PagerMode::Auto => terminal,
    };
    if !wanted {
        return None;
    }
    match pager.map(str::trim) {
        Some("" | "cat") => None,
        Some(command) => Some(command.to_owned()),
        None => Some("less".to_owned()),
    }
}

/// Where text goes: standard output, or a pager's input.
pub(crate) struct Paged {
    child: Option<Child>,
}

impl Paged {
    /// Starts the pager when `mode` and the environment ask for one; standard output
    /// otherwise (also when the pager cannot start).
    pub(crate) fn start(mode: PagerMode) -> Self {
        let env = std::env::var("PAGER").ok();
        let Some(command) = pager_command(mode, std::io::stdout().is_terminal(), env.as_deref())
        else {
            return Self { child: None };
        };
        // `less`: quit when one screen holds it all, keep colours, leave the screen as is.
        let mut shell = Command::new("sh");
        shell.arg("-c").arg(&command).stdin(Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            shell.env("LESS", "FRX");
        }
        Self {
            child: shell.spawn().ok(),
        }
    }

    /// Writes one line.
    pub(crate) fn line(&mut self, text: &str) -> std::io::Result<()> {
        match self.child.as_mut().and_then(|c| c.stdin.as_mut()) {
            Some(stdin) => writeln!(stdin, "{text}"),
            None => writeln!(std::io::stdout().lock(), "{text}"),
        }
    }

    /// Closes the pager's input and waits until the reader quits it.
    pub(crate) fn finish(mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Drop for Paged {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PagerMode, pager_command};

    #[test]
    fn pages_only_on_a_terminal_unless_told() {
        assert_eq!(pager_command(PagerMode::Auto, false, None), None);
        assert_eq!(
            pager_command(PagerMode::Auto, true, None).as_deref(),
            Some("less")
        );
        assert_eq!(
            pager_command(PagerMode::Always, false, Some("more")).as_deref(),
            Some("more")
        );
        assert_eq!(pager_command(PagerMode::Always, true, Some("cat")), None);
        assert_eq!(pager_command(PagerMode::Auto, true, Some("")), None);
        assert_eq!(pager_command(PagerMode::Never, true, None), None);
    }
}
