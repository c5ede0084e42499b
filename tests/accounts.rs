//! AccountService, black-box over mutual TLS: every RPC does what the contract says.
//! Refusals are in `accounts_refusals.rs`, class limits in `accounts_limits.rs`, idempotency,
//! scope and the ledger check in `accounts_access.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Accounts, Backend, balance, book, card_number, cny, open, open_class_ii, open_class_iii,
    open_merchant, open_personal, open_plain, request_id, spawn_app, spawn_app_with, top_up,
    transfer_req,
};
use paygate::grpc::pb::{
    AccountEventType, AccountKind, AccountStatus, CaptureHoldRequest, ClearingNetwork,
    CloseAccountRequest, EntryDirection, EntryType, FreezeAccountRequest, FreezeMode,
    GetAccountRequest, HoldKind, HoldStatus, ListAccountsRequest, ListEntriesRequest,
    PlaceHoldRequest, ProcessingStatus, ReleaseHoldRequest, TopUpRequest, UnfreezeAccountRequest,
    WatchAccountRequest, WatchAccountResponse, WithdrawRequest, list_accounts_request::Filter,
};

async fn get(client: &mut Accounts, id: &str) -> paygate::grpc::pb::Account {
    client
        .get_account(GetAccountRequest {
            account_id: id.to_owned(),
        })
        .await
        .expect("get account")
        .into_inner()
        .account
        .expect("account")
}

fn amount(m: &Option<paygate::grpc::pb::Money>) -> &str {
    m.as_ref().map_or("<none>", |m| m.amount.as_str())
}

// ----- opening and reading ------------------------------------------------------------------

both_backends!(each_openable_kind_opens_active_with_its_own_shape);
async fn each_openable_kind_opens_active_with_its_own_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;

    let ii = c
        .open_account(open_personal(
            AccountKind::ClassIi,
            "cust-1",
            "110101199001010007",
            &card_number(1),
        ))
        .await
        .expect("class II opens")
        .into_inner()
        .account
        .expect("account");
    let iii = c
        .open_account(open_personal(
            AccountKind::ClassIii,
            "cust-1",
            "110101199001010007",
            &card_number(2),
        ))
        .await
        .expect("class III opens")
        .into_inner()
        .account
        .expect("account");
    let merchant = c
        .open_account(open_plain(AccountKind::MerchantSettlement, "m-1", ""))
        .await
        .expect("merchant opens")
        .into_inner()
        .account
        .expect("account");
    let master = c
        .open_account(open_plain(AccountKind::PlatformMaster, "platform-1", ""))
        .await
        .expect("master opens")
        .into_inner()
        .account
        .expect("account");
    let sub = c
        .open_account(open_plain(
            AccountKind::PlatformSub,
            "platform-1",
            &master.account_id,
        ))
        .await
        .expect("sub opens under the master")
        .into_inner()
        .account
        .expect("account");

    for (account, kind) in [
        (&ii, AccountKind::ClassIi),
        (&iii, AccountKind::ClassIii),
        (&merchant, AccountKind::MerchantSettlement),
        (&master, AccountKind::PlatformMaster),
        (&sub, AccountKind::PlatformSub),
    ] {
        assert_eq!(account.kind, kind as i32, "{account:?}");
        assert_eq!(account.status, AccountStatus::Active as i32, "{account:?}");
        assert_eq!(account.currency, "CNY");
        assert_eq!(account.freeze_mode, FreezeMode::Unspecified as i32);
        assert!(account.open_time.is_some() && account.close_time.is_none());
        assert!(!account.account_id.is_empty());
    }
    assert!(ii.bound_card.is_some() && iii.bound_card.is_some());
    assert!(merchant.bound_card.is_none() && master.bound_card.is_none());
    assert_eq!(sub.parent_account_id, master.account_id);
    assert_eq!(ii.owner_id, "cust-1");
    assert_eq!(merchant.display_name, "m-1 account");
}

