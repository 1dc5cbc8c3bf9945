//! Byte-level cases for the screen: each input is fed one `process` call per chunk,
//! with `\n` turned into `\r\n` as a PTY in its default mode does.

use super::*;

const LIMITS: ScreenLimits = ScreenLimits {
    scrollback_rows: 1000,
    transcript_bytes: 1 << 20,
};

fn new_screen(cols: u16, rows: u16) -> Screen {
    Screen::new(TermSize { cols, rows }, LIMITS)
}

/// Converts `\n` to `\r\n` (the PTY's output processing).
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut converted = Vec::with_capacity(bytes.len());
    for byte in bytes {
        if *byte == b'\n' {
            converted.push(b'\r');
        }
        converted.push(*byte);
    }
    converted
}

/// Feeds each chunk in its own `process` call and returns the concatenated replies.
fn feed(screen: &mut Screen, chunks: &[&[u8]]) -> Vec<u8> {
    let mut replies = Vec::new();
    for chunk in chunks {
        replies.extend(screen.process(&crlf(chunk)));
    }
    replies
}

fn screen_after(cols: u16, rows: u16, chunks: &[&[u8]]) -> Screen {
    let mut screen = new_screen(cols, rows);
    feed(&mut screen, chunks);
    screen
}

fn assert_rows(screen: &Screen, expected: &[&str]) {
    assert_eq!(
        screen.visible_rows(),
        expected
            .iter()
            .map(|row| row.to_string())
            .collect::<Vec<_>>()
    );
}

/// Returns every retained row above the screen, transcript included, as the output
/// view reads them (the scrollback view keeps only the configured rows).
fn history_lines(screen: &Screen) -> Vec<String> {
    let text = screen.output_since(None).text;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[..screen.history_len()].to_vec()
}

// Progress lines and cursor movement.

#[test]
fn progress_line_keeps_final_state() {
    let screen = screen_after(
        30,
        4,
        &[
            b"progress 10%\rprogress 50%\rprogress 100%\n",
            b"abcdef\rXY\n",
        ],
    );
    assert_rows(&screen, &["progress 100%", "XYcdef", "", ""]);
    assert_eq!(screen.cursor_position(), (2, 0));

    let output = screen.output_since(None).text;
    assert_eq!(output.matches("progress 100%").count(), 1);
    assert_eq!(output.matches("XYcdef").count(), 1);
    assert!(!output.contains("10%"), "{output:?}");
    assert!(!output.contains("50%"), "{output:?}");
}

#[test]
fn multi_row_progress_redrawn_in_place() {
    let screen = screen_after(
        30,
        5,
        &[
            b"layer1: 0%\nlayer2: 0%\nlayer3: 0%\n",
            b"\x1b[3A\r\x1b[2Klayer1: done\n\x1b[2Klayer2: 50%\n\x1b[2Klayer3: 7%\n",
        ],
    );
    assert_rows(
        &screen,
        &["layer1: done", "layer2: 50%", "layer3: 7%", "", ""],
    );
    assert_eq!(screen.cursor_position(), (3, 0));
}

#[test]
fn pending_wrap_reports_width_column() {
    let mut screen = new_screen(10, 3);
    feed(&mut screen, &[b"0123456789"]);
    assert_rows(&screen, &["0123456789", "", ""]);
    assert_eq!(screen.cursor_position(), (0, 10));

    feed(&mut screen, &[b"X"]);
    assert_rows(&screen, &["0123456789", "X", ""]);
    assert_eq!(screen.cursor_position(), (1, 1));
}

#[test]
fn scroll_region_keeps_status_line() {
    let screen = screen_after(
        20,
        6,
        &[
            b"\x1b[2J\x1b[H",
            b"A\r\nB\r\nC\r\nD\r\nE",
            b"\x1b[6;1HSTATUS",
            b"\x1b[1;5r\x1b[5;1H\n\x1b[5;1HX1\x1b[1;6r",
            b"\x1b[1;5r\x1b[5;1H\n\x1b[5;1HX2\x1b[1;6r",
            b"\x1b[1;5r\x1b[5;1H\n\x1b[5;1HX3\x1b[1;6r",
        ],
    );
    assert_rows(&screen, &["D", "E", "X1", "X2", "X3", "STATUS"]);
    assert_eq!(screen.cursor_position(), (0, 0));
    assert_eq!(screen.history_len(), 3);
    assert_eq!(history_lines(&screen), ["A", "B", "C"]);
}

const FILL: &[u8] = b"\x1b[2J\x1b[HL1\r\nL2\r\nL3\r\nL4\r\nL5\r\nL6";
const DELETE_IN_REGION: &[u8] = b"\x1b[2;5r\x1b[2;1H\x1b[M\x1b[r";
const INSERT_OUTSIDE_REGION: &[u8] = b"\x1b[2;4r\x1b[6;1H\x1b[L\x1b[r";

#[test]
fn delete_line_inside_scroll_region() {
    let screen = screen_after(20, 6, &[FILL, DELETE_IN_REGION]);
    assert_rows(&screen, &["L1", "L3", "L4", "L5", "", "L6"]);
    assert_eq!(screen.cursor_position(), (0, 0));
}

#[test]
fn insert_line_outside_scroll_region_is_ignored() {
    let screen = screen_after(20, 6, &[FILL, INSERT_OUTSIDE_REGION]);
    assert_rows(&screen, &["L1", "L2", "L3", "L4", "L5", "L6"]);
    assert_eq!(screen.cursor_position(), (0, 0));
}

#[test]
fn delete_then_insert_line_equals_delete() {
    let screen = screen_after(20, 6, &[FILL, DELETE_IN_REGION, INSERT_OUTSIDE_REGION]);
    assert_rows(&screen, &["L1", "L3", "L4", "L5", "", "L6"]);
    assert_eq!(screen.cursor_position(), (0, 0));
}

#[test]
fn erase_display_keeps_scrollback() {
    let screen = screen_after(
        20,
        4,
        &[
            b"l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\n",
            b"\x1b[H\x1b[2J",
            b"after-clear\n",
        ],
    );
    assert_rows(&screen, &["after-clear", "", "", ""]);
    assert_eq!(screen.cursor_position(), (1, 0));
    assert_eq!(history_lines(&screen)[..5], ["l1", "l2", "l3", "l4", "l5"]);
}

