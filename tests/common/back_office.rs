//! What the bank's back office does to the database behind the gateway's back, for the tests
//! that need state no RPC makes (an account whose bound card was removed).

use sqlx::{AnyConnection, Connection, Row};

use super::app::TestApp;

/// The bound-card columns of an account's profile.
pub type CardColumns = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub async fn db(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.config.database.url)
        .await
        .expect("database")
}

/// The account's bound card as its profile row holds it (the back office's view).
pub async fn card_of(app: &TestApp, account: &str) -> CardColumns {
    let mut c = db(app).await;
    let row = sqlx::query(
        "SELECT card_token, card_first_six, card_last_four, agreement_id \
         FROM account_profiles WHERE account_id = $1",
    )
    .bind(account.parse::<i64>().unwrap())
    .fetch_one(&mut c)
    .await
    .expect("profile row");
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// Binds (or unbinds) a card on the account's profile row, as the bank's back office would:
/// the contract has no RPC that changes a bound card. Like any write to the database besides a
/// gateway's batch, it moves the chain head's batch count after the row (how every gateway
/// process learns that its read cache is behind; `docs/ARCHITECTURE.md` § Read cache).
pub async fn set_card(app: &TestApp, account: &str, card: CardColumns) {
    let mut c = db(app).await;
    sqlx::query(
        "UPDATE account_profiles SET card_token = $1, card_first_six = $2, card_last_four = $3, \
         agreement_id = $4 WHERE account_id = $5",
    )
    .bind(card.0)
    .bind(card.1)
    .bind(card.2)
    .bind(card.3)
    .bind(account.parse::<i64>().unwrap())
    .execute(&mut c)
    .await
    .expect("card columns written");
    sqlx::query("UPDATE ledger_head SET batches_committed = batches_committed + 1")
        .execute(&mut c)
        .await
        .expect("head moved");
}