both_backends!(a_bound_card_is_shown_masked_and_its_full_number_appears_in_no_response);
async fn a_bound_card_is_shown_masked_and_its_full_number_appears_in_no_response(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let number = card_number(424_242);

    let opened = c
        .open_account(open_personal(
            AccountKind::ClassIi,
            "cust-card",
            "110101199001011237",
            &number,
        ))
        .await
        .expect("opens")
        .into_inner();
    let id = opened.account.as_ref().expect("account").account_id.clone();
    let got = c
        .get_account(GetAccountRequest {
            account_id: id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    let listed = c
        .list_accounts(ListAccountsRequest {
            filter: Some(Filter::OwnerId("cust-card".into())),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    top_up(&mut c, &id, "10.00").await;
    let withdrawn = c
        .withdraw(WithdrawRequest {
            request_id: request_id("w"),
            account_id: id.clone(),
            amount: Some(cny("1.00")),
            memo: String::new(),
        })
        .await
        .expect("withdraw")
        .into_inner();
    let entries = c
        .list_entries(ListEntriesRequest {
            account_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner();
    // A refusal that concerns this very card: the same person's sixth Class II account.
    let mut refusals = Vec::new();
    for _ in 0..5 {
        if let Err(status) = c
            .open_account(open_personal(
                AccountKind::ClassIi,
                "cust-card",
                "110101199001011237",
                &number,
            ))
            .await
        {
            refusals.push(format!("{status:?}"));
        }
    }
    let mut bad = number.clone();
    bad.pop();
    bad.push(if number.ends_with('0') { '1' } else { '0' });
    let bad_luhn = c
        .open_account(open_personal(
            AccountKind::ClassIi,
            "cust-card",
            "110101199001019992",
            &bad,
        ))
        .await
        .expect_err("a number failing its check digit is refused");
    assert_eq!(bad_luhn.code(), tonic::Code::InvalidArgument);

    let card = got
        .account
        .as_ref()
        .and_then(|a| a.bound_card.clone())
        .expect("bound card");
    assert_eq!(card.first_six, &number[..6]);
    assert_eq!(card.last_four, &number[number.len() - 4..]);
    assert_eq!(
        card.masked_number,
        format!("{}******{}", &number[..6], &number[number.len() - 4..])
    );
    assert_eq!(refusals.len(), 1, "the sixth Class II is refused");
    let everything = format!(
        "{opened:?}{got:?}{listed:?}{withdrawn:?}{entries:?}{refusals:?}{bad_luhn:?}{}",
        String::from_utf8_lossy(bad_luhn.details())
    );
    assert!(!everything.contains(&number), "{everything}");
    assert!(!everything.contains(&bad), "{everything}");
    let middle = &number[6..number.len() - 4];
    assert!(!everything.contains(middle), "no run of the hidden digits");
}

both_backends!(accounts_list_by_owner_and_by_parent_page_by_page_in_id_order);
async fn accounts_list_by_owner_and_by_parent_page_by_page_in_id_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let master = open(
        &mut c,
        open_plain(AccountKind::PlatformMaster, "platform-p", ""),
    )
    .await;
    let mut subs = Vec::new();
    for _ in 0..5 {
        subs.push(
            open(
                &mut c,
                open_plain(AccountKind::PlatformSub, "platform-p", &master),
            )
            .await,
        );
    }
    let other_master = open(
        &mut c,
        open_plain(AccountKind::PlatformMaster, "platform-q", ""),
    )
    .await;
    open(
        &mut c,
        open_plain(AccountKind::PlatformSub, "platform-q", &other_master),
    )
    .await;

    let mut by_parent = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_accounts(ListAccountsRequest {
                filter: Some(Filter::ParentAccountId(master.clone())),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.accounts.len() <= 2);
        by_parent.extend(page.accounts.into_iter().map(|a| a.account_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let by_owner: Vec<(String, i32)> = c
        .list_accounts(ListAccountsRequest {
            filter: Some(Filter::OwnerId("platform-p".into())),
            ..Default::default()
        })
        .await
        .expect("list by owner")
        .into_inner()
        .accounts
        .into_iter()
        .map(|a| (a.account_id, a.kind))
        .collect();
    let masters_only: Vec<String> = c
        .list_accounts(ListAccountsRequest {
            filter: Some(Filter::OwnerId("platform-p".into())),
            kind: AccountKind::PlatformMaster as i32,
            ..Default::default()
        })
        .await
        .expect("list by owner and kind")
        .into_inner()
        .accounts
        .into_iter()
        .map(|a| a.account_id)
        .collect();

    assert_eq!(by_parent, subs, "every sub-account once, in id order");
    assert!((3..=4).contains(&pages), "5 accounts at 2 a page: {pages}");
    assert_eq!(by_owner.len(), 6, "the master and its 5 subs: {by_owner:?}");
    assert_eq!(
        by_owner[0],
        (master.clone(), AccountKind::PlatformMaster as i32)
    );
    assert_eq!(masters_only, [master]);
}

both_backends!(a_closed_account_is_listed_only_when_closed_ones_are_asked_for);
async fn a_closed_account_is_listed_only_when_closed_ones_are_asked_for(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let keep = open_merchant(&mut c, "m-closing").await;
    let gone = open_merchant(&mut c, "m-closing").await;

    let closed = c
        .close_account(CloseAccountRequest {
            request_id: request_id("close"),
            account_id: gone.clone(),
            reason: "merchant left".into(),
        })
        .await
        .expect("an empty account closes")
        .into_inner()
        .account
        .expect("account");
    let list = |include_closed| ListAccountsRequest {
        filter: Some(Filter::OwnerId("m-closing".into())),
        include_closed,
        ..Default::default()
    };
    let open_only: Vec<String> = c
        .list_accounts(list(false))
        .await
        .expect("list")
        .into_inner()
        .accounts
        .into_iter()
        .map(|a| a.account_id)
        .collect();
    let all: Vec<String> = c
        .list_accounts(list(true))
        .await
        .expect("list")
        .into_inner()
        .accounts
        .into_iter()
        .map(|a| a.account_id)
        .collect();

    assert_eq!(closed.status, AccountStatus::Closed as i32);
    assert!(closed.close_time.is_some());
    assert_eq!(
        get(&mut c, &gone).await.status,
        AccountStatus::Closed as i32
    );
    assert_eq!(open_only, std::slice::from_ref(&keep));
    assert_eq!(all, [keep, gone]);
}

// ----- balances and moving money -------------------------------------------------------------

both_backends!(a_balance_shows_book_held_pending_available_and_the_class_limit_usage);
async fn a_balance_shows_book_held_pending_available_and_the_class_limit_usage(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m-bal").await;
    top_up(&mut c, &a, "500.00").await;
    c.transfer(transfer_req(&a, &m, "120.50"))
        .await
        .expect("transfer");
    c.place_hold(PlaceHoldRequest {
        request_id: request_id("hold"),
        account_id: a.clone(),
        amount: Some(cny("30.00")),
        kind: HoldKind::PreAuthorization as i32,
        reason: "hotel".into(),
        ..Default::default()
    })
    .await
    .expect("hold");

    let b = balance(&mut c, &a).await;

    assert_eq!(b.account_id, a);
    assert_eq!(amount(&b.book), "379.50");
    assert_eq!(amount(&b.held), "30.00");
    assert_eq!(amount(&b.pending_in), "0.00");
    assert_eq!(amount(&b.pending_out), "0.00");
    assert_eq!(amount(&b.available), "349.50");
    assert_eq!(b.business_date.len(), 10, "YYYY-MM-DD: {}", b.business_date);
    let usage: Vec<(String, i32, &str, &str, &str)> = b
        .limits
        .iter()
        .map(|l| {
            (
                l.limit_rule.clone(),
                l.window,
                amount(&l.limit),
                amount(&l.used),
                amount(&l.remaining),
            )
        })
        .collect();
    use paygate::grpc::pb::LimitWindow::{Day, Year};
    let (day, year) = (Day as i32, Year as i32);
    assert!(
        usage.contains(&(
            "CLASS_II_NON_BOUND_OUTFLOW".into(),
            day,
            "10000.00",
            "120.50",
            "9879.50"
        )),
        "{usage:?}"
    );
    assert!(
        usage.contains(&(
            "CLASS_II_NON_BOUND_OUTFLOW".into(),
            year,
            "200000.00",
            "120.50",
            "199879.50"
        )),
        "{usage:?}"
    );
    assert!(
        usage.contains(&(
            "CLASS_II_NON_BOUND_INFLOW".into(),
            day,
            "10000.00",
            "0.00",
            "10000.00"
        )),
        "the top-up came from the bound card and counts against nothing: {usage:?}"
    );
}

both_backends!(a_transfer_moves_money_in_one_posting_and_answers_the_senders_balance);
async fn a_transfer_moves_money_in_one_posting_and_answers_the_senders_balance(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, "100.00").await;

    let mut req = transfer_req(&a, &b, "40.25");
    req.memo = "dinner".into();
    let r = c.transfer(req).await.expect("transfer").into_inner();

    assert!(!r.transaction_id.is_empty());
    assert!(r.post_time.is_some());
    let from = r.from_balance.expect("from balance");
    assert_eq!(from.account_id, a);
    assert_eq!(amount(&from.book), "59.75");
    assert_eq!(book(&mut c, &a).await, "59.75");
    assert_eq!(book(&mut c, &b).await, "40.25");
    for (account, direction) in [(&a, EntryDirection::Debit), (&b, EntryDirection::Credit)] {
        let entries = c
            .list_entries(ListEntriesRequest {
                account_id: account.clone(),
                ..Default::default()
            })
            .await
            .expect("entries")
            .into_inner()
            .entries;
        let last = entries.last().expect("an entry");
        assert_eq!(last.transaction_id, r.transaction_id);
        assert_eq!(last.direction, direction as i32);
        assert_eq!(last.entry_type, EntryType::Transfer as i32);
        assert_eq!(amount(&last.amount), "40.25");
        assert_eq!(last.memo, "dinner");
        let other = if account == &a { &b } else { &a };
        assert_eq!(&last.counterparty_account_id, other);
    }
}

both_backends!(a_top_up_pulls_from_the_bound_card_and_a_withdrawal_pushes_back_to_it);
async fn a_top_up_pulls_from_the_bound_card_and_a_withdrawal_pushes_back_to_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;

    let up = c
        .top_up(TopUpRequest {
            request_id: request_id("up"),
            account_id: a.clone(),
            amount: Some(cny("250.00")),
            memo: "salary".into(),
        })
        .await
        .expect("top-up")
        .into_inner();
    let down = c
        .withdraw(WithdrawRequest {
            request_id: request_id("down"),
            account_id: a.clone(),
            amount: Some(cny("70.00")),
            memo: "rent".into(),
        })
        .await
        .expect("withdraw")
        .into_inner();

    assert_eq!(up.status, ProcessingStatus::Succeeded as i32);
    assert_eq!(up.network, ClearingNetwork::OnUs as i32);
    assert!(!up.transaction_id.is_empty() && !up.network_reference.is_empty());
    assert_eq!(amount(&up.balance.as_ref().expect("b").book), "250.00");
    assert_eq!(down.status, ProcessingStatus::Succeeded as i32);
    assert_eq!(down.network, ClearingNetwork::OnUs as i32);
    let after = down.balance.expect("balance");
    assert_eq!(amount(&after.book), "180.00");
    assert_eq!(amount(&after.available), "180.00");
    assert_eq!(amount(&after.pending_in), "0.00");
    assert_eq!(amount(&after.pending_out), "0.00");
    let entries = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    let kinds: Vec<(i32, i32, String)> = entries
        .iter()
        .map(|e| (e.entry_type, e.direction, amount(&e.amount).to_owned()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                EntryType::TopUp as i32,
                EntryDirection::Credit as i32,
                "250.00".into()
            ),
            (
                EntryType::Withdrawal as i32,
                EntryDirection::Debit as i32,
                "70.00".into()
            ),
        ]
    );
    let usage = balance(&mut c, &a).await.limits;
    assert!(
        usage.iter().all(|l| amount(&l.used) == "0.00"),
        "bound-card flows count against no limit: {usage:?}"
    );
}

// ----- freezes -------------------------------------------------------------------------------

both_backends!(freezes_combine_by_direction_and_unfreezing_lifts_them_one_direction_at_a_time);
async fn freezes_combine_by_direction_and_unfreezing_lifts_them_one_direction_at_a_time(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let freeze = |mode: FreezeMode, reason: &str| FreezeAccountRequest {
        request_id: request_id("freeze"),
        account_id: a.clone(),
        mode: mode as i32,
        reason: reason.into(),
    };
    let unfreeze = |mode: FreezeMode| UnfreezeAccountRequest {
        request_id: request_id("unfreeze"),
        account_id: a.clone(),
        mode: mode as i32,
        reason: "cleared".into(),
    };

    let no_debit = c
        .freeze_account(freeze(FreezeMode::NoDebit, "suspected fraud"))
        .await
        .expect("freeze")
        .into_inner()
        .account
        .expect("account");
    let both = c
        .freeze_account(freeze(FreezeMode::NoCredit, "court order"))
        .await
        .expect("freeze")
        .into_inner()
        .account
        .expect("account");
    let no_credit = c
        .unfreeze_account(unfreeze(FreezeMode::NoDebit))
        .await
        .expect("unfreeze")
        .into_inner()
        .account
        .expect("account");
    let lifted = c
        .unfreeze_account(unfreeze(FreezeMode::Both))
        .await
        .expect("unfreeze")
        .into_inner()
        .account
        .expect("account");
    let direct_both = c
        .freeze_account(freeze(FreezeMode::Both, "judicial"))
        .await
        .expect("freeze")
        .into_inner()
        .account
        .expect("account");

    assert_eq!(no_debit.freeze_mode, FreezeMode::NoDebit as i32);
    assert_eq!(no_debit.freeze_reason, "suspected fraud");
    assert_eq!(no_debit.status, AccountStatus::Active as i32);
    assert_eq!(both.freeze_mode, FreezeMode::Both as i32);
    assert_eq!(no_credit.freeze_mode, FreezeMode::NoCredit as i32);
    assert_eq!(lifted.freeze_mode, FreezeMode::Unspecified as i32);
    assert_eq!(lifted.freeze_reason, "");
    assert_eq!(direct_both.freeze_mode, FreezeMode::Both as i32);
    assert_eq!(get(&mut c, &a).await.freeze_mode, FreezeMode::Both as i32);
}

// ----- holds ---------------------------------------------------------------------------------

both_backends!(a_hold_reduces_available_until_released);
async fn a_hold_reduces_available_until_released(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "100.00").await;

    let hold = c
        .place_hold(PlaceHoldRequest {
            request_id: request_id("hold"),
            account_id: a.clone(),
            amount: Some(cny("60.00")),
            kind: HoldKind::Judicial as i32,
            reason: "court ruling".into(),
            external_reference: "(2026)京0105执123号".into(),
            expire_time: None,
        })
        .await
        .expect("hold placed")
        .into_inner()
        .hold
        .expect("hold");
    let during = balance(&mut c, &a).await;
    let released = c
        .release_hold(ReleaseHoldRequest {
            request_id: request_id("release"),
            hold_id: hold.hold_id.clone(),
            reason: "ruling lifted".into(),
        })
        .await
        .expect("released")
        .into_inner()
        .hold
        .expect("hold");
    let after = balance(&mut c, &a).await;

    assert_eq!(hold.status, HoldStatus::Active as i32);
    assert_eq!(hold.kind, HoldKind::Judicial as i32);
    assert_eq!(hold.account_id, a);
    assert_eq!(amount(&hold.amount), "60.00");
    assert_eq!(hold.external_reference, "(2026)京0105执123号");
    assert_eq!(amount(&during.held), "60.00");
    assert_eq!(amount(&during.available), "40.00");
    assert_eq!(amount(&during.book), "100.00");
    assert_eq!(released.status, HoldStatus::Released as i32);
    assert_eq!(amount(&after.held), "0.00");
    assert_eq!(amount(&after.available), "100.00");
}

both_backends!(capturing_part_of_a_hold_pays_the_destination_and_releases_the_rest);
async fn capturing_part_of_a_hold_pays_the_destination_and_releases_the_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let hotel = open_merchant(&mut c, "hotel").await;
    top_up(&mut c, &a, "100.00").await;
    let hold = c
        .place_hold(PlaceHoldRequest {
            request_id: request_id("hold"),
            account_id: a.clone(),
            amount: Some(cny("80.00")),
            kind: HoldKind::PreAuthorization as i32,
            reason: "deposit".into(),
            ..Default::default()
        })
        .await
        .expect("hold placed")
        .into_inner()
        .hold
        .expect("hold");

    let captured = c
        .capture_hold(CaptureHoldRequest {
            request_id: request_id("capture"),
            hold_id: hold.hold_id.clone(),
            amount: Some(cny("55.00")),
            to_account_id: hotel.clone(),
            memo: "two nights".into(),
        })
        .await
        .expect("captured")
        .into_inner();

    let h = captured.hold.expect("hold");
    assert_eq!(h.status, HoldStatus::Captured as i32);
    assert_eq!(amount(&h.captured_amount), "55.00");
    assert_eq!(h.capture_transaction_id, captured.transaction_id);
    let b = balance(&mut c, &a).await;
    assert_eq!(amount(&b.book), "45.00");
    assert_eq!(amount(&b.held), "0.00");
    assert_eq!(amount(&b.available), "45.00");
    assert_eq!(book(&mut c, &hotel).await, "55.00");
    let last = c
        .list_entries(ListEntriesRequest {
            account_id: hotel.clone(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries
        .pop()
        .expect("entry");
    assert_eq!(last.entry_type, EntryType::HoldCapture as i32);
    assert_eq!(last.counterparty_account_id, a);
}

both_backends!(a_hold_resolves_at_most_once);
async fn a_hold_resolves_at_most_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let hold_id = c
        .place_hold(PlaceHoldRequest {
            request_id: request_id("hold"),
            account_id: a.clone(),
            amount: Some(cny("10.00")),
            kind: HoldKind::Other as i32,
            reason: "r".into(),
            ..Default::default()
        })
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold")
        .hold_id;
    c.release_hold(ReleaseHoldRequest {
        request_id: request_id("rel"),
        hold_id: hold_id.clone(),
        reason: "r".into(),
    })
    .await
    .expect("released");

    let again = c
        .capture_hold(CaptureHoldRequest {
            request_id: request_id("cap"),
            hold_id,
            amount: None,
            to_account_id: m.clone(),
            memo: String::new(),
        })
        .await;

    common::assert_refused(
        again,
        tonic::Code::FailedPrecondition,
        "HOLD_ALREADY_RESOLVED",
    );
    assert_eq!(book(&mut c, &m).await, "0.00");
}

// ----- the platform master and its sub-accounts ---------------------------------------------

both_backends!(a_platform_masters_balance_is_the_sum_of_its_sub_accounts);
async fn a_platform_masters_balance_is_the_sum_of_its_sub_accounts(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let master = open(&mut c, open_plain(AccountKind::PlatformMaster, "plat", "")).await;
    let s1 = open(
        &mut c,
        open_plain(AccountKind::PlatformSub, "plat", &master),
    )
    .await;
    let s2 = open(
        &mut c,
        open_plain(AccountKind::PlatformSub, "plat", &master),
    )
    .await;
    top_up(&mut c, &a, "100.00").await;

    c.transfer(transfer_req(&a, &s1, "30.00"))
        .await
        .expect("into sub 1");
    c.transfer(transfer_req(&a, &s2, "12.34"))
        .await
        .expect("into sub 2");
    c.transfer(transfer_req(&s1, &s2, "5.00"))
        .await
        .expect("between subs");

    assert_eq!(book(&mut c, &s1).await, "25.00");
    assert_eq!(book(&mut c, &s2).await, "17.34");
    assert_eq!(book(&mut c, &master).await, "42.34");
}

// ----- closing -------------------------------------------------------------------------------

both_backends!(an_emptied_account_closes_and_then_takes_no_more_money);
async fn an_emptied_account_closes_and_then_takes_no_more_money(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, "20.00").await;
    c.withdraw(WithdrawRequest {
        request_id: request_id("w"),
        account_id: a.clone(),
        amount: Some(cny("20.00")),
        memo: String::new(),
    })
    .await
    .expect("emptied");

    let closed = c
        .close_account(CloseAccountRequest {
            request_id: request_id("close"),
            account_id: a.clone(),
            reason: "customer request".into(),
        })
        .await
        .expect("closes at zero")
        .into_inner()
        .account
        .expect("account");
    top_up(&mut c, &b, "5.00").await;
    let into_closed = c.transfer(transfer_req(&b, &a, "1.00")).await;

    assert_eq!(closed.status, AccountStatus::Closed as i32);
    common::assert_refused(
        into_closed,
        tonic::Code::FailedPrecondition,
        "ACCOUNT_CLOSED",
    );
    assert_eq!(book(&mut c, &b).await, "5.00");
}

// ----- statements ----------------------------------------------------------------------------

both_backends!(a_statement_has_a_running_balance_in_stable_order_across_pages);
async fn a_statement_has_a_running_balance_in_stable_order_across_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    for amount in ["1.00", "2.00", "3.00", "4.00", "5.00", "6.00"] {
        c.transfer(transfer_req(&a, &m, amount))
            .await
            .expect("transfer");
    }
    top_up(&mut c, &a, "0.50").await;

    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_entries(ListEntriesRequest {
                account_id: a.clone(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages.push(page.entries);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let whole = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            ..Default::default()
        })
        .await
        .expect("whole")
        .into_inner()
        .entries;
    let paged: Vec<_> = pages.concat();

    assert_eq!(paged, whole, "pages concatenate to the whole statement");
    assert_eq!(whole.len(), 8);
    assert!(pages.iter().all(|p| p.len() <= 3));
    let running: Vec<&str> = whole.iter().map(|e| amount(&e.balance_after)).collect();
    assert_eq!(
        running,
        [
            "100.00", "99.00", "97.00", "94.00", "90.00", "85.00", "79.00", "79.50"
        ]
    );
    assert!(
        whole.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "strictly increasing sequence"
    );
    let ids: std::collections::BTreeSet<&str> = whole.iter().map(|e| e.entry_id.as_str()).collect();
    assert_eq!(ids.len(), whole.len(), "entry ids are unique");
    assert!(whole.iter().all(|e| e.business_date.len() == 10));
}

both_backends!(a_statement_lists_only_entries_posted_in_its_time_range);
async fn a_statement_lists_only_entries_posted_in_its_time_range(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    for _ in 0..4 {
        // Spread the postings over distinct milliseconds.
        app.clock.advance_ms(5);
        c.transfer(transfer_req(&a, &m, "1.00"))
            .await
            .expect("transfer");
    }
    let whole = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            ..Default::default()
        })
        .await
        .expect("whole")
        .into_inner()
        .entries;
    let ms = |t: &Option<prost_types::Timestamp>| {
        let t = t.as_ref().expect("post time");
        t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
    };
    let start = whole[1].post_time;
    let end = whole[3].post_time;

    let ranged = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            start_time: start,
            end_time: end,
            ..Default::default()
        })
        .await
        .expect("ranged")
        .into_inner()
        .entries;

    let expected: Vec<_> = whole
        .iter()
        .filter(|e| ms(&e.post_time) >= ms(&start) && ms(&e.post_time) < ms(&end))
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert!(expected.len() < whole.len());
    assert_eq!(ranged, expected, "start inclusive, end exclusive");
}

