//! The S3 backend: `If-None-Match: *` and `If-Match` on PutObject are the compare-and-swap.
//! A failed precondition (412) answers `None`; a 409 `ConditionalRequestConflict` (two
//! conditional writes racing) is retried, since neither has won yet.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::store::{Etag, Store};
use crate::{Result, StateError};

#[derive(Debug, Clone)]
pub struct S3Store {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

const CONFLICT_RETRIES: u32 = 5;

fn status<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    match e {
        SdkError::ServiceError(s) => Some(s.raw().status_code()),
        SdkError::ResponseError(r) => Some(r.raw().status_code()),
        _ => None,
    }
}

/// The raw response's status, whatever the response type.
trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

impl S3Store {
    fn fail<E>(
        &self,
        op: &str,
        key: &str,
        e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StateError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = match e {
            SdkError::ServiceError(s) => {
                let err = s.err();
                format!(
                    "{} ({})",
                    err.message().unwrap_or("no message"),
                    err.code().unwrap_or("no code")
                )
            }
            SdkError::TimeoutError(_) => "timed out".to_string(),
            SdkError::DispatchFailure(d) => format!("could not send the request: {d:?}")
                .chars()
                .take(200)
                .collect(),
            other => other.to_string(),
        };
        StateError::Backend {
            key: self.describe(key),
            message: format!("{op}: {detail}"),
        }
    }

    async fn put(&self, key: &str, body: &[u8], cond: Cond<'_>) -> Result<Option<Etag>> {
        for attempt in 0..=CONFLICT_RETRIES {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type("application/json")
                .body(ByteStream::from(body.to_vec()));
            req = match cond {
                Cond::Absent => req.if_none_match("*"),
                Cond::Match(etag) => req.if_match(&etag.0),
            };
            match req.send().await {
                Ok(out) => {
                    return Ok(Some(Etag(out.e_tag().unwrap_or_default().to_string())));
                }
                Err(e) => match status(&e) {
                    Some(412) => return Ok(None),
                    Some(409) if attempt < CONFLICT_RETRIES => {
                        tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                    }
                    // A create-only put over an existing key can also answer 409.
                    Some(409) => return Ok(None),
                    _ => return Err(self.fail("PutObject", key, &e)),
                },
            }
        }
        unreachable!("the loop returns")
    }
}

#[derive(Clone, Copy)]
enum Cond<'a> {
    Absent,
    Match(&'a Etag),
}

#[async_trait]
impl Store for S3Store {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = Etag(out.e_tag().unwrap_or_default().to_string());
                let body = out.body.collect().await.map_err(|e| StateError::Backend {
                    key: self.describe(key),
                    message: format!("GetObject: reading the body: {e}"),
                })?;
                Ok(Some((body.into_bytes().to_vec(), etag)))
            }
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.fail("GetObject", key, &e)),
        }
    }

    async fn put_new(&self, key: &str, body: &[u8]) -> Result<Option<Etag>> {
        self.put(key, body, Cond::Absent).await
    }

    async fn put_if(&self, key: &str, body: &[u8], etag: &Etag) -> Result<Option<Etag>> {
        self.put(key, body, Cond::Match(etag)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let resp = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.fail("ListObjectsV2", prefix, &e))?;
            out.extend(
                resp.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match resp.next_continuation_token() {
                Some(t) if resp.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}
