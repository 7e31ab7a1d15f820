//! `progress.svg`: the metric per iteration (discards grey, keeps green, crashes red crosses),
//! the running best as a step line and the keeps annotated. Drawn with plotters' SVG backend
//! only: text goes out as SVG `<text>`, so no font library is linked.

use plotters::prelude::*;

use crate::engine::row::{Row, Status};
use crate::engine::{Direction, row::one_line};

/// Size of the chart in pixels.
pub const SIZE: (u32, u32) = (1000, 560);
/// The colour of keeps and of the running best.
pub const KEEP: RGBColor = RGBColor(0, 150, 70);
const DISCARD: RGBColor = RGBColor(150, 150, 150);
const CRASH: RGBColor = RGBColor(210, 40, 40);
const BASELINE: RGBColor = RGBColor(40, 90, 200);
/// At most this many keeps are labelled (the ones that moved the metric most).
const MAX_LABELS: usize = 12;
/// Labels are cut to this many characters.
const LABEL_CHARS: usize = 28;

/// What the chart shows.
pub struct ChartInput<'a> {
    pub title: &'a str,
    pub metric: &'a str,
    pub direction: Direction,
    pub rows: &'a [Row],
    /// The best metric after each row, `(iteration, best)`.
    pub best: &'a [(u64, f64)],
}

/// The y range: every plotted metric with a margin (a flat run gets one around its value).
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.12
    } else {
        lo.abs().max(1.0) * 0.1
    };
    (lo - pad, hi + pad)
}

/// The keeps worth a label: all of them when few, else the ones with the largest moves.
fn labelled(rows: &[Row]) -> Vec<&Row> {
    let mut keeps: Vec<&Row> = rows.iter().filter(|r| r.status == Status::Keep).collect();
    if keeps.len() > MAX_LABELS {
        keeps.sort_by(|a, b| b.delta.abs().total_cmp(&a.delta.abs()));
        keeps.truncate(MAX_LABELS);
        keeps.sort_by_key(|r| r.iteration);
    }
    keeps
}

fn label(r: &Row) -> String {
    let d = one_line(&r.description);
    let cut: String = d.chars().take(LABEL_CHARS).collect();
    let text = if cut.len() < d.len() {
        format!("{}…", cut.trim_end())
    } else {
        cut
    };
    format!("#{} {text}", r.iteration)
}

/// Renders the chart as SVG text.
pub fn render(input: &ChartInput<'_>) -> Result<String, String> {
    let mut svg = String::new();
    draw(input, &mut svg).map_err(|e| format!("draw the progress chart: {e}"))?;
    Ok(svg)
}

fn draw(input: &ChartInput<'_>, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let rows = input.rows;
    let last = rows.iter().map(|r| r.iteration).max().unwrap_or(0) as f64;
    let (y0, y1) = y_range(rows.iter().map(|r| r.metric));
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(input.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..last + 0.5, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc(format!("{} ({} is better)", input.metric, input.direction))
        .light_line_style(RGBColor(238, 238, 238))
        .x_labels(12)
        // Iterations are whole numbers: fractional ticks get no label.
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 && *x >= 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;

    // The running best as a step line: flat until the keep that moves it.
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for &(i, b) in input.best {
        if let Some(&(_, prev)) = steps.last()
            && prev != b
        {
            steps.push((i as f64, prev));
        }
        steps.push((i as f64, b));
    }
    if let Some(&(_, b)) = steps.last() {
        steps.push((last + 0.5, b));
    }
    chart
        .draw_series(LineSeries::new(steps, KEEP.stroke_width(2)))?
        .label("best so far")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], KEEP.stroke_width(2)));

    let at = |s: Status| rows.iter().filter(move |r| r.status == s);
    let point = |r: &Row| (r.iteration as f64, r.metric);
    chart
        .draw_series(
            rows.iter()
                .filter(|r| matches!(r.status, Status::Discard | Status::NoOp | Status::Blocked))
                .map(|r| Circle::new(point(r), 4, DISCARD.filled())),
        )?
        .label("discarded")
        .legend(|(x, y)| Circle::new((x + 9, y), 4, DISCARD.filled()));
    chart
        .draw_series(at(Status::Crash).map(|r| Cross::new(point(r), 6, CRASH.stroke_width(2))))?
        .label("crash (at the retained metric)")
        .legend(|(x, y)| Cross::new((x + 9, y), 5, CRASH.stroke_width(2)));
    chart
        .draw_series(at(Status::Keep).map(|r| Circle::new(point(r), 6, KEEP.filled())))?
        .label("kept")
        .legend(|(x, y)| Circle::new((x + 9, y), 6, KEEP.filled()));
    chart
        .draw_series(at(Status::Baseline).map(|r| Circle::new(point(r), 6, BASELINE.filled())))?
        .label("baseline")
        .legend(|(x, y)| Circle::new((x + 9, y), 6, BASELINE.filled()));
    chart.draw_series(labelled(rows).into_iter().map(|r| {
        EmptyElement::at(point(r))
            + Text::new(
                label(r),
                (8, -16),
                ("sans-serif", 12).into_font().color(&KEEP),
            )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::row::Guard;

    fn row(i: u64, metric: f64, status: Status) -> Row {
        Row {
            iteration: i,
            commit: "-".into(),
            metric,
            delta: -(i as f64),
            guard: Guard::NotRun,
            status,
            description: format!("change number {i} with a rather long description"),
        }
    }

    #[test]
    fn the_svg_has_a_green_mark_per_keep_and_labels() {
        let rows = [
            row(0, 10.0, Status::Baseline),
            row(1, 8.0, Status::Keep),
            row(2, 9.0, Status::Discard),
            row(3, 8.0, Status::Crash),
            row(4, 5.0, Status::Keep),
        ];
        let best = [(0, 10.0), (1, 8.0), (2, 8.0), (3, 8.0), (4, 5.0)];
        let svg = render(&ChartInput {
            title: "t",
            metric: "value",
            direction: Direction::Lower,
            rows: &rows,
            best: &best,
        })
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("#4 change number 4 with a rathe…"), "{svg}");
        let green = format!("#{:02X}{:02X}{:02X}", KEEP.0, KEEP.1, KEEP.2);
        assert!(
            svg.matches(&green).count() >= 3,
            "keeps and the best line are green"
        );
    }

    #[test]
    fn many_keeps_get_at_most_the_largest_labels() {
        let rows: Vec<Row> = (0..40)
            .map(|i| row(i, 100.0 - i as f64, Status::Keep))
            .collect();
        let l = labelled(&rows);
        assert_eq!(l.len(), MAX_LABELS);
        assert_eq!(l[0].iteration, 28, "the largest moves, in iteration order");
        assert_eq!(y_range(std::iter::once(5.0)), (4.5, 5.5));
    }
}