// ----- the live stream -----------------------------------------------------------------------

async fn next_event(stream: &mut tonic::Streaming<WatchAccountResponse>) -> WatchAccountResponse {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event within 5 s")
        .expect("stream healthy")
        .expect("stream open")
}

both_backends!(a_watch_starts_with_a_snapshot_then_streams_each_posted_entry);
async fn a_watch_starts_with_a_snapshot_then_streams_each_posted_entry(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.watch_poll_interval_ms = 10
    })
    .await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;

    let mut stream = c
        .watch_account(WatchAccountRequest {
            account_id: a.clone(),
            cursor: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let snapshot = next_event(&mut stream).await;
    c.transfer(transfer_req(&a, &m, "10.00"))
        .await
        .expect("transfer");
    let posted = next_event(&mut stream).await;

    assert_eq!(snapshot.event_type, AccountEventType::Snapshot as i32);
    assert_eq!(snapshot.account_id, a);
    assert_eq!(
        amount(&snapshot.balance.as_ref().expect("balance").book),
        "100.00"
    );
    assert!(snapshot.entry.is_none());
    assert_eq!(posted.event_type, AccountEventType::EntryPosted as i32);
    let entry = posted.entry.as_ref().expect("entry");
    assert_eq!(entry.direction, EntryDirection::Debit as i32);
    assert_eq!(amount(&entry.balance_after), "90.00");
    assert_eq!(
        amount(&posted.balance.as_ref().expect("balance").book),
        "90.00"
    );
    assert_ne!(posted.event_id, snapshot.event_id);
    assert!(!posted.cursor.is_empty());
}

both_backends!(a_watch_resumed_from_the_last_cursor_delivers_every_later_entry_exactly_once);
async fn a_watch_resumed_from_the_last_cursor_delivers_every_later_entry_exactly_once(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.watch_poll_interval_ms = 10
    })
    .await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let watch = |cursor: String| WatchAccountRequest {
        account_id: a.clone(),
        cursor,
    };

    let mut first = c
        .watch_account(watch(String::new()))
        .await
        .expect("watch")
        .into_inner();
    let mut cursor = next_event(&mut first).await.cursor;
    let mut seen = Vec::new();
    for amount in ["1.00", "2.00"] {
        c.transfer(transfer_req(&a, &m, amount))
            .await
            .expect("transfer");
        let e = next_event(&mut first).await;
        assert_eq!(e.event_type, AccountEventType::EntryPosted as i32);
        cursor = e.cursor.clone();
        seen.push(e.entry.expect("entry").entry_id);
    }
    drop(first);
    // While disconnected …
    for amount in ["3.00", "4.00", "5.00"] {
        c.transfer(transfer_req(&a, &m, amount))
            .await
            .expect("transfer");
    }
    let mut second = c
        .watch_account(watch(cursor))
        .await
        .expect("resume")
        .into_inner();
    let mut resumed = Vec::new();
    for _ in 0..3 {
        resumed.push(next_event(&mut second).await);
    }
    // … and after reconnecting.
    c.transfer(transfer_req(&a, &m, "6.00"))
        .await
        .expect("transfer");
    resumed.push(next_event(&mut second).await);
    let quiet = tokio::time::timeout(Duration::from_millis(150), second.message()).await;

    assert!(
        resumed
            .iter()
            .all(|e| e.event_type == AccountEventType::EntryPosted as i32),
        "{resumed:?}"
    );
    seen.extend(
        resumed
            .iter()
            .map(|e| e.entry.as_ref().expect("entry").entry_id.clone()),
    );
    let statement: Vec<String> = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries
        .into_iter()
        .skip(1) // the top-up, posted before the first watch
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(seen, statement, "every later entry exactly once, in order");
    let amounts: Vec<&str> = resumed
        .iter()
        .map(|e| amount(&e.entry.as_ref().expect("entry").amount))
        .collect();
    assert_eq!(amounts, ["3.00", "4.00", "5.00", "6.00"]);
    assert!(quiet.is_err(), "nothing more: {quiet:?}");
}

