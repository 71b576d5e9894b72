//! Redrive against moto: every object lands exactly once under the right key.
//!
//! Needs a moto server (`scripts/test` starts one); outside CI the tests skip without it.

use std::collections::BTreeMap;
use std::sync::Arc;

use maintenance::redrive::{self, BatchRules, LivenessCheck, Outcome};

mod common;
use common::{bucket, moto, put, unique, Moto};

/// Every object of a bucket with its bytes.
async fn contents(m: &Moto, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let listed = m.s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let body =
            m.s3.get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes()
                .to_vec();
        all.insert(key, body);
    }
    all
}

fn clients(m: &Moto) -> redrive::Clients {
    redrive::Clients {
        s3: m.s3.clone(),
        sqs: m.sqs.clone(),
    }
}

fn quiet() -> redrive::Sink {
    Arc::new(|_| {})
}

#[tokio::test]
async fn plain_live_and_dead_batch_keys_land_exactly_once_with_the_right_key() {
    let Some(m) = moto().await else { return };
    let id = unique("rd");
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    // Batch `batch-live` still has its queue; `batch-dead` has none.
    m.sqs
        .create_queue()
        .queue_name(format!("{id}-batch-batch-live"))
        .send()
        .await
        .unwrap();

    let parked: Vec<(&str, &[u8])> = vec![
        ("a.jpg", b"plain a"),
        ("docs/readme.txt", b"plain with a folder"),
        ("photos/\u{fc} b+c.jpg", b"odd characters"),
        ("batch-live/x/1.jpg", b"live one"),
        ("batch-live/2.jpg", b"live two"),
        ("batch-dead/y/3.jpg", b"dead three"),
        ("batch-dead/4.jpg", b"dead four"),
        ("already.jpg", b"copied by an earlier run"),
        ("clash.jpg", b"parked version"),
        ("folder/", b""),
    ];
    for (k, v) in &parked {
        put(&m, &parking, k, v.to_vec()).await;
    }
    put(
        &m,
        &ingestion,
        "already.jpg",
        b"copied by an earlier run".to_vec(),
    )
    .await;
    put(&m, &ingestion, "clash.jpg", b"a different object".to_vec()).await;

    let rules = BatchRules {
        id_prefix: "batch-".into(),
        liveness: LivenessCheck::Queue(format!("{id}-batch-{{batch}}")),
        rewrite: "{path}".into(),
    };
    let mut request = redrive::Request::new(&parking, &ingestion, rules);
    request.concurrency = 4;
    // Several `DeleteObjects` batches within the run, and one at its end.
    request.delete_batch = 3;

    // A dry run plans and changes nothing.
    request.dry_run = true;
    let before = (contents(&m, &parking).await, contents(&m, &ingestion).await);
    let dry = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!(
        (contents(&m, &parking).await, contents(&m, &ingestion).await),
        before
    );
    assert_eq!((dry.moved, dry.rewritten, dry.conflicts), (8, 2, 1));

    request.dry_run = false;
    let report = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!(report.total, 10);
    assert_eq!(
        (report.moved, report.already_there, report.rewritten),
        (8, 1, 2),
        "{report:#?}"
    );
    assert_eq!(
        (report.skipped, report.conflicts, report.failures),
        (1, 1, 0)
    );
    assert_eq!(report.dead_batches, ["batch-dead"]);

    let landed = contents(&m, &ingestion).await;
    let expected: BTreeMap<String, Vec<u8>> = [
        ("a.jpg", &b"plain a"[..]),
        ("docs/readme.txt", b"plain with a folder"),
        ("photos/\u{fc} b+c.jpg", b"odd characters"),
        ("batch-live/x/1.jpg", b"live one"),
        ("batch-live/2.jpg", b"live two"),
        ("y/3.jpg", b"dead three"),
        ("4.jpg", b"dead four"),
        ("already.jpg", b"copied by an earlier run"),
        ("clash.jpg", b"a different object"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_vec()))
    .collect();
    assert_eq!(landed, expected);
    // Left in the parking lot: the conflict (for a person) and the folder marker.
    let left: Vec<String> = contents(&m, &parking).await.into_keys().collect();
    assert_eq!(left, ["clash.jpg", "folder/"]);
    let conflict = report
        .notable
        .iter()
        .find(|r| r.key == "clash.jpg")
        .unwrap();
    assert!(matches!(conflict.outcome, Outcome::Conflict { .. }));
    let rewrite = report
        .notable
        .iter()
        .find(|r| r.key == "batch-dead/y/3.jpg")
        .unwrap();
    assert_eq!(rewrite.destination, "y/3.jpg");
    assert_eq!(rewrite.dead_batch.as_deref(), Some("batch-dead"));

    // A second run finds only what is left, and changes nothing.
    let again = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!((again.total, again.moved, again.conflicts), (2, 0, 1));
    assert_eq!(contents(&m, &ingestion).await, expected);
}