#[test]
fn erase_scrollback_empties_history() {
    let screen = screen_after(
        20,
        4,
        &[
            b"l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\n",
            b"\x1b[H\x1b[2J\x1b[3J",
            b"after-clear\n",
        ],
    );
    assert_rows(&screen, &["after-clear", "", "", ""]);
    assert_eq!(screen.cursor_position(), (1, 0));
    assert_eq!(screen.history_len(), 0);
    assert_eq!(screen.scrollback_text(), "after-clear");
}

#[test]
fn alternate_screen_hides_and_restores_main() {
    let mut screen = screen_after(30, 5, &[b"before\n", b"\x1b[?1049h\x1b[H\x1b[2JALT SCREEN"]);
    assert_rows(&screen, &["ALT SCREEN", "", "", "", ""]);
    assert_eq!(screen.cursor_position(), (0, 10));
    assert!(screen.alternate_screen());

    feed(&mut screen, &[b"\x1b[?1049l", b"after\n"]);
    assert_rows(&screen, &["before", "after", "", "", ""]);
    assert_eq!(screen.cursor_position(), (2, 0));
    assert!(!screen.alternate_screen());
    assert_eq!(screen.history_len(), 0);
    assert!(!screen.scrollback_text().contains("ALT"));
}

#[test]
fn output_view_reads_main_screen_during_alternate() {
    let mut screen = screen_after(30, 5, &[b"before\n"]);
    let cursor = screen.current_cursor();
    feed(&mut screen, &[b"\x1b[?1049h\x1b[H\x1b[2JALT SCREEN"]);
    assert_eq!(screen.current_cursor(), cursor);
    assert_eq!(screen.output_since(None).text, "before\n");
    assert_eq!(screen.history_len(), 0);
    assert_eq!(screen.scrollback_text(), "before");
    assert!(screen.alternate_screen());
    assert_rows(&screen, &["ALT SCREEN", "", "", "", ""]);
}

// Wide characters and degenerate sizes.

#[test]
fn cjk_text_has_no_gaps() {
    let screen = screen_after(
        20,
        3,
        &[b"\xe4\xbd\xa0\xe5\xa5\xbd\xe5\x97\x8e abc\n\xe3\x81\x82\xe3\x81\x84ab\n"],
    );
    assert_rows(&screen, &["你好嗎 abc", "あいab", ""]);
    assert_eq!(screen.cursor_position(), (2, 0));
}

#[test]
fn emoji_takes_two_columns() {
    let screen = screen_after(20, 3, &["👍x ok\n".as_bytes(), "👍x".as_bytes()]);
    assert_rows(&screen, &["👍x ok", "👍x", ""]);
    assert_eq!(screen.cursor_position(), (1, 3));
}

#[test]
fn zwj_sequence_keeps_code_points() {
    let screen = screen_after(
        20,
        3,
        &["[👨\u{200d}👩\u{200d}👧]|\n[❤\u{fe0f}]|\n".as_bytes()],
    );
    assert_rows(&screen, &["[👨\u{200d}👩\u{200d}👧]|", "[❤\u{fe0f}]|", ""]);
}

#[test]
fn wide_glyph_dropped_in_one_column() {
    let screen = screen_after(1, 3, &[b"\xe2\xba\x80ok"]);
    assert_rows(&screen, &["o", "k", ""]);
    assert_eq!(screen.cursor_position(), (1, 1));
}

#[test]
fn wide_glyphs_in_five_by_one() {
    let screen = screen_after(5, 1, &["中文中文中文中文".as_bytes()]);
    assert_rows(&screen, &["中文"]);
    assert_eq!(screen.history_len(), 3);
    assert_eq!(screen.cursor_position(), (0, 4));
}

#[test]
fn one_by_one_screen_scrolls() {
    let screen = screen_after(1, 1, &[b"ab\ncd"]);
    assert_rows(&screen, &["d"]);
    assert_eq!(screen.history_len(), 3);
    assert_eq!(history_lines(&screen), ["a", "b", "c"]);
    assert_eq!(screen.cursor_position(), (0, 1));
}

#[test]
fn saved_cursor_clamped_after_shrink() {
    let mut screen = screen_after(80, 24, &[b"\x1b[20;70H\x1b7"]);
    screen.resize(TermSize { cols: 40, rows: 10 });
    feed(&mut screen, &[b"\x1b8X"]);
    assert_eq!(screen.visible_rows()[9], format!("{}X", " ".repeat(39)));
    assert_eq!(screen.cursor_position(), (9, 40));
}

#[test]
fn resize_cutting_wide_glyph_to_one_column() {
    let mut screen = screen_after(4, 2, &["你".as_bytes()]);
    screen.resize(TermSize { cols: 1, rows: 2 });
    feed(&mut screen, &[b"\x1b[K"]);
    assert_rows(&screen, &["", ""]);
    assert_eq!(screen.cursor_position(), (0, 0));
}

#[test]
fn resize_cutting_wide_glyph_clears_it() {
    let mut screen = screen_after(4, 2, &["ab你".as_bytes()]);
    screen.resize(TermSize { cols: 3, rows: 2 });
    feed(&mut screen, &[b"\x1b[1;3HZ"]);
    assert_rows(&screen, &["abZ", ""]);
    assert_eq!(screen.cursor_position(), (0, 3));
    assert!(!screen.screen_text().contains('\u{fffd}'));
}

// UTF-8 split across reads.

#[test]
fn utf8_split_across_reads() {
    let screen = screen_after(
        20,
        3,
        &[
            b"\x61\xc3",
            b"\xa9\x62\xc3\xa9\x7c\x0a",
            b"\x42\xcc",
            b"\x81\x43\xe2\x94\x80\x7c\x0a",
        ],
    );
    assert_rows(&screen, &["aébé|", "B\u{301}C─|", ""]);
    assert_eq!(screen.cursor_position(), (2, 0));
}

const UTF8_CORPUS: &[&str] = &["aébé|", "héllo wörld|", "x你y你|", "x👍y|", "B\u{301}C─|"];

