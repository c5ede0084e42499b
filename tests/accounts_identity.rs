//! Identity documents, black-box over mutual TLS: a document number is validated and normalised
//! before it keys the per-person rules, so one person written several ways is one person. And
//! the files that hold what identifies people (the SQLite database, the server secret) are the
//! gateway user's only. Failure paths first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, assert_refused, card_number, metadata_of, open, open_personal, spawn_app,
    spawn_app_with,
};
use paygate::grpc::pb::{AccountKind, IdDocumentType};
use tonic::Code;

/// A real-checksum number of someone born in 1949, and its 15-digit legacy form.
const PERSON: &str = "11010519491231002X";
const PERSON_LEGACY: &str = "110105491231002";

both_backends!(a_resident_id_that_is_malformed_is_refused_naming_the_field);
async fn a_resident_id_that_is_malformed_is_refused_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    for (n, (number, why)) in [
        ("110105194912310021", "a wrong check digit"),
        ("11010519491231002", "17 characters"),
        ("1101051949123100211", "19 characters"),
        ("110105194902300020", "30 February"),
        ("110105209901010012", "a birth date in the future"),
        ("110105189912310015", "a birth year before 1900"),
        ("11010519491231002X号", "a character that is not a digit"),
        ("11010519491231002\u{202E}X", "a bidirectional override"),
        ("", "nothing"),
    ]
    .into_iter()
    .enumerate()
    {
        let status = assert_refused(
            c.open_account(open_personal(
                AccountKind::ClassIi,
                "cust",
                number,
                &card_number(n as u64),
            ))
            .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(
            metadata_of(&status).get("field").map(String::as_str),
            Some("identity.document_number"),
            "{why}: {status:?}"
        );
    }
}

both_backends!(
    six_spellings_of_one_resident_id_are_one_person_who_may_not_open_a_sixth_class_ii_account
);
async fn six_spellings_of_one_resident_id_are_one_person_who_may_not_open_a_sixth_class_ii_account(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let spellings = [
        PERSON,
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "110105 19491231-002\u{3000}X",
        "110105\u{200B}19491231002X",
    ];
    for (n, spelling) in spellings.into_iter().enumerate() {
        open(
            &mut c,
            open_personal(
                AccountKind::ClassIi,
                "cust",
                spelling,
                &card_number(n as u64),
            ),
        )
        .await;
    }

    let sixth = c
        .open_account(open_personal(
            AccountKind::ClassIi,
            "cust",
            PERSON_LEGACY,
            &card_number(9),
        ))
        .await;

    let status = assert_refused(sixth, Code::FailedPrecondition, "LIMIT_EXCEEDED");
    let md = metadata_of(&status);
    assert_eq!(md["limit_rule"], "CLASS_II_PER_PERSON", "{md:?}");
    assert_eq!((md["limit"].as_str(), md["used"].as_str()), ("5", "5"));
}

both_backends!(a_passport_number_spaced_or_in_lower_case_is_the_same_person);
async fn a_passport_number_spaced_or_in_lower_case_is_the_same_person(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.class_iii_per_person_max = 1;
    })
    .await;
    let mut c = app.accounts("core-banking").await;
    let passport = |number: &str, card: u64| {
        let mut req = open_personal(AccountKind::ClassIii, "cust", number, &card_number(card));
        if let Some(identity) = req.identity.as_mut() {
            identity.document_type = IdDocumentType::Passport as i32;
        }
        req
    };
    let too_short = c.open_account(passport("E12", 1)).await;
    assert_refused(too_short, Code::InvalidArgument, "INVALID_ARGUMENT");
    open(&mut c, passport("E12345678", 2)).await;

    let again = c.open_account(passport("e1234 5678", 3)).await;

    let status = assert_refused(again, Code::FailedPrecondition, "LIMIT_EXCEEDED");
    assert_eq!(metadata_of(&status)["limit_rule"], "CLASS_III_PER_PERSON");
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_its_journal_files_and_the_secret_key_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let keys = tempfile::tempdir().expect("tempdir");
    let key_file = keys.path().join("keys/secret.key");
    let key = key_file.clone();
    let app = spawn_app_with(Backend::Sqlite, move |config| {
        config.secrets.key_file = key;
    })
    .await;
    let mut c = app.accounts("core-banking").await;
    // A write, so that the write-ahead log certainly exists.
    open(
        &mut c,
        open_personal(AccountKind::ClassIi, "cust", PERSON, &card_number(1)),
    )
    .await;

    let database = std::path::PathBuf::from(
        app.config
            .database
            .url
            .strip_prefix("sqlite://")
            .expect("a sqlite:// url"),
    );
    let sidecar = |suffix: &str| {
        let mut path = database.clone().into_os_string();
        path.push(suffix);
        std::path::PathBuf::from(path)
    };
    assert_eq!(
        mode(database.parent().expect("folder")),
        0o700,
        "database folder"
    );
    assert_eq!(mode(&database), 0o600, "database");
    assert_eq!(mode(&sidecar("-wal")), 0o600, "write-ahead log");
    assert_eq!(mode(&sidecar("-shm")), 0o600, "shared-memory index");
    assert_eq!(
        mode(key_file.parent().expect("folder")),
        0o700,
        "key folder"
    );
    assert_eq!(mode(&key_file), 0o600, "secret key");
}
