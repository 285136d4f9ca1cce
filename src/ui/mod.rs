//! Everything a person sees: where output goes, colour, prompts and tables. Decided once, here.

pub mod error;
pub mod jq;
pub mod manual;
pub mod progress;

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

pub use error::{Kind, Result, Tag, XoneError};

/// Text that someone else or a remote system wrote, made safe for a terminal: C0 and C1
/// control characters (escape sequences, carriage returns, bells) are shown as `\x1b`,
/// `\r`, … and only newlines and tabs stay as they are, so nobody's text can retitle the
/// window, write the clipboard, clear the screen or overwrite a line.
pub fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if unsafe_char(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A duration for people: `6d23h`, `2h05m`, `4m30s`, `12s`.
pub fn human_secs(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s >= 86_400 => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// The first seven characters of a commit id, as people read them; a shorter id (from a
/// server that sent one) is shown whole.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

pub struct Ui {
    pub json: bool,
    pub stdin_tty: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    color_out: bool,
    color_err: bool,
    assume_yes: bool,
    /// `--yes` itself: the only consent a destructive change takes off a terminal.
    yes: bool,
    pub verbose: bool,
    /// `--jq`: the filter every JSON document goes through.
    jq: Option<jq::Jq>,
    out: io::BufWriter<io::Stdout>,
}

impl Ui {
    pub fn new(json: bool, yes: bool, verbose: bool) -> Ui {
        let stdin_tty = io::stdin().is_terminal();
        let stdout_tty = io::stdout().is_terminal();
        let stderr_tty = io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        Ui {
            json,
            stdin_tty,
            stdout_tty,
            stderr_tty,
            color_out: stdout_tty && !no_color,
            color_err: stderr_tty && !no_color,
            assume_yes: yes || ci,
            yes,
            verbose,
            jq: None,
            out: io::BufWriter::new(io::stdout()),
        }
    }

    /// Standard output, for data only.
    pub fn out(&mut self) -> &mut dyn Write {
        &mut self.out
    }

    /// Writes a line of data to stdout.
    pub fn line(&mut self, s: impl std::fmt::Display) -> Result<()> {
        writeln!(self.out, "{s}")?;
        Ok(())
    }

    /// Runs every JSON document through `jq` (which implies --json).
    pub fn set_jq(&mut self, jq: jq::Jq) {
        self.json = true;
        self.jq = Some(jq);
    }

    /// Prints one JSON document on stdout (through `--jq` when given).
    pub fn print_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if let Some(jq) = &self.jq {
            return jq.run(serde_json::to_value(value)?, &mut self.out);
        }
        serde_json::to_writer_pretty(&mut self.out, value)?;
        writeln!(self.out)?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    /// A progress or status line for people, on stderr; whatever it quotes is made safe.
    pub fn status(&self, s: impl std::fmt::Display) {
        let _ = writeln!(io::stderr(), "{}", safe(&s.to_string()));
    }

    /// `HEAD: ok TEXT` or `HEAD: failed TEXT`, the mark in colour on a terminal.
    pub fn status_marked(&self, head: &str, ok: bool, text: &str) {
        let mark = if ok {
            paint(self.color_err, "32", "ok")
        } else {
            paint(self.color_err, "31", "failed")
        };
        let _ = writeln!(io::stderr(), "{}: {mark} {}", safe(head), safe(text));
    }

    pub fn warn(&self, s: impl std::fmt::Display) {
        let label = paint(self.color_err, "33", "warning:");
        let _ = writeln!(io::stderr(), "{label} {}", safe(&s.to_string()));
    }

    /// May xone ask a question? Only on a terminal, and never in CI or with `--yes`.
    pub fn interactive(&self) -> bool {
        self.stdin_tty && self.stderr_tty && !self.assume_yes
    }

    /// Asks for confirmation on a terminal; elsewhere the command line already is the answer.
    pub fn confirm(&self, prompt: &str) -> Result<bool> {
        if !self.interactive() {
            return Ok(true);
        }
        dialoguer::Confirm::new().with_prompt(prompt).default(false).interact().map_err(prompt_err)
    }

    /// Consent to a destructive or hard-to-undo change: asked on a terminal; elsewhere (a
    /// script, CI) only `--yes` gives it. Without it the command stops with exit 4 and `what`
    /// (what was left undone).
    pub fn confirm_or_stop(&self, prompt: &str, what: &str) -> Result<()> {
        if self.yes {
            return Ok(());
        }
        if self.interactive() {
            if self.confirm(prompt)? {
                return Ok(());
            }
            return Err(XoneError::gate(format!("not confirmed: {what}"))
                .hint("--yes answers yes without asking"));
        }
        Err(XoneError::gate(format!("not confirmed: {what}"))
            .cause(format!("{prompt} needs a yes, and xone may not ask here"))
            .hint("confirm it with --yes"))
    }

    /// Asks for a line of text on a terminal; `None` where xone may not ask.
    pub fn ask(&self, prompt: &str) -> Result<Option<String>> {
        if !self.interactive() {
            return Ok(None);
        }
        let answer: String =
            dialoguer::Input::new().with_prompt(prompt).interact_text().map_err(prompt_err)?;
        Ok(Some(answer))
    }

    /// Asks for a secret on a terminal without echoing it; `None` where xone may not ask.
    pub fn ask_secret(&self, prompt: &str) -> Result<Option<String>> {
        if !self.interactive() {
            return Ok(None);
        }
        let answer =
            dialoguer::Password::new().with_prompt(prompt).interact().map_err(prompt_err)?;
        Ok(Some(answer))
    }

    /// A stored moment for text output: relative and local on a terminal (`3 min ago`,
    /// `yesterday 14:30`); elsewhere as stored, RFC 3339 in UTC, as --json has it.
    pub fn when(&self, at: &str) -> String {
        if self.stdout_tty {
            crate::clock::human(at)
        } else {
            at.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        paint(self.color_out, "1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        paint(self.color_out, "2", s)
    }
    pub fn green(&self, s: &str) -> String {
        paint(self.color_out, "32", s)
    }
    pub fn red(&self, s: &str) -> String {
        paint(self.color_out, "31", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        paint(self.color_out, "33", s)
    }

    /// Rows that fit one screen of a terminal, or `fallback` elsewhere.
    pub fn page_rows(&self, fallback: usize) -> usize {
        if self.stdout_tty {
            let (rows, _) = console::Term::stdout().size();
            (rows as usize).saturating_sub(4).max(5)
        } else {
            fallback
        }
    }

    /// The terminal's width in columns; `None` off a terminal.
    pub fn width(&self) -> Option<usize> {
        self.stdout_tty.then(|| console::Term::stdout().size().1 as usize)
    }

    /// Prints an error the way every xone error looks: what, why, what next.
    pub fn print_error(&self, e: &XoneError) {
        let mut err = io::stderr().lock();
        let label = paint(self.color_err, "1;31", "Error:");
        let _ = writeln!(err, "{label} {}", safe(&e.message));
        for c in &e.causes {
            let _ = writeln!(err, "Caused by: {}", safe(c));
        }
        for h in &e.hints {
            let _ = writeln!(err, "{} {}", paint(self.color_err, "36", "Hint:"), safe(h));
        }
    }
}

/// What a user sees of a bug: one error line and where to report it, never a backtrace.
pub fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "Error: internal error: {info}");
    let _ = writeln!(err, "Hint: this is a bug in xone; please report it with the command you ran");
}

fn paint(on: bool, code: &str, s: &str) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn prompt_err(e: dialoguer::Error) -> XoneError {
    XoneError::new(Kind::Interrupted, "the prompt was interrupted").cause(e)
}

/// `table` of cells that are all plain text, each made safe first (no colour in them).
pub fn safe_table(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| safe(c).into_owned()).collect()).collect();
    table(&rows)
}

/// Lays out rows in aligned columns; the first row is the header. Width counts what a
/// terminal shows, so CJK titles line up.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(console::measure_text_width(cell));
        }
    }
    let mut s = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - console::measure_text_width(cell) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}
