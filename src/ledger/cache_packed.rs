//! Compact forms of what the caches hold many of: a profile or a metadata map packed into one
//! allocation, and a limit counter's key as a 128-bit digest. A busy account costs the caches
//! its profile, its metadata and four or more counters; as `String`s and maps those were ~2.5 KiB
//! an account (thirteen allocations for a profile, eleven for a metadata map, a 45-byte key per
//! counter), so the 64 MiB bounds held about half of 100,000 busy accounts and the caches
//! halved and refilled all the time. Packed, the same account costs about a third of that.
//! Unpacking allocates what cloning the unpacked value did, so a hit costs no more than before.
//!
//! Layout of a packed value: fixed-size fields little-endian, then each string as a `u32`
//! length and its bytes (`u32::MAX` for an absent optional string).

use sha2::{Digest, Sha256};

use super::{model::Metadata, store::ProfileRow};

/// Length marking an absent optional string.
const ABSENT: u32 = u32::MAX;
/// Set in a string's length when its bytes are the string's lowercase hex digits, two to a byte
/// (digests and tokens: a person key, a card token are 64 hex characters, 32 bytes packed).
const HEX: u32 = 1 << 31;
/// Shortest string packed as hex (shorter ones gain too little to be worth the check).
const HEX_LEN_MIN: usize = 16;

/// A limit counter's key in the read cache: the first 128 bits of its SHA-256. Two keys of one
/// cache colliding is a chance of about n² / 2¹²⁹ (10⁻²⁷ for a million keys); and the cache only
/// serves a request's check before its batch and the usage a balance view reports: the batch
/// reads every counter it moves from the database, under its lock.
pub(crate) fn counter_digest(key: &str) -> u128 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// A profile in one allocation (its account id is the cache's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackedProfile(Box<[u8]>);

impl PackedProfile {
    pub(crate) fn pack(row: &ProfileRow) -> PackedProfile {
        let strings = [
            Some(row.kind.as_str()),
            Some(row.currency.as_str()),
            Some(row.owner_id.as_str()),
            Some(row.display_name.as_str()),
            row.person_key.as_deref(),
            row.card_token.as_deref(),
            row.card_first_six.as_deref(),
            row.card_last_four.as_deref(),
            row.agreement_id.as_deref(),
            row.internal_purpose.as_deref(),
            Some(row.opened_by.as_str()),
            Some(row.freeze_reason.as_str()),
        ];
        let text: usize = strings.iter().flatten().map(|s| s.len()).sum();
        let mut w = Writer::with_capacity(3 * 9 + strings.len() * 4 + text);
        w.opt_u64(row.parent_id);
        w.u64(row.opened_at_ms as u64);
        w.opt_u64(row.closed_at_ms.map(|ms| ms as u64));
        for s in strings {
            w.opt_str(s);
        }
        PackedProfile(w.finish())
    }

    /// The profile of account `account_id`; `None` only if the bytes are not a packed profile
    /// (never: only [`PackedProfile::pack`] makes one).
    pub(crate) fn unpack(&self, account_id: u64) -> Option<ProfileRow> {
        let mut r = Reader(&self.0);
        let parent_id = r.opt_u64()?;
        let opened_at_ms = r.u64()? as i64;
        let closed_at_ms = r.opt_u64()?.map(|ms| ms as i64);
        let row = ProfileRow {
            account_id,
            parent_id,
            opened_at_ms,
            closed_at_ms,
            kind: r.string()?,
            currency: r.string()?,
            owner_id: r.string()?,
            display_name: r.string()?,
            person_key: r.opt_string()?,
            card_token: r.opt_string()?,
            card_first_six: r.opt_string()?,
            card_last_four: r.opt_string()?,
            agreement_id: r.opt_string()?,
            internal_purpose: r.opt_string()?,
            opened_by: r.string()?,
            freeze_reason: r.string()?,
        };
        r.0.is_empty().then_some(row)
    }

