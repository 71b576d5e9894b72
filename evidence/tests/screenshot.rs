//! Headless Chromium draws every panel of the HTML report.
//!
//! How: the page has no script to report back, so the test asks the browser itself. One run
//! takes the screenshot exactly as a person would (`--screenshot`, 1280x2400); a second run
//! of the same browser at the same size, driven over `--remote-debugging-pipe` (the Chrome
//! DevTools Protocol as NUL-terminated JSON on two named pipes, no network port), reports the
//! box of every panel (`svg.panel` and the verdict). The test then checks in the PNG that each
//! box lies within the page, is not empty, and holds drawn pixels: enough that are not the
//! background, in several colours. A panel whose SVG is malformed, hidden or drawn outside its
//! box fails, which a DOM check alone would not see.
//!
//! Chromium is `/usr/bin/chromium` (Debian's package; `scripts/test` installs it), or the one
//! `CHROMIUM` names. Without it the test fails when `CI` is set, and otherwise skips, saying so.
//! `EVIDENCE_SCREENSHOT=<path>` keeps a copy of the screenshot (how `docs/canary-report.png`
//! is made).

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "what each panel drew, or why the test skipped, goes to its log"
)]

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2400;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.is_file().then_some(path)
}

/// The flags of every run: headless, nothing fetched in the background, a throwaway profile.
fn flags(profile: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--hide-scrollbars".into(),
        "--force-device-scale-factor=1".into(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={WIDTH},{HEIGHT}"),
    ]
}

/// Kills the child (by its own pid) if the test has not finished with it in time.
fn watchdog(pid: u32, done: Arc<AtomicBool>, limit: Duration) {
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
}

