//! Hot reload: watching a rule file and swapping in its new rules when they are valid.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::interceptor::RulesInterceptor;
use super::ruleset::RuleSet;

/// How often a watched rule file is looked at unless told otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Watches a rule file and reloads it into a [`RulesInterceptor`] when it changes.
///
/// The file is looked at every poll interval (its modification time and size, and the hash
/// of its contents, so a change within the file system's time resolution is not missed). A
/// changed file is checked in full before it replaces the rules in force, which logs
/// `rules reloaded from FILE: N rules`; an invalid file keeps the old rules and logs
/// precisely what is wrong (file, line, column, rule, field). Messages already being
/// evaluated finish under the rules they started with.
///
/// The watching task belongs to this value: dropping it stops the watching. It must be
/// created inside a Tokio runtime.
#[derive(Debug)]
pub struct RulesWatcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RulesWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
    hash: u64,
}

/// A file that changed less than this long ago is hashed on every poll, since a second
/// write within the time stamp's resolution leaves the time and perhaps the size alone.
const RECENT: Duration = Duration::from_secs(2);

fn look(path: &Path, last: Option<Seen>) -> std::io::Result<Option<(Seen, String)>> {
    let meta = std::fs::metadata(path)?;
    let modified = meta.modified().ok();
    let recent = modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_none_or(|age| age < RECENT);
    if let Some(last) = last
        && last.modified == modified
        && last.len == meta.len()
        && !recent
    {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)?;
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let seen = Seen {
        modified,
        len: meta.len(),
        hash: hasher.finish(),
    };
    Ok(Some((seen, text)))
}

impl RulesWatcher {
    /// Watches `path` for `target`, looking every [`DEFAULT_POLL_INTERVAL`]. The file as it
    /// is now is taken as the one `target`'s rules came from.
    pub fn spawn(target: Arc<RulesInterceptor>, path: impl Into<PathBuf>) -> Self {
        Self::spawn_with_interval(target, path, DEFAULT_POLL_INTERVAL)
    }

    /// [`RulesWatcher::spawn`] with another poll interval.
    pub fn spawn_with_interval(
        target: Arc<RulesInterceptor>,
        path: impl Into<PathBuf>,
        interval: Duration,
    ) -> Self {
        let path = path.into();
        let mut last = look(&path, None).ok().flatten().map(|(seen, _)| seen);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            let mut missing = false;
            loop {
                ticks.tick().await;
                let (seen, text) = match look(&path, last) {
                    Ok(Some(found)) => found,
                    Ok(None) => continue,
                    Err(e) => {
                        if !missing {
                            tracing::warn!(
                                "cannot read rules file {}: {e}; keeping the rules in force",
                                path.display()
                            );
                            missing = true;
                        }
                        continue;
                    }
                };
                missing = false;
                let changed = last.is_none_or(|l| l.hash != seen.hash);
                last = Some(seen);
                if !changed {
                    continue;
                }
                let format = super::parse::RuleFormat::for_path(&path);
                match RuleSet::parse(&text, format, Some(&path)) {
                    Ok(rules) => {
                        let n = rules.len();
                        let seed = rules.seed();
                        target.replace(rules);
                        tracing::info!(
                            rules = n,
                            seed,
                            "rules reloaded from {}: {n} rules",
                            path.display()
                        );
                    }
                    Err(e) => {
                        tracing::error!("{e}; keeping the previous rules");
                    }
                }
            }
        });
        Self { task }
    }
}
