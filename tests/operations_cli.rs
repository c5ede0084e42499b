//! The operator's commands, through the real binary: one data directory (and no silent new
//! ledger when a configured one is missing), `paygate migrate`, and `--help` per subcommand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use common::{Backend, db::FreshDatabase};

/// `paygate <args>` in `dir`, on ephemeral ports, without the caller's environment leaking in.
fn paygate(dir: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_paygate"));
    command
        .args(args)
        .current_dir(dir)
        .env("PAYGATE_SERVER__LISTEN", "127.0.0.1:0")
        .env("PAYGATE_ADMIN__LISTEN", "127.0.0.1:0")
        .env_remove("PAYGATE_CONFIG")
        .env_remove("PAYGATE_DATA_DIR")
        .env_remove("RUST_LOG");
    command
}

fn run(dir: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Output {
    paygate(dir, args).output().expect("paygate runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts `paygate <args>` in `dir`; `Ok(child)` once it logs its start line, `Err(output)` if
/// it exits first.
fn start(dir: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Result<Child, String> {
    let mut child = paygate(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("paygate starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("paygate serving gRPC") {
                let _ = tx.send(());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => Ok(child),
        Err(_) => {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            Err(text(&out))
        }
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_start_from_another_folder_uses_the_data_directory_and_creates_nothing_where_it_runs() {
    let data = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    stop(start(data.path(), &["serve"]).expect("the first start initialises"));
    let data_dir = data.path().to_str().expect("utf-8");

    let again = start(elsewhere.path(), &["serve", "--data-dir", data_dir]);

    stop(again.expect("serves from the data directory"));
    assert!(data.path().join("data/paygate.db").exists());
    assert!(data.path().join("certs/ca.pem").exists());
    assert!(data.path().join("data/secret.key").exists());
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).expect("dir").count(),
        0,
        "nothing is created in the working directory"
    );
}

#[test]
fn a_data_directory_missing_its_database_is_refused_rather_than_given_a_new_one() {
    let data = tempfile::tempdir().expect("tempdir");
    stop(start(data.path(), &["serve"]).expect("the first start initialises"));
    std::fs::remove_file(data.path().join("data/paygate.db")).expect("remove");

    let refused = run(data.path(), &["serve"]);
    let started = start(data.path(), &["serve", "--init"]);

    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("missing in data directory"),
        "{}",
        text(&refused)
    );
    assert!(text(&refused).contains("--init"), "{}", text(&refused));
    stop(started.expect("--init creates the missing database"));
}

#[test]
fn a_config_file_naming_files_that_do_not_exist_is_refused_unless_told_to_init() {
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        data.path().join("paygate.toml"),
        "[log]\nformat = \"json\"\n",
    )
    .expect("config");

    let refused = run(data.path(), &["serve", "--config", "paygate.toml"]);
    let created_anything = data.path().join("data").exists() || data.path().join("certs").exists();
    let started = start(
        data.path(),
        &["--config", "paygate.toml", "serve", "--init"],
    );

    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("the configuration file names them"),
        "{}",
        text(&refused)
    );
    assert!(!created_anything);
    stop(started.expect("--init creates them"));
}

#[test]
fn commands_that_read_a_database_do_not_create_one() {
    let data = tempfile::tempdir().expect("tempdir");

    let verify = run(data.path(), &["ledger", "verify"]);
    let migrate = run(data.path(), &["migrate"]);

    for out in [&verify, &migrate] {
        assert_eq!(out.status.code(), Some(2), "{}", text(out));
        assert!(text(out).contains("no database at"), "{}", text(out));
    }
    assert!(!data.path().join("data").exists());
}

both_backends!(migrate_lists_then_applies_and_serve_can_be_told_not_to_migrate);

async fn migrate_lists_then_applies_and_serve_can_be_told_not_to_migrate(backend: Backend) {
    let db = FreshDatabase::new(backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    if backend == Backend::Sqlite {
        let file = db.url.trim_start_matches("sqlite://");
        std::fs::create_dir_all(Path::new(file).parent().expect("parent")).expect("dir");
        std::fs::write(file, b"").expect("an empty SQLite database");
    }
    let url = db.url.clone();
    let with = |args: &[&'static str]| -> Vec<String> {
        args.iter()
            .map(|a| (*a).to_owned())
            .chain(["--database-url".to_owned(), url.clone()])
            .collect()
    };

    // --init: the data directory holds a database (SQLite) but no PKI yet.
    let refused = run(dir.path(), &with(&["serve", "--no-migrate", "--init"]));
    let dry_run = run(dir.path(), &with(&["migrate", "--dry-run"]));
    let dry_run_again = run(dir.path(), &with(&["migrate", "--dry-run"]));
    let applied = run(dir.path(), &with(&["migrate"]));
    let up_to_date = run(dir.path(), &with(&["migrate", "--dry-run"]));
    let started = start(dir.path(), &with(&["serve", "--no-migrate", "--init"]));
    let served = started.is_ok();
    if let Ok(child) = started {
        stop(child);
    }
    db.remove().await;

    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("paygate migrate"),
        "{}",
        text(&refused)
    );
    for out in [&dry_run, &dry_run_again] {
        assert!(out.status.success(), "{}", text(out));
        assert!(text(out).contains("0001_ledger"), "{}", text(out));
        assert!(
            text(out).contains("dry run: nothing applied"),
            "{}",
            text(out)
        );
    }
    // Every migration the dry run listed is applied, and nothing else.
    let listed = text(&dry_run)
        .lines()
        .filter(|line| line.trim_start().starts_with("00"))
        .count();
    assert!(listed >= 9, "{}", text(&dry_run));
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(
        text(&applied).contains(&format!("applied {listed} migration(s)")),
        "{}",
        text(&applied)
    );
    assert!(
        text(&up_to_date).contains("up to date"),
        "{}",
        text(&up_to_date)
    );
    assert!(
        served,
        "a migrated database serves without migrating on start"
    );
}

/// The options `paygate <subcommand> --help` lists.
fn help_of(subcommand: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &[subcommand, &["--help"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn each_subcommand_help_shows_only_its_own_options() {
    let cases: [(&[&str], &[&str], &[&str]); 5] = [
        (
            &["serve"],
            &[
                "--init",
                "--no-migrate",
                "--data-dir",
                "--config",
                "--database-url",
            ],
            &["--force", "--dry-run", "--dir"],
        ),
        (
            &["migrate"],
            &["--dry-run", "--database-url", "--data-dir"],
            &["--init", "--force"],
        ),
        (
            &["certs", "issue-client"],
            &["--dir", "--config", "--data-dir"],
            &["--database-url", "--init", "--force"],
        ),
        (
            &["ledger", "verify"],
            &["--database-url", "--config"],
            &["--scratch-database", "--init", "--dir"],
        ),
        (
            &["config", "show"],
            &["--config", "--data-dir"],
            &["--init", "--dry-run", "--force"],
        ),
    ];
    for (subcommand, shown, hidden) in cases {
        let help = help_of(subcommand);
        for option in shown {
            assert!(
                help.contains(option),
                "{subcommand:?} shows {option}:\n{help}"
            );
        }
        for option in hidden {
            assert!(
                !help.contains(option),
                "{subcommand:?} hides {option}:\n{help}"
            );
        }
    }
}
