//! Capping of returned text to a caller's `max_chars`.
//!
//! Long text keeps its head and its tail, with the middle replaced by one marker line
//! such as `[... 123456 characters (4567 lines) omitted ...]`. The tail gets the larger
//! share because errors and prompts are at the end. Lengths are counted in Unicode
//! scalar values (`char`s), not bytes or display columns.

/// Share of the kept characters given to the head, in percent. The tail gets the rest.
const HEAD_PERCENT: usize = 40;

/// Minimum number of kept characters, beside the marker, for a head and a tail to be
/// kept. Smaller budgets keep only a tail.
const MIN_SPLIT_KEPT_CHARS: usize = 40;

/// Maximum distance, in characters, that a cut point moves to reach a line boundary.
const MAX_LINE_SEARCH_CHARS: usize = 256;

/// Text after capping, with what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped {
    /// The text to return, marker line included, at most `max_chars` characters long.
    pub text: String,
    /// Characters of the input that are not in `text`.
    pub omitted_chars: u64,
    /// Lines of the input that are wholly or partly omitted, a line's newline counting
    /// as part of that line.
    pub omitted_lines: u64,
}

/// Caps `text` to at most `max_chars` characters.
///
/// Text that fits is returned unchanged with zero omitted. Longer text is cut by the
/// first rule that fits the budget:
///
/// 1. Head, marker line, tail: about 40 % of the kept characters for the head and 60 %
///    for the tail, when at least 40 characters remain beside the marker line.
/// 2. Marker line, then the tail, when the marker line and one more character fit.
/// 3. The last `max_chars` characters alone, without a marker (empty for a budget of 0).
///
/// In rules 1 and 2 the head ends and the tail starts at a line boundary when one lies
/// within 256 characters of the cut and within half of that part's share, so lines are
/// kept whole. Otherwise the cut falls between two characters.
///
/// NOTE: a cut between two characters can split a grapheme cluster, such as an emoji
/// with a skin-tone modifier or a letter with a combining accent. The text stays valid
/// UTF-8, but that one symbol may render differently.
pub fn cap_text(text: &str, max_chars: usize) -> Capped {
    let total_chars = text.chars().count();
    if total_chars <= max_chars {
        return Capped {
            text: text.to_owned(),
            omitted_chars: 0,
            omitted_lines: 0,
        };
    }

    // The marker's numbers never exceed `total_chars`, so this width is an upper bound.
    let marker_chars = marker(total_chars as u64, total_chars as u64)
        .chars()
        .count();

    if max_chars >= marker_chars + 2 + MIN_SPLIT_KEPT_CHARS {
        // Two newlines: one ends a head that stops mid-line, one ends the marker.
        let kept_chars = max_chars - marker_chars - 2;
        let head_chars = kept_chars * HEAD_PERCENT / 100;
        let tail_chars = kept_chars - head_chars;
        let head_end = head_cut(text, head_chars);
        let tail_start = tail_cut(text, tail_chars);
        join_around_marker(text, head_end, tail_start)
    } else if max_chars > marker_chars + 1 {
        let tail_start = tail_cut(text, max_chars - marker_chars - 1);
        join_around_marker(text, 0, tail_start)
    } else {
        let tail_start = last_chars_start(text, max_chars);
        let omitted = &text[..tail_start];
        Capped {
            text: text[tail_start..].to_owned(),
            omitted_chars: omitted.chars().count() as u64,
            omitted_lines: count_lines(omitted),
        }
    }
}

/// Builds the marker line, without its newline.
fn marker(omitted_chars: u64, omitted_lines: u64) -> String {
    let chars_unit = if omitted_chars == 1 {
        "character"
    } else {
        "characters"
    };
    let lines_unit = if omitted_lines == 1 { "line" } else { "lines" };
    format!("[... {omitted_chars} {chars_unit} ({omitted_lines} {lines_unit}) omitted ...]")
}

