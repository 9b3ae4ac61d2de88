//! The checkpoint: the engine's window state with the source positions it reflects, saved before offsets
//! are committed. On restart, records below these positions are skipped (their effects are already in the
//! state), so a restarted run yields the same signals.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sentra_pipeline::detect::{Engine, EngineState};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::RunError;
use crate::sources::{Positions, Source};

/// What `sentra run` saves every checkpoint interval, before committing offsets.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Consumer group the state belongs to.
    pub group_id: String,
    /// Next offset per `topic/partition`.
    pub offsets: Positions,
    /// Detection engine state.
    pub engine: EngineState,
}

impl Checkpoint {
    /// The checkpoint at `path` (`None` when there is none), refused when it belongs to another group.
    pub fn load(path: &Path, group: &str) -> Result<Option<Self>, RunError> {
        let err = |detail: String| RunError::Checkpoint {
            path: path.display().to_string(),
            detail,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let c: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| err(format!("not a Sentra checkpoint: {e}")))?;
        if c.group_id != group {
            return Err(err(format!(
                "belongs to consumer group {:?}, not {group:?}",
                c.group_id
            )));
        }
        Ok(Some(c))
    }

    /// Writes the checkpoint to `path` atomically and durably ([`sentra_sinks::durable::replace`]).
    pub fn save(&self, path: &Path) -> Result<(), RunError> {
        let err = |detail: String| RunError::Checkpoint {
            path: path.display().to_string(),
            detail,
        };
        let body = serde_json::to_vec(self).map_err(|e| err(e.to_string()))?;
        sentra_sinks::durable::replace(path, |f| std::io::Write::write_all(f, &body))
            .map_err(|e| err(e.to_string()))
    }
}

/// When checkpoints are due, and saving one before committing the source.
pub struct Checkpoints {
    group: String,
    path: PathBuf,
    interval: Duration,
    saved_at: Instant,
}

impl Checkpoints {
    /// Checkpoints of `group` at `path`, every `interval`.
    pub fn new(group: &str, path: &Path, interval: Duration) -> Self {
        Self {
            group: group.to_owned(),
            path: path.to_owned(),
            interval,
            saved_at: Instant::now(),
        }
    }

    /// When the next save is due.
    pub fn due_at(&self) -> Instant {
        self.saved_at + self.interval
    }

    /// Saves the engine state with the source's acknowledged positions, then commits them to the source
    /// (never before the state that holds their effects is on disk). Returns whether the commit succeeded.
    pub fn save_and_commit(
        &mut self,
        engine: &Engine,
        source: &mut dyn Source,
    ) -> Result<bool, RunError> {
        let checkpoint = Checkpoint {
            group_id: self.group.clone(),
            offsets: source.positions().clone(),
            engine: engine.snapshot(),
        };
        checkpoint.save(&self.path)?;
        self.saved_at = Instant::now();
        Ok(source.commit()?)
    }
}
