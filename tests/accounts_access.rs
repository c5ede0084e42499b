//! AccountService, black-box over mutual TLS: idempotency keys, the callers' account scope and
//! method grants, and a ledger that verifies clean after a mixed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, assert_refused, balance, book, card_number, cny, open, open_class_ii, open_merchant,
    open_personal, open_plain, request_id, spawn_app, top_up, transfer_req,
};
use paygate::grpc::pb::{
    AccountKind, CaptureHoldRequest, CloseAccountRequest, FreezeAccountRequest, FreezeMode,
    GetAccountRequest, GetBalanceRequest, HoldKind, ListAccountsRequest, ListEntriesRequest,
    PlaceHoldRequest, ReleaseHoldRequest, TopUpRequest, WatchAccountRequest, WithdrawRequest,
    list_accounts_request::Filter,
};
use tonic::Code;

// ----- idempotency ---------------------------------------------------------------------------

both_backends!(the_same_request_id_with_a_different_body_is_refused_as_a_reused_key);
async fn the_same_request_id_with_a_different_body_is_refused_as_a_reused_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let first = transfer_req(&a, &m, "10.00");
    c.transfer(first.clone()).await.expect("first");
    let mut changed = first.clone();
    changed.amount = Some(cny("11.00"));
    let mut open_again = open_plain(AccountKind::MerchantSettlement, "m2", "");
    open_again.request_id = first.request_id.clone();

    let reused = c.transfer(changed).await;
    let reused_for_another_method = c.open_account(open_again).await;

    let status = assert_refused(reused, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(common::metadata_of(&status)["request_id"], first.request_id);
    assert_refused(
        reused_for_another_method,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(book(&mut c, &a).await, "90.00");
    assert_eq!(book(&mut c, &m).await, "10.00");
}

both_backends!(a_repeated_transfer_answers_the_first_answer_and_moves_money_once);
async fn a_repeated_transfer_answers_the_first_answer_and_moves_money_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let req = transfer_req(&a, &m, "25.00");

    let first = c.transfer(req.clone()).await.expect("first").into_inner();
    let again = c.transfer(req.clone()).await.expect("again").into_inner();

    assert_eq!(again.transaction_id, first.transaction_id);
    assert_eq!(again.post_time, first.post_time);
    assert_eq!(book(&mut c, &a).await, "75.00");
    assert_eq!(book(&mut c, &m).await, "25.00");
    let entries = c
        .list_entries(ListEntriesRequest {
            account_id: m.clone(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 1);
    let usage = balance(&mut c, &a).await.limits;
    assert!(
        usage
            .iter()
            .filter(|l| l.limit_rule == "CLASS_II_NON_BOUND_OUTFLOW")
            .all(|l| l.used.as_ref().is_some_and(|u| u.amount == "25.00")),
        "the limit is used once: {usage:?}"
    );
}

both_backends!(concurrent_identical_transfers_execute_once);
async fn concurrent_identical_transfers_execute_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let req = transfer_req(&a, &m, "7.00");

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let mut client = c.clone();
            let req = req.clone();
            tokio::spawn(async move { client.transfer(req).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        ids.insert(
            task.await
                .expect("task")
                .expect("every copy answers")
                .into_inner()
                .transaction_id,
        );
    }

    assert_eq!(ids.len(), 1, "one transaction: {ids:?}");
    assert_eq!(book(&mut c, &a).await, "93.00");
    assert_eq!(book(&mut c, &m).await, "7.00");
}

both_backends!(a_repeated_top_up_and_withdrawal_move_money_once);
async fn a_repeated_top_up_and_withdrawal_move_money_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let up = TopUpRequest {
        request_id: request_id("up"),
        account_id: a.clone(),
        amount: Some(cny("60.00")),
        memo: String::new(),
    };
    let down = WithdrawRequest {
        request_id: request_id("down"),
        account_id: a.clone(),
        amount: Some(cny("15.00")),
        memo: String::new(),
    };

    let up_1 = c.top_up(up.clone()).await.expect("top-up").into_inner();
    let up_2 = c.top_up(up).await.expect("top-up again").into_inner();
    let down_1 = c
        .withdraw(down.clone())
        .await
        .expect("withdraw")
        .into_inner();
    let down_2 = c.withdraw(down).await.expect("withdraw again").into_inner();

    assert_eq!(up_2.transaction_id, up_1.transaction_id);
    assert_eq!(up_2.status, up_1.status);
    assert_eq!(up_2.network_reference, up_1.network_reference);
    assert_eq!(down_2.transaction_id, down_1.transaction_id);
    assert_eq!(book(&mut c, &a).await, "45.00");
    let entries = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 2, "{entries:?}");
}

