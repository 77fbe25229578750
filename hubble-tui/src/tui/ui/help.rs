//! The help overlay (`?`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// The help overlay's text.
pub const HELP: &str = "\
q, Ctrl-C      quit
?              this help (any key closes it)
/              edit the filter: the flags of `hubble observe`,
               e.g. --verdict DROPPED --pod default/xwing;
               Enter applies, Esc cancels, an empty line clears
Up/Down, j/k   select a flow (stops following)
PgUp/PgDn      a page up / down
Home / End     oldest flow kept / newest (End follows)
f              follow the newest flow
Space, p       pause: keep the table still (counters go on)
Enter, d       detail pane: every field and the JSON
J / K          scroll the detail pane
Esc            close the detail pane
g              group top talkers/drops by pod, namespace, identity
n              nodes panel: state, flows/s, flows, lost per node
N              filter to the next node (after the last: every node)
s              hide/show the side panel (the table takes the width)
a              aggregated view: flows by source, destination, port
               and verdict (grouped as g groups), every flow counted
m              service map (grouped as g groups), largest edge first;
               Up/Down select an edge, Enter filters the flows to it,
               f / t focus on its source / target, Esc / m go back
c              clear history and counters
r              reconnect now";

/// Draws the help overlay in the middle of `area`.
pub fn draw(frame: &mut Frame<'_>, area: Rect) {
    let w = 70.min(area.width);
    let h = (HELP.lines().count() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(HELP)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" help ")),
        r,
    );
}
