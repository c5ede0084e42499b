//! Which configured caller a verified client certificate names — the one rule: the identities
//! the certificate presents (SAN DNS names, URIs, e-mail addresses and subject CNs, see
//! [`certificate_identities`]) are each looked up in the caller table; none found is an unknown
//! caller, two different callers found is an ambiguous certificate, refused.

use std::{collections::HashMap, sync::Mutex};

use crate::{config::CallerConfig, tls::certificate_identities};

/// Verified certificates whose answer is remembered (bounded; cleared when full).
const IDENTITY_CACHE_ENTRIES_MAX: usize = 10_000;

/// What a certificate's identities name, by caller index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Named {
    Caller(usize),
    Nobody,
    /// Two of its identities name different callers (the first two found).
    TwoCallers(usize, usize),
}

/// The identities of the caller table, and a cache of the certificates already looked up.
pub(super) struct IdentityIndex {
    by_identity: HashMap<String, usize>,
    cache: Mutex<HashMap<Vec<u8>, Named>>,
}

impl IdentityIndex {
    pub(super) fn new(callers: &[CallerConfig]) -> IdentityIndex {
        let mut by_identity = HashMap::new();
        for (index, caller) in callers.iter().enumerate() {
            for identity in &caller.identities {
                by_identity.insert(identity.clone(), index);
            }
        }
        IdentityIndex {
            by_identity,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The caller a verified end-entity certificate names.
    pub(super) fn lookup(&self, cert_der: &[u8]) -> Named {
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(cert_der)
        {
            return *hit;
        }
        let named = self.resolve(&certificate_identities(cert_der));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= IDENTITY_CACHE_ENTRIES_MAX {
                cache.clear();
            }
            cache.insert(cert_der.to_vec(), named);
        }
        named
    }

    fn resolve(&self, identities: &[String]) -> Named {
        let mut named = Named::Nobody;
        for index in identities.iter().filter_map(|i| self.by_identity.get(i)) {
            named = match named {
                Named::Nobody => Named::Caller(*index),
                Named::Caller(first) if first != *index => return Named::TwoCallers(first, *index),
                same => same,
            };
        }
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountScope;

    fn caller(name: &str, identities: &[&str]) -> CallerConfig {
        CallerConfig {
            name: name.to_owned(),
            identities: identities.iter().map(|i| (*i).to_owned()).collect(),
            grants: Vec::new(),
            rate_per_s: None,
            burst: None,
            account_scope: AccountScope::Own,
        }
    }

    fn names(identities: &[&str]) -> Vec<String> {
        identities.iter().map(|i| (*i).to_owned()).collect()
    }

    #[test]
    fn identities_that_all_name_one_caller_name_it_and_two_callers_are_ambiguous() {
        let index = IdentityIndex::new(&[
            caller("core", &["core", "spiffe://bank/core"]),
            caller("auditor", &["auditor"]),
        ]);

        assert_eq!(
            index.resolve(&names(&["spiffe://bank/core", "stranger", "core"])),
            Named::Caller(0)
        );
        assert_eq!(index.resolve(&names(&["stranger"])), Named::Nobody);
        assert_eq!(index.resolve(&[]), Named::Nobody);
        assert_eq!(
            index.resolve(&names(&["auditor", "core"])),
            Named::TwoCallers(1, 0)
        );
    }
}