    /// The heap it owns, the allocator's overhead included.
    pub(crate) fn heap_bytes(&self) -> usize {
        heap_bytes(&self.0)
    }
}

/// An account's metadata in one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackedMetadata(Box<[u8]>);

impl PackedMetadata {
    pub(crate) fn pack(metadata: &Metadata) -> PackedMetadata {
        let text: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut w = Writer::with_capacity(4 + metadata.len() * 8 + text);
        w.u32(u32::try_from(metadata.len()).unwrap_or(u32::MAX));
        for (k, v) in metadata {
            w.opt_str(Some(k));
            w.opt_str(Some(v));
        }
        PackedMetadata(w.finish())
    }

    /// The map; `None` only if the bytes are not packed metadata (never, as above).
    pub(crate) fn unpack(&self) -> Option<Metadata> {
        let mut r = Reader(&self.0);
        let pairs = r.u32()?;
        let mut metadata = Metadata::new();
        for _ in 0..pairs {
            let k = r.string()?;
            let v = r.string()?;
            metadata.insert(k, v);
        }
        r.0.is_empty().then_some(metadata)
    }

    /// The heap it owns, the allocator's overhead included.
    pub(crate) fn heap_bytes(&self) -> usize {
        heap_bytes(&self.0)
    }
}

/// A boxed slice's heap, with what the allocator adds to it.
fn heap_bytes(bytes: &[u8]) -> usize {
    super::cache::allocation_bytes(bytes.len())
}

struct Writer(Vec<u8>);