both_backends!(each_watch_event_carries_the_balance_right_after_it);
async fn each_watch_event_carries_the_balance_right_after_it(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.watch_poll_interval_ms = 10
    })
    .await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let first = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    let cursor = {
        let mut s = c
            .watch_account(WatchAccountRequest {
                account_id: a.clone(),
                cursor: String::new(),
            })
            .await
            .expect("watch")
            .into_inner();
        next_event(&mut s).await.cursor
    };
    assert_eq!(first.len(), 1);
    // Several entries land before the resumed stream polls: they arrive in one batch.
    for amount in ["1.00", "2.00", "3.00"] {
        c.transfer(transfer_req(&a, &m, amount))
            .await
            .expect("transfer");
    }

    let mut s = c
        .watch_account(WatchAccountRequest {
            account_id: a.clone(),
            cursor,
        })
        .await
        .expect("resume")
        .into_inner();
    let mut pairs = Vec::new();
    for _ in 0..3 {
        let e = next_event(&mut s).await;
        pairs.push((
            amount(&e.entry.as_ref().expect("entry").balance_after).to_owned(),
            amount(&e.balance.as_ref().expect("balance").book).to_owned(),
        ));
    }

    for (after, book) in &pairs {
        assert_eq!(
            after, book,
            "event balance = balance right after: {pairs:?}"
        );
    }
}

