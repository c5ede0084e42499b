//! A cursor over fuzz input that never fails: past the end it reads zeros.

/// The currencies inputs pick from (two-decimal, zero-decimal, three-decimal).
pub const CURRENCY_CODES: &[&str] = &["CNY", "USD", "JPY", "KWD", "BHD", "EUR"];

pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u64(&mut self) -> u64 {
        let mut out = [0u8; 8];
        for b in &mut out {
            *b = self.u8();
        }
        u64::from_be_bytes(out)
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.u64().to_be_bytes())
    }

    /// An id: mostly 0..8 (so rows collide and chain), sometimes any `u64` (edges).
    pub fn id(&mut self) -> u64 {
        match self.u8() {
            0xff => self.u64(),
            0xfe => u64::MAX,
            b => u64::from(b % 8),
        }
    }

    /// An amount in minor units: mostly small of either sign, sometimes any `i64` (edges).
    pub fn minor(&mut self) -> i64 {
        match self.u8() {
            0xff => self.i64(),
            0xfe => i64::MAX,
            0xfd => i64::MIN,
            b => i64::from(b) - 16,
        }
    }

    /// One of `choices`, picked by the next byte.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        assert!(!choices.is_empty());
        choices[usize::from(self.u8()) % choices.len()]
    }

    /// A short text of the next `0..=max_len` bytes (lossy UTF-8).
    pub fn text(&mut self, max_len: u8) -> String {
        let len = usize::from(self.u8() % max_len.saturating_add(1)).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        String::from_utf8_lossy(head).into_owned()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}
