//! `spin-trigger-host ctl`: the admin endpoint's client. `list` prints each timer's state as a
//! table; `pause`, `resume` and `run` act on one timer. An answer other than success is an
//! error with the endpoint's message.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};

use super::args::{CtlAction, CtlArgs};
use crate::{LastRun, TriggerStatus};

/// How long the endpoint may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn ctl(args: CtlArgs) -> anyhow::Result<()> {
    let token = super::admin_token(&args.token)?.context(
        "no admin token: set SPIN_TRIGGER_ADMIN_TOKEN or --admin-token-file, as for the host",
    )?;
    // The id as one path segment, whatever it holds.
    let id = |trigger: &str| {
        percent_encoding::utf8_percent_encode(trigger, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    };
    let (method, path) = match &args.action {
        CtlAction::List => (Method::GET, "/triggers".to_owned()),
        CtlAction::Pause { trigger } => (Method::POST, format!("/triggers/{}/pause", id(trigger))),
        CtlAction::Resume { trigger } => {
            (Method::POST, format!("/triggers/{}/resume", id(trigger)))
        }
        CtlAction::Run { trigger } => (Method::POST, format!("/triggers/{}/run", id(trigger))),
    };
    let address = args.admin_addr;
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{address}{path}"))
        .header(
            hyper::header::AUTHORIZATION,
            format!("Bearer {}", token.as_str()),
        )
        .body(Full::new(Bytes::new()))
        .context("making the request")?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let (status, body) = tokio::time::timeout(ANSWER_TIMEOUT, async {
        let response = client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    })
    .await
    .with_context(|| {
        format!("the admin endpoint at {address} did not answer in {ANSWER_TIMEOUT:?}")
    })?
    .with_context(|| format!("reaching the admin endpoint at {address}"))?;
    let answer: serde_json::Value = serde_json::from_slice(&body).with_context(|| {
        format!("the admin endpoint at {address} answered {status} with something other than JSON")
    })?;
    if !status.is_success() {
        let message = answer["error"].as_str().unwrap_or("no message");
        bail!("{address} answered {status}: {message}");
    }
    match &args.action {
        CtlAction::List => {
            let statuses: Vec<TriggerStatus> = serde_json::from_value(answer)
                .context("reading the admin endpoint's list of triggers")?;
            print!("{}", table(&statuses));
        }
        CtlAction::Pause { trigger } => println!("paused {trigger}"),
        CtlAction::Resume { trigger } => println!("resumed {trigger}"),
        CtlAction::Run { trigger } if status == StatusCode::ACCEPTED => {
            println!("running {trigger} now")
        }
        CtlAction::Run { trigger } => println!("{trigger}: {answer}"),
    }
    Ok(())
}

/// The triggers as a table: one row each, columns padded to their widest cell.
fn table(statuses: &[TriggerStatus]) -> String {
    let mut rows =
        vec![["TRIGGER", "SCHEDULE", "PAUSED", "NEXT DUE", "LAST RUN"].map(String::from)];
    for status in statuses {
        rows.push([
            status.trigger.clone(),
            status.schedule.clone(),
            match (status.paused, status.pause_scope.as_str()) {
                (false, _) => "no".to_owned(),
                (true, "redis") => "yes (every host)".to_owned(),
                (true, _) => "yes (this host)".to_owned(),
            },
            status.next_due_ms.map_or_else(|| "-".to_owned(), time),
            status
                .last_run
                .as_ref()
                .map_or_else(|| "-".to_owned(), last_run),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

fn last_run(run: &LastRun) -> String {
    let attempts = match run.attempts {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    let mut text = format!(
        "{} at {} ({attempts}, due {})",
        run.outcome,
        time(run.finished_ms),
        time(run.scheduled_ms)
    );
    if let Some(error) = &run.error {
        text.push_str(&format!(": {error}"));
    }
    text
}

/// Milliseconds since the Unix epoch, as RFC 3339 in UTC.
fn time(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from(UNIX_EPOCH + Duration::from_millis(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_a_table_of_each_timers_state() {
        let statuses = [
            TriggerStatus {
                trigger: "report".into(),
                component: "reporter".into(),
                schedule: "every 1m".into(),
                paused: true,
                pause_scope: "redis".into(),
                next_due_ms: Some(1_800_000_060_000),
                last_run: Some(LastRun {
                    scheduled_ms: 1_800_000_000_000,
                    finished_ms: 1_800_000_000_250,
                    attempts: 3,
                    outcome: "failed".into(),
                    error: Some("handler returned an error: no API".into()),
                }),
            },
            TriggerStatus {
                trigger: "tick".into(),
                component: "ticker".into(),
                schedule: "cron 0 * * * * * in UTC".into(),
                paused: false,
                pause_scope: "process".into(),
                next_due_ms: None,
                last_run: None,
            },
        ];
        assert_eq!(
            table(&statuses),
            "TRIGGER  SCHEDULE                 PAUSED            NEXT DUE                  LAST RUN\n\
             report   every 1m                 yes (every host)  2027-01-15T08:01:00.000Z  failed at 2027-01-15T08:00:00.250Z (3 attempts, due 2027-01-15T08:00:00.000Z): handler returned an error: no API\n\
             tick     cron 0 * * * * * in UTC  no                -                         -\n"
        );
    }
}
