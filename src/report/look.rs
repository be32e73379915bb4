//! How text reports look where a person reads them: on a terminal, the
//! verdict in colour and long lines wrapped to its width; anywhere else
//! (CI logs, pipes, files) plain lines, never cut, so that they can be
//! searched.
//!
//! Colour follows the usual conventions: only when stdout is a terminal,
//! never with `NO_COLOR` set (to anything) or `TERM=dumb`.
//!
//! Not for: the live status line (`load::status`, drawn by indicatif).

use crate::verdict::Verdict;
use std::io::IsTerminal;

/// The terminal's traits, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    pub color: bool,
    /// Wrap to this many columns; `None`: never wrap.
    pub width: Option<usize>,
}

impl Look {
    /// Plain text: no colour, no wrapping.
    pub fn plain() -> Look {
        Look {
            color: false,
            width: None,
        }
    }

    /// What stdout is.
    pub fn stdout() -> Look {
        if !std::io::stdout().is_terminal() {
            return Look::plain();
        }
        let env = |k: &str| std::env::var_os(k);
        let color = env("NO_COLOR").is_none() && env("TERM").is_none_or(|t| t != "dumb");
        let width = terminal_size::terminal_size_of(std::io::stdout())
            .map(|(terminal_size::Width(cols), _)| usize::from(cols).clamp(40, 200));
        Look { color, width }
    }

    /// The verdict's word, coloured by what it means.
    pub fn verdict(&self, word: &str, verdict: Verdict, interrupted: bool) -> String {
        if !self.color {
            return word.to_string();
        }
        let style = console::Style::new().bold().force_styling(true);
        let style = match verdict {
            _ if interrupted => style.yellow(),
            Verdict::Pass => style.green(),
            Verdict::Fail => style.red(),
            Verdict::Invalid | Verdict::Interrupted => style.yellow(),
        };
        style.apply_to(word).to_string()
    }

    /// A label in a dimmer style (the left column of the summary).
    pub fn dim(&self, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        console::Style::new()
            .dim()
            .force_styling(true)
            .apply_to(text)
            .to_string()
    }

    /// `first` then `text`, wrapped to the width with every further line
    /// indented by as much as `first`; one line when there is no width.
    pub fn wrap(&self, first: &str, text: &str) -> String {
        let Some(width) = self.width else {
            return format!("{first}{text}");
        };
        let indent = " ".repeat(first.chars().count());
        // Pod names hold hyphens: a line breaks between words only.
        let opts = textwrap::Options::new(width)
            .initial_indent(first)
            .subsequent_indent(&indent)
            .word_splitter(textwrap::WordSplitter::NoHyphenation)
            .break_words(false);
        textwrap::fill(text, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_neither_coloured_nor_wrapped() {
        let p = Look::plain();
        assert_eq!(p.verdict("FAIL", Verdict::Fail, false), "FAIL");
        let long = "word ".repeat(100);
        assert_eq!(p.wrap("  x: ", &long), format!("  x: {long}"));
    }

    #[test]
    fn on_a_terminal_lines_wrap_under_their_label_and_verdicts_are_coloured() {
        let t = Look {
            color: true,
            width: Some(40),
        };
        let text = t.wrap(
            "    remedy:   ",
            &"add a preStop sleep of at least 1.2 s ".repeat(3),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 1, "{text}");
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{text}");
        assert!(lines[0].starts_with("    remedy:   add"));
        assert!(lines[1].starts_with("              ") && !lines[1].starts_with("               "));
        let fail = t.verdict("FAIL", Verdict::Fail, false);
        assert!(
            fail.contains("\u{1b}[") && fail.contains("FAIL"),
            "{fail:?}"
        );
        assert_ne!(
            fail,
            t.verdict("PASS", Verdict::Pass, false)
                .replace("PASS", "FAIL")
        );
    }
}