both_backends!(balance_changes_without_an_entry_stream_as_snapshots_each_with_its_own_id);
async fn balance_changes_without_an_entry_stream_as_snapshots_each_with_its_own_id(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.watch_poll_interval_ms = 10
    })
    .await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "100.00").await;
    let mut stream = c
        .watch_account(WatchAccountRequest {
            account_id: a.clone(),
            cursor: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let before = next_event(&mut stream).await;

    let hold = c
        .place_hold(PlaceHoldRequest {
            request_id: request_id("hold"),
            account_id: a.clone(),
            amount: Some(cny("10.00")),
            kind: HoldKind::PreAuthorization as i32,
            reason: "r".into(),
            ..Default::default()
        })
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    let held = next_event(&mut stream).await;
    // The gateway's clock is manual here: let time pass between the changes, as it would.
    app.clock.advance_ms(1);
    c.release_hold(ReleaseHoldRequest {
        request_id: request_id("release"),
        hold_id: hold.hold_id,
        reason: "r".into(),
    })
    .await
    .expect("released");
    let released = next_event(&mut stream).await;

    let shown: Vec<(i32, &str)> = [&before, &held, &released]
        .iter()
        .map(|e| {
            (
                e.event_type,
                amount(&e.balance.as_ref().expect("balance").held),
            )
        })
        .collect();
    let snapshot = AccountEventType::Snapshot as i32;
    assert_eq!(
        shown,
        [(snapshot, "0.00"), (snapshot, "10.00"), (snapshot, "0.00")]
    );
    let ids: std::collections::BTreeSet<&str> = [&before, &held, &released]
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "de-duplicating on event_id must not drop the release"
    );
}

