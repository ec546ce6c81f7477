//! Text from outside this library, made fit for one log line before it goes into an error
//! message. [`Error::new`](crate::Error::new) applies it to every message, so no error of any
//! store carries a line break, whatever a server sent.
//!
//! Backends quote text they do not control (a service message, an emulator's or a proxy's
//! answer, a malicious endpoint's body). An error message is logged as one line, so none of it
//! may carry a line break or anything else that splits or disguises a log line.

/// `text` with every run of characters that could break or disguise a log line replaced by
/// one space, and the ends trimmed: C0 and C1 control characters (`\n`, `\r`, `\t`, ESC …),
/// DEL, the Unicode line and paragraph separators, and the bidirectional formatting
/// characters that can make a line read differently from what it holds.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        if breaks_a_line(c) {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() && !out.ends_with(' ') && c != ' ' {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    out.trim().to_owned()
}

/// Whether `c` may split a log line or disguise what it says.
pub(crate) fn breaks_a_line(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_one_space() {
        assert_eq!(one_line("a\nb"), "a b");
        assert_eq!(one_line("a\r\n\t b"), "a b");
        assert_eq!(one_line("\n\tpermission denied\n\n"), "permission denied");
        assert_eq!(one_line("x\u{1b}[31mred\u{7f}\u{85}y"), "x [31mred y");
        assert_eq!(one_line("a\u{2028}b\u{2029}c"), "a b c");
        assert_eq!(one_line("file\u{202E}txt.exe"), "file txt.exe");
        assert_eq!(one_line("plain text, kept"), "plain text, kept");
        assert_eq!(one_line(""), "");
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let s = one_line(&format!("a{c}b"));
            assert!(!s.chars().any(char::is_control), "{c:?} -> {s:?}");
        }
    }
}
