//! The HTML report of a 60-look bake judged on 4 metrics: small, self-contained, byte for byte
//! the same every time, fast, and with every panel.

#![expect(
    clippy::print_stdout,
    reason = "the page size and render time go to the test log"
)]

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use evidence::record::BakeRecord;
use evidence::render::html;

fn record() -> &'static BakeRecord {
    static RECORD: OnceLock<BakeRecord> = OnceLock::new();
    RECORD.get_or_init(|| {
        let r = common::sixty_by_four();
        assert_eq!(r.looks.len(), 60);
        assert_eq!(r.start.judge.metrics.len(), 4);
        r
    })
}

#[test]
fn the_page_is_under_500_kb() {
    let page = html::render(record());
    println!("html::render, 60 looks x 4 metrics: {} bytes", page.len());
    assert!(page.len() < 500 * 1024, "{} bytes", page.len());
}

#[test]
fn the_page_loads_nothing_and_runs_nothing() {
    let page = html::render(record()).to_ascii_lowercase();
    for needle in [
        "<script",
        " src=",
        "href=",
        "url(",
        "@import",
        "<link",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "javascript:",
        " on",
    ] {
        let hit = if needle == " on" {
            // Event handler attributes: ` onload=`, ` onclick=`...
            page.match_indices(" on").find(|(i, _)| {
                let rest = &page[i + 3..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                !name.is_empty() && rest[name.len()..].starts_with('=')
            })
        } else {
            page.match_indices(needle).next()
        };
        assert!(hit.is_none(), "found {needle:?} at {:?}", hit.map(|h| h.0));
    }
    // The only URL is the SVG namespace, which names and fetches nothing.
    let urls: Vec<_> = page
        .match_indices("://")
        .map(|(i, _)| &page[i.saturating_sub(4)..i + 22])
        .collect();
    assert!(
        urls.iter().all(|u| *u == "http://www.w3.org/2000/svg"),
        "{urls:?}"
    );
    assert!(page.contains("content-security-policy\" content=\"default-src 'none'"));
}

#[test]
fn the_page_is_byte_identical_every_time() {
    let a = html::render(record());
    let b = html::render(record());
    assert!(a == b, "two renders differ");
    // Also from the record as the journal gives it back.
    let json = serde_json::to_string(record()).unwrap();
    let back: BakeRecord = serde_json::from_str(&json).unwrap();
    assert!(
        html::render(&back) == a,
        "the read-back record renders differently"
    );
}

/// The issue asks for generation under 100 ms. Asserted on the best of 5 renders, in every
/// build profile: a debug build renders this page in a few milliseconds (the figure is
/// printed), so the bound keeps a wide margin on a loaded machine without a release build.
#[test]
fn the_page_is_generated_in_under_100_ms() {
    let r = record();
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            let page = html::render(r);
            let took = start.elapsed();
            assert!(!page.is_empty());
            took
        })
        .min()
        .unwrap();
    println!("html::render, 60 looks x 4 metrics: best of 5 {best:?}");
    assert!(best < Duration::from_millis(100), "took {best:?}");
}

#[test]
fn every_panel_is_there_and_decided_at_is_marked() {
    let page = html::render(record());
    let mut ids = vec![
        "metric-error_rate",
        "metric-server_errors",
        "metric-latency",
        "metric-latency_loose",
        "evalue",
        "share",
        "latency",
        "alarms",
    ];
    for id in &ids {
        let tag = format!("<svg id=\"{id}\" class=\"panel");
        assert_eq!(page.matches(&tag).count(), 1, "{id}");
    }
    ids.sort_unstable();
    assert_eq!(page.matches("<svg ").count(), ids.len());
    assert_eq!(page.matches("</svg>").count(), ids.len());
    assert!(page.contains("<section id=\"verdict\" class=\"verdict pass\">"));
    // The run passed at the bake's end.
    let evalue = &page[page.find("<svg id=\"evalue\"").unwrap()..];
    let evalue = &evalue[..evalue.find("</svg>").unwrap()];
    assert!(evalue.contains(">decided_at 60:00<"), "decided_at marked");
    assert!(evalue.contains(">1/α = 80: evidence needed to decide<"));
    // One solid and one dashed path per metric.
    assert_eq!(evalue.matches("<polyline").count(), 8);
}