#[tokio::test]
async fn large_objects_are_copied_in_parts_and_verified_by_content() {
    let Some(m) = moto().await else { return };
    let id = unique("mp");
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    let big: Vec<u8> = (0..11 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    put(&m, &parking, "big.bin", big.clone()).await;
    put(&m, &parking, "small.bin", b"small".to_vec()).await;
    let rules = BatchRules {
        id_prefix: String::new(),
        liveness: LivenessCheck::None,
        rewrite: "{path}".into(),
    };
    let mut request = redrive::Request::new(&parking, &ingestion, rules);
    request.multipart_threshold = 5 * 1024 * 1024;
    request.part_size = 5 * 1024 * 1024;
    let report = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!((report.moved, report.failures), (2, 0), "{report:#?}");
    let landed = contents(&m, &ingestion).await;
    assert_eq!(landed["big.bin"], big);
    assert_eq!(landed["small.bin"], b"small");
    let head =
        m.s3.head_object()
            .bucket(&ingestion)
            .key("big.bin")
            .send()
            .await
            .unwrap();
    assert!(
        head.e_tag().unwrap().contains("-3"),
        "copied in three parts: {:?}",
        head.e_tag()
    );
    assert!(contents(&m, &parking).await.is_empty());
}

#[tokio::test]
async fn a_dead_letter_queue_goes_back_to_its_source_verified() {
    let Some(m) = moto().await else { return };
    let id = unique("dlq");
    let url = |name: String| {
        let sqs = m.sqs.clone();
        async move {
            sqs.create_queue()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_string()
        }
    };
    let source = url(format!("{id}-work")).await;
    let dlq = url(format!("{id}-work-dlq")).await;
    for i in 0..23 {
        m.sqs
            .send_message()
            .queue_url(&dlq)
            .message_body(format!("dead {i}"))
            .send()
            .await
            .unwrap();
    }
    let mut request = redrive::dlq::Request {
        dlq: format!("{id}-work-dlq"),
        source: format!("{id}-work"),
        dry_run: true,
        limit: None,
        visibility_timeout: std::time::Duration::from_secs(30),
    };
    let dry = redrive::dlq::run(&m.sqs, &request, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((dry.found, dry.moved), (23, 0));
    request.dry_run = false;
    let report = redrive::dlq::run(&m.sqs, &request, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((report.found, report.moved, report.failures), (23, 23, 0));

    let mut bodies = Vec::new();
    loop {
        let got = m
            .sqs
            .receive_message()
            .queue_url(&source)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for msg in got.messages() {
            bodies.push(msg.body().unwrap().to_string());
            m.sqs
                .delete_message()
                .queue_url(&source)
                .receipt_handle(msg.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    bodies.sort();
    let mut expected: Vec<String> = (0..23).map(|i| format!("dead {i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected, "each message once");
    let left = m
        .sqs
        .receive_message()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap();
    assert!(left.messages().is_empty());
}

/// Requests an S3 client sent, as `"<METHOD> <bucket>"` (path-style addressing).
#[derive(Debug, Clone, Default)]
struct Requests(Arc<std::sync::Mutex<BTreeMap<String, usize>>>);

impl aws_sdk_s3::config::Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request();
        let path = request.uri().split("://").nth(1).unwrap_or_default();
        let bucket = path.split(['/', '?']).nth(1).unwrap_or_default();
        *self
            .0
            .lock()
            .unwrap()
            .entry(format!("{} {bucket}", request.method()))
            .or_default() += 1;
        Ok(())
    }
}

impl Requests {
    fn client(&self, m: &Moto) -> redrive::Clients {
        redrive::Clients {
            s3: aws_sdk_s3::Client::from_conf(
                m.s3.config().to_builder().interceptor(self.clone()).build(),
            ),
            sqs: m.sqs.clone(),
        }
    }

    fn get(&self, what: &str) -> usize {
        self.0.lock().unwrap().get(what).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }
}

fn no_batches() -> BatchRules {
    BatchRules {
        id_prefix: String::new(),
        liveness: LivenessCheck::None,
        rewrite: "{path}".into(),
    }
}

#[tokio::test]
async fn a_small_object_costs_one_copy_and_destinations_are_listed_once_a_page() {
    let Some(m) = moto().await else { return };
    let id = unique("rq");
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    let mut expected = BTreeMap::new();
    for i in 0..30 {
        let key = if i % 2 == 0 {
            format!("uploads/{i:03}.jpg")
        } else {
            format!("batch-{}/img/{i:03}.jpg", i / 10)
        };
        let body = format!("object {i}").into_bytes();
        put(&m, &parking, &key, body.clone()).await;
        expected.insert(key, body);
    }
    // Two of them were copied by an earlier run that was interrupted before deleting.
    for key in ["batch-1/img/011.jpg", "uploads/020.jpg"] {
        put(&m, &ingestion, key, expected[key].clone()).await;
    }
    let mut request = redrive::Request::new(&parking, &ingestion, no_batches());
    request.page = 10;
    let requests = Requests::default();
    let report = redrive::run(&requests.client(&m), &request, quiet())
        .await
        .unwrap();
    assert_eq!(
        (report.moved, report.already_there, report.failures),
        (30, 2, 0),
        "{report:#?}"
    );
    assert_eq!(contents(&m, &ingestion).await, expected);
    assert!(contents(&m, &parking).await.is_empty());

    // One listing of the parking lot (with its versions) and one after the deletes (for
    // uploads written meanwhile), one of the destinations per page of 10, one copy per
    // object not yet there, no `HEAD` at all, and one `DeleteObjects`.
    let counts = requests.0.lock().unwrap().clone();
    assert_eq!(requests.get(&format!("GET {parking}")), 2, "{counts:?}");
    assert_eq!(requests.get(&format!("GET {ingestion}")), 3, "{counts:?}");
    assert_eq!(requests.get(&format!("PUT {ingestion}")), 28, "{counts:?}");
    assert_eq!(requests.get(&format!("POST {parking}")), 1, "{counts:?}");
    assert_eq!(requests.total(), 2 + 3 + 28 + 1, "{counts:?}");
}

#[tokio::test]
async fn a_destination_range_crowded_with_other_objects_is_read_key_by_key_past_its_budget() {
    let Some(m) = moto().await else { return };
    let id = unique("cr");
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    for key in ["k/a.jpg", "k/m.jpg", "k/z.jpg"] {
        put(&m, &parking, key, key.as_bytes().to_vec()).await;
    }
    // The ingestion bucket holds many other objects between the parked keys, and already
    // the same `k/z.jpg` and a different `k/m.jpg`.
    for i in 0..12 {
        put(&m, &ingestion, &format!("k/b{i:02}.jpg"), b"other".to_vec()).await;
    }
    put(&m, &ingestion, "k/m.jpg", b"a different object".to_vec()).await;
    put(&m, &ingestion, "k/z.jpg", b"k/z.jpg".to_vec()).await;
    let mut request = redrive::Request::new(&parking, &ingestion, no_batches());
    // Pages of 2 objects: [k/a, k/m] may take two listing pages of 2 keys, which reach only
    // `k/b03.jpg`; [k/z] takes one.
    request.page = 2;
    let requests = Requests::default();
    let report = redrive::run(&requests.client(&m), &request, quiet())
        .await
        .unwrap();
    assert_eq!(
        (report.moved, report.already_there, report.conflicts),
        (2, 1, 1),
        "{report:#?}"
    );
    let counts = requests.0.lock().unwrap().clone();
    // 2 + 1 listing requests; `k/m.jpg`, past what the listing reached, read with a `HEAD`.
    assert_eq!(requests.get(&format!("GET {ingestion}")), 3, "{counts:?}");
    assert_eq!(requests.get(&format!("HEAD {ingestion}")), 1, "{counts:?}");
    let landed = contents(&m, &ingestion).await;
    assert_eq!(landed["k/a.jpg"], b"k/a.jpg");
    assert_eq!(landed["k/m.jpg"], b"a different object");
    assert_eq!(landed["k/z.jpg"], b"k/z.jpg");
    let left: Vec<String> = contents(&m, &parking).await.into_keys().collect();
    assert_eq!(left, ["k/m.jpg"]);
}

#[tokio::test]
async fn objects_claiming_the_same_destination_land_once_and_the_others_are_compared() {
    let Some(m) = moto().await else { return };
    let id = unique("dup");
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    // No batch queue exists: every batch is dead and its keys lose their batch prefix.
    let parked: Vec<(&str, &[u8])> = vec![
        ("b-1/x.jpg", b"same"),
        ("x.jpg", b"same"),
        ("b-2/y.jpg", b"first y"),
        ("b-3/y.jpg", b"second y"),
    ];
    for (k, v) in &parked {
        put(&m, &parking, k, v.to_vec()).await;
    }
    let rules = BatchRules {
        id_prefix: "b-".into(),
        liveness: LivenessCheck::Queue(format!("{id}-batch-{{batch}}")),
        rewrite: "{path}".into(),
    };
    let mut request = redrive::Request::new(&parking, &ingestion, rules);
    request.concurrency = 16;
    let report = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!(
        (report.moved, report.already_there, report.conflicts),
        (3, 1, 1),
        "{report:#?}"
    );
    let landed = contents(&m, &ingestion).await;
    let expected: BTreeMap<String, Vec<u8>> = [("x.jpg", &b"same"[..]), ("y.jpg", b"first y")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    assert_eq!(
        landed, expected,
        "the first claimant lands, nothing is overwritten"
    );
    let left: Vec<String> = contents(&m, &parking).await.into_keys().collect();
    assert_eq!(left, ["b-3/y.jpg"]);
}

#[tokio::test]
async fn with_the_default_config_a_key_in_a_folder_keeps_its_key() {
    let Some(m) = moto().await else { return };
    let id = unique("df");
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    // No queue named after any folder exists: had folders counted as batches, every one of
    // them would be dead and its keys rewritten.
    let parked: Vec<(&str, &[u8])> = vec![
        ("folder/x.jpg", b"an ordinary upload in a folder"),
        ("folder/sub/y.jpg", b"deeper"),
        (
            "batch-7/z.jpg",
            b"looks like a batch, but none is configured",
        ),
        ("top.jpg", b"no folder"),
    ];
    for (k, v) in &parked {
        put(&m, &parking, k, v.to_vec()).await;
    }
    let path = std::path::Path::new("gatekeeper.toml");
    for text in [
        format!("service = \"{id}\"\nenvironment = \"test\"\n"),
        format!("service = \"{id}\"\nenvironment = \"test\"\n[maintenance]\nconcurrency = 2\n"),
    ] {
        let stack = stacks::config::parse(path, &text).unwrap();
        let mconfig = maintenance::config::parse(path, &text).unwrap();
        let rules = BatchRules::from_config(mconfig.batches(), &stack.prefix());
        let request = redrive::Request::new(&parking, &ingestion, rules);
        let report = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
        assert_eq!(report.rewritten, 0, "{text}: {report:#?}");
        assert!(report.dead_batches.is_empty(), "{report:#?}");
        let expected: BTreeMap<String, Vec<u8>> = parked
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        assert_eq!(contents(&m, &ingestion).await, expected, "{text}");
        assert!(contents(&m, &parking).await.is_empty());
        // Parked again for the next configuration.
        for (k, v) in &parked {
            put(&m, &parking, k, v.to_vec()).await;
        }
        for (k, _) in &parked {
            m.s3.delete_object()
                .bucket(&ingestion)
                .key(*k)
                .send()
                .await
                .unwrap();
        }
    }
}

/// A parking lot that keeps versions (as the rails make it): the delete removes exactly the
/// version that was copied and verified, for single-request and multipart copies alike, so
/// neither a noncurrent copy nor a delete marker is left behind; an upload written to the
/// same key after its copy would survive as the current version.
#[tokio::test]
async fn in_a_versioned_parking_lot_exactly_the_copied_version_is_deleted() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let Some(m) = moto().await else { return };
    let id = unique("ver");
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    m.s3.put_bucket_versioning()
        .bucket(&parking)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    put(&m, &parking, "big.bin", big.clone()).await;
    put(&m, &parking, "a/small.jpg", b"small".to_vec()).await;
    let mut request = redrive::Request::new(&parking, &ingestion, no_batches());
    request.multipart_threshold = 5 * 1024 * 1024;
    request.part_size = 5 * 1024 * 1024;
    let report = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!((report.moved, report.failures), (2, 0), "{report:#?}");
    let landed = contents(&m, &ingestion).await;
    assert_eq!(landed["big.bin"], big);
    assert_eq!(landed["a/small.jpg"], b"small");
    let versions =
        m.s3.list_object_versions()
            .bucket(&parking)
            .send()
            .await
            .unwrap();
    let left: Vec<_> = versions
        .versions()
        .iter()
        .map(|v| (v.key().unwrap_or(""), v.version_id().unwrap_or("")))
        .collect();
    let markers: Vec<_> = versions
        .delete_markers()
        .iter()
        .map(|d| d.key().unwrap_or(""))
        .collect();
    assert!(
        left.is_empty(),
        "versions left in the parking lot: {left:?}"
    );
    assert!(
        markers.is_empty(),
        "delete markers instead of deletes: {markers:?}"
    );
}

/// One entry of a key's history, newest first: a version and its bytes, or a delete marker;
/// `true` for the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Version(Vec<u8>, bool),
    Marker(bool),
}

/// Every key of a (versioned) bucket with all its versions and delete markers, newest first,
/// each version's bytes read by its version id.
async fn history(m: &Moto, bucket: &str) -> BTreeMap<String, Vec<Entry>> {
    let out =
        m.s3.list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
    assert!(
        !out.is_truncated().unwrap_or(false),
        "one page is enough here"
    );
    // Versions and markers come in two lists, each newest first by key: the current entry
    // goes first, then the noncurrent versions, then the noncurrent markers.
    let mut keys: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for v in out.versions() {
        let (key, id) = (v.key().unwrap(), v.version_id().unwrap());
        let body =
            m.s3.get_object()
                .bucket(bucket)
                .key(key)
                .version_id(id)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes()
                .to_vec();
        keys.entry(key.to_string())
            .or_default()
            .push(Entry::Version(body, v.is_latest().unwrap()));
    }
    for d in out.delete_markers() {
        keys.entry(d.key().unwrap().to_string())
            .or_default()
            .push(Entry::Marker(d.is_latest().unwrap()));
    }
    for entries in keys.values_mut() {
        entries.sort_by_key(|e| match e {
            Entry::Version(_, true) | Entry::Marker(true) => 0,
            Entry::Version(_, false) => 1,
            Entry::Marker(false) => 2,
        });
    }
    keys
}

fn current(body: &[u8]) -> Entry {
    Entry::Version(body.to_vec(), true)
}

fn noncurrent(body: &[u8]) -> Entry {
    Entry::Version(body.to_vec(), false)
}

async fn versioned_buckets(m: &Moto, id: &str) -> (String, String) {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let (parking, ingestion) = (format!("{id}-parking"), format!("{id}-ingestion"));
    // Both keep versions, as the rails make them.
    for b in [&parking, &ingestion] {
        bucket(m, b).await;
        m.s3.put_bucket_versioning()
            .bucket(b)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    (parking, ingestion)
}

/// A sink that, when the source of `key` is about to be deleted (its copy verified, made now
/// or found from an earlier run), uploads `body` to that key in the parking lot: an upload
/// landing deterministically between the run's listing and its delete. The sink is called
/// from the run's tasks, so the upload blocks its worker thread (multi-thread runtime).
fn upload_before_delete(m: &Moto, parking: &str, key: &str, body: &[u8]) -> redrive::Sink {
    let (m, parking, key, body) = (
        m.clone(),
        parking.to_string(),
        key.to_string(),
        body.to_vec(),
    );
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Arc::new(move |event| {
        if let redrive::Event::Copied { key: k, .. } = &event {
            if *k == key && !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(put(
                        &m,
                        &parking,
                        &key,
                        body.clone(),
                    ))
                });
            }
        }
    })
}

fn map(entries: &[(&str, Vec<Entry>)]) -> BTreeMap<String, Vec<Entry>> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The state a crash leaves (the copy in the ingestion bucket, its source still parked), and
/// an upload to the same key landing after the rerun's listing, before its delete: the rerun
/// deletes exactly the version it compared with the copy, so the new upload stays current
/// (not hidden behind a delete marker), and the run says work is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_written_during_a_rerun_after_a_crash_stays_current() {
    let Some(m) = moto().await else { return };
    let id = unique("race");
    let (parking, ingestion) = versioned_buckets(&m, &id).await;
    put(&m, &parking, "k.jpg", b"first".to_vec()).await;
    put(&m, &ingestion, "k.jpg", b"first".to_vec()).await;
    put(&m, &parking, "other.jpg", b"other".to_vec()).await;

    let request = redrive::Request::new(&parking, &ingestion, no_batches());
    let sink = upload_before_delete(&m, &parking, "k.jpg", b"second");
    let report = redrive::run(&clients(&m), &request, sink).await.unwrap();
    assert_eq!(
        (
            report.moved,
            report.already_there,
            report.failures,
            report.conflicts
        ),
        (2, 1, 0, 0),
        "{report:#?}"
    );
    assert_eq!(report.arrived, ["k.jpg"], "the new upload is reported");
    assert!(!report.complete(), "work is left: the run is not complete");

    assert_eq!(
        history(&m, &parking).await,
        map(&[("k.jpg", vec![current(b"second")])]),
        "the new upload is current, nothing hidden; exactly the copied version is gone"
    );
    assert_eq!(
        history(&m, &ingestion).await,
        map(&[
            ("k.jpg", vec![current(b"first")]),
            ("other.jpg", vec![current(b"other")]),
        ])
    );

    // The next run finds it, and leaves it to a person: the key is taken by the first upload.
    let again = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!((again.total, again.conflicts), (1, 1), "{again:#?}");
    assert_eq!(
        history(&m, &parking).await,
        map(&[("k.jpg", vec![current(b"second")])])
    );
}

/// A key uploaded twice while parked: the newest version is moved; the older one is kept as
/// a noncurrent version behind a delete marker, written only while the moved version is still
/// current, so nothing is current afterwards that the run said it moved, and the next run
/// finds nothing (no false conflict). A third upload landing before the delete stays current
/// and is reported; then exactly the moved version is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_parked_twice_moves_its_newest_version_and_keeps_the_older_noncurrent() {
    let Some(m) = moto().await else { return };
    let id = unique("twice");
    let (parking, ingestion) = versioned_buckets(&m, &id).await;
    put(&m, &parking, "twice.jpg", b"old".to_vec()).await;
    put(&m, &parking, "twice.jpg", b"new".to_vec()).await;
    put(&m, &parking, "thrice.jpg", b"a".to_vec()).await;
    put(&m, &parking, "thrice.jpg", b"b".to_vec()).await;
    put(&m, &parking, "once.jpg", b"once".to_vec()).await;

    let request = redrive::Request::new(&parking, &ingestion, no_batches());
    let sink = upload_before_delete(&m, &parking, "thrice.jpg", b"c");
    let report = redrive::run(&clients(&m), &request, sink).await.unwrap();
    assert_eq!(
        (
            report.moved,
            report.superseded,
            report.failures,
            report.conflicts
        ),
        (3, 2, 0, 0),
        "{report:#?}"
    );
    assert_eq!(report.arrived, ["thrice.jpg"]);
    let kept: Vec<(&str, usize)> = report
        .notable
        .iter()
        .map(|r| (r.key.as_str(), r.superseded.len()))
        .collect();
    assert_eq!(kept, [("thrice.jpg", 1), ("twice.jpg", 1)]);

    assert_eq!(
        history(&m, &parking).await,
        map(&[
            // The third upload stays current; the moved "b" is deleted under it.
            ("thrice.jpg", vec![current(b"c"), noncurrent(b"a")]),
            // Nothing current; both uploads kept, the moved one too.
            (
                "twice.jpg",
                vec![Entry::Marker(true), noncurrent(b"new"), noncurrent(b"old")]
            ),
        ])
    );
    assert_eq!(
        history(&m, &ingestion).await,
        map(&[
            ("once.jpg", vec![current(b"once")]),
            ("thrice.jpg", vec![current(b"b")]),
            ("twice.jpg", vec![current(b"new")]),
        ])
    );

    // The next run sees only the third upload (a conflict for a person), nothing of
    // `twice.jpg`.
    let again = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!(
        (again.total, again.conflicts, again.moved),
        (1, 1, 0),
        "{again:#?}"
    );
    assert_eq!(again.notable[0].key, "thrice.jpg");
    assert!(again.arrived.is_empty());
}

/// Uploaders choose the paths inside a batch: a dead batch's rewritten key that would land in
/// another (live) batch or up the tree is refused and left for a person; odd but harmless
/// names are moved.
#[tokio::test]
async fn rewritten_keys_that_would_leave_their_batch_are_left_for_a_person() {
    let Some(m) = moto().await else { return };
    let id = unique("esc");
    let (parking, ingestion) = versioned_buckets(&m, &id).await;
    m.sqs
        .create_queue()
        .queue_name(format!("{id}-batch-victim"))
        .send()
        .await
        .unwrap();
    put(
        &m,
        &ingestion,
        "batch-victim/real.jpg",
        b"the victim's own".to_vec(),
    )
    .await;
    let long = format!("batch-mine/{}.jpg", "l".repeat(1000));
    let parked: Vec<(&str, &[u8])> = vec![
        ("batch-mine/batch-victim/evil.jpg", b"evil"),
        ("batch-mine/../../escape.jpg", b"escape"),
        ("batch-mine//abs.jpg", b"leading slash"),
        ("batch-mine/%2e%2e/x.jpg", b"encoded dots"),
        ("batch-mine/a;b.jpg", b"semicolon"),
        (long.as_str(), b"long"),
        ("batch-victim/ok.jpg", b"live batch"),
    ];
    for (k, v) in &parked {
        put(&m, &parking, k, v.to_vec()).await;
    }
    let rules = BatchRules {
        id_prefix: "batch-".into(),
        liveness: LivenessCheck::Queue(format!("{id}-{{batch}}")),
        rewrite: "{path}".into(),
    };
    let request = redrive::Request::new(&parking, &ingestion, rules);
    let report = redrive::run(&clients(&m), &request, quiet()).await.unwrap();
    assert_eq!(
        (
            report.moved,
            report.rewritten,
            report.refused,
            report.failures
        ),
        (3, 2, 4, 0),
        "{report:#?}"
    );
    assert!(!report.complete());
    assert!(
        report.arrived.is_empty(),
        "refused keys are left on purpose"
    );
    let refused: BTreeMap<&str, &str> = report
        .notable
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Refused { reason } => Some((r.key.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused.keys().copied().collect::<Vec<_>>(),
        [
            "batch-mine/%2e%2e/x.jpg",
            "batch-mine/../../escape.jpg",
            "batch-mine//abs.jpg",
            "batch-mine/batch-victim/evil.jpg",
        ]
    );
    assert!(refused["batch-mine/batch-victim/evil.jpg"].contains("batch-victim"));
    assert!(refused["batch-mine/../../escape.jpg"].contains("`..`"));

    let left = history(&m, &parking).await;
    assert_eq!(
        left,
        map(&[
            ("batch-mine//abs.jpg", vec![current(b"leading slash")]),
            ("batch-mine/%2e%2e/x.jpg", vec![current(b"encoded dots")]),
            ("batch-mine/../../escape.jpg", vec![current(b"escape")]),
            ("batch-mine/batch-victim/evil.jpg", vec![current(b"evil")]),
        ])
    );
    assert_eq!(
        history(&m, &ingestion).await,
        map(&[
            ("a;b.jpg", vec![current(b"semicolon")]),
            ("batch-victim/ok.jpg", vec![current(b"live batch")]),
            ("batch-victim/real.jpg", vec![current(b"the victim's own")]),
            (&long["batch-mine/".len()..], vec![current(b"long")]),
        ])
    );
}

/// What a killed `redrive --dlq` leaves: messages received and never deleted, invisible until
/// their visibility timeout ends. The next run moves the others and says how many are still
/// in flight and when to run again; it is not complete (the CLI exits 2:
/// `tests/tests/redrive_dlq.rs`).
#[tokio::test]
async fn a_dlq_run_reports_messages_still_in_flight_and_when_to_run_again() {
    use aws_sdk_sqs::types::QueueAttributeName;
    let Some(m) = moto().await else { return };
    let id = unique("dlqfl");
    let mut urls = Vec::new();
    for name in [format!("{id}-work"), format!("{id}-work-dlq")] {
        let url = m.sqs.create_queue().queue_name(name).send().await.unwrap();
        urls.push(url.queue_url().unwrap().to_string());
    }
    m.sqs
        .set_queue_attributes()
        .queue_url(&urls[1])
        .attributes(QueueAttributeName::VisibilityTimeout, "120")
        .send()
        .await
        .unwrap();
    for i in 0..5 {
        m.sqs
            .send_message()
            .queue_url(&urls[1])
            .message_body(format!("dead {i}"))
            .send()
            .await
            .unwrap();
    }
    let mut taken = 0;
    while taken < 3 {
        let got = m
            .sqs
            .receive_message()
            .queue_url(&urls[1])
            .max_number_of_messages(3 - taken)
            .visibility_timeout(300)
            .send()
            .await
            .unwrap();
        taken += got.messages().len() as i32;
    }
    let request = redrive::dlq::Request {
        dlq: format!("{id}-work-dlq"),
        source: format!("{id}-work"),
        dry_run: false,
        limit: None,
        visibility_timeout: std::time::Duration::from_secs(30),
    };
    let report = redrive::dlq::run(&m.sqs, &request, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (
            report.found,
            report.moved,
            report.failures,
            report.in_flight
        ),
        (5, 2, 0, 3),
        "{report:#?}"
    );
    assert_eq!(report.rerun_after_seconds, Some(120), "the queue's timeout");
    assert!(!report.complete());
}
