//! Scripted mock of the `OpenAI` Responses API (`POST …/responses`, SSE replies) for
//! running the real `codex exec --json` offline in tests; owns the server threads,
//! the request log and the event builders, and nothing about how Codex is spawned.
//!
//! # Usage
//!
//! ```ignore
//! let server = MockServer::start(vec![
//!     MockReply::Sse(reply_shell("call_1", "sed -i 's/a/b/' a.txt")),
//!     MockReply::Sse(reply_message("Done.", Some((100, 5)))),
//! ]);
//! let output = Command::new(codex_bin)
//!     .args(["exec", "--json", "-C", repo, "-s", "workspace-write", "-m", MOCK_MODEL])
//!     .args(codex_args(&server.base_url()))
//!     .arg("Edit a.txt.")                  // or "-" and write the prompt to a piped stdin
//!     .env("CODEX_HOME", fresh_temp_dir)   // never share ~/.codex between runs
//!     .env("MOCK_API_KEY", "dummy")        // Codex sends it as `Authorization: Bearer dummy`
//!     .stdin(Stdio::null())                // an open stdin pipe blocks Codex
//!     .output();
//! assert_eq!(server.responses_requests().len(), 2);
//! ```
//!
//! Callers must:
//! * set `MOCK_API_KEY=dummy` (the provider's `env_key`; missing → `turn.failed`),
//! * use a fresh, empty `CODEX_HOME` per test (a temp dir),
//! * pass `-m gpt-5.5` ([`MOCK_MODEL`]): a slug bundled in Codex's model catalog, so no
//!   "model metadata not found" warning and the `apply_patch` tool is offered,
//! * close Codex's stdin (it reads a non-TTY stdin to EOF before starting),
//! * keep their own wall-clock timeout around the child.
//!
//! Every POST whose path ends in `/responses` consumes the next [`MockReply`] of the
//! script (the last one repeats once the script is exhausted). Anything else gets 404.
//! Each response is sent with `Connection: close` and the connection is closed, so no
//! keep-alive state is kept. Request bodies are read by `Content-Length` or chunked
//! transfer coding.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of helpers"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Model slug to pass with `-m`; bundled in Codex 0.169's catalog (`apply_patch` available).
pub const MOCK_MODEL: &str = "gpt-5.5";

/// Environment variable Codex reads the mock provider's API key from (any value works).
pub const MOCK_API_KEY_ENV: &str = "MOCK_API_KEY";

/// Upper bound for a request head (request line + headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// One scripted answer to a `POST …/responses` request.
#[derive(Debug, Clone)]
pub enum MockReply {
    /// 200 `text/event-stream`; one `event: <type>\ndata: <json>\n\n` frame per event.
    Sse(Vec<Value>),
    /// The given HTTP status (e.g. 429, 500) with a JSON body.
    Status(u16, Value),
    /// Read the request, then never answer until the server is dropped (no status
    /// line either, so Codex's `stream_idle_timeout_ms` does not fire: it waits forever).
    Hang,
    /// 200 `text/event-stream` headers (no `Content-Length`) and these frames, then keep
    /// the stream open and silent until the server is dropped; this is what
    /// `stream_idle_timeout_ms` detects.
    SseThenHang(Vec<Value>),
}

/// One HTTP request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names are lower-cased; order as received.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body; `Value::Null` when the body is empty or not JSON.
    pub body: Value,
    /// The body bytes after removing any chunked transfer coding.
    pub raw_body: Vec<u8>,
}

impl RecordedRequest {
    /// Returns the first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Returns true for a Responses API call (`POST …/responses`).
    pub fn is_responses_call(&self) -> bool {
        self.method == "POST" && self.path_without_query().ends_with("/responses")
    }

    /// Returns the body's `input` array (empty if absent).
    pub fn input(&self) -> &[Value] {
        self.body["input"].as_array().map_or(&[], Vec::as_slice)
    }

    fn path_without_query(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }
}

/// A running mock server; dropping it stops every server thread.
pub struct MockServer {
    port: u16,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when `stopped` flips or a request is recorded.
    changed: Condvar,
    script: Vec<MockReply>,
    next_reply: AtomicUsize,
}

