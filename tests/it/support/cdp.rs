//! A small driver of headless Chromium over the DevTools protocol, for the
//! dashboard tests and benchmark: it opens a page, and records every network
//! request the page makes, every console message, log entry and uncaught
//! exception, and every JavaScript dialog (which it dismisses).
//!
//! It speaks just enough WebSocket (RFC 6455) for a loopback connection:
//! masked text frames out; text, continuation, ping and close frames in.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Debian's package and binary name.
pub const CHROMIUM: &str = "chromium";

/// How long any single step may take before the driver gives up: a guard
/// against a hung browser, not a speed assertion.
const STEP_LIMIT: Duration = Duration::from_secs(120);

/// The Chromium binary, if the machine has one.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(CHROMIUM))
            .find(|p| p.is_file())
    })
}

/// The Chromium binary, or `None` after a note when the tests may skip
/// (`CI` unset). On CI a missing browser fails the test.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    match chromium() {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: chromium is not installed (CI=true); .ci/run installs it")
        }
        None => {
            eprintln!("note: {test} skipped: no chromium on PATH (apt-get install chromium)");
            None
        }
    }
}

/// What happened while a page loaded.
#[derive(Debug, Default)]
pub struct PageReport {
    /// URLs of the requests the page made, its own document excepted.
    pub requests: Vec<String>,
    /// Console messages (`console.*`), log entries and exceptions, as text.
    pub console: Vec<String>,
    /// Messages of the dialogs that opened (alert, confirm, prompt).
    pub dialogs: Vec<String>,
    /// From the start of the navigation to the load event, as the page's
    /// Navigation Timing tells it.
    pub load_ms: f64,
}

/// A running headless Chromium and a connection to one page of it.
pub struct Browser {
    child: Child,
    ws: WebSocket,
    next_id: u64,
    _profile: tempfile::TempDir,
    /// Events received while waiting for something else.
    events: Vec<Value>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium headless with a fresh profile, at a window size.
    pub fn start(bin: &Path, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("chromium's stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                    sent = true;
                }
                // Keep draining, so that Chromium never blocks on a full pipe.
            }
        });
        let browser_url = rx
            .recv_timeout(STEP_LIMIT)
            .expect("chromium printed its DevTools address");
        let port: u16 = browser_url
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a port in the DevTools address");
        // The page Chromium opened: connect to it alone, so that the
        // browser's own background traffic is not counted as the page's.
        let started = Instant::now();
        let page_ws = loop {
            let list = http_get(port, "/json/list");
            let targets: Value = serde_json::from_str(&list).unwrap_or(Value::Null);
            if let Some(url) = targets.as_array().and_then(|t| {
                t.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            }) {
                break url.to_owned();
            }
            assert!(started.elapsed() < STEP_LIMIT, "chromium opened no page");
            std::thread::sleep(Duration::from_millis(50));
        };
        let ws = WebSocket::connect(&page_ws);
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
            events: Vec::new(),
        };
        for method in [
            "Page.enable",
            "Network.enable",
            "Runtime.enable",
            "Log.enable",
        ] {
            b.call(method, json!({}));
        }
        b
    }

    /// Lays pages out as on a phone's screen of `width` × `height` CSS
    /// pixels (a headless window has a minimum width of its own).
    pub fn emulate_phone(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": true }),
        );
    }

    /// Sends a command and waits for its answer; events seen meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.ws
            .send(&json!({ "id": id, "method": method, "params": params }).to_string());
        let started = Instant::now();
        loop {
            let msg = self.ws.recv();
            let v: Value = serde_json::from_str(&msg).expect("a JSON message");
            if v["id"] == id {
                if let Some(err) = v.get("error") {
                    panic!("{method} failed: {err}");
                }
                return v["result"].clone();
            }
            self.on_event(v);
            assert!(started.elapsed() < STEP_LIMIT, "no answer to {method}");
        }
    }

    fn on_event(&mut self, v: Value) {
        if v["method"] == "Page.javascriptDialogOpening" {
            // Dismiss it, or the page would wait for it forever.
            self.next_id += 1;
            let id = self.next_id;
            self.ws.send(
                &json!({"id": id, "method": "Page.handleJavaScriptDialog", "params": {"accept": false}})
                    .to_string(),
            );
        }
        self.events.push(v);
    }

    /// Waits for an event of `method`; returns it.
    fn wait_for(&mut self, method: &str) -> Value {
        if let Some(pos) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(pos);
        }
        let started = Instant::now();
        loop {
            let msg = self.ws.recv();
            let v: Value = serde_json::from_str(&msg).expect("a JSON message");
            if v["method"] == method {
                self.on_event(v.clone());
                self.events.pop();
                return v;
            }
            if v.get("id").is_none() {
                self.on_event(v);
            }
            assert!(started.elapsed() < STEP_LIMIT, "no {method} event");
        }
    }

    /// Opens `file` and waits for its load event; reports what the page did.
    pub fn open(&mut self, file: &Path) -> PageReport {
        let url = format!(
            "file://{}",
            file.canonicalize().expect("the page exists").display()
        );
        self.events.clear();
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for("Page.loadEventFired");
        // A round trip after the load event: every event the page caused up
        // to now has arrived before its answer.
        let timing = self.eval(
            "(() => { const n = performance.getEntriesByType('navigation')[0]; \
             return n ? n.loadEventStart - n.startTime : -1; })()",
        );
        let mut report = PageReport {
            load_ms: timing.as_f64().unwrap_or(-1.0),
            ..Default::default()
        };
        for e in std::mem::take(&mut self.events) {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Network.requestWillBeSent" => {
                    let u = p["request"]["url"].as_str().unwrap_or("").to_owned();
                    if u != url {
                        report.requests.push(u);
                    }
                }
                "Runtime.consoleAPICalled" => report.console.push(format!(
                    "console.{}: {}",
                    p["type"].as_str().unwrap_or("?"),
                    p["args"]
                )),
                "Log.entryAdded" => report.console.push(format!(
                    "log {} {}: {}",
                    p["entry"]["level"].as_str().unwrap_or("?"),
                    p["entry"]["source"].as_str().unwrap_or("?"),
                    p["entry"]["text"].as_str().unwrap_or("")
                )),
                "Runtime.exceptionThrown" => report
                    .console
                    .push(format!("exception: {}", p["exceptionDetails"])),
                "Page.javascriptDialogOpening" => report
                    .dialogs
                    .push(p["message"].as_str().unwrap_or("").to_owned()),
                _ => {}
            }
        }
        report
    }

    /// Evaluates `expr` in the page; its value (JSON-able values only).
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true }),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("evaluating {expr:?} threw: {ex}");
        }
        r["result"]["value"].clone()
    }
}

