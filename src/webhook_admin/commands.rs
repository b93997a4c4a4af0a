//! The three `webhook` commands: read Partner Center, decide (`decide.rs`), write at most once,
//! print. Tokens are never printed; the rotated refresh token goes where `--write-back` says.

use super::args::{OutputFormat, RegisterArgs, StatusArgs, TestArgs};
use super::decide::{Decision, StatusReport, decide, default_events, describe};
use crate::microsoft::models::webhooks::{ValidationResult, WebhookRegistration};
use crate::microsoft::{DelegatedToken, WebhookClient};
use crate::onboard::credentials::CredentialArgs;
use std::time::{Duration, Instant};

/// How often `test` reads the validation event's status.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The client and the partner's delegated Partner Center token.
fn open(credentials: &CredentialArgs) -> anyhow::Result<(WebhookClient, DelegatedToken)> {
    let credentials = credentials.credentials()?;
    let token = credentials.clients.tokens.partner_center();
    Ok((credentials.clients.webhooks, token))
}

fn failed(what: &str) -> impl FnOnce(crate::microsoft::Error) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{what}: {e}")
}

/// `webhook status`: exit 0, or an error.
pub async fn status(args: StatusArgs) -> anyhow::Result<u8> {
    let (client, token) = open(&args.credentials)?;
    let registration = client
        .registration(&token)
        .await
        .map_err(failed("reading the webhook registration"))?;
    let report = StatusReport::new(registration.as_ref(), args.url.as_deref());
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", report.text()),
    }
    Ok(0)
}

/// `webhook register`: exit 0 when the registration is as asked, 1 when refused.
pub async fn register(args: RegisterArgs) -> anyhow::Result<u8> {
    let (client, token) = open(&args.credentials)?;
    let events = match args.events.is_empty() {
        true => default_events(),
        false => args.events.clone(),
    };
    let existing = client
        .registration(&token)
        .await
        .map_err(failed("reading the webhook registration"))?;
    let wanted = WebhookRegistration {
        subscriber_id: None,
        webhook_url: args.url.clone(),
        webhook_events: events,
    };
    let decision = decide(
        existing.as_ref(),
        &args.url,
        &wanted.webhook_events,
        args.force,
    );
    let written = match decision {
        Decision::Create => Some(client.create(&token, &wanted).await),
        Decision::Update | Decision::Replace => Some(client.update(&token, &wanted).await),
        Decision::Unchanged | Decision::Refuse => None,
    };
    let written = written
        .transpose()
        .map_err(failed("writing the webhook registration"))?;
    print!("{}", report(&decision, existing.as_ref(), written.as_ref()));
    Ok(u8::from(decision == Decision::Refuse))
}

/// What `register` prints.
fn report(
    decision: &Decision,
    existing: Option<&WebhookRegistration>,
    written: Option<&WebhookRegistration>,
) -> String {
    let show = |r: Option<&WebhookRegistration>| {
        r.map(|r| describe(&r.webhook_url, &r.webhook_events))
            .unwrap_or_default()
    };
    match decision {
        Decision::Create => format!("Created the webhook registration.\n{}", show(written)),
        Decision::Update => format!("Updated the registration's events.\n{}", show(written)),
        Decision::Replace => format!(
            "Replaced the registration that pointed elsewhere:\n{}Now:\n{}",
            show(existing),
            show(written)
        ),
        Decision::Unchanged => format!(
            "The registration already points there with these events; nothing written.\n{}",
            show(existing)
        ),
        Decision::Refuse => format!(
            "A webhook registration points at another URL; nothing written.\n{}--force replaces it (the other receiver then gets no events).\n",
            show(existing)
        ),
    }
}

/// `webhook test`: exit 0 when the receiver accepted the event, 1 otherwise.
pub async fn test(args: TestArgs) -> anyhow::Result<u8> {
    let (client, token) = open(&args.credentials)?;
    let sent = client
        .send_validation_event(&token)
        .await
        .map_err(failed("sending the validation event"))?;
    println!(
        "Validation event sent (correlation id {}).",
        sent.correlation_id
    );
    let deadline = Instant::now() + args.timeout;
    let mut printed = 0;
    loop {
        let status = client
            .validation_status(&token, &sent.correlation_id)
            .await
            .map_err(failed("reading the validation event's status"))?;
        for (n, result) in status.results.iter().enumerate().skip(printed) {
            println!("{}", attempt_line(n + 1, result));
        }
        printed = printed.max(status.results.len());
        if !status.is_pending() {
            println!("Status: {}", status.status);
            return Ok(u8::from(!status.is_completed()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            println!(
                "Status: still pending after {}",
                humantime::format_duration(args.timeout)
            );
            return Ok(1);
        }
        tokio::time::sleep(left.min(POLL_INTERVAL)).await;
    }
}

/// One delivery attempt.
fn attempt_line(n: usize, r: &ValidationResult) -> String {
    format!(
        "attempt {n} at {}: {} {:?}{}",
        r.date_time_utc.as_deref().unwrap_or("?"),
        r.response_code.as_deref().unwrap_or("no answer"),
        r.response_message.as_deref().unwrap_or_default(),
        if r.system_error {
            " (system error)"
        } else {
            ""
        }
    )
}