#[derive(Default)]
struct State {
    stopped: bool,
    requests: Vec<RecordedRequest>,
    /// Clones of live connections, shut down on drop to unblock their threads.
    streams: Vec<TcpStream>,
    workers: Vec<JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking worker must not hide the requests recorded so far.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MockServer {
    /// Returns a server on `127.0.0.1:<ephemeral port>` answering with `script`.
    ///
    /// Panics if `script` is empty or the socket cannot be bound.
    pub fn start(script: Vec<MockReply>) -> MockServer {
        assert!(
            !script.is_empty(),
            "MockServer::start: the script needs at least one reply"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("mock server: bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("mock server: local_addr")
            .port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            script,
            next_reply: AtomicUsize::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name("mock-responses-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("mock server: spawn accept thread");
        MockServer {
            port,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// Returns the provider base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Returns every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Returns only the `POST …/responses` requests, in arrival order.
    pub fn responses_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_responses_call)
            .collect()
    }

    /// Waits until at least `n` requests were recorded; returns false on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.requests.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let workers = {
            let mut state = self.shared.lock();
            state.stopped = true;
            for stream in state.streams.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut state.workers)
        };
        self.shared.changed.notify_all();
        // Wake the blocking accept() so the accept thread sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
        for handle in workers {
            let _ = handle.join();
        }
        // Workers spawned between the take above and the accept thread's exit.
        let late = std::mem::take(&mut self.shared.lock().workers);
        for handle in late {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        let mut state = shared.lock();
        if state.stopped {
            return;
        }
        let Ok(stream) = conn else { continue };
        match stream.try_clone() {
            Ok(clone) => state.streams.push(clone),
            Err(_) => continue,
        }
        let worker_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("mock-responses-conn".into())
            .spawn(move || handle_connection(stream, &worker_shared));
        if let Ok(handle) = spawned {
            state.workers.push(handle);
        }
    }
}

fn handle_connection(stream: TcpStream, shared: &Shared) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    serve_one(stream, &mut out, shared);
    // Explicit shutdown: `State::streams` holds a clone of this socket, so dropping
    // ours would not close the connection.
    let _ = out.shutdown(Shutdown::Both);
}

fn serve_one(stream: TcpStream, out: &mut TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let is_responses = request.is_responses_call();
    shared.lock().requests.push(request);
    shared.changed.notify_all();

    if !is_responses {
        let _ = write_response(out, 404, "application/json", br#"{"error":"not found"}"#);
        return;
    }
    let index = shared.next_reply.fetch_add(1, Ordering::SeqCst);
    match &shared.script[index.min(shared.script.len() - 1)] {
        MockReply::Sse(events) => {
            let body = sse_body(events);
            let _ = write_response(out, 200, "text/event-stream", body.as_bytes());
        }
        MockReply::Status(code, body) => {
            let _ = write_response(out, *code, "application/json", body.to_string().as_bytes());
        }
        MockReply::Hang => wait_until_stopped(shared),
        MockReply::SseThenHang(events) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        cache-control: no-cache\r\nconnection: close\r\n\r\n";
            let sent = out
                .write_all(head.as_bytes())
                .and_then(|()| out.write_all(sse_body(events).as_bytes()))
                .and_then(|()| out.flush());
            if sent.is_ok() {
                wait_until_stopped(shared);
            }
        }
    }
}

fn wait_until_stopped(shared: &Shared) {
    let mut state = shared.lock();
    while !state.stopped {
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Returns the parsed request, or None if the peer closed or sent garbage.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<RecordedRequest> {
    let mut head_len = 0usize;
    let mut request_line = String::new();
    // Skip stray blank lines before the request line (allowed by RFC 9112).
    while request_line.trim().is_empty() {
        request_line.clear();
        head_len += reader
            .read_line(&mut request_line)
            .ok()
            .filter(|&n| n > 0)?;
        if head_len > MAX_HEAD_BYTES {
            return None;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();

    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        head_len += reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
        if head_len > MAX_HEAD_BYTES {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let raw_body = if chunked {
        read_chunked(reader)?
    } else {
        let len: usize = match find("content-length") {
            Some(v) => v.parse().ok()?,
            None => 0,
        };
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).ok()?;
        body
    };
    let body = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
        raw_body,
    })
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok().filter(|&n| n > 0)?;
        let size_hex = size_line.trim().split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            // Trailer section, terminated by an empty line.
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer).ok().filter(|&n| n > 0)?;
                if trailer.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

fn write_response(
    out: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {len}\r\n\
         cache-control: no-cache\r\nconnection: close\r\n\r\n",
        reason = reason_phrase(status),
        len = body.len(),
    );
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Returns the SSE body for `events`: `event: <type>\ndata: <json>\n\n` per event.
pub fn sse_body(events: &[Value]) -> String {
    let mut body = String::new();
    for event in events {
        if let Some(kind) = event["type"].as_str() {
            body.push_str("event: ");
            body.push_str(kind);
            body.push('\n');
        }
        body.push_str("data: ");
        body.push_str(&event.to_string());
        body.push_str("\n\n");
    }
    body
}

static RESPONSE_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn next_response_id() -> String {
    format!(
        "resp_mock_{}",
        RESPONSE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1
    )
}

/// Returns a `response.completed` event, with a `usage` object when `usage` is
/// `Some((input_tokens, output_tokens))` (no cached or reasoning tokens).
pub fn completed_event(usage: Option<(u64, u64)>) -> Value {
    let mut response = json!({ "id": next_response_id() });
    if let Some((input, output)) = usage {
        response["usage"] = json!({
            "input_tokens": input,
            "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": output,
            "output_tokens_details": { "reasoning_tokens": 0 },
            "total_tokens": input + output,
        });
    }
    json!({ "type": "response.completed", "response": response })
}

/// Returns `response.output_item.done` for `item`.
pub fn item_done(item: Value) -> Value {
    let mut event = json!({ "type": "response.output_item.done" });
    event["item"] = item;
    event
}

/// Returns events for a final assistant message, then `response.completed`.
pub fn reply_message(text: &str, usage: Option<(u64, u64)>) -> Vec<Value> {
    vec![
        item_done(json!({
            "type": "message",
            "role": "assistant",
            "content": [{ "type": "output_text", "text": text }],
        })),
        completed_event(usage),
    ]
}

/// Returns events for an `exec_command` function call running `cmd`, then `response.completed`.
pub fn reply_shell(call_id: &str, cmd: &str) -> Vec<Value> {
    vec![
        item_done(json!({
            "type": "function_call",
            "call_id": call_id,
            "name": "exec_command",
            "arguments": json!({ "cmd": cmd }).to_string(),
        })),
        completed_event(None),
    ]
}

/// Returns events for an `apply_patch` custom tool call with `patch` (the full
/// `*** Begin Patch … *** End Patch` text), then `response.completed`.
pub fn reply_patch(call_id: &str, patch: &str) -> Vec<Value> {
    vec![
        item_done(json!({
            "type": "custom_tool_call",
            "call_id": call_id,
            "name": "apply_patch",
            "input": patch,
        })),
        completed_event(None),
    ]
}

/// Returns a single `response.failed` event (code `invalid_prompt`, not retried by Codex).
pub fn reply_failed(message: &str) -> Vec<Value> {
    vec![json!({
        "type": "response.failed",
        "response": {
            "id": next_response_id(),
            "error": { "code": "invalid_prompt", "message": message },
        },
    })]
}

/// Returns the `codex exec` arguments that point Codex at `base_url` through a custom
/// provider `mock` with retries off: `-c` overrides plus
/// `--disable unbounded_connection_retries`. Also valid for `codex exec resume`, which
/// rejects `-C`/`-s`: run it with the repo as process cwd and pass
/// `-c sandbox_mode="workspace-write"` (Codex 0.169 inherits neither from the session).
/// The model (`-m gpt-5.5`), `CODEX_HOME` and `MOCK_API_KEY` are the caller's job.
pub fn codex_args(base_url: &str) -> Vec<String> {
    let overrides = [
        "model_provider=\"mock\"".to_string(),
        "model_providers.mock.name=\"Mock\"".to_string(),
        format!("model_providers.mock.base_url=\"{base_url}\""),
        format!("model_providers.mock.env_key=\"{MOCK_API_KEY_ENV}\""),
        "model_providers.mock.wire_api=\"responses\"".to_string(),
        "model_providers.mock.request_max_retries=0".to_string(),
        "model_providers.mock.stream_max_retries=0".to_string(),
    ];
    let mut args = Vec::with_capacity(overrides.len() * 2 + 2);
    for value in overrides {
        args.push("-c".to_string());
        args.push(value);
    }
    args.push("--disable".to_string());
    args.push("unbounded_connection_retries".to_string());
    args
}