fn screenshot(chromium: &Path, dir: &Path, url: &str) -> PathBuf {
    let png = dir.join("report.png");
    let mut cmd = Command::new(chromium);
    cmd.args(flags(&dir.join("profile-shot")))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("chromium starts");
    let done = Arc::new(AtomicBool::new(false));
    watchdog(child.id(), done.clone(), Duration::from_secs(90));
    let out = child.wait_with_output().expect("chromium runs");
    done.store(true, Ordering::SeqCst);
    assert!(
        out.status.success() && png.is_file(),
        "chromium --screenshot failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    png
}

/// A DevTools Protocol session over `--remote-debugging-pipe`.
struct Cdp {
    child: Child,
    to: File,
    from: BufReader<File>,
    next: u64,
    done: Arc<AtomicBool>,
}

impl Cdp {
    fn start(chromium: &Path, dir: &Path, url: &str) -> Cdp {
        let (to, from) = (dir.join("cdp-in"), dir.join("cdp-out"));
        for fifo in [&to, &from] {
            let ok = Command::new("mkfifo").arg(fifo).status().expect("mkfifo");
            assert!(ok.success(), "mkfifo {}", fifo.display());
        }
        // The browser reads commands on fd 3 and writes replies on fd 4; a shell opens the
        // pipes there and becomes the browser (`exec`), so the child's pid is the browser's.
        let mut args = flags(&dir.join("profile-cdp"));
        args.push("--remote-debugging-pipe".into());
        args.push(url.into());
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<"$CDP_IN" 4>"$CDP_OUT""#)
            .arg(chromium)
            .args(&args)
            .env("CDP_IN", &to)
            .env("CDP_OUT", &from)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let done = Arc::new(AtomicBool::new(false));
        watchdog(child.id(), done.clone(), Duration::from_secs(90));
        // Opening a FIFO waits for its other end, in the order the shell opens them.
        let to = OpenOptions::new()
            .write(true)
            .open(&to)
            .expect("the command pipe");
        let from = BufReader::new(File::open(&from).expect("the reply pipe"));
        Cdp {
            child,
            to,
            from,
            next: 0,
            done,
        }
    }

    fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next += 1;
        let mut msg = json!({"id": self.next, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("send to chromium");
        loop {
            let mut buf = Vec::new();
            let n = self
                .from
                .read_until(0, &mut buf)
                .expect("read from chromium");
            assert!(n > 0, "chromium closed the pipe during {method}");
            buf.pop();
            let reply: Value = serde_json::from_slice(&buf).expect("a JSON reply");
            if reply["id"] == json!(self.next) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    fn eval(&mut self, session: &str, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
            Some(session),
        );
        r["result"]["value"].clone()
    }

    fn close(mut self) {
        let _ = self.call("Browser.close", json!({}), None);
        let _ = self.child.wait();
        self.done.store(true, Ordering::SeqCst);
    }
}

/// A panel's box in CSS pixels of the page (the device scale factor is 1).
#[derive(Debug)]
struct Panel {
    id: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn panels(chromium: &Path, dir: &Path, url: &str) -> (Vec<Panel>, f64) {
    let mut cdp = Cdp::start(chromium, dir, url);
    let targets = cdp.call("Target.getTargets", json!({}), None);
    let page = targets["targetInfos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .unwrap_or_else(|| panic!("no page target: {targets}"))["targetId"]
        .clone();
    let attached = cdp.call(
        "Target.attachToTarget",
        json!({"targetId": page, "flatten": true}),
        None,
    );
    let session = attached["sessionId"].as_str().unwrap().to_string();
    let start = Instant::now();
    // The tab starts on an empty document; wait for the report's, loaded.
    let loaded =
        "document.readyState === 'complete' && document.getElementById('verdict') !== null";
    while cdp.eval(&session, loaded) != json!(true) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the page did not load"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let boxes = cdp.eval(
        &session,
        "JSON.stringify(Array.from(document.querySelectorAll('#verdict, svg.panel')).map(e => \
         { const r = e.getBoundingClientRect(); \
           return [e.id, r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }))",
    );
    let height = cdp.eval(&session, "document.documentElement.scrollHeight");
    cdp.close();
    let boxes: Vec<(String, f64, f64, f64, f64)> =
        serde_json::from_str(boxes.as_str().expect("a JSON string")).unwrap();
    let panels = boxes
        .into_iter()
        .map(|(id, x, y, w, h)| Panel { id, x, y, w, h })
        .collect();
    (panels, height.as_f64().unwrap_or(0.0))
}

/// RGB pixels of a PNG.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

fn decode(path: &Path) -> Image {
    let decoder = png::Decoder::new(BufReader::new(File::open(path).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG of sane size")];
    let info = reader.next_frame(&mut buf).expect("one frame");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let rgb = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

/// Whether the box holds a drawing: at least 1% of its pixels not near-white, and at least
/// 4 distinct colours (a plot has axes, text and series; a flat fill has one).
fn drawn(img: &Image, p: &Panel) -> Result<(usize, usize), String> {
    let (x0, y0) = (p.x.floor().max(0.0) as usize, p.y.floor().max(0.0) as usize);
    let (x1, y1) = ((p.x + p.w).ceil() as usize, (p.y + p.h).ceil() as usize);
    if p.w < 50.0 || p.h < 50.0 {
        return Err(format!("its box is {}x{}", p.w, p.h));
    }
    if x1 > img.width || y1 > img.height {
        return Err(format!(
            "its box ends at ({x1}, {y1}), outside the {}x{} screenshot",
            img.width, img.height
        ));
    }
    let mut inked = 0;
    let mut colours = std::collections::BTreeSet::new();
    for y in y0..y1 {
        for x in x0..x1 {
            let px = img.rgb[y * img.width + x];
            if px.iter().any(|c| *c < 235) {
                inked += 1;
            }
            colours.insert(px.map(|c| c >> 4));
        }
    }
    let area = (x1 - x0) * (y1 - y0);
    if inked * 100 < area || colours.len() < 4 {
        return Err(format!(
            "{inked} of {area} pixels drawn, {} colours",
            colours.len()
        ));
    }
    Ok((inked, colours.len()))
}

#[test]
fn chromium_draws_every_panel() {
    let Some(chromium) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium is missing (/usr/bin/chromium, or set CHROMIUM): CI needs it for this \
                 test; scripts/test installs it (apt-get install chromium)"
            );
        }
        eprintln!("skipped: chromium is not installed (apt-get install chromium, or set CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let record = common::sixty_by_four();
    let html = dir.path().join("report.html");
    std::fs::write(&html, evidence::render::html::render(&record)).unwrap();
    let url = format!("file://{}", html.display());

    let png = screenshot(&chromium, dir.path(), &url);
    if let Some(keep) = std::env::var_os("EVIDENCE_SCREENSHOT") {
        std::fs::copy(&png, &keep).expect("copy the screenshot");
    }
    let img = decode(&png);
    assert_eq!((img.width, img.height), (WIDTH as usize, HEIGHT as usize));

    let (panels, page_height) = panels(&chromium, dir.path(), &url);
    let ids: Vec<&str> = panels.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "verdict",
            "metric-error_rate",
            "metric-server_errors",
            "metric-latency",
            "metric-latency_loose",
            "evalue",
            "share",
            "latency",
            "alarms"
        ]
    );
    assert!(
        page_height <= f64::from(HEIGHT),
        "the page is {page_height} px tall: the screenshot cuts it"
    );
    let mut bad = Vec::new();
    for p in &panels {
        match drawn(&img, p) {
            Ok((inked, colours)) => {
                println!(
                    "{:<22} {:>5.0}x{:<4.0} at y={:<5.0} {inked} px drawn, {colours} colours",
                    p.id, p.w, p.h, p.y
                )
            }
            Err(why) => bad.push(format!("{}: {why}", p.id)),
        }
    }
    assert!(bad.is_empty(), "panels not drawn: {bad:#?}");
}
