//! Fenced commits: a writer that hands over (a lease on object storage) claims each table
//! with an epoch, and a commit of an older epoch can never land after that claim.

use std::sync::Arc;

use deltalake::kernel::{Action, StructType};
use deltalake::protocol::DeltaOperation;

use super::table::{AppTransaction, AppendOutcome, Commit, LakeTable, Staged};
use crate::error::{Error, Result};

/// A writer's claim on a table, for writers that hand over (a lease on object storage).
///
/// The writer that takes over first commits a claim: an app transaction `(app_id, epoch)`
/// with a higher epoch than any before ([`LakeTable::claim`]). Every fenced commit is then
/// attempted only on the latest version, after checking that no newer claim is in the log
/// and that `guard` still holds; a commit that meets a newer version is not rebased by
/// deltalake but checked again. So a writer that lost its claim can never commit after the
/// next writer's claim: its put of the next log entry either lands before the claim (and the
/// next writer reads it back, as after a crash) or fails and is refused.
#[derive(Clone)]
pub struct Fence {
    pub app_id: String,
    pub epoch: i64,
    pub guard: Arc<dyn FenceGuard>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fence({} epoch {})", self.app_id, self.epoch)
    }
}

/// Whether a writer may still commit (its lease is held and fresh).
pub trait FenceGuard: Send + Sync {
    fn check(&self) -> FenceState;
}

/// What a [`FenceGuard`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceState {
    /// The lease is held and fresh: commit.
    Held,
    /// Not known to be fresh (not renewed lately, e.g. after a pause): ask again after the
    /// given time, when a renewal may have settled it.
    Unsure {
        reason: String,
        retry_after: std::time::Duration,
    },
    /// Lost: never commit again.
    Lost { reason: String },
}

/// How long a fenced commit waits for its guard to become sure before giving up.
const UNSURE_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// How often a fenced commit meets a newer version and tries again before giving up.
const FENCED_ATTEMPTS: usize = 16;

impl LakeTable {
    /// A fenced commit: tried on the latest version only, checking the fence and the app
    /// version before each try (deltalake does not rebase it).
    pub(super) async fn commit_fenced(
        &mut self,
        actions: Vec<Action>,
        schema: Option<StructType>,
        commit: Commit,
        operation: DeltaOperation,
        fence: &Fence,
    ) -> Result<AppendOutcome> {
        for attempt in 0..FENCED_ATTEMPTS {
            if attempt > 0
                && let Some(app_version) = self.already_committed(&commit).await?
            {
                return Ok(AppendOutcome::AlreadyCommitted { app_version });
            }
            self.check_fence(fence).await?;
            let tried = self
                .commit_actions(
                    actions.clone(),
                    schema.clone(),
                    commit.clone(),
                    operation.clone(),
                    Some(0),
                )
                .await;
            match tried {
                Err(e) if super::rewrite::is_behind(&e) => continue,
                Err(e) => return Err(e),
                Ok(version) => return Ok(AppendOutcome::Committed { version }),
            }
        }
        Err(Error::ConcurrentChange {
            location: self.url.to_string(),
            reason: format!("other commits kept landing; gave up after {FENCED_ATTEMPTS} attempts"),
        })
    }

    /// Refuses a commit under `fence` once the writer lost its claim (a newer claim is in
    /// the loaded log, or its guard says so).
    async fn check_fence(&self, fence: &Fence) -> Result<()> {
        let fenced = |reason: String| Error::Fenced {
            location: self.url.to_string(),
            reason,
        };
        let waited = std::time::Instant::now();
        loop {
            match fence.guard.check() {
                FenceState::Held => break,
                FenceState::Lost { reason } => return Err(fenced(reason)),
                FenceState::Unsure { reason, .. } if waited.elapsed() > UNSURE_FOR => {
                    return Err(fenced(format!(
                        "{reason}, and no renewal for {UNSURE_FOR:?}"
                    )));
                }
                FenceState::Unsure { retry_after, .. } => tokio::time::sleep(retry_after).await,
            }
        }
        match self.app_version(&fence.app_id).await? {
            Some(claimed) if claimed > fence.epoch => Err(fenced(format!(
                "another instance took over (epoch {claimed}, this one has {})",
                fence.epoch
            ))),
            _ => Ok(()),
        }
    }

    /// Commits `fence`'s claim (an empty commit with its app transaction) unless the log
    /// already has it; refused when a newer claim is there. See [`Fence`].
    pub async fn claim(&mut self, fence: &Fence) -> Result<()> {
        let claim = Commit {
            app_transaction: Some(AppTransaction {
                app_id: fence.app_id.clone(),
                version: fence.epoch,
            }),
            fence: Some(fence.clone()),
            ..Commit::default()
        };
        match self.commit_staged(Staged::default(), claim).await? {
            AppendOutcome::AlreadyCommitted { app_version } if app_version > fence.epoch => {
                Err(Error::Fenced {
                    location: self.url.to_string(),
                    reason: format!("a newer claim (epoch {app_version}) is in the log"),
                })
            }
            _ => Ok(()),
        }
    }
}
