//! The end-of-day run from the command line, as an operator runs it beside a gateway: today's
//! round first (it makes today the first date this database closes), then a round on a clock
//! some days on, which closes every date in between as far as it can.

use std::path::{Path, PathBuf};

use paygate::clearing::{Network, recon::business_date};

use super::app::TestApp;

/// `network`'s business date now, as a reconciliation period (`yyyymmdd`).
pub fn recon_period(app: &TestApp, network: Network) -> String {
    let date = business_date(network, app.clock.now_ms());
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `yyyymmdd` as `YYYY-MM-DD`.
pub fn dashed(period: &str) -> String {
    format!("{}-{}-{}", &period[..4], &period[4..6], &period[6..])
}

/// Runs `paygate eod run` on the app's database today, then on a clock `days` on; returns the
/// later configuration's path (for `eod status`, `recon --adjust`, `audit export` on it).
pub fn eod_run_later(app: &TestApp, days: i64) -> PathBuf {
    let today = app.dir().join("today.toml");
    std::fs::write(&today, toml::to_string(&app.config).unwrap()).unwrap();
    let (code, out) = app.paygate(&["eod", "run", "--config", today.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let mut later = app.config.clone();
    later.clock.start = (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let path = app.dir().join("later.toml");
    std::fs::write(&path, toml::to_string(&later).unwrap()).unwrap();
    let (code, out) = app.paygate(&["eod", "run", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    path
}

/// The steps of `date` (`YYYY-MM-DD`), as `paygate eod status --json` on the configuration at
/// `config` shows them.
pub fn eod_status(app: &TestApp, config: &Path, date: &str) -> Vec<serde_json::Value> {
    let (code, out) = app.paygate(&[
        "eod",
        "status",
        "--config",
        config.to_str().unwrap(),
        "--date",
        date,
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The detail of the step `name` among `steps`, which must be DONE.
pub fn done_detail(steps: &[serde_json::Value], name: &str) -> String {
    let step = steps
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("{name} in {steps:?}"));
    assert_eq!(step["state"], "DONE", "{step}");
    step["detail"].as_str().unwrap().to_owned()
}