/// Joins `text[..head_end]`, the marker line for the middle, and `text[tail_start..]`.
fn join_around_marker(text: &str, head_end: usize, tail_start: usize) -> Capped {
    let head = &text[..head_end];
    let omitted = &text[head_end..tail_start];
    let tail = &text[tail_start..];
    let omitted_chars = omitted.chars().count() as u64;
    let omitted_lines = count_lines(omitted);

    let mut joined = String::with_capacity(head.len() + tail.len() + 64);
    joined.push_str(head);
    if !head.is_empty() && !head.ends_with('\n') {
        joined.push('\n');
    }
    joined.push_str(&marker(omitted_chars, omitted_lines));
    joined.push('\n');
    joined.push_str(tail);

    Capped {
        text: joined,
        omitted_chars,
        omitted_lines,
    }
}

/// Returns the byte offset where a head of at most `max_chars` characters ends: just
/// after a newline when one lies within the search distance, else after `max_chars`
/// characters. A newline right after the last character is kept as well, making
/// `max_chars + 1` characters that need no added newline before the marker.
fn head_cut(text: &str, max_chars: usize) -> usize {
    let end = text
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(offset, _)| offset);
    if text[end..].starts_with('\n') {
        // The newline replaces the one that would end a head cut mid-line, so the
        // total stays within the caller's budget.
        return end + 1;
    }
    let search_chars = MAX_LINE_SEARCH_CHARS.min(max_chars / 2);

    text[..end]
        .char_indices()
        .rev()
        .take(search_chars)
        .find(|&(_, character)| character == '\n')
        .map_or(end, |(offset, _)| offset + 1)
}

/// Returns the byte offset where a tail of at most `max_chars` characters starts: at a
/// line start when one lies within the search distance and leaves the tail non-empty,
/// else `max_chars` characters before the end.
fn tail_cut(text: &str, max_chars: usize) -> usize {
    let start = last_chars_start(text, max_chars);
    if start == 0 || text.as_bytes()[start - 1] == b'\n' {
        return start;
    }
    let search_chars = MAX_LINE_SEARCH_CHARS.min(max_chars / 2);

    text[start..]
        .char_indices()
        .take(search_chars)
        .find(|&(_, character)| character == '\n')
        .map(|(offset, _)| start + offset + 1)
        .filter(|&line_start| line_start < text.len())
        .unwrap_or(start)
}

/// Returns the byte offset where the last `count` characters of `text` start.
fn last_chars_start(text: &str, count: usize) -> usize {
    if count == 0 {
        return text.len();
    }
    text.char_indices()
        .rev()
        .nth(count - 1)
        .map_or(0, |(offset, _)| offset)
}

