//! Go's `text/tabwriter` as upstream configures it for tables
//! (`NewWriter(w, minwidth 2, tabwidth 0, padding 3, ' ', 0)`): cells end at
//! a tab, a line's last cell is not aligned, and a column's width is the
//! widest cell of the consecutive lines that have that column, plus padding.
//! Everything is buffered until [`TabWriter::flush`].

/// A buffering table writer.
#[derive(Debug)]
pub struct TabWriter {
    min_width: usize,
    padding: usize,
    lines: Vec<Vec<String>>,
    partial: String,
}

impl Default for TabWriter {
    fn default() -> Self {
        TabWriter::new(2, 3)
    }
}

impl TabWriter {
    /// A writer with Go's `minwidth` and `padding`.
    pub fn new(min_width: usize, padding: usize) -> Self {
        TabWriter {
            min_width,
            padding,
            lines: Vec::new(),
            partial: String::new(),
        }
    }

    /// Appends text; `\t` ends a cell and `\n` a line.
    pub fn write_str(&mut self, s: &str) {
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                let done = std::mem::take(&mut self.partial);
                self.lines
                    .push(done.split('\t').map(str::to_owned).collect());
            }
            self.partial.push_str(line);
        }
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.partial.is_empty()
    }

    /// Lays out everything written so far and returns it.
    pub fn flush(&mut self) -> String {
        if !self.partial.is_empty() {
            let done = std::mem::take(&mut self.partial);
            self.lines
                .push(done.split('\t').map(str::to_owned).collect());
            // The text did not end in a newline: neither does the output.
            let mut out = self.layout();
            out.pop();
            return out;
        }
        self.layout()
    }

    fn layout(&mut self) -> String {
        let lines = std::mem::take(&mut self.lines);
        let mut widths = Vec::new();
        let mut out = String::new();
        self.format(&lines, 0, lines.len(), 0, &mut widths, &mut out);
        out
    }

    /// Go's recursive column-block layout.
    fn format(
        &self,
        lines: &[Vec<String>],
        mut line0: usize,
        line1: usize,
        col: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let mut this = line0;
        while this < line1 {
            if col + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A column block starts here.
            write_lines(&lines[line0..this], widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && col + 1 < lines[this].len() {
                let w = lines[this][col].chars().count() + self.padding;
                width = width.max(w);
                this += 1;
            }
            widths.push(width);
            self.format(lines, line0, this, col + 1, widths, out);
            widths.pop();
            line0 = this;
        }
        write_lines(&lines[line0..line1], widths, out);
    }
}

fn write_lines(lines: &[Vec<String>], widths: &[usize], out: &mut String) {
    for line in lines {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len()
                && let Some(w) = widths.get(j)
            {
                let n = cell.chars().count();
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(n)));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go() {
        let mut tw = TabWriter::default();
        tw.write_str("NAME\tSTATUS\tAGE\n");
        tw.write_str("foo\tConnected\t16m40s\n");
        tw.write_str("\tUnknown\tN/A\n");
        assert_eq!(
            tw.flush(),
            "NAME   STATUS      AGE\nfoo    Connected   16m40s\n       Unknown     N/A\n"
        );
    }

    #[test]
    fn lines_with_fewer_cells_end_the_block() {
        let mut tw = TabWriter::default();
        tw.write_str("NAMESPACE\tCLUSTER\nkube-system\nx\tc1\n");
        assert_eq!(tw.flush(), "NAMESPACE   CLUSTER\nkube-system\nx   c1\n");
    }
}
