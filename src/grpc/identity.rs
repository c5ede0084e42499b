//! Which configured caller a verified client certificate names — the one rule: the identities
//! the certificate presents (SAN DNS names, URIs, e-mail addresses and subject CNs, see
//! [`certificate_identities`]) are each looked up in the caller table; none found is an unknown
//! caller, two different callers found is an ambiguous certificate, refused.

use std::{collections::HashMap, sync::Mutex};

use crate::{config::CallerConfig, tls::certificate_identities};

/// Verified certificates whose answer is remembered (bounded; cleared when full).
const IDENTITY_CACHE_ENTRIES_MAX: usize = 10_000;

/// What a certificate's identities name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Named<'a, C> {
    One(&'a C),
    Nobody,
    /// Two of its identities name different callers (the first two found).
    Two(&'a C, &'a C),
}

/// The caller table: the gate's callers (`C`) and the index of their identities.
pub(super) struct Callers<C> {
    callers: Vec<C>,
    index: IdentityIndex,
}

impl<C> Callers<C> {
    pub(super) fn new(callers: &[CallerConfig], caller: impl Fn(&CallerConfig) -> C) -> Self {
        Callers {
            callers: callers.iter().map(caller).collect(),
            index: IdentityIndex::new(callers),
        }
    }

    /// The caller a verified end-entity certificate names.
    pub(super) fn named_by(&self, cert_der: &[u8]) -> Named<'_, C> {
        let at = |i: usize| self.callers.get(i);
        match self.index.lookup(cert_der) {
            Found::One(i) => at(i).map_or(Named::Nobody, Named::One),
            Found::Nobody => Named::Nobody,
            Found::Two(a, b) => match (at(a), at(b)) {
                (Some(a), Some(b)) => Named::Two(a, b),
                _ => Named::Nobody,
            },
        }
    }
}

/// What a certificate's identities name, by caller index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    One(usize),
    Nobody,
    Two(usize, usize),
}

/// The identities of the caller table, and a cache of the certificates already looked up.
struct IdentityIndex {
    by_identity: HashMap<String, usize>,
    cache: Mutex<HashMap<Vec<u8>, Found>>,
}

impl IdentityIndex {
    fn new(callers: &[CallerConfig]) -> IdentityIndex {
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

    fn lookup(&self, cert_der: &[u8]) -> Found {
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

    fn resolve(&self, identities: &[String]) -> Found {
        let mut found = Found::Nobody;
        for index in identities.iter().filter_map(|i| self.by_identity.get(i)) {
            found = match found {
                Found::Nobody => Found::One(*index),
                Found::One(first) if first != *index => return Found::Two(first, *index),
                same => same,
            };
        }
        found
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
            concurrent_calls_max: None,
            streams_max: None,
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
            Found::One(0)
        );
        assert_eq!(index.resolve(&names(&["stranger"])), Found::Nobody);
        assert_eq!(index.resolve(&[]), Found::Nobody);
        assert_eq!(
            index.resolve(&names(&["auditor", "core"])),
            Found::Two(1, 0)
        );
    }
}
