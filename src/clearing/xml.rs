//! Just enough XML for the networks' messages: escaped text when writing, and the text or an
//! attribute of an element (found by its path of tag names) when reading. Messages are small
//! (bounded by the wire's body limit) and flat enough that a scan is all it takes; no DTDs,
//! no entities beyond the five predefined ones, no namespaces prefixes on the elements we read.

/// `text` with `& < > " '` escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `<tag>text</tag>`, the text escaped.
pub(crate) fn el(tag: &str, text: &str) -> String {
    format!("<{tag}>{}</{tag}>", escape(text))
}

/// The start tag `<tag …>` of the first `tag` element in `doc`: (start of the tag, end of the
/// start tag, whether it closes itself).
fn start_tag(doc: &str, tag: &str) -> Option<(usize, usize, bool)> {
    let mut from = 0;
    while let Some(at) = doc[from..].find(&format!("<{tag}")) {
        let at = from + at;
        let after = at + 1 + tag.len();
        match doc[after..].chars().next() {
            Some('>') | Some(' ') | Some('/') | Some('\n') | Some('\t') | Some('\r') => {
                let end = after + doc[after..].find('>')?;
                return Some((at, end + 1, doc[..end].ends_with('/')));
            }
            _ => from = after,
        }
    }
    None
}

/// The inner text (raw, still escaped) of the first `tag` element in `doc`.
fn inner<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let (_, open_end, closed) = start_tag(doc, tag)?;
    if closed {
        return Some("");
    }
    let close = doc[open_end..].find(&format!("</{tag}>"))?;
    Some(&doc[open_end..open_end + close])
}

/// The text of the element at `path` (each tag searched inside the previous one).
pub(crate) fn text(doc: &str, path: &[&str]) -> Option<String> {
    let mut scope = doc;
    for tag in path {
        scope = inner(scope, tag)?;
    }
    Some(unescape(scope.trim()))
}

/// Every `tag` element directly or indirectly inside `doc`, as raw inner texts, in order.
pub(crate) fn all<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = doc;
    while let Some((_, open_end, closed)) = start_tag(rest, tag) {
        if closed {
            found.push("");
            rest = &rest[open_end..];
            continue;
        }
        let Some(close) = rest[open_end..].find(&format!("</{tag}>")) else {
            break;
        };
        found.push(&rest[open_end..open_end + close]);
        rest = &rest[open_end + close + tag.len() + 3..];
    }
    found
}

/// The value of attribute `name` on the element at `path`.
pub(crate) fn attr(doc: &str, path: &[&str], name: &str) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut scope = doc;
    for tag in parents {
        scope = inner(scope, tag)?;
    }
    let (at, end, _) = start_tag(scope, last)?;
    let tag = &scope[at..end];
    let key = format!(" {name}=\"");
    let from = tag.find(&key)? + key.len();
    let len = tag[from..].find('"')?;
    Some(unescape(&tag[from..from + len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_found_by_path_and_unescaped() {
        let doc = format!(
            "<Doc><Dbtr>{}</Dbtr><DbtrAcct><Id><Othr><Id>622&amp;1</Id></Othr></Id></DbtrAcct>\
             <Amt Ccy=\"CNY\">1.00</Amt><Empty/></Doc>",
            el("Nm", "Zhang <San>")
        );
        assert_eq!(text(&doc, &["Dbtr", "Nm"]).as_deref(), Some("Zhang <San>"));
        assert_eq!(
            text(&doc, &["DbtrAcct", "Othr", "Id"]).as_deref(),
            Some("622&1")
        );
        assert_eq!(attr(&doc, &["Amt"], "Ccy").as_deref(), Some("CNY"));
        assert_eq!(text(&doc, &["Empty"]).as_deref(), Some(""));
        assert_eq!(text(&doc, &["Missing"]), None);
        assert_eq!(text("<AmtX>1</AmtX>", &["Amt"]), None);
        assert_eq!(all("<L><E>1</E><E>2</E></L>", "E"), ["1", "2"]);
    }
}
