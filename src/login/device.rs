//! The device authorization grant (RFC 8628): ask for a user code, tell the user where to enter
//! it, and poll the token endpoint every `interval` seconds until the sign-in finishes, is
//! declined, or the code expires (or `--timeout` passes, whichever is first). `slow_down` adds 5
//! seconds to the interval (§3.5). The device code itself is never printed.

use super::oauth::{SignInClient, TokenSet};
use std::time::Duration;
use tokio::time::Instant;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What one poll's answer means.
#[derive(Debug, PartialEq, Eq)]
enum Poll {
    /// Not finished yet: poll again after the interval.
    Pending,
    /// Poll again, 5 seconds slower.
    SlowDown,
    /// Stop, with the reason told to the user.
    Fail(String),
}

/// Classifies a failed poll by its OAuth `error`.
fn classify(error: Option<&str>, detail: &str) -> Poll {
    match error {
        Some("authorization_pending") => Poll::Pending,
        Some("slow_down") => Poll::SlowDown,
        Some("authorization_declined" | "access_denied") => Poll::Fail(
            "the sign-in was declined (the user chose not to approve it); nothing was stored — run login again and approve the sign-in".into(),
        ),
        Some("expired_token") => Poll::Fail(
            "the code expired before the sign-in finished; nothing was stored — run login again and enter the new code sooner".into(),
        ),
        Some("bad_verification_code") => Poll::Fail(
            "Entra does not know the device code (bad_verification_code); nothing was stored — run login again".into(),
        ),
        _ => Poll::Fail(format!(
            "the sign-in failed: {detail}; nothing was stored"
        )),
    }
}

/// Runs the device flow; instructions go to stderr.
pub async fn sign_in(client: &SignInClient, timeout: Duration) -> anyhow::Result<TokenSet> {
    let code = client.device_code().await.map_err(|e| {
        anyhow::anyhow!(
            "could not start the device code sign-in: {e}. If the tenant's Conditional Access blocks device code sign-ins, use --browser"
        )
    })?;
    let start = Instant::now();
    match &code.message {
        Some(message) => eprintln!("{message}"),
        None => eprintln!(
            "To sign in, open {} and enter the code {}",
            code.verification_uri, code.user_code
        ),
    }
    eprintln!("Sign in as the partner's GDAP user (a member of AdminAgents), with MFA.");
    let expires = start + Duration::from_secs(code.expires_in);
    let deadline = expires.min(start + timeout);
    let mut interval = Duration::from_secs(code.interval.max(1));
    let device_code = code.device_code.expose();
    loop {
        let next = Instant::now() + interval;
        if next > deadline {
            anyhow::bail!(if deadline < expires {
                format!(
                    "the sign-in did not finish within --timeout {}; nothing was stored — run login again (with a longer --timeout)",
                    humantime::format_duration(timeout)
                )
            } else {
                "the code expired before the sign-in finished; nothing was stored — run login again and enter the new code sooner".to_string()
            });
        }
        tokio::time::sleep_until(next).await;
        let form = [("grant_type", GRANT_TYPE), ("device_code", device_code)];
        match client.redeem(&form, &[device_code]).await {
            Ok(tokens) => return Ok(tokens),
            Err(e) if e.is_transient() => {
                // The network or Entra hiccuped: the code is still unredeemed, poll again.
                tracing::debug!(error = %e, "device code poll failed; polling again");
            }
            Err(e) => match classify(e.code(), &e.to_string()) {
                Poll::Pending => {}
                Poll::SlowDown => interval += Duration::from_secs(5),
                Poll::Fail(message) => anyhow::bail!(message),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_answers_are_told_apart() {
        assert_eq!(classify(Some("authorization_pending"), ""), Poll::Pending);
        assert_eq!(classify(Some("slow_down"), ""), Poll::SlowDown);
        for (error, words) in [
            ("authorization_declined", "declined"),
            ("expired_token", "expired"),
            ("bad_verification_code", "bad_verification_code"),
        ] {
            match classify(Some(error), "") {
                Poll::Fail(m) => assert!(m.contains(words) && m.contains("run login again"), "{m}"),
                other => panic!("{error}: {other:?}"),
            }
        }
        match classify(Some("invalid_client"), "InvalidClientSecret: AADSTS7000215") {
            Poll::Fail(m) => assert!(m.contains("AADSTS7000215"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