both_backends!(a_class_iii_balance_shows_the_room_left_under_its_cap);
async fn a_class_iii_balance_shows_the_room_left_under_its_cap(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_iii(&mut c, 1).await;
    top_up(&mut c, &a, "1234.56").await;

    let limits = balance(&mut c, &a).await.limits;

    let cap = limits
        .iter()
        .find(|l| l.limit_rule == "CLASS_III_BALANCE_CAP")
        .unwrap_or_else(|| panic!("the cap is reported: {limits:?}"));
    assert_eq!(cap.window, paygate::grpc::pb::LimitWindow::Balance as i32);
    assert_eq!(amount(&cap.limit), "2000.00");
    assert_eq!(amount(&cap.used), "1234.56");
    assert_eq!(amount(&cap.remaining), "765.44");
    assert!(
        limits
            .iter()
            .any(|l| l.limit_rule == "CLASS_III_OUTFLOW" && amount(&l.limit) == "2000.00"),
        "{limits:?}"
    );
}

both_backends!(multi_thread: concurrent_freezes_in_opposite_directions_combine_into_both);
async fn concurrent_freezes_in_opposite_directions_combine_into_both(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let mut modes = Vec::new();
    for n in 0..10 {
        let a = open_merchant(&mut c, &format!("m-{n}")).await;
        let freeze = |mode: FreezeMode| FreezeAccountRequest {
            request_id: request_id("freeze"),
            account_id: a.clone(),
            mode: mode as i32,
            reason: "r".into(),
        };
        let (mut c1, mut c2) = (c.clone(), c.clone());
        let (d, k) = tokio::join!(
            c1.freeze_account(freeze(FreezeMode::NoDebit)),
            c2.freeze_account(freeze(FreezeMode::NoCredit))
        );
        d.expect("no-debit freeze");
        k.expect("no-credit freeze");
        modes.push(get(&mut c, &a).await.freeze_mode);
    }

    assert!(
        modes.iter().all(|m| *m == FreezeMode::Both as i32),
        "no freeze direction may be lost: {modes:?}"
    );
}