#[test]
fn utf8_every_single_split_point() {
    for text in UTF8_CORPUS {
        let bytes = crlf(format!("{text}\n{text}").as_bytes());
        let expected = screen_after(20, 4, &[&bytes]).visible_rows();
        for split in 1..bytes.len() {
            let mut screen = new_screen(20, 4);
            screen.process(&bytes[..split]);
            screen.process(&bytes[split..]);
            assert_eq!(screen.visible_rows(), expected, "{text:?} split at {split}");
        }
    }
}

#[test]
fn utf8_double_split_points() {
    for text in UTF8_CORPUS {
        let bytes = crlf(text.as_bytes());
        let expected = screen_after(20, 3, &[&bytes]).visible_rows();
        for first in 1..bytes.len() {
            for second in first + 1..bytes.len() {
                let mut screen = new_screen(20, 3);
                screen.process(&bytes[..first]);
                screen.process(&bytes[first..second]);
                screen.process(&bytes[second..]);
                assert_eq!(
                    screen.visible_rows(),
                    expected,
                    "{text:?} split at {first} and {second}"
                );
            }
        }
    }
}

#[test]
fn utf8_split_three_byte_character() {
    let screen = screen_after(60, 3, &[b"\xe4\xbd", b"\xa0X\n"]);
    assert_eq!(screen.visible_rows()[0], "你X");
    assert!(!screen.scrollback_text().contains('\u{fffd}'));
}

#[test]
fn utf8_stray_bytes_pass_at_once() {
    let mut screen = new_screen(20, 3);
    // A stray continuation byte and an invalid lead byte are not held back: they show
    // as U+FFFD, and the `a` after them in the same read.
    screen.process(b"\x80\xffa");
    assert_eq!(screen.visible_rows()[0], "\u{fffd}\u{fffd}a");
    // A held lead byte is flushed at end of file.
    screen.process(b"b\xc3");
    assert_eq!(screen.visible_rows()[0], "\u{fffd}\u{fffd}ab");
    screen.finish();
    screen.process(b"c");
    assert_eq!(screen.visible_rows()[0], "\u{fffd}\u{fffd}ab\u{fffd}c");
}

#[test]
fn incomplete_utf8_tail_lengths() {
    use super::filter::incomplete_utf8_tail;
    assert_eq!(incomplete_utf8_tail(b"a\xc3"), 1);
    assert_eq!(incomplete_utf8_tail(b"a\xc3\xa9"), 0);
    assert_eq!(incomplete_utf8_tail(b"\xe4\xbd"), 2);
    assert_eq!(incomplete_utf8_tail(b"\xf0\x9f\x91"), 3);
    assert_eq!(incomplete_utf8_tail(b"\xf0\x9f\x91\x8d"), 0);
    assert_eq!(incomplete_utf8_tail(b"a\x80"), 0);
    assert_eq!(incomplete_utf8_tail(b"a\xff"), 0);
    assert_eq!(incomplete_utf8_tail(b"\xc0"), 0);
}

// Scrollback and history.

