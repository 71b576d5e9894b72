//! A fault seam for the end-to-end tests: a loopback HTTP proxy in front of moto that holds a
//! fraction of requests unanswered, as a network that loses an answer does. A held request is
//! accepted and read to its end, and then nothing: no answer, no close, until the client gives
//! up. Every other request goes to moto and its answer back, one request per connection (the
//! proxy asks for `Connection: close`), so which requests are held is decided request by
//! request.
//!
//! What a held request does is the [`Fault`]: by default it never reaches moto
//! ([`Fault::Unsent`]); with [`Fault::AnswerLost`] moto performs it and its answer is what is
//! lost, so a retry repeats a request that already took effect.
//!
//! Which requests are held is deterministic: with a fraction `f`, the `n`-th request is held
//! when `floor(n f)` steps up, so `f = 0.25` holds the 4th, 8th, 12th... and `f = 1` every one.
//!
//! [`output_within`] runs a command to its end or its budget, whichever comes first: a command
//! that hangs fails the test instead of hanging it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest request head the proxy reads before it gives up on a connection.
const MAX_HEAD: usize = 64 * 1024;

/// What happens to a held request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Read and never sent on: the request has no effect.
    Unsent,
    /// Sent on and performed; the answer is dropped.
    AnswerLost,
}

/// A running proxy; stopped (and every held connection closed) when dropped.
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    /// The fraction held, in millionths (changeable while the proxy runs).
    fraction_ppm: AtomicU64,
    /// A [`Fault`], as `Fault as u8`.
    fault: AtomicU8,
    requests: AtomicU64,
    held: AtomicU64,
    /// The first line and the `X-Amz-Target` of each held request, for failure messages.
    held_requests: Mutex<Vec<String>>,
    /// Held connections, closed when the proxy stops.
    held_streams: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`),
    /// holding `fraction` (0 to 1) of the requests.
    pub fn start(upstream: &str, fraction: f64) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream,
            fraction_ppm: AtomicU64::new(ppm(fraction)),
            fault: AtomicU8::new(Fault::Unsent as u8),
            requests: AtomicU64::new(0),
            held: AtomicU64::new(0),
            held_requests: Mutex::new(Vec::new()),
            held_streams: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || {
                    let _ = shared.serve(stream);
                });
            }
        });
        FaultProxy {
            endpoint,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Changes the fraction held from the next request on.
    pub fn set_fraction(&self, fraction: f64) {
        self.shared
            .fraction_ppm
            .store(ppm(fraction), Ordering::SeqCst);
    }

    /// Changes what a held request does, from the next request on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.fault.store(fault as u8, Ordering::SeqCst);
    }

    /// Requests seen so far (held or not).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests held so far.
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// The held requests: each one's first line and `X-Amz-Target`, if any.
    pub fn held_requests(&self) -> Vec<String> {
        self.shared.held_requests.lock().unwrap().clone()
    }

    /// Points `cmd` at this proxy instead of moto.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees `stop`.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.shared.held_streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn ppm(fraction: f64) -> u64 {
    assert!(
        (0.0..=1.0).contains(&fraction),
        "a fraction is between 0 and 1, not {fraction}"
    );
    (fraction * 1e6).round() as u64
}

impl Shared {
    /// Whether the `n`-th request (1-based) is held: where `floor(n f)` steps up.
    fn holds(&self, n: u64) -> bool {
        let f = self.fraction_ppm.load(Ordering::SeqCst);
        n * f / 1_000_000 > (n - 1) * f / 1_000_000
    }

    fn serve(&self, mut client: TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(4096);
        let head_end = loop {
            if let Some(at) = find(&buf, b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > MAX_HEAD {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = client.read(&mut chunk)?;
            if n == 0 {
                return Ok(()); // closed (also the acceptor's wake-up call)
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if self.holds(n) {
            self.held.fetch_add(1, Ordering::SeqCst);
            let first = head.lines().next().unwrap_or_default().to_string();
            let target = header(&head, "x-amz-target")
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            self.held_requests
                .lock()
                .unwrap()
                .push(format!("{first}{target}"));
            if let Ok(clone) = client.try_clone() {
                self.held_streams.lock().unwrap().push(clone);
            }
            if self.fault.load(Ordering::SeqCst) == Fault::AnswerLost as u8 {
                // Performed: the whole request goes on, the answer is read and dropped.
                let mut upstream = TcpStream::connect(&self.upstream)?;
                upstream.write_all(close_connection(&head).as_bytes())?;
                upstream.write_all(&buf[head_end..])?;
                let mut to_upstream = upstream.try_clone()?;
                let body = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client, &mut to_upstream);
                });
                let _ = std::io::copy(&mut upstream, &mut std::io::sink());
                let _ = body.join();
                return Ok(());
            }
            // Read whatever comes, answer nothing, until the client gives up.
            let mut sink = [0u8; 4096];
            while client.read(&mut sink)? > 0 {}
            return Ok(());
        }
        let mut upstream = TcpStream::connect(&self.upstream)?;
        upstream.write_all(close_connection(&head).as_bytes())?;
        upstream.write_all(&buf[head_end..])?;
        // The rest of the request body (if any) flows on while the answer comes back.
        let (mut from_client, mut to_upstream) = (client.try_clone()?, upstream.try_clone()?);
        let body = std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_client, &mut to_upstream);
        });
        let copied = std::io::copy(&mut upstream, &mut client);
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        let _ = body.join();
        copied.map(|_| ())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (lower-case) in a request head.
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// The head with `Connection: close` in place of any `Connection` header: one request per
/// connection, so that the next request comes on a new one.
fn close_connection(head: &str) -> String {
    let mut out = String::with_capacity(head.len() + 20);
    let mut lines = head.split("\r\n");
    out.push_str(lines.next().unwrap_or_default());
    out.push_str("\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// What [`output_within`] saw.
#[derive(Debug)]
pub struct Timed {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `cmd` to its end; past `budget` it is killed and the test fails, naming the command
/// and what it printed so far.
pub fn output_within(mut cmd: Command, budget: Duration) -> Timed {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gatekeeper");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for gatekeeper") {
            break Some(status);
        }
        if started.elapsed() > budget {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let Some(status) = status else {
        panic!("did not end within its budget of {budget:?}; killed: {cmd:?}\n{stdout}\n{stderr}");
    };
    Timed {
        code: status.code(),
        stdout,
        stderr,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fraction_held_is_exact_and_spread() {
        let shared = |f: f64| Shared {
            upstream: String::new(),
            fraction_ppm: AtomicU64::new(ppm(f)),
            fault: AtomicU8::new(Fault::Unsent as u8),
            requests: AtomicU64::new(0),
            held: AtomicU64::new(0),
            held_requests: Mutex::new(Vec::new()),
            held_streams: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        };
        let held = |f: f64| -> Vec<u64> { (1..=12).filter(|&n| shared(f).holds(n)).collect() };
        assert_eq!(held(0.25), [4, 8, 12]);
        assert_eq!(held(1.0), (1..=12).collect::<Vec<_>>());
        assert!(held(0.0).is_empty());
        assert_eq!(held(0.5), [2, 4, 6, 8, 10, 12]);
    }

    #[test]
    fn a_forwarded_request_asks_for_its_own_connection() {
        let head = "GET / HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\n\r\n";
        assert_eq!(
            close_connection(head),
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            header(
                "POST / HTTP/1.1\r\nX-Amz-Target: A.B\r\n\r\n",
                "x-amz-target"
            ),
            Some("A.B")
        );
    }

    /// Against a one-answer upstream: a forwarded request gets its answer, a held one none
    /// within a second; an unsent one never reaches the upstream, one whose answer is lost does.
    #[test]
    fn held_requests_get_no_answer_and_the_others_theirs() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = upstream.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let counting = Arc::clone(&served);
        std::thread::spawn(move || {
            for stream in upstream.incoming() {
                let mut s = stream.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                counting.fetch_add(1, Ordering::SeqCst);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        let proxy = FaultProxy::start(&format!("http://{addr}"), 0.5);
        let ask = || {
            let mut s = TcpStream::connect(proxy.endpoint().trim_start_matches("http://")).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut answer = String::new();
            match s.read_to_string(&mut answer) {
                Ok(_) => Some(answer),
                Err(_) => None, // timed out: held
            }
        };
        let first = ask().expect("the 1st request is forwarded");
        assert!(first.ends_with("ok"), "{first}");
        assert_eq!(ask(), None, "the 2nd request is held");
        assert!(ask().is_some());
        assert_eq!((proxy.requests(), proxy.held()), (3, 1));
        assert_eq!(proxy.held_requests(), ["GET / HTTP/1.1"]);
        assert_eq!(
            served.load(Ordering::SeqCst),
            2,
            "the held one was not sent"
        );

        proxy.set_fault(Fault::AnswerLost);
        assert_eq!(ask(), None, "the 4th request is held");
        assert!(ask().is_some());
        assert_eq!((proxy.requests(), proxy.held()), (5, 2));
        assert_eq!(
            served.load(Ordering::SeqCst),
            4,
            "the held one was performed"
        );
    }
}
