//! Text helpers shared by the layers that echo user input or build messages with a size limit
//! (error details, admission messages, reference errors).

/// What marks a cut: one character, three bytes.
const ELLIPSIS: &str = "…";

/// `text` cut to at most `max_bytes` bytes, ellipsis included, on a character boundary, and
/// ending in "…" when it was cut. Text that fits comes back unchanged. (A limit below three
/// bytes still gives the three bytes of "…".)
///
/// Limits are in bytes because the receivers count bytes (the API server's message and warning
/// limits, a client's fixed-size error read); cutting inside a character would make the
/// message invalid UTF-8 or panic.
pub fn truncate_with_ellipsis(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_fits_is_unchanged() {
        assert_eq!(truncate_with_ellipsis("", 0), "");
        assert_eq!(truncate_with_ellipsis("short", 5), "short");
        assert_eq!(truncate_with_ellipsis("é", 2), "é");
    }

    #[test]
    fn cut_text_ends_in_an_ellipsis_within_the_limit() {
        let cut = truncate_with_ellipsis("abcdefghij", 8);
        assert_eq!(cut, "abcde…");
        assert_eq!(cut.len(), 8);
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // "é" is two bytes, "€" three, "😀" four: every limit must give valid, bounded text.
        for text in ["é".repeat(300), "€".repeat(200), "😀".repeat(100), format!("a{}", "😀".repeat(50))] {
            for limit in 0..=40 {
                let cut = truncate_with_ellipsis(&text, limit);
                assert!(cut.len() <= limit.max(ELLIPSIS.len()), "{limit}: {cut:?}");
                assert!(cut.ends_with(ELLIPSIS), "{limit}: {cut:?}");
                assert!(text.starts_with(cut.trim_end_matches(ELLIPSIS)), "{limit}: {cut:?}");
            }
        }
        assert_eq!(truncate_with_ellipsis("ééé", 5), "é…");
        assert_eq!(truncate_with_ellipsis("ééé", 4), "…", "no room for a whole é besides the ellipsis");
        assert_eq!(truncate_with_ellipsis("éééé", 7), "éé…");
    }

    #[test]
    fn limits_smaller_than_the_ellipsis_still_mark_the_cut() {
        assert_eq!(truncate_with_ellipsis("abcdef", 2), "…");
    }
}