fn numbered_lines(count: usize, prefix: &str) -> Vec<u8> {
    (1..=count)
        .map(|number| format!("{prefix}{number}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn scrollback_after_thousand_lines() {
    let screen = screen_after(80, 24, &[&numbered_lines(1000, "")]);
    let rows = screen.visible_rows();
    for (row, number) in (978..=1000).enumerate() {
        assert_eq!(rows[row], number.to_string());
    }
    assert_eq!(rows[23], "");
    assert_eq!(screen.cursor_position(), (23, 0));
    assert_eq!(screen.history_len(), 977);
    let expected: Vec<String> = (1..=1000).map(|number| number.to_string()).collect();
    assert_eq!(screen.scrollback_text(), expected.join("\n"));
}

#[test]
fn resize_keeps_history() {
    let mut screen = screen_after(40, 24, &[&numbered_lines(50, "L")]);
    assert_eq!(screen.visible_rows()[0], "L28");
    assert_eq!(screen.visible_rows()[22], "L50");
    assert_eq!(screen.history_len(), 27);

    screen.resize(TermSize { cols: 40, rows: 30 });
    let rows = screen.visible_rows();
    for (row, number) in (22..=50).enumerate() {
        assert_eq!(rows[row], format!("L{number}"));
    }
    assert_eq!(rows[29], "");
    assert_eq!(screen.cursor_position(), (29, 0));
    assert_eq!(screen.history_len(), 21);

    screen.resize(TermSize { cols: 40, rows: 10 });
    let rows = screen.visible_rows();
    for (row, number) in (42..=50).enumerate() {
        assert_eq!(rows[row], format!("L{number}"));
    }
    assert_eq!(rows[9], "");
    assert_eq!(screen.cursor_position(), (9, 0));
    assert_eq!(screen.history_len(), 41);
    assert_eq!(screen.scrollback_text().lines().next(), Some("L1"));
}

const SMALL_LIMITS: ScreenLimits = ScreenLimits {
    scrollback_rows: 5,
    transcript_bytes: 200,
};

#[test]
fn transcript_keeps_newest_rows() {
    let mut screen = Screen::new(TermSize { cols: 20, rows: 4 }, SMALL_LIMITS);
    let start = screen.current_cursor();
    feed(&mut screen, &[&numbered_lines(200, "line ")]);

    let history = history_lines(&screen);
    assert!(history.len() > 5, "{history:?}");
    let first: usize = history[0].strip_prefix("line ").unwrap().parse().unwrap();
    let expected: Vec<String> = (first..first + history.len())
        .map(|number| format!("line {number}"))
        .collect();
    assert_eq!(history, expected);
    assert_eq!(history.last().unwrap(), "line 197");

    let slice = screen.output_since(Some(start));
    assert!(slice.dropped_chars > 0);
    assert!(
        slice.text.starts_with(&format!("line {first}\n")),
        "{:?}",
        slice.text
    );
    assert!(slice.text.ends_with("line 200\n"), "{:?}", slice.text);
}

#[test]
fn dropped_chars_counts_lost_rows() {
    let mut screen = Screen::new(
        TermSize { cols: 20, rows: 2 },
        ScreenLimits {
            scrollback_rows: 0,
            transcript_bytes: 0,
        },
    );
    let start = screen.current_cursor();
    // Ten lines on a 2-row screen: the first 8 rows (`abcd`, 4 characters each) scroll
    // off and none can be kept.
    feed(
        &mut screen,
        &[b"abcd\nabcd\nabcd\nabcd\nabcd\nabcd\nabcd\nabcd\nabcd\nlast"],
    );
    let slice = screen.output_since(Some(start));
    assert_eq!(slice.dropped_chars, 32);
    assert_eq!(slice.text, "abcd\nlast");
}

#[test]
fn output_cursor_survives_resizes() {
    let mut screen = Screen::new(TermSize { cols: 20, rows: 6 }, SMALL_LIMITS);
    feed(&mut screen, &[&numbered_lines(10, "a")]);
    let cursor = screen.current_cursor();
    feed(&mut screen, &[&numbered_lines(4, "b")]);

    let expected = "b1\nb2\nb3\nb4\n";
    assert_eq!(screen.output_since(Some(cursor)).text, expected);
    screen.resize(TermSize { cols: 20, rows: 3 });
    assert_eq!(screen.output_since(Some(cursor)).text, expected);
    screen.resize(TermSize { cols: 20, rows: 20 });
    assert_eq!(screen.output_since(Some(cursor)).text, expected);
    screen.resize(TermSize { cols: 20, rows: 4 });
    feed(&mut screen, &[b"b5\n"]);
    assert_eq!(
        screen.output_since(Some(cursor)).text,
        "b1\nb2\nb3\nb4\nb5\n"
    );
}

#[test]
fn growing_past_scrollback_adds_rows_at_bottom() {
    let mut screen = Screen::new(TermSize { cols: 20, rows: 4 }, SMALL_LIMITS);
    feed(&mut screen, &[&numbered_lines(30, "r")]);
    let before = screen.output_since(None).text;
    assert_eq!(screen.history_len(), before.lines().count() - 3);

    screen.resize(TermSize { cols: 20, rows: 20 });
    assert_eq!(screen.output_since(None).text, before);
    let rows = screen.visible_rows();
    assert_eq!(rows[0], "r23");
    assert_eq!(rows[7], "r30");
    assert_eq!(screen.cursor_position(), (8, 0));
    assert_eq!(screen.output_since(Some(screen.current_cursor())).text, "");
}

#[test]
fn output_since_joins_soft_wrapped_rows() {
    let mut screen = new_screen(10, 4);
    let start = screen.current_cursor();
    feed(
        &mut screen,
        &[b"0123456789abcdefghijklmnopqrstuvwxyz  \nnext   \n"],
    );
    let slice = screen.output_since(Some(start));
    assert_eq!(slice.text, "0123456789abcdefghijklmnopqrstuvwxyz\nnext\n");
    assert_eq!(slice.dropped_chars, 0);
    assert_eq!(screen.scrollback_text().lines().next(), Some("0123456789"));
}

#[test]
fn output_since_rereads_cursor_row() {
    let mut screen = new_screen(20, 4);
    feed(&mut screen, &[b"$ "]);
    let cursor = screen.output_since(None).cursor;
    feed(&mut screen, &[b"ls\nfile\n$ "]);
    assert_eq!(screen.output_since(Some(cursor)).text, "$ ls\nfile\n$");
}

#[test]
fn output_cursor_from_elsewhere_clamps_to_end() {
    let mut screen = screen_after(20, 4, &[b"one\ntwo\n"]);
    let future = OutputCursor {
        row: 1000,
        tag: screen.current_cursor().tag,
    };
    assert_eq!(screen.output_since(Some(future)).text, "");
    let foreign = OutputCursor {
        row: 0,
        tag: screen.current_cursor().tag.wrapping_add(1),
    };
    feed(&mut screen, &[b"three"]);
    assert_eq!(screen.output_since(Some(foreign)).text, "three");
}

#[test]
fn output_cursor_round_trips_as_text() {
    let cursor = OutputCursor {
        row: 1234,
        tag: 56789,
    };
    assert_eq!(cursor.to_string(), "1234.56789");
    assert_eq!("1234.56789".parse::<OutputCursor>(), Ok(cursor));
    for bad in [
        "",
        "12",
        "12.",
        ".5",
        "a.b",
        "1.2.3",
        "-1.2",
        "99999999999999999999999.1",
    ] {
        let error = bad.parse::<OutputCursor>().unwrap_err();
        assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        assert!(error.to_string().contains("ROW.TAG"), "{error}");
    }
}

#[test]
fn erase_scrollback_reports_dropped_chars() {
    let mut screen = new_screen(20, 3);
    let start = screen.current_cursor();
    feed(&mut screen, &[b"aaaa\nbbbb\ncccc\ndddd\n"]);
    feed(&mut screen, &[b"\x1b[H\x1b[2J\x1b[3Jnew\n"]);
    let slice = screen.output_since(Some(start));
    // ED 2 saves `cccc` and `dddd` into history first, so ED 3 erases all four rows.
    assert_eq!(slice.dropped_chars, 16);
    assert_eq!(slice.text, "new\n");
    assert_eq!(screen.history_len(), 0);
}

#[test]
fn output_after_clear_is_read_from_old_cursor() {
    let mut screen = new_screen(30, 4);
    feed(&mut screen, &[b"l1\nl2\n$ "]);
    let start = screen.current_cursor();
    // What `tput clear; echo after-clear` prints at a prompt.
    feed(
        &mut screen,
        &[b"tput clear; echo after-clear\r\n\x1b[H\x1b[2Jafter-clear\r\n$ "],
    );
    let slice = screen.output_since(Some(start));
    assert_eq!(slice.text, "$ tput clear; echo after-clear\nafter-clear\n$");
    assert_eq!(
        history_lines(&screen),
        ["l1", "l2", "$ tput clear; echo after-clear"]
    );
}

#[test]
fn erase_from_home_saves_rows_too() {
    let mut screen = new_screen(30, 4);
    feed(&mut screen, &[b"old\n$ "]);
    let start = screen.current_cursor();
    feed(&mut screen, &[b"\x1b[H\x1b[Jfresh"]);
    assert_eq!(screen.output_since(Some(start)).text, "$\nfresh");
    assert_rows(&screen, &["fresh", "", "", ""]);
}

#[test]
fn erase_inside_scroll_region_saves_nothing() {
    let mut screen = new_screen(30, 4);
    feed(&mut screen, &[b"keep\n\x1b[2;3r\x1b[H\x1b[2J"]);
    assert_eq!(screen.history_len(), 0);
}

#[test]
fn full_reset_keeps_history() {
    let mut screen = new_screen(20, 3);
    let start = screen.current_cursor();
    feed(&mut screen, &[b"one\ntwo\nthree\nfour\n", b"\x1bcafter"]);
    assert_rows(&screen, &["after", "", ""]);
    assert_eq!(history_lines(&screen), ["one", "two"]);
    assert_eq!(screen.output_since(Some(start)).text, "one\ntwo\nafter");
}

// Control sequences never reach the text; tabs expand.

#[test]
fn title_and_prompt_marks_stay_out_of_text() {
    let screen = screen_after(
        30,
        3,
        &[
            b"\x1b]0;my title\x07visible\n",
            b"\x1b]133;A\x07$ \x1b]133;B\x07ls\n",
        ],
    );
    assert_rows(&screen, &["visible", "$ ls", ""]);
    assert_eq!(screen.title(), "my title");
    let output = screen.output_since(None).text;
    assert!(
        !output.contains("title") && !output.contains("133") && !output.contains('\x1b'),
        "{output:?}"
    );
}

#[test]
fn title_split_across_reads() {
    let screen = screen_after(30, 3, &[b"\x1b]2;sp", b"lit\x1b", b"\\text"]);
    assert_eq!(screen.title(), "split");
    assert_rows(&screen, &["text", "", ""]);
}

#[test]
fn sgr_is_stripped() {
    let screen = screen_after(
        30,
        3,
        &[b"\x1b[31mred\x1b[0m \x1b[1;44mbold\x1b[0m plain\n"],
    );
    assert_eq!(screen.visible_rows()[0], "red bold plain");
}

#[test]
fn tabs_expand_to_default_stops() {
    let screen = screen_after(30, 3, &[b"a\tb\tc\n12345678\tx\n"]);
    assert_rows(&screen, &["a       b       c", "12345678        x", ""]);
}

// Rendering gaps of vt100 0.18.1 fixed in front of it. Expected rows are what tmux 3.x
// shows for the same bytes.

#[test]
fn dec_graphics_draws_box() {
    let screen = screen_after(
        20,
        4,
        &[b"\x1b(0lqqk\x1b(B\n\x1b(0x  x\x1b(B\n\x1b)0\x0emqqj\x0f ok\n"],
    );
    assert_rows(&screen, &["┌──┐", "│  │", "└──┘ ok", ""]);
}

#[test]
fn dec_graphics_full_table() {
    let screen = screen_after(40, 3, &[b"\x1b(0_`abcdefghijklmnopqrstuvwxyz{|}~\x1b(B~"]);
    assert_eq!(
        screen.visible_rows()[0],
        "_◆▒␉␌␍␊°±␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│≤≥π≠£·~"
    );
}

#[test]
fn dec_graphics_designation_split_across_reads() {
    let screen = screen_after(20, 3, &[b"\x1b", b"(", b"0q", b"q\x1b(", b"Bq"]);
    assert_eq!(screen.visible_rows()[0], "──q");
}

#[test]
fn dec_graphics_restored_with_cursor() {
    let screen = screen_after(20, 3, &[b"\x1b(0\x1b7\x1b(Bq\x1b8q"]);
    assert_eq!(screen.visible_rows()[0], "─");
}

#[test]
fn insert_mode_shifts_row() {
    let screen = screen_after(
        10,
        3,
        &[b"abcdef\r\x1b[4hXY\x1b[4l\nabcdefghij\x1b[1;3H\x1b[4h12\x1b[4l"],
    );
    assert_rows(&screen, &["XY12abcdef", "abcdefghij", ""]);
    assert_eq!(screen.cursor_position(), (0, 4));
}

#[test]
fn insert_mode_with_wide_character() {
    let screen = screen_after(10, 3, &["abc\r\x1b[4h你\x1b[4lZ".as_bytes()]);
    assert_eq!(screen.visible_rows()[0], "你Zbc");
}

#[test]
fn tab_stops_set_and_cleared() {
    let screen = screen_after(
        30,
        4,
        &[b"\x1b[3g\x1b[1;5H\x1bH\x1b[1;12H\x1bH\r\ta\tb\tc\n\x1b[3g\ta\n1\t2"],
    );
    assert_rows(
        &screen,
        &[
            "    a      b                 c",
            "                             a",
            "1                            2",
            "",
        ],
    );
    assert_eq!(screen.cursor_position(), (2, 30));
}

#[test]
fn tab_backward_and_clear_one_stop() {
    let screen = screen_after(
        30,
        4,
        &[b"abcdefghijklmnopqrs\x1b[2Z<\n\x1b[1;17H\x1b[g\r\tX\tY"],
    );
    // The stop at column 16 is cleared, so the second tab goes to column 24.
    assert_eq!(screen.visible_rows()[0], "abcdefghXjklmnopqrs     Y");
    assert_eq!(screen.cursor_position(), (0, 25));
}

#[test]
fn tab_forward_repeats() {
    // tmux 3.x ignores CHT; the expected row follows xterm (two stops forward).
    let screen = screen_after(30, 3, &[b"ab\x1b[2Ic\x1b[Id"]);
    assert_eq!(screen.visible_rows()[0], "ab              c       d");
}

#[test]
fn autowrap_off_overwrites_last_column() {
    let screen = screen_after(10, 3, &[b"\x1b[?7l0123456789ABC\n\x1b[?7hxyz"]);
    assert_rows(&screen, &["012345678C", "xyz", ""]);
    assert_eq!(screen.cursor_position(), (1, 3));
}

#[test]
fn autowrap_off_across_reads() {
    let screen = screen_after(10, 3, &[b"\x1b[?7l01234", b"56789", b"AB", b"\rX"]);
    assert_rows(&screen, &["X12345678B", "", ""]);
}

#[test]
fn alignment_test_fills_screen() {
    let screen = screen_after(6, 3, &[b"hello\x1b#8"]);
    assert_rows(&screen, &["EEEEEE", "EEEEEE", "EEEEEE"]);
    assert_eq!(screen.cursor_position(), (0, 0));
}

#[test]
fn index_next_line_and_saved_cursor() {
    let screen = screen_after(10, 4, &[b"ab\x1bDcd\x1bEef\x1b[sgh\x1b[2;1H\x1b[u!"]);
    assert_rows(&screen, &["ab", "  cd", "ef!h", ""]);
    assert_eq!(screen.cursor_position(), (2, 3));
}

#[test]
fn full_reset_clears_filter_modes() {
    let screen = screen_after(
        10,
        3,
        &[b"\x1b(0\x1b[4h\x1b[?7l\x1b[3g\x1bcq\ta\x1b[1;8Hbcde"],
    );
    assert_rows(&screen, &["q      bcd", "e", ""]);
    assert_eq!(screen.cursor_position(), (1, 1));
}

// Terminal queries.

#[test]
fn cursor_position_report() {
    let mut screen = new_screen(80, 24);
    assert_eq!(
        screen.process(b"\x1b[H\x1b[2J\x1b[5;7H\x1b[6n"),
        b"\x1b[5;7R"
    );
}

#[test]
fn cursor_position_report_at_stream_point() {
    let mut screen = new_screen(10, 5);
    assert_eq!(
        screen.process(b"\x1b[6nabc\x1b[6n0123456789\x1b[?6n"),
        b"\x1b[1;1R\x1b[1;4R\x1b[?2;4R"
    );
    // In the pending-wrap state the last column is reported.
    assert_eq!(screen.process(b"\x1b[H0123456789\x1b[6n"), b"\x1b[1;10R");
}

#[test]
fn query_split_across_reads_answers_once() {
    let mut screen = new_screen(80, 24);
    assert_eq!(screen.process(b"ab\x1b["), b"");
    assert_eq!(screen.process(b"6n"), b"\x1b[1;3R");
    assert_eq!(screen.process(b""), b"");
}

#[test]
fn status_and_device_attributes() {
    let mut screen = new_screen(80, 24);
    assert_eq!(screen.process(b"\x1b[5n"), b"\x1b[0n");
    assert_eq!(screen.process(b"\x1b[c"), b"\x1b[?62;22c");
    assert_eq!(screen.process(b"\x1b[0c"), b"\x1b[?62;22c");
    assert_eq!(screen.process(b"\x1b[>c"), b"\x1b[>0;276;0c");
    assert_eq!(screen.process(b"\x1b[18t"), b"\x1b[8;24;80t");
}

#[test]
fn other_queries_get_no_answer() {
    let mut screen = new_screen(80, 24);
    for query in [
        &b"\x1b]10;?\x07"[..],
        b"\x1b]11;?\x1b\\",
        b"\x1b[21t",
        b"\x1b[?u",
        b"\x1bP$qm\x1b\\",
        b"\x1b]52;c;?\x07",
    ] {
        assert_eq!(screen.process(query), b"", "{query:?}");
    }
    assert_eq!(screen.screen_text(), "");
}

// Robustness.

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Bytes that mix text, UTF-8, controls and escape sequences.
fn random_bytes(random: &mut XorShift, length: usize) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"\x1b[",
        b"\x1b]0;t\x07",
        b"\x1b(0",
        b"\x1b(B",
        b"\x1b[4h",
        b"\x1b[4l",
        b"\x1b[?7l",
        b"\x1b[?7h",
        b"\x1bH",
        b"\x1b[3g",
        b"\x1b[?1049h",
        b"\x1b[?1049l",
        b"\x1b[3J",
        b"\x1b[2J",
        b"\x1bc",
        b"\x1b#8",
        b"\x1b[2;5r",
        b"\x1b[Z",
        b"\x1b[3I",
        b"\x1b[6n",
        b"\x1b7",
        b"\x1b8",
        "你".as_bytes(),
        "é".as_bytes(),
        "👍".as_bytes(),
        "\u{301}".as_bytes(),
        b"\r\n",
        b"\t",
        b"\x08",
        b"\x1bP",
        b"\x1b\\",
        b"\x0e",
        b"\x0f",
    ];
    let mut bytes = Vec::with_capacity(length);
    while bytes.len() < length {
        match random.below(4) {
            0 => bytes.extend_from_slice(PIECES[random.below(PIECES.len() as u64) as usize]),
            1 => bytes.push(random.below(256) as u8),
            _ => bytes.extend((0..random.below(12)).map(|_| b'a' + random.below(26) as u8)),
        }
        if random.below(3) == 0 {
            bytes.extend(format!("{}", random.below(200)).bytes());
            bytes.push(
                [b';', b'H', b'm', b'J', b'K', b'@', b'P', b'L', b'M'][random.below(9) as usize],
            );
        }
    }
    bytes
}