/// Counts the lines that `part` touches: one per newline, plus one for a last line
/// without a newline.
fn count_lines(part: &str) -> u64 {
    let newlines = part.bytes().filter(|&byte| byte == b'\n').count() as u64;
    let unterminated = !part.is_empty() && !part.ends_with('\n');
    newlines + u64::from(unterminated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn char_count(text: &str) -> usize {
        text.chars().count()
    }

    /// Returns the lines of `capped` that look like a marker.
    fn marker_lines(capped: &str) -> Vec<&str> {
        capped
            .lines()
            .filter(|line| line.starts_with("[... ") && line.ends_with(" omitted ...]"))
            .collect()
    }

    /// Checks what every capped result must satisfy, whatever the rule applied: the
    /// budget holds, the kept parts are the input's head and tail, and the omitted
    /// counts describe exactly the part in between.
    fn assert_capped_consistent(original: &str, max_chars: usize, capped: &Capped) {
        let returned_chars = char_count(&capped.text);
        assert!(
            returned_chars <= max_chars,
            "budget {max_chars}: returned {returned_chars} characters"
        );
        assert!(
            !capped.text.contains('\u{fffd}'),
            "budget {max_chars}: replacement character in output"
        );

        let markers = marker_lines(&capped.text);
        assert!(markers.len() <= 1, "budget {max_chars}: several markers");
        let (head, tail) = match markers.first() {
            Some(marker_line) => {
                let (before, after) = capped.text.split_once(marker_line).unwrap();
                let tail = after
                    .strip_prefix('\n')
                    .unwrap_or_else(|| panic!("budget {max_chars}: marker line has no newline"));
                // A head that ends mid-line gets a newline before the marker.
                let head = if original.starts_with(before) {
                    before
                } else {
                    before.strip_suffix('\n').unwrap_or(before)
                };
                (head, tail)
            }
            None => ("", capped.text.as_str()),
        };
        assert!(
            original.starts_with(head),
            "budget {max_chars}: head is not the input's start"
        );
        assert!(
            original.ends_with(tail),
            "budget {max_chars}: tail is not the input's end"
        );

        let middle = &original[head.len()..original.len() - tail.len()];
        assert_eq!(
            capped.omitted_chars as usize,
            char_count(middle),
            "budget {max_chars}: omitted characters"
        );
        assert_eq!(
            capped.omitted_lines as usize,
            middle.split_inclusive('\n').count(),
            "budget {max_chars}: omitted lines"
        );
        if let Some(marker_line) = markers.first() {
            assert_eq!(
                *marker_line,
                marker(capped.omitted_chars, capped.omitted_lines),
                "budget {max_chars}: marker numbers"
            );
        }
    }

    #[test]
    fn cap_text_fitting_text_unchanged() {
        for text in ["", "short", "line one\nline two\n", "日本語のテキスト🙂"] {
            let capped = cap_text(text, char_count(text));
            assert_eq!(
                capped,
                Capped {
                    text: text.to_owned(),
                    omitted_chars: 0,
                    omitted_lines: 0,
                }
            );
            assert_eq!(cap_text(text, 10_000).text, text);
        }
    }

    #[test]
    fn cap_text_long_seq_keeps_head_and_tail() {
        let mut text = String::new();
        for number in 1..=200_000 {
            text.push_str(&number.to_string());
            text.push('\n');
        }
        text.push_str("FINAL_ERROR_LINE");

        let capped = cap_text(&text, 4096);
        assert!(
            char_count(&capped.text) <= 4096,
            "{} characters",
            char_count(&capped.text)
        );
        assert!(capped.text.starts_with("1\n2\n"));
        assert!(capped.text.ends_with("200000\nFINAL_ERROR_LINE"));

        let markers = marker_lines(&capped.text);
        assert_eq!(markers.len(), 1, "exactly one marker line");
        let (head, rest) = capped.text.split_once(markers[0]).unwrap();
        let tail = rest.strip_prefix('\n').unwrap();

        // Both cuts fall on line boundaries, so the head ends with a whole number and
        // the tail starts with the next kept one.
        assert!(
            head.ends_with('\n'),
            "head ends mid-line: {:?}",
            &head[head.len() - 10..]
        );
        let last_head_number: u64 = head.lines().last().unwrap().parse().unwrap();
        let first_tail_number: u64 = tail.lines().next().unwrap().parse().unwrap();
        let omitted_lines = first_tail_number - last_head_number - 1;
        let omitted_chars: u64 = (last_head_number + 1..first_tail_number)
            .map(|number| number.to_string().len() as u64 + 1)
            .sum();
        assert_eq!(capped.omitted_lines, omitted_lines);
        assert_eq!(capped.omitted_chars, omitted_chars);
        assert_eq!(
            markers[0],
            format!("[... {omitted_chars} characters ({omitted_lines} lines) omitted ...]")
        );

        // The tail gets the larger share.
        assert!(
            tail.len() > head.len(),
            "head {} bytes, tail {} bytes",
            head.len(),
            tail.len()
        );
        assert_capped_consistent(&text, 4096, &capped);
    }

    #[test]
    fn cap_text_single_multibyte_line() {
        let text = "é".repeat(50_000);
        let capped = cap_text(&text, 1000);

        assert!(char_count(&capped.text) <= 1000);
        assert!(!capped.text.contains('\u{fffd}'));
        let markers = marker_lines(&capped.text);
        assert_eq!(markers.len(), 1);
        let kept_chars = capped
            .text
            .chars()
            .filter(|&character| character == 'é')
            .count();
        assert_eq!(capped.omitted_chars, 50_000 - kept_chars as u64);
        assert_eq!(capped.omitted_lines, 1);
        assert_eq!(
            markers[0],
            format!(
                "[... {} characters (1 line) omitted ...]",
                capped.omitted_chars
            )
        );
        // Head and tail are both kept, each on its own side of the marker.
        let (head, tail) = capped.text.split_once('\n').unwrap();
        assert!(head.starts_with('é'));
        assert!(
            tail.trim_start_matches(markers[0])
                .trim_start_matches('\n')
                .starts_with('é')
        );
        assert_capped_consistent(&text, 1000, &capped);
    }

    #[test]
    fn cap_text_every_small_budget_fits() {
        let samples = [
            "é".repeat(400),
            "日本語の出力です。\n".repeat(60),
            "🙂🚀✅ done\n".repeat(50),
            "ascii line\n".repeat(100),
            "x".repeat(1000),
            format!("{}\n{}", "混".repeat(150), "🙂".repeat(150)),
        ];
        for text in &samples {
            for max_chars in 0..=300 {
                let capped = cap_text(text, max_chars);
                assert_capped_consistent(text, max_chars, &capped);
                assert!(
                    capped.omitted_chars > 0,
                    "budget {max_chars}: nothing omitted"
                );
                assert!(
                    capped.omitted_lines > 0,
                    "budget {max_chars}: no line omitted"
                );
                // Whatever the rule, the last character of the input is kept once the
                // budget allows any text.
                if max_chars > 0 {
                    assert_eq!(
                        capped.text.chars().last(),
                        text.chars().last(),
                        "budget {max_chars}: tail lost"
                    );
                }
            }
        }
    }

    #[test]
    fn cap_text_cjk_and_emoji_lines() {
        let mut text = String::new();
        for index in 0..2000 {
            text.push_str(&format!("行{index}: 日本語とemoji 🙂🚀\n"));
        }
        text.push_str("エラー: 最後の行 ❌");

        let capped = cap_text(&text, 500);
        assert!(char_count(&capped.text) <= 500);
        assert!(capped.text.starts_with("行0: 日本語とemoji 🙂🚀\n"));
        assert!(
            capped
                .text
                .ends_with("行1999: 日本語とemoji 🙂🚀\nエラー: 最後の行 ❌")
        );
        let markers = marker_lines(&capped.text);
        assert_eq!(markers.len(), 1);
        let (head, _) = capped.text.split_once(markers[0]).unwrap();
        assert!(head.ends_with("🙂🚀\n"), "head ends mid-line");
        assert_capped_consistent(&text, 500, &capped);
    }

    #[test]
    fn cap_text_small_budget_rules() {
        let text = "0123456789\n".repeat(20);
        // The reserved marker width assumes every character and line may be omitted.
        let marker_chars = char_count(&marker(220, 220));

        // Rule 3: no room for a marker, so the last characters alone.
        let capped = cap_text(&text, 5);
        assert_eq!(
            capped,
            Capped {
                text: "6789\n".to_owned(),
                omitted_chars: 215,
                omitted_lines: 20,
            }
        );
        assert_eq!(cap_text(&text, 0).text, "");
        assert_eq!(cap_text(&text, 0).omitted_chars, 220);

        // Rule 2: the marker line and a tail.
        let capped = cap_text(&text, marker_chars + 1 + 11);
        assert!(
            capped
                .text
                .starts_with("[... 209 characters (19 lines) omitted ...]\n")
        );
        assert!(capped.text.ends_with("\n0123456789\n"));
        assert_eq!(capped.omitted_lines, 19);

        // Rule 1 from 40 kept characters beside the marker line.
        let capped = cap_text(&text, marker_chars + 2 + MIN_SPLIT_KEPT_CHARS);
        assert!(
            capped.text.starts_with("0123456789\n[... "),
            "{:?}",
            capped.text
        );
        assert!(
            capped
                .text
                .ends_with(" omitted ...]\n0123456789\n0123456789\n"),
            "{:?}",
            capped.text
        );
    }

    #[test]
    fn cap_text_head_without_newline_gets_one() {
        // No newline near the head cut: the head ends mid-line and the marker still
        // starts its own line.
        let text = format!("{}\n{}", "a".repeat(5000), "b\n".repeat(100));
        let capped = cap_text(&text, 300);
        let markers = marker_lines(&capped.text);
        assert_eq!(markers.len(), 1);
        assert!(capped.text.starts_with("aaaa"));
        assert!(capped.text.contains("a\n[... "));
        assert!(capped.text.ends_with("b\nb\n"));
        assert!(char_count(&capped.text) <= 300);
        assert_capped_consistent(&text, 300, &capped);
    }

    #[test]
    fn marker_singular_and_plural() {
        assert_eq!(marker(1, 1), "[... 1 character (1 line) omitted ...]");
        assert_eq!(marker(2, 3), "[... 2 characters (3 lines) omitted ...]");
    }
}
