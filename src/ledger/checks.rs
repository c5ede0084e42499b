//! What a submission must satisfy before it is queued for a batch.

use super::{
    IDEMPOTENCY_KEY_LEN_MAX, IDEMPOTENCY_SCOPE_LEN_MAX, IdempotencyKey, LedgerError, Observe, apply,
};

pub(super) fn check_observe(o: &Observe) -> Result<(), LedgerError> {
    if o.accounts.len() > apply::OBSERVED_ACCOUNTS_MAX
        || o.counters.len() > apply::OBSERVED_COUNTERS_MAX
        || o.document_kinds.len() > apply::OBSERVED_KINDS_MAX
    {
        return Err(LedgerError::invalid(format!(
            "a request observes at most {} accounts, {} counters and {} document kinds",
            apply::OBSERVED_ACCOUNTS_MAX,
            apply::OBSERVED_COUNTERS_MAX,
            apply::OBSERVED_KINDS_MAX
        )));
    }
    Ok(())
}

pub(super) fn check_key(k: &IdempotencyKey) -> Result<(), LedgerError> {
    if k.scope.is_empty() || k.scope.len() > IDEMPOTENCY_SCOPE_LEN_MAX {
        return Err(LedgerError::invalid(format!(
            "idempotency scope is 1..={IDEMPOTENCY_SCOPE_LEN_MAX} bytes"
        )));
    }
    if k.key.is_empty() || k.key.len() > IDEMPOTENCY_KEY_LEN_MAX {
        return Err(LedgerError::invalid(format!(
            "idempotency key is 1..={IDEMPOTENCY_KEY_LEN_MAX} bytes"
        )));
    }
    Ok(())
}