#[test]
fn random_input_and_resizes_do_not_panic() {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..40 {
        let mut screen = Screen::new(
            TermSize {
                cols: 1 + random.below(30) as u16,
                rows: 1 + random.below(10) as u16,
            },
            SMALL_LIMITS,
        );
        for _ in 0..30 {
            let bytes = random_bytes(&mut random, 200);
            screen.process(&bytes);
            if random.below(4) == 0 {
                screen.resize(TermSize {
                    cols: 1 + random.below(30) as u16,
                    rows: 1 + random.below(10) as u16,
                });
            }
            let cursor = screen.current_cursor();
            screen.output_since(Some(cursor));
            screen.output_since(None);
            screen.scrollback_text();
            screen.visible_rows();
        }
        screen.finish();
        assert_eq!(screen.resets(), 0);
    }
}

#[test]
fn random_chunking_matches_single_read() {
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    for _ in 0..30 {
        let bytes = random_bytes(&mut random, 600);
        let mut whole = new_screen(24, 8);
        let whole_replies = whole.process(&bytes);

        let mut chunked = new_screen(24, 8);
        let mut chunked_replies = Vec::new();
        let mut start = 0;
        while start < bytes.len() {
            let end = (start + 1 + random.below(12) as usize).min(bytes.len());
            chunked_replies.extend(chunked.process(&bytes[start..end]));
            start = end;
        }
        assert_eq!(
            chunked.visible_rows(),
            whole.visible_rows(),
            "input {bytes:?}"
        );
        assert_eq!(chunked.cursor_position(), whole.cursor_position());
        assert_eq!(chunked.scrollback_text(), whole.scrollback_text());
        assert_eq!(chunked_replies, whole_replies);
        assert_eq!(chunked.title(), whole.title());
    }
}

