//! An elastic-tabstop writer with the semantics of Go's `text/tabwriter`
//! (the copy docker vendors as `formatter/tabwriter`), so that tables line
//! up byte for byte with docker's.
//!
//! Text is split into cells at `\t`; a column is a run of consecutive lines
//! that all have a cell at that index (the last cell of a line is never part
//! of a column). Each column is as wide as its widest cell plus `padding`,
//! and at least `min_width`. A line without any tab ends a block: the lines
//! before it are flushed with their own widths, as Go does.

/// One tab-terminated (or line-final) cell.
#[derive(Clone, Copy, Default)]
struct Cell {
    /// Length in bytes inside `buf`.
    size: usize,
    /// Display width (characters).
    width: usize,
}

/// Buffers text and writes it aligned on [`TabWriter::flush`].
pub(crate) struct TabWriter {
    min_width: usize,
    padding: usize,
    buf: String,
    cell: Cell,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter {
    /// Docker's table settings: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
    pub(crate) fn for_table() -> Self {
        Self::new(10, 3)
    }

    /// A writer with the given minimum cell width and padding (space padded).
    pub(crate) fn new(min_width: usize, padding: usize) -> Self {
        TabWriter {
            min_width,
            padding,
            buf: String::new(),
            cell: Cell::default(),
            lines: vec![Vec::new()],
            widths: Vec::new(),
            out: String::new(),
        }
    }

    /// Appends text; cells end at `\t`, lines at `\n`.
    pub(crate) fn write(&mut self, text: &str) {
        let mut start = 0;
        for (i, ch) in text.char_indices() {
            if ch == '\t' || ch == '\n' {
                self.append(&text[start..i]);
                start = i + 1;
                self.lines
                    .last_mut()
                    .expect("always one line")
                    .push(self.cell);
                let ncells = self.lines.last().map_or(0, Vec::len);
                self.cell = Cell::default();
                if ch == '\n' {
                    self.lines.push(Vec::new());
                    if ncells == 1 {
                        self.flush_lines();
                    }
                }
            }
        }
        self.append(&text[start..]);
    }

    fn append(&mut self, s: &str) {
        self.buf.push_str(s);
        self.cell.size += s.len();
        self.cell.width += s.chars().count();
    }

    /// Formats everything buffered and returns the aligned text.
    pub(crate) fn flush(mut self) -> String {
        if self.cell.size > 0 {
            self.lines
                .last_mut()
                .expect("always one line")
                .push(self.cell);
            self.cell = Cell::default();
        }
        self.flush_lines();
        self.out
    }

    fn flush_lines(&mut self) {
        let n = self.lines.len();
        let mut pos = 0;
        self.format(&mut pos, 0, n);
        self.buf.clear();
        self.lines = vec![Vec::new()];
        self.widths.clear();
    }

    fn format(&mut self, pos: &mut usize, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // Cell in this column: print the lines above, then find the block.
            self.write_lines(pos, line0, this);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(pos, line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(pos, line0, line1);
    }

    fn write_lines(&mut self, pos: &mut usize, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                self.out.push_str(&self.buf[*pos..*pos + c.size]);
                *pos += c.size;
                if let Some(&w) = self.widths.get(j) {
                    self.out
                        .extend(std::iter::repeat_n(' ', w.saturating_sub(c.width)));
                }
            }
            if i + 1 == self.lines.len() {
                // The unterminated last line: its pending text is the open cell.
                self.out.push_str(&self.buf[*pos..*pos + self.cell.size]);
                *pos += self.cell.size;
            } else {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(min: usize, pad: usize, text: &str) -> String {
        let mut w = TabWriter::new(min, pad);
        w.write(text);
        w.flush()
    }

    #[test]
    fn aligns_columns_with_min_width_and_padding() {
        let out = render(10, 3, "REPOSITORY\tTAG\tID\nbusybox\tlatest\tabc\n");
        assert_eq!(
            out,
            "REPOSITORY   TAG       ID\nbusybox      latest    abc\n"
        );
    }

    #[test]
    fn last_cell_of_a_line_is_not_padded() {
        let out = render(1, 1, "a\tb\nccc\td\n");
        assert_eq!(out, "a   b\nccc d\n");
    }

    #[test]
    fn line_without_tabs_ends_the_block() {
        // Go flushes at a single-cell line, so the two blocks align separately.
        let out = render(1, 1, "a\tb\nheading\nlonger\tc\n");
        assert_eq!(out, "a b\nheading\nlonger c\n");
    }

    #[test]
    fn columns_are_blocks_of_consecutive_lines() {
        let out = render(0, 1, "x\ty\tz\nxx\ty\nxxx\n");
        assert_eq!(out, "x  y z\nxx y\nxxx\n");
    }

    #[test]
    fn header_only_table_keeps_its_padding() {
        let out = render(10, 3, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n");
        assert_eq!(out, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
    }
}
