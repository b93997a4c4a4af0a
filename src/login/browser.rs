//! The authorization code grant with PKCE (RFC 7636, S256) on a loopback redirect (RFC 8252
//! §7.3): for tenants whose Conditional Access blocks the device code flow.
//!
//! A listener on `127.0.0.1:{port}` (and `[::1]:{port}` when it can be had, since a browser may
//! resolve `localhost` to either) waits for Entra's redirect to `http://localhost:{port}`. The
//! redirect's `state` must be the random one sent with the authorize request; its `code` is
//! redeemed with the `code_verifier` and the client's authentication. The app registration must
//! list `http://localhost:{port}` as a Web redirect URI. Nothing from the redirect's query is
//! echoed into the page the browser shows.

use super::oauth::{SignInClient, TokenSet, sign_in_scope};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Html;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// A PKCE pair: the verifier kept here, the challenge sent with the authorize request.
pub struct Pkce {
    /// `code_verifier`: 43 characters of base64url from 32 random bytes.
    pub verifier: String,
    /// `code_challenge` = BASE64URL(SHA-256(verifier)).
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn generate() -> Self {
        Pkce::from_verifier(random_text(32))
    }

    /// The pair for a given verifier (RFC 7636 appendix B uses a fixed one).
    pub fn from_verifier(verifier: String) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        Pkce {
            challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            verifier,
        }
    }
}

/// `bytes` random bytes as base64url without padding.
fn random_text(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(raw)
}

/// `http://localhost:{port}`, exactly as registered on the app.
pub fn redirect_uri(port: u16) -> String {
    format!("http://localhost:{port}")
}

/// The authorize request URL.
pub fn authorize_url(client: &SignInClient, port: u16, state: &str, challenge: &str) -> Url {
    let mut url = client.url("authorize");
    url.query_pairs_mut()
        .append_pair("client_id", client.client_id())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri(port))
        .append_pair("response_mode", "query")
        .append_pair("scope", &sign_in_scope(client.endpoints()))
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url
}

/// What a request to the loopback listener means.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Not a sign-in answer (`/favicon.ico`, a bare visit): 404, keep waiting.
    Ignore,
    /// The authorization code.
    Code(String),
    /// The sign-in failed or the answer is not ours: stop, with this message.
    Fail(String),
}

fn interpret(query: Option<&str>, expected_state: &str) -> Answer {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("code").is_none() && get("error").is_none() {
        return Answer::Ignore;
    }
    if get("state") != Some(expected_state) {
        return Answer::Fail(
            "the sign-in answer on the loopback redirect does not carry this login's state (a stale browser tab, or a forged request); nothing was stored — run login again".into(),
        );
    }
    if let Some(error) = get("error") {
        let description = crate::microsoft::error::sanitize(get("error_description").unwrap_or(""));
        let what = match error {
            "access_denied" => "the sign-in was declined or the consent refused".to_string(),
            other => format!("the sign-in failed ({other})"),
        };
        return Answer::Fail(format!(
            "{what}: {description}; nothing was stored — run login again{}",
            if description.contains("AADSTS50011") {
                " after adding the redirect URI to the app registration (Authentication → Web)"
            } else {
                ""
            }
        ));
    }
    Answer::Code(get("code").unwrap_or_default().to_string())
}

struct Listener {
    expected_state: String,
    answers: mpsc::Sender<Result<String, String>>,
    done: Mutex<bool>,
}

async fn handle(
    State(listener): State<Arc<Listener>>,
    uri: Uri,
) -> (StatusCode, Html<&'static str>) {
    let answer = interpret(uri.query(), &listener.expected_state);
    let result = match answer {
        Answer::Ignore => return (StatusCode::NOT_FOUND, Html(NOT_HERE)),
        Answer::Code(code) => Ok(code),
        Answer::Fail(message) => Err(message),
    };
    let page = if result.is_ok() { SIGNED_IN } else { FAILED };
    let mut done = listener.done.lock().expect("listener lock");
    if *done {
        return (StatusCode::GONE, Html(ALREADY));
    }
    *done = true;
    let _ = listener.answers.try_send(result);
    (StatusCode::OK, Html(page))
}

const SIGNED_IN: &str = "<!doctype html><title>gdap-operator login</title><p>Signed in. You can close this window and return to the terminal.</p>";
const FAILED: &str = "<!doctype html><title>gdap-operator login</title><p>The sign-in did not succeed. The terminal says why.</p>";
const ALREADY: &str = "<!doctype html><title>gdap-operator login</title><p>This login already has its answer. Return to the terminal.</p>";
const NOT_HERE: &str =
    "<!doctype html><title>gdap-operator login</title><p>Waiting for the sign-in.</p>";

/// Binds the loopback listener(s) before the authorize URL is shown.
async fn bind(port: u16) -> anyhow::Result<Vec<TcpListener>> {
    let v4 = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on 127.0.0.1:{port} for the sign-in redirect: {e}; free the port, or pass --redirect-port with another port that the app registration lists as http://localhost:PORT (Web redirect URI)"
        )
    })?;
    let mut listeners = vec![v4];
    if let Ok(v6) = TcpListener::bind(("::1", port)).await {
        listeners.push(v6);
    }
    Ok(listeners)
}

