//! Tests of the read cache ([`super`]).

use super::*;

fn state(minor: i64) -> AccountState {
    AccountState {
        status: AccountStatus::Active,
        balance: Balance {
            posted_credits_minor: minor,
            ..Balance::default()
        },
    }
}

fn batch(before: u64, account: u64, minor: i64) -> BatchDelta {
    BatchDelta {
        head_before: before,
        head_after: before + 1,
        accounts: vec![(AccountId(account), state(minor))],
        ..BatchDelta::default()
    }
}

/// A profile of some size.
fn profile(id: u64) -> ProfileRow {
    ProfileRow {
        account_id: id,
        kind: "CLASS_II".repeat(64),
        owner_id: format!("owner-{id}"),
        ..ProfileRow::default()
    }
}

/// A batch that opened account `id` with its profile.
fn with_profile(before: u64, id: u64) -> BatchDelta {
    BatchDelta {
        head_before: before,
        head_after: before + 1,
        profiles: vec![profile(id)],
        ..BatchDelta::default()
    }
}

#[test]
fn an_entry_is_current_only_while_no_other_process_has_committed() {
    let cache = ReadCache::new(1 << 20);
    cache.committed(batch(10, 1, 100));
    cache.committed(batch(11, 2, 200));

    assert_eq!(cache.account(AccountId(1), Some(12)), Some(state(100)));
    assert_eq!(cache.account(AccountId(2), Some(12)), Some(state(200)));
    // Someone else committed batch 13: the head read says so, nothing is current.
    assert_eq!(cache.account(AccountId(1), Some(13)), None);
    // Checked reads still use it.
    assert_eq!(cache.account(AccountId(1), None), Some(state(100)));

    // This process's next batch finds the head at 13: a new continuity starts.
    cache.committed(batch(13, 3, 300));
    assert_eq!(cache.account(AccountId(3), Some(14)), Some(state(300)));
    assert_eq!(cache.account(AccountId(3), None), Some(state(300)));
    assert_eq!(cache.account(AccountId(1), Some(14)), None, "older entry");
    assert_eq!(
        cache.account(AccountId(1), None),
        None,
        "not even for checks"
    );
}

#[test]
fn a_database_read_serves_checks_but_never_a_current_read() {
    let cache = ReadCache::new(1 << 20);
    assert!(
        cache.read_stamp().is_none(),
        "nothing is remembered before a batch"
    );
    cache.committed(batch(0, 1, 100));
    let stamp = cache.read_stamp().expect("a head");
    cache.remember_account(stamp, AccountId(2), state(7));
    // A batch's own entry is never replaced by a read.
    cache.remember_account(stamp, AccountId(1), state(5));

    assert_eq!(cache.account(AccountId(2), None), Some(state(7)));
    assert_eq!(cache.account(AccountId(2), Some(1)), None);
    assert_eq!(cache.account(AccountId(1), Some(1)), Some(state(100)));
}

#[test]
fn past_its_byte_bound_the_cache_empties_and_refills() {
    // Room for the first table of accounts (3 of them), not for the next.
    let first_table = table_bytes(&HashMap::<AccountId, Stamped<AccountState>>::with_capacity(
        1,
    ));
    let cache = ReadCache::new(first_table);
    for i in 0..3 {
        cache.committed(batch(i, i, 1));
    }
    assert!(cache.bytes() <= first_table);
    assert_eq!(cache.account(AccountId(0), None), Some(state(1)), "kept");
    cache.committed(batch(3, 3, 1));
    assert_eq!(cache.account(AccountId(0), None), None, "emptied");
    cache.committed(batch(4, 4, 1));
    assert_eq!(cache.account(AccountId(4), Some(5)), Some(state(1)));
}

#[test]
fn a_batch_that_fills_the_cache_keeps_its_own_profiles() {
    // Room for one profile and its table, not for two.
    let table = table_bytes(&HashMap::<u64, Stamped<PackedProfile>>::with_capacity(1));
    let cache = ReadCache::new(table + PackedProfile::pack(&profile(1)).heap_bytes() + 8);
    cache.committed(with_profile(0, 1));
    assert!(cache.profile(1, None).is_some());
    cache.committed(with_profile(1, 2));
    assert!(
        cache.profile(2, None).is_some(),
        "the new batch's profile stays"
    );
    assert!(cache.profile(1, None).is_none(), "the older one made room");
}

#[test]
fn a_full_cache_drops_half_of_its_profiles_not_all_of_them() {
    // Room for the table of 64 profiles and 40 of them.
    let table = table_bytes(&HashMap::<u64, Stamped<PackedProfile>>::with_capacity(64));
    let cache = ReadCache::new(table + 40 * PackedProfile::pack(&profile(1)).heap_bytes());
    for id in 0..64 {
        cache.committed(with_profile(id, id));
    }
    let kept = (0..64)
        .filter(|id| cache.profile(*id, None).is_some())
        .count();
    assert!(cache.profile(63, None).is_some(), "the last batch's own");
    assert!(
        (10..64).contains(&kept),
        "made room by halving, not by emptying: {kept} of 64 kept"
    );
    assert!(cache.bytes() <= table + 40 * PackedProfile::pack(&profile(1)).heap_bytes());
}

#[test]
fn a_failed_batch_makes_nothing_current() {
    let cache = ReadCache::new(1 << 20);
    cache.committed(batch(0, 1, 1));
    cache.lost_track();
    assert_eq!(cache.head(), None);
    assert_eq!(cache.account(AccountId(1), None), None);
}