#[test]
fn huge_single_line_stays_bounded() {
    let limits = ScreenLimits {
        scrollback_rows: 100,
        transcript_bytes: 64 * 1024,
    };
    let mut screen = Screen::new(TermSize { cols: 80, rows: 24 }, limits);
    let chunk = vec![b'x'; 64 * 1024];
    // 2.5 MB on one line, which wraps into about 32,000 rows.
    for _ in 0..40 {
        screen.process(&chunk);
    }
    assert!(screen.history_len() <= 100 + 64 * 1024 / 80);
    assert!(screen.scrollback_text().len() < 64 * 1024 + 125 * 81);
    assert_eq!(screen.visible_rows()[0].len(), 80);
}

#[test]
fn screen_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Screen>();
}

// Recordings of full-screen programs at 80x24 (util-linux `script -f` inside a tmux 3.3a
// pane with TERM=xterm-256color), with the screen tmux showed at the end of each: a
// first line `cursor_row cursor_col alternate_on`, then the rows as `capture-pane -p`
// printed them.

fn assert_matches_recording(name: &str, recording: &[u8], reference: &str) -> Screen {
    let mut screen = new_screen(80, 24);
    for chunk in recording.chunks(4096) {
        screen.process(chunk);
    }
    let mut lines = reference.lines();
    let header: Vec<u16> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|field| field.parse().unwrap())
        .collect();
    let mut expected: Vec<String> = lines.map(str::to_owned).collect();
    expected.resize(24, String::new());

    let rows = screen.visible_rows();
    for (row, (actual, expected)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(actual, expected, "{name}: row {row}");
    }
    assert_eq!(
        screen.cursor_position(),
        (header[0], header[1]),
        "{name}: cursor"
    );
    assert_eq!(
        screen.alternate_screen(),
        header[2] == 1,
        "{name}: alternate screen"
    );
    screen
}

