//! The canary's [`Lock`] over the state layer's fenced lock.
//!
//! The command takes the lock before it reads the journal or touches anything (see the CLI's
//! canary command); this adapter then lets the executor confirm it before every action,
//! renew it, and release it as the run's last step. Renewal also runs on a timer
//! ([`state::lock::Keeper`]), so a long deploy never lets the lease lapse.

use async_trait::async_trait;
use state::lock::{Keeper, LockState};

use crate::provider::{Lock, LockInfo, ProviderError, Result};

pub struct FencedLock {
    scope: state::Scope,
    keeper: tokio::sync::Mutex<Option<Keeper>>,
}

fn err(e: state::StateError) -> ProviderError {
    ProviderError::new(e.to_string())
}

impl FencedLock {
    /// `keeper` holds the lease this process took; `None` reads only (status, dry runs).
    pub fn new(scope: state::Scope, keeper: Option<Keeper>) -> Self {
        FencedLock {
            scope,
            keeper: tokio::sync::Mutex::new(keeper),
        }
    }

    pub fn scope(&self) -> &state::Scope {
        &self.scope
    }

    /// The generation this process holds, if it holds the lock.
    pub async fn generation(&self) -> Option<u64> {
        match self.keeper.lock().await.as_ref() {
            Some(k) => Some(k.generation().await),
            None => None,
        }
    }

    /// After a drive: a run still in flight (awaiting approval, halted, stopped) is parked,
    /// so that nothing new starts over it and any runner can continue it; a finished run
    /// frees the lock. A lock already released by the run's last step is left alone.
    pub async fn set_down(&self, in_flight: bool) -> std::result::Result<(), state::StateError> {
        let Some(keeper) = self.keeper.lock().await.take() else {
            return Ok(());
        };
        let now = state::lock::wall_now();
        if in_flight {
            keeper.park(now).await
        } else {
            keeper.release(now).await
        }
    }
}

#[async_trait]
impl Lock for FencedLock {
    async fn acquire(&self, _info: &LockInfo, _now: u64) -> Result<()> {
        // Taken by the command before the run was read; confirmed here as the run's step.
        self.check().await
    }

    async fn renew(&self, _info: &LockInfo) -> Result<()> {
        match self.keeper.lock().await.as_ref() {
            Some(k) => k.renew_now(state::lock::wall_now()).await.map_err(err),
            None => Err(ProviderError::new(
                "this process does not hold the deploy lock",
            )),
        }
    }

    async fn release(&self, _run_id: &str) -> Result<()> {
        match self.keeper.lock().await.take() {
            Some(k) => k.release(state::lock::wall_now()).await.map_err(err),
            None => Ok(()),
        }
    }

    async fn holder(&self) -> Result<Option<LockInfo>> {
        let Some((info, _)) = state::lock::read(&self.scope).await.map_err(err)? else {
            return Ok(None);
        };
        Ok(match info.state {
            LockState::Free => None,
            // Held, or parked (a run in flight with no driver, or a holder that stopped): the
            // service is taken until that run is finished, whatever its lease says.
            LockState::Held | LockState::Parked => Some(LockInfo {
                holder: info.holder.to_string(),
                run_id: info.run_id.clone(),
                acquired_at: info.acquired_at,
                expires_at: u64::MAX,
            }),
        })
    }

    async fn check(&self) -> Result<()> {
        match self.keeper.lock().await.as_ref() {
            Some(k) => k.check(state::lock::wall_now()).await.map_err(err),
            None => Err(ProviderError::new(
                "this process does not hold the deploy lock",
            )),
        }
    }
}