/// Tries to open `url` in the user's browser; never fails (the URL is printed anyway).
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = tokio::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("(no browser could be opened here: open the address above yourself)");
    }
}

/// Runs the browser flow: instructions go to stderr.
pub async fn sign_in(
    client: &SignInClient,
    port: u16,
    open: bool,
    timeout: Duration,
) -> anyhow::Result<TokenSet> {
    let listeners = bind(port).await?;
    let pkce = Pkce::generate();
    let state = random_text(16);
    let (answers, mut received) = mpsc::channel(1);
    let shared = Arc::new(Listener {
        expected_state: state.clone(),
        answers,
        done: Mutex::new(false),
    });
    let app = Router::new().fallback(handle).with_state(shared);
    let (stop, stopped) = watch::channel(false);
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let mut stopped = stopped.clone();
            let serve = axum::serve(listener, app.clone()).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            tokio::spawn(async move { serve.await })
        })
        .collect();
    let url = authorize_url(client, port, &state, &pkce.challenge);
    eprintln!("To sign in, open this address in a browser on this machine:\n{url}");
    eprintln!(
        "Sign in as the partner's GDAP user (a member of AdminAgents), with MFA. Waiting for the redirect to {} …",
        redirect_uri(port)
    );
    if open {
        open_browser(url.as_str());
    }
    let answer = tokio::time::timeout(timeout, received.recv()).await;
    let _ = stop.send(true);
    for server in servers {
        // Let the answer page reach the browser, but never hang on a lingering connection.
        let abort = server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    let code = match answer {
        Err(_) => anyhow::bail!(
            "no sign-in answer reached {} within --timeout {}; nothing was stored — run login again (check that the app registration lists {} as a Web redirect URI)",
            redirect_uri(port),
            humantime::format_duration(timeout),
            redirect_uri(port)
        ),
        Ok(None) => anyhow::bail!("the loopback listener stopped; nothing was stored"),
        Ok(Some(Err(message))) => anyhow::bail!(message),
        Ok(Some(Ok(code))) => code,
    };
    let redirect = redirect_uri(port);
    let scope = sign_in_scope(client.endpoints());
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
        ("scope", scope.as_str()),
    ];
    client
        .redeem(&form, &[code.as_str(), pkce.verifier.as_str()])
        .await
        .map_err(|e| {
            anyhow::anyhow!("the authorization code could not be redeemed: {e}; nothing was stored — run login again")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_are_long_enough_unreserved_and_fresh() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert!((43..=128).contains(&a.verifier.len()), "{}", a.verifier);
        assert!(
            a.verifier
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
            "{}",
            a.verifier
        );
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge.len(), 43);
    }

    #[test]
    fn the_authorize_url_carries_every_parameter() {
        let endpoints = crate::microsoft::Endpoints::local("http://127.0.0.1:9", None).unwrap();
        let client = SignInClient::new(endpoints, "tenant-1", "app-1", "s".into()).unwrap();
        let url = authorize_url(&client, 8400, "st", "ch");
        assert_eq!(url.path(), "/tenant-1/oauth2/v2.0/authorize");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "app-1");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["redirect_uri"], "http://localhost:8400");
        assert_eq!(query["response_mode"], "query");
        assert_eq!(
            query["scope"],
            "https://graph.microsoft.com/.default offline_access openid profile"
        );
        assert_eq!(query["state"], "st");
        assert_eq!(query["code_challenge"], "ch");
        assert_eq!(query["code_challenge_method"], "S256");
        assert!(!url.as_str().contains("client_secret"));
    }

    #[test]
    fn redirect_answers_are_checked() {
        assert_eq!(interpret(None, "s"), Answer::Ignore);
        assert_eq!(interpret(Some("x=1"), "s"), Answer::Ignore);
        assert_eq!(
            interpret(Some("code=abc&state=s"), "s"),
            Answer::Code("abc".into())
        );
        match interpret(Some("code=abc&state=other"), "s") {
            Answer::Fail(m) => assert!(m.contains("state"), "{m}"),
            other => panic!("{other:?}"),
        }
        match interpret(Some("code=abc"), "s") {
            Answer::Fail(m) => assert!(m.contains("state"), "{m}"),
            other => panic!("{other:?}"),
        }
        match interpret(
            Some("error=access_denied&error_description=AADSTS65004%3A+User+declined&state=s"),
            "s",
        ) {
            Answer::Fail(m) => assert!(m.contains("declined") && m.contains("AADSTS65004"), "{m}"),
            other => panic!("{other:?}"),
        }
        match interpret(
            Some(
                "error=invalid_request&error_description=AADSTS50011%3A+redirect+mismatch&state=s",
            ),
            "s",
        ) {
            Answer::Fail(m) => assert!(m.contains("redirect URI"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