/// A plain HTTP GET on loopback (the DevTools target list). The body is
/// read up to its `Content-Length`: Chromium keeps the connection open
/// whatever the request asks, so reading to the end would wait for the
/// read timeout.
fn http_get(port: u16, path: &str) -> String {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(STEP_LIMIT));
    let mut reader = BufReader::new(s);
    let _ = write!(
        reader.get_mut(),
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return String::new(),
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    let mut body = vec![0u8; length];
    match reader.read_exact(&mut body) {
        Ok(()) => String::from_utf8_lossy(&body).into_owned(),
        Err(_) => String::new(),
    }
}

/// The client end of a WebSocket on loopback.
struct WebSocket {
    stream: TcpStream,
}

impl WebSocket {
    fn connect(url: &str) -> WebSocket {
        let rest = url.strip_prefix("ws://").expect("a ws:// address");
        let (host, path) = rest.split_once('/').expect("a path");
        let mut stream = TcpStream::connect(host).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(STEP_LIMIT))
            .expect("a read timeout");
        stream.set_nodelay(true).expect("no delay");
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("send the upgrade");
        // The answer's head, byte by byte up to the blank line: nothing of
        // the first frame is read with it.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("the upgrade answer");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "DevTools refused the WebSocket: {head}"
        );
        WebSocket { stream }
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        let mask = [0x5a, 0x17, 0xc3, 0x3e];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).expect("send a frame");
    }

    /// The next text message.
    fn recv(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream
                .read_exact(&mut head)
                .expect("a frame from DevTools");
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0f;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).expect("a length");
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).expect("a length");
                len = u64::from_be_bytes(b);
            }
            let mask = if head[1] & 0x80 != 0 {
                let mut m = [0u8; 4];
                self.stream.read_exact(&mut m).expect("a mask");
                Some(m)
            } else {
                None
            };
            let mut payload = vec![0u8; usize::try_from(len).expect("a frame that fits")];
            self.stream.read_exact(&mut payload).expect("a payload");
            if let Some(m) = mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= m[i % 4];
                }
            }
            match opcode {
                0x0 | 0x1 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).expect("UTF-8 text");
                    }
                }
                0x8 => panic!("DevTools closed the connection"),
                0x9 => {
                    // Pong, with the ping's payload.
                    let mut frame = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    frame.extend_from_slice(&payload);
                    self.stream.write_all(&frame).expect("send a pong");
                }
                _ => {}
            }
        }
    }
}
