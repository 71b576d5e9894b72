//! Opens the state layer (the fenced lock and the run journals) a configuration names: S3
//! when `[state] url` is set, else a local directory. The one place commands get a
//! [`state::Scope`] from.

use std::sync::Arc;

use state::{Backend, Scope, StateConfig};

/// The state of `<service>-<environment>` as `config` places it.
pub fn scope(config: &StateConfig, name: &str, s3: &aws_sdk_s3::Client) -> anyhow::Result<Scope> {
    let backend = config
        .backend()
        .map_err(|m| anyhow::anyhow!("state.url: {m}"))?;
    let (store, prefix): (Arc<dyn state::Store>, String) = match backend {
        Backend::S3 { bucket, prefix } => (
            Arc::new(state::s3::S3Store {
                client: s3.clone(),
                bucket,
            }),
            prefix,
        ),
        Backend::Local { dir } => (Arc::new(state::local::LocalStore::new(dir)), String::new()),
    };
    Ok(Scope::new(store, &prefix, name)?)
}

/// Who is acting, as lock holders and journal records name them: the caller's ARN when it
/// can be asked, else `$USER`.
pub async fn caller(sts: &aws_sdk_sts::Client) -> String {
    match sts.get_caller_identity().send().await {
        Ok(out) => out.arn().unwrap_or("unknown").to_string(),
        Err(_) => std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
    }
}