#[test]
fn vim_recording_matches_reference() {
    let screen = assert_matches_recording(
        "vim",
        include_bytes!("../../../tests/fixtures/screen/vim.bin"),
        include_str!("../../../tests/fixtures/screen/vim.screen"),
    );
    assert_eq!(screen.visible_rows()[0], "line number 43");
    assert_eq!(screen.visible_rows()[22], "line number 65");
    assert!(screen.bracketed_paste());
}

#[test]
fn less_recording_matches_reference() {
    let screen = assert_matches_recording(
        "less",
        include_bytes!("../../../tests/fixtures/screen/less.bin"),
        include_str!("../../../tests/fixtures/screen/less.screen"),
    );
    assert_eq!(screen.visible_rows()[0], "line number 150");
    assert_eq!(screen.visible_rows()[23], ":");
}

#[test]
fn top_recording_matches_reference() {
    let screen = assert_matches_recording(
        "top",
        include_bytes!("../../../tests/fixtures/screen/top.bin"),
        include_str!("../../../tests/fixtures/screen/top.screen"),
    );
    assert!(screen.visible_rows()[0].starts_with("top - "));
    assert!(!screen.alternate_screen());
    assert_eq!(screen.cursor_position(), (23, 80));
}

#[test]
fn man_recording_matches_reference() {
    let screen = assert_matches_recording(
        "man",
        include_bytes!("../../../tests/fixtures/screen/man.bin"),
        include_str!("../../../tests/fixtures/screen/man.screen"),
    );
    assert_eq!(
        screen.visible_rows()[23],
        " Manual page ls(1) line 1 (press h for help or q to quit)"
    );
    assert_eq!(screen.cursor_position(), (23, 57));
}

/// Bytes a bash with the project's prompt hook prints for `prompt`, a typed `command`
/// and its `output`, split wherever the hook prints a mark.
fn shell_round(nonce: &str, command: &str, output: &str, status: i32) -> Vec<u8> {
    format!(
        "{command}\n\x1b]133;C;{nonce}\x07{output}\x1b]133;D;{nonce};{status}\x07\x1b]133;A;{nonce}\x07$ \x1b]133;B;{nonce}\x07"
    )
    .into_bytes()
}

#[test]
fn marks_split_command_output() {
    let mut screen = new_screen(20, 5);
    screen.set_mark_nonce("n0".into());
    feed(&mut screen, &[b"\x1b]133;A;n0\x07$ \x1b]133;B;n0\x07"]);
    assert_eq!(screen.marks().prompts, 1);
    assert!(screen.marks().at_prompt);

    let round = shell_round("n0", "seq 3", "1\n2\n3\n", 0);
    // Split the round inside a mark, which the filter must join.
    let (head, tail) = round.split_at(12);
    feed(&mut screen, &[head, tail]);
    let marks = screen.marks();
    assert_eq!(marks.finished, 1);
    assert_eq!(marks.prompts, 2);
    let finished = marks.last_finished.expect("a finished command");
    assert_eq!(finished.status, Some(0));
    let start = finished.output_start.expect("a C mark").row;
    let slice = screen.output_between(start, finished.output_end);
    assert_eq!(slice.text, "1\n2\n3\n");
    assert_rows(&screen, &["$ seq 3", "1", "2", "3", "$"]);
}

