//! Page tokens (`paygate::secrets::Secrets::{seal,open}_page_token`): a forged or altered token
//! never opens; a sealed one opens to its payload.

use paygate::secrets::{PAGE_TOKEN_LEN_MAX, Secrets};

use super::bytes::Bytes;

/// Input: a position byte, then a token text (opened as is, and sealed when it can be a
/// payload).
pub fn run(data: &[u8]) {
    let secrets = Secrets::from_secret(&[7u8; 32]);
    let mut input = Bytes::new(data);
    let position = usize::from(input.u8());
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    if let Some(payload) = secrets.open_page_token(&text) {
        // Only a token this secret sealed opens: anything else is a forged signature.
        assert!(text.len() <= PAGE_TOKEN_LEN_MAX);
        assert!(
            payload.is_ascii() && !payload.contains('.'),
            "{text:?} opened"
        );
        assert_eq!(secrets.seal_page_token(payload), text);
    }
    let sealable = text.is_ascii() && !text.contains('.');
    if !sealable {
        return;
    }
    let token = secrets.seal_page_token(&text);
    if token.len() > PAGE_TOKEN_LEN_MAX {
        assert_eq!(secrets.open_page_token(&token), None);
        return;
    }
    assert_eq!(secrets.open_page_token(&token), Some(text.as_str()));
    assert_eq!(
        Secrets::from_secret(&[8u8; 32]).open_page_token(&token),
        None
    );
    // Any one byte changed breaks it.
    let mut altered = token.into_bytes();
    let at = position % altered.len();
    altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8_lossy(&altered).into_owned();
    assert_eq!(secrets.open_page_token(&altered), None, "{altered:?}");
}