impl Writer {
    fn with_capacity(bytes: usize) -> Writer {
        Writer(Vec::with_capacity(bytes))
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn opt_u64(&mut self, v: Option<u64>) {
        self.0.push(u8::from(v.is_some()));
        self.u64(v.unwrap_or(0));
    }

    /// A string of fewer than 2³¹ bytes (every string a cache holds is far shorter: a longer
    /// one is cut there rather than mistaken for an absent or a hex one).
    fn opt_str(&mut self, s: Option<&str>) {
        let Some(s) = s else {
            self.u32(ABSENT);
            return;
        };
        if is_lower_hex(s) {
            self.u32(HEX | s.len() as u32);
            for pair in s.as_bytes().chunks_exact(2) {
                self.0.push(nibble(pair[0]) << 4 | nibble(pair[1]));
            }
            return;
        }
        let len = s.len().min((HEX - 1) as usize);
        self.u32(len as u32);
        self.0.extend_from_slice(&s.as_bytes()[..len]);
    }

    fn finish(self) -> Box<[u8]> {
        self.0.into_boxed_slice()
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Whether `s` is packed as hex: an even number (at least [`HEX_LEN_MIN`]) of lowercase hex
/// digits, so that unpacking gives back exactly `s`.
fn is_lower_hex(s: &str) -> bool {
    s.len() >= HEX_LEN_MIN
        && s.len().is_multiple_of(2)
        && s.len() < HEX as usize
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The value of a lowercase hex digit ([`is_lower_hex`] has checked it is one).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn opt_u64(&mut self) -> Option<Option<u64>> {
        let present = self.take(1)?[0] != 0;
        let v = self.u64()?;
        Some(present.then_some(v))
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        let len = self.u32()?;
        if len == ABSENT {
            return Some(None);
        }
        if len & HEX != 0 {
            let digits = (len & !HEX) as usize;
            let bytes = self.take(digits / 2)?;
            let mut s = String::with_capacity(digits);
            for b in bytes {
                s.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
                s.push(char::from(HEX_DIGITS[usize::from(b & 0x0f)]));
            }
            return Some(Some(s));
        }
        let bytes = self.take(len as usize)?;
        Some(Some(std::str::from_utf8(bytes).ok()?.to_owned()))
    }

    fn string(&mut self) -> Option<String> {
        self.opt_string()?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_profile() -> ProfileRow {
        ProfileRow {
            account_id: 42,
            kind: "CLASS_II".into(),
            currency: "CNY".into(),
            owner_id: "owner-1".into(),
            display_name: "张三的二类户".into(),
            parent_id: Some(7),
            person_key: Some("e0e3de00bcb1cce2".into()),
            card_token: Some("745c2abbabdc5d58".into()),
            card_first_six: Some("622202".into()),
            card_last_four: Some("9982".into()),
            agreement_id: Some("AGRfd1fe3c2c8bde0b8c9e52271".into()),
            internal_purpose: None,
            opened_by: "core-banking".into(),
            freeze_reason: String::new(),
            opened_at_ms: 1_796_684_831_012,
            closed_at_ms: Some(-1),
        }
    }

    #[test]
    fn a_profile_unpacks_to_what_was_packed_absent_and_empty_strings_apart() {
        let row = full_profile();
        let packed = PackedProfile::pack(&row);
        assert_eq!(packed.unpack(42), Some(row));

        let bare = ProfileRow {
            account_id: 9,
            ..ProfileRow::default()
        };
        assert_eq!(PackedProfile::pack(&bare).unpack(9), Some(bare));
    }

    #[test]
    fn a_packed_profile_costs_one_allocation_a_third_of_the_strings_it_replaces() {
        let row = full_profile();
        let packed = PackedProfile::pack(&row);
        let as_strings = std::mem::size_of::<ProfileRow>() + 11 * (16 + 16);
        assert!(
            packed.heap_bytes() < as_strings / 2,
            "{} against {as_strings}",
            packed.heap_bytes()
        );
    }

    #[test]
    fn metadata_unpacks_to_the_same_map_and_truncated_bytes_to_none() {
        let mut m = Metadata::new();
        m.insert("owner".into(), "bench-1".into());
        m.insert("person".into(), "e0e3".repeat(16));
        m.insert("empty".into(), String::new());
        let packed = PackedMetadata::pack(&m);
        assert_eq!(packed.unpack(), Some(m));
        assert_eq!(
            PackedMetadata::pack(&Metadata::new()).unpack(),
            Some(Metadata::new())
        );

        let cut = PackedMetadata(packed.0[..packed.0.len() - 1].into());
        assert_eq!(cut.unpack(), None);
        let cut = PackedProfile(PackedProfile::pack(&full_profile()).0[..20].into());
        assert_eq!(cut.unpack(42), None);
    }

    #[test]
    fn hex_digests_pack_two_digits_to_a_byte_and_anything_else_stays_as_it_was() {
        let digest = "e0e3de00bcb1cce2d88e06f83def38302f533d4158d741a957e88f50354b642f";
        for s in [
            digest,
            "E0E3DE00BCB1CCE2D88E06F83DEF3830",
            "e0e3de00bcb1cce2d88e06f83def383",
            "0123456789abcdef",
            "0123456789abcdeg",
            "bench-eyxycwwvtwxw-9998",
            "",
        ] {
            let mut m = Metadata::new();
            m.insert("k".into(), s.into());
            assert_eq!(PackedMetadata::pack(&m).unpack(), Some(m), "{s:?}");
        }
        let mut m = Metadata::new();
        m.insert("person".into(), digest.into());
        assert_eq!(PackedMetadata::pack(&m).0.len(), 4 + 4 + 6 + 4 + 32);
    }

    #[test]
    fn counter_digests_differ_for_keys_one_character_apart() {
        let a = counter_digest("CLASS_II_NON_BOUND_INFLOW/DAY/10/2026-12-08");
        let b = counter_digest("CLASS_II_NON_BOUND_INFLOW/DAY/10/2026-12-09");
        assert_ne!(a, b);
        assert_eq!(
            a,
            counter_digest("CLASS_II_NON_BOUND_INFLOW/DAY/10/2026-12-08")
        );
    }
}