#[test]
fn marks_cut_output_without_newline() {
    let mut screen = new_screen(20, 5);
    screen.set_mark_nonce("n0".into());
    feed(&mut screen, &[&shell_round("n0", "printf abc", "abc", 1)]);
    let finished = screen.marks().last_finished.expect("a finished command");
    assert_eq!(finished.status, Some(1));
    let start = finished.output_start.expect("a C mark").row;
    assert_eq!(
        screen.output_between(start, finished.output_end).text,
        "abc"
    );
    assert_rows(&screen, &["printf abc", "abc$", "", "", ""]);
}

#[test]
fn marks_with_another_nonce_are_ignored() {
    let mut screen = new_screen(20, 5);
    screen.set_mark_nonce("n0".into());
    feed(&mut screen, &[&shell_round("forged", "cat log", "x\n", 0)]);
    assert_eq!(*screen.marks(), marks::ShellMarks::default());
    assert_rows(&screen, &["cat log", "x", "$", "", ""]);
}

#[test]
fn marks_survive_scrolling_into_history() {
    let mut screen = new_screen(20, 3);
    screen.set_mark_nonce("n0".into());
    let output: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    feed(&mut screen, &[&shell_round("n0", "seq", &output, 0)]);
    let finished = screen.marks().last_finished.expect("a finished command");
    let start = finished.output_start.expect("a C mark").row;
    assert_eq!(
        screen.output_between(start, finished.output_end).text,
        output
    );
}

#[test]
fn typed_text_after_prompt() {
    let mut screen = new_screen(20, 5);
    screen.set_mark_nonce("n0".into());
    feed(&mut screen, &[b"\x1b]133;A;n0\x07$ \x1b]133;B;n0\x07"]);
    assert_eq!(screen.typed_at_prompt(), None);
    feed(&mut screen, &[b"rm -rf x #"]);
    assert_eq!(screen.typed_at_prompt().as_deref(), Some("rm -rf x #"));
    screen.submit_command();
    assert_eq!(screen.typed_at_prompt(), None);
}

#[test]
fn history_capacity_follows_cell_budget() {
    use super::emulator::{HISTORY_CELL_BUDGET, history_capacity};
    assert_eq!(history_capacity(10_000, 80), 10_000);
    assert_eq!(history_capacity(10_000, 1000), HISTORY_CELL_BUDGET / 1000);
    let limits = ScreenLimits {
        scrollback_rows: 10_000,
        transcript_bytes: 1 << 20,
    };
    let screen = Screen::new(
        TermSize {
            cols: 1000,
            rows: 500,
        },
        limits,
    );
    let capacity = screen.emulator.borrow().screen().scrollback_capacity();
    assert_eq!(capacity, HISTORY_CELL_BUDGET / 1000);
}

#[test]
fn widening_moves_history_out_of_budget() {
    let limits = ScreenLimits {
        scrollback_rows: 10_000,
        transcript_bytes: 1 << 20,
    };
    let mut screen = Screen::new(TermSize { cols: 10, rows: 4 }, limits);
    for line in 0..5000 {
        screen.process(format!("line {line}\r\n").as_bytes());
    }
    screen.process(b"tail");
    let visible = screen.visible_rows();
    let history = screen.scrollback_text();
    let cursor = screen.cursor_position();

    screen.resize(TermSize {
        cols: 1000,
        rows: 4,
    });

    let capacity = screen.emulator.borrow().screen().scrollback_capacity();
    assert!(
        capacity * 1000 <= super::emulator::HISTORY_CELL_BUDGET,
        "{capacity}"
    );
    assert_eq!(screen.visible_rows(), visible);
    assert_eq!(screen.cursor_position(), cursor);
    assert_eq!(screen.scrollback_text(), history);
    screen.process(b" more\r\nnext");
    assert_eq!(screen.visible_rows()[2], "tail more");
    assert_eq!(screen.visible_rows()[3], "next");
    let output = screen.output_since(None).text;
    assert!(output.ends_with("line 4999\ntail more\nnext"), "{output}");
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let screen = screen_after(20, 3, &[b"D\xff\xfeE", b" \xe4\xbd", b"\xa0 \xc3"]);
    assert_eq!(screen.visible_rows()[0], "D\u{fffd}\u{fffd}E 你");
    let mut screen = screen;
    screen.finish();
    assert_eq!(screen.visible_rows()[0], "D\u{fffd}\u{fffd}E 你 \u{fffd}");
}

/// Inputs that panic vt100 0.16 after a shrinking resize, and a screen created with 0
/// rows: each leaves a screen of the current size, without a rebuild.
#[test]
fn vt100_crash_inputs_keep_the_screen() {
    let cases: [(TermSize, &[u8], TermSize, &[u8]); 2] = [
        (
            TermSize { cols: 4, rows: 2 },
            "a你".as_bytes(),
            TermSize { cols: 2, rows: 2 },
            b"\x1b[K",
        ),
        (
            TermSize { cols: 10, rows: 3 },
            "aaaaaaaaあ".as_bytes(),
            TermSize { cols: 9, rows: 3 },
            b"\x1b[1;9Hz",
        ),
    ];
    for (size, before, resized, after) in cases {
        let mut screen = Screen::new(size, LIMITS);
        screen.process(before);
        screen.resize(resized);
        screen.process(after);
        assert_eq!(screen.size(), resized);
        assert_eq!(screen.visible_rows().len(), usize::from(resized.rows));
        assert_eq!(screen.resets(), 0);
    }
    let mut screen = Screen::new(TermSize { cols: 80, rows: 0 }, LIMITS);
    screen.process(b"text");
    assert_eq!(screen.visible_rows(), ["text"]);
}

#[test]
fn scrollback_view_keeps_configured_rows() {
    let limits = ScreenLimits {
        scrollback_rows: 10,
        transcript_bytes: 1 << 20,
    };
    let mut screen = Screen::new(TermSize { cols: 20, rows: 3 }, limits);
    let lines: String = (1..=100).map(|n| format!("{n}\n")).collect();
    feed(&mut screen, &[lines.as_bytes()]);
    let text = screen.scrollback_text();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.first(), Some(&"89"));
    assert_eq!(rows.last(), Some(&"100"));
    assert!(rows.len() <= 10 + 3, "{rows:?}");
    // The output view still reaches back through the transcript.
    assert!(screen.output_since(None).text.starts_with("1\n2\n"));
}
