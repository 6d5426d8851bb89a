//! Small text helpers shared by the layers that put human-readable text on the wire.

/// `text` cut to at most `limit` bytes on a character boundary, ending in "…" when cut:
/// error details, admission messages and logged references stay bounded whatever a
/// caller sent.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let ellipsis = if limit >= "…".len() { "…" } else { "" };
    let mut end = limit - ellipsis.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly10!", 10), "exactly10!");
        let cut = truncate(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, "éééé…");
        assert_eq!(truncate("abcdef", 3), "…");
        assert_eq!(truncate("abcdef", 2), "ab");
    }
}