both_backends!(a_repeated_open_opens_one_account_and_counts_once_per_person);
async fn a_repeated_open_opens_one_account_and_counts_once_per_person(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let person = "110101199001015553";
    let req = open_personal(AccountKind::ClassIi, "cust", person, &card_number(1));

    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..6 {
        ids.insert(open(&mut c, req.clone()).await);
    }
    // The person still has room for four more.
    for n in 0..4 {
        open(
            &mut c,
            open_personal(AccountKind::ClassIi, "cust", person, &card_number(10 + n)),
        )
        .await;
    }
    let listed = c
        .list_accounts(ListAccountsRequest {
            filter: Some(Filter::OwnerId("cust".into())),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .accounts;

    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(listed.len(), 5);
}

both_backends!(a_repeated_hold_places_one_hold_and_a_repeated_capture_captures_once);
async fn a_repeated_hold_places_one_hold_and_a_repeated_capture_captures_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let place = PlaceHoldRequest {
        request_id: request_id("hold"),
        account_id: a.clone(),
        amount: Some(cny("30.00")),
        kind: HoldKind::PreAuthorization as i32,
        reason: "deposit".into(),
        ..Default::default()
    };

    let h1 = c
        .place_hold(place.clone())
        .await
        .expect("hold")
        .into_inner();
    let h2 = c.place_hold(place).await.expect("again").into_inner();
    let hold_id = h1.hold.as_ref().expect("hold").hold_id.clone();
    let capture = CaptureHoldRequest {
        request_id: request_id("cap"),
        hold_id: hold_id.clone(),
        amount: Some(cny("20.00")),
        to_account_id: m.clone(),
        memo: String::new(),
    };
    let c1 = c
        .capture_hold(capture.clone())
        .await
        .expect("capture")
        .into_inner();
    let c2 = c
        .capture_hold(capture)
        .await
        .expect("capture again")
        .into_inner();

    assert_eq!(
        h1.hold.expect("hold").hold_id,
        h2.hold.expect("hold").hold_id
    );
    assert_eq!(c1.transaction_id, c2.transaction_id);
    assert_eq!(book(&mut c, &a).await, "80.00");
    assert_eq!(book(&mut c, &m).await, "20.00");
    assert_eq!(balance(&mut c, &a).await.held.expect("held").amount, "0.00");
}

both_backends!(request_ids_are_scoped_to_the_caller);
async fn request_ids_are_scoped_to_the_caller(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut core = app.accounts("core-banking").await;
    let mut load = app.accounts("loadtest").await;
    let a = open_class_ii(&mut core, 1).await;
    let m = open_merchant(&mut core, "m").await;
    top_up(&mut core, &a, "100.00").await;
    let mut req = transfer_req(&a, &m, "10.00");
    req.request_id = "shared-key".into();

    let by_core = core.transfer(req.clone()).await.expect("core").into_inner();
    let by_load = load.transfer(req).await.expect("loadtest").into_inner();

    assert_ne!(by_core.transaction_id, by_load.transaction_id);
    assert_eq!(book(&mut core, &m).await, "20.00");
}

// ----- scope and grants ----------------------------------------------------------------------

both_backends!(a_mobile_back_end_may_touch_only_the_accounts_it_opened);
async fn a_mobile_back_end_may_touch_only_the_accounts_it_opened(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut mobile = app.accounts("mobile-backend").await;
    let mut core = app.accounts("core-banking").await;
    let own = open_class_ii(&mut mobile, 1).await;
    let own_other = open_class_ii(&mut mobile, 2).await;
    let foreign = open_class_ii(&mut core, 3).await;
    let foreign_master = open(&mut core, open_plain(AccountKind::PlatformMaster, "p", "")).await;
    top_up(&mut core, &foreign, "100.00").await;

    // Its own accounts: read and move.
    top_up(&mut mobile, &own, "50.00").await;
    mobile
        .transfer(transfer_req(&own, &own_other, "5.00"))
        .await
        .expect("between its own accounts");
    assert_eq!(book(&mut mobile, &own).await, "45.00");

    // Anyone else's: refused, whatever the method.
    let denied = vec![
        format!(
            "{:?}",
            mobile
                .get_account(GetAccountRequest {
                    account_id: foreign.clone()
                })
                .await
        ),
        format!(
            "{:?}",
            mobile
                .get_balance(GetBalanceRequest {
                    account_id: foreign.clone()
                })
                .await
        ),
        format!(
            "{:?}",
            mobile.transfer(transfer_req(&foreign, &own, "1.00")).await
        ),
        format!(
            "{:?}",
            mobile
                .top_up(TopUpRequest {
                    request_id: request_id("up"),
                    account_id: foreign.clone(),
                    amount: Some(cny("1.00")),
                    memo: String::new(),
                })
                .await
        ),
        format!(
            "{:?}",
            mobile
                .withdraw(WithdrawRequest {
                    request_id: request_id("w"),
                    account_id: foreign.clone(),
                    amount: Some(cny("1.00")),
                    memo: String::new(),
                })
                .await
        ),
        format!(
            "{:?}",
            mobile
                .list_entries(ListEntriesRequest {
                    account_id: foreign.clone(),
                    ..Default::default()
                })
                .await
        ),
        format!(
            "{:?}",
            mobile
                .watch_account(WatchAccountRequest {
                    account_id: foreign.clone(),
                    cursor: String::new(),
                })
                .await
                .map(|_| "a stream")
        ),
        format!(
            "{:?}",
            mobile
                .close_account(CloseAccountRequest {
                    request_id: request_id("close"),
                    account_id: foreign.clone(),
                    reason: "x".into(),
                })
                .await
        ),
        format!(
            "{:?}",
            mobile
                .list_accounts(ListAccountsRequest {
                    filter: Some(Filter::ParentAccountId(foreign_master.clone())),
                    ..Default::default()
                })
                .await
        ),
        format!(
            "{:?}",
            mobile
                .open_account(open_plain(AccountKind::PlatformSub, "p", &foreign_master))
                .await
        ),
    ];
    let by_owner = mobile
        .list_accounts(ListAccountsRequest {
            filter: Some(Filter::OwnerId("customer-3".into())),
            ..Default::default()
        })
        .await
        .expect("listing by owner answers")
        .into_inner()
        .accounts;

    for answer in &denied {
        assert!(
            answer.contains("PermissionDenied") && answer.contains("ACCOUNT_NOT_IN_SCOPE"),
            "{answer}"
        );
    }
    assert!(
        by_owner.is_empty(),
        "another caller's customer: {by_owner:?}"
    );
    assert_eq!(book(&mut core, &foreign).await, "100.00");
}

both_backends!(a_scope_refusal_carries_its_reason_in_the_error_info);
async fn a_scope_refusal_carries_its_reason_in_the_error_info(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut mobile = app.accounts("mobile-backend").await;
    let mut core = app.accounts("core-banking").await;
    let foreign = open_class_ii(&mut core, 1).await;

    let denied = mobile
        .get_account(GetAccountRequest {
            account_id: foreign.clone(),
        })
        .await;

    let status = assert_refused(denied, Code::PermissionDenied, "ACCOUNT_NOT_IN_SCOPE");
    let md = common::metadata_of(&status);
    assert_eq!(md["account_id"], foreign);
    assert_eq!(md["caller"], "mobile-backend");
}

both_backends!(an_auditor_reads_balances_but_cannot_move_money);
async fn an_auditor_reads_balances_but_cannot_move_money(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut core = app.accounts("core-banking").await;
    let mut auditor = app.accounts("auditor").await;
    let a = open_class_ii(&mut core, 1).await;
    let m = open_merchant(&mut core, "m").await;
    top_up(&mut core, &a, "10.00").await;

    let read = book(&mut auditor, &a).await;
    let transfer = auditor.transfer(transfer_req(&a, &m, "1.00")).await;
    let freeze = auditor
        .freeze_account(FreezeAccountRequest {
            request_id: request_id("f"),
            account_id: a.clone(),
            mode: FreezeMode::Both as i32,
            reason: "x".into(),
        })
        .await;

    assert_eq!(read, "10.00");
    assert_refused(transfer, Code::PermissionDenied, "METHOD_NOT_GRANTED");
    assert_refused(freeze, Code::PermissionDenied, "METHOD_NOT_GRANTED");
    assert_eq!(book(&mut core, &a).await, "10.00");
}

// ----- the ledger stays consistent -----------------------------------------------------------

both_backends!(after_a_mixed_run_the_ledger_verifies_clean);
async fn after_a_mixed_run_the_ledger_verifies_clean(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = common::open_class_iii(&mut c, 2).await;
    let m = open_merchant(&mut c, "m").await;
    let master = open(&mut c, open_plain(AccountKind::PlatformMaster, "p", "")).await;
    let sub = open(&mut c, open_plain(AccountKind::PlatformSub, "p", &master)).await;
    top_up(&mut c, &a, "12000.00").await;
    top_up(&mut c, &b, "1500.00").await;
    let moves = [
        (&a, &m, "2500.00"),
        (&a, &b, "400.00"),
        (&a, &b, "400.00"), // over the Class III cap: refused
        (&b, &sub, "300.00"),
        (&a, &sub, "9000.00"), // over the Class II day: refused
        (&sub, &m, "100.00"),
    ];
    let tasks: Vec<_> = moves
        .iter()
        .map(|(from, to, amount)| {
            let mut client = c.clone();
            let req = transfer_req(from, to, amount);
            tokio::spawn(async move { client.transfer(req).await.is_ok() })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let hold = c
        .place_hold(PlaceHoldRequest {
            request_id: request_id("hold"),
            account_id: a.clone(),
            amount: Some(cny("50.00")),
            kind: HoldKind::PreAuthorization as i32,
            reason: "r".into(),
            ..Default::default()
        })
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold")
        .hold_id;
    c.capture_hold(CaptureHoldRequest {
        request_id: request_id("cap"),
        hold_id: hold,
        amount: Some(cny("20.00")),
        to_account_id: m.clone(),
        memo: String::new(),
    })
    .await
    .expect("capture");
    let released = c
        .place_hold(PlaceHoldRequest {
            request_id: request_id("hold"),
            account_id: b.clone(),
            amount: Some(cny("10.00")),
            kind: HoldKind::Judicial as i32,
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
        hold_id: released,
        reason: "r".into(),
    })
    .await
    .expect("release");
    c.withdraw(WithdrawRequest {
        request_id: request_id("w"),
        account_id: a.clone(),
        amount: Some(cny("100.00")),
        memo: String::new(),
    })
    .await
    .expect("withdraw");
    let sub_book = book(&mut c, &sub).await;
    assert_eq!(book(&mut c, &master).await, sub_book);
    app.begin_shutdown()
        .await
        .expect("join")
        .expect("clean shutdown");

    let (code, output) = app.ledger_verify();

    assert_eq!(code, Some(0), "ledger verify:\n{output}");
    assert!(output.contains("OK: hash chain intact"), "{output}");
    assert!(
        !output.contains(" 0 transactions"),
        "the run's database: {output}"
    );
}

both_backends!(no_caller_moves_money_into_or_out_of_a_bank_internal_account);
async fn no_caller_moves_money_into_or_out_of_a_bank_internal_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("loadtest").await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "10.00").await;
    let mut internal = Vec::new();
    for id in 1..=16 {
        if let Ok(r) = c
            .get_account(GetAccountRequest {
                account_id: id.to_string(),
            })
            .await
            && r.get_ref().account.as_ref().map(|a| a.kind)
                == Some(AccountKind::BankInternal as i32)
        {
            internal.push(id.to_string());
        }
    }
    assert_eq!(
        internal.len(),
        4,
        "fee, clearing suspense, fund settlement, rounding"
    );

    for account in &internal {
        let out = c.transfer(transfer_req(account, &a, "5000.00")).await;
        let into = c.transfer(transfer_req(&a, account, "1.00")).await;
        let hold = c
            .place_hold(PlaceHoldRequest {
                request_id: request_id("hold"),
                account_id: account.clone(),
                amount: Some(cny("1.00")),
                kind: HoldKind::Other as i32,
                reason: "r".into(),
                ..Default::default()
            })
            .await;
        assert_refused(out, Code::PermissionDenied, "ACCOUNT_NOT_IN_SCOPE");
        assert_refused(into, Code::PermissionDenied, "ACCOUNT_NOT_IN_SCOPE");
        assert_refused(hold, Code::PermissionDenied, "ACCOUNT_NOT_IN_SCOPE");
        assert!(
            balance(&mut c, account).await.book.is_some(),
            "reading stays possible"
        );
    }
    assert_eq!(book(&mut c, &a).await, "10.00");
}
