//! A webhook receiver for tests: an HTTP server on loopback that records every request (headers,
//! exact body bytes, arrival time) and answers with a status the test sets, plus the check of an
//! event's signature against the certificate its `X-MS-Certificate-Url` names.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its exact body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// A running receiver.
pub struct Receiver {
    /// Its URL (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts a receiver answering `status`.
    pub async fn start(status: u16) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let (g, s) = (got.clone(), status.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                g.lock().unwrap().push(Received {
                    headers,
                    body,
                    at: Instant::now(),
                });
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url,
            got,
            status,
            task,
        }
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests whose `EventName` is `name` (and whose `ResourceUri` ends with `tail`).
    pub fn events(&self, name: &str, tail: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| {
                let v = r.json();
                v["EventName"] == name && v["ResourceUri"].as_str().unwrap().ends_with(tail)
            })
            .collect()
    }

    /// Waits (up to 30 s) until an event `name` for a resource ending with `tail` arrived.
    pub async fn wait_event(&self, name: &str, tail: &str) -> Received {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.events(name, tail).into_iter().next() {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no {name} for …{tail}; got {:?}",
                self.received()
                    .iter()
                    .map(|r| r.json()["EventName"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits (up to 30 s) until `done` holds for the JSON that GET `url` answers; returns it.
pub async fn poll_json(url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{url} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
