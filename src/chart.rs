//! PNG charts drawn with plotters and an embedded DejaVu Sans font (no system fonts).
//!
//! - [`members_chart`]: members as a line (top) and daily deltas as bars (bottom).
//! - [`compare_chart`]: indexed growth lines (100 = window start), one per channel.

use std::path::Path;
use std::sync::Once;

use chrono::NaiveDate;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::query::{ChannelStats, Comparison};

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (1280, 760);

/// Errors of chart drawing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing to draw.
    #[error("no member data for {0} in the window; nothing to chart")]
    Empty(String),
    /// plotters failed (font, encoding, file).
    #[error("failed to draw {path}: {reason}")]
    Draw {
        /// Output path.
        path: String,
        /// plotters' message.
        reason: String,
    },
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
            (FontStyle::Italic, dejavu::sans::oblique()),
            (FontStyle::Oblique, dejavu::sans::oblique()),
        ] {
            // The embedded font is valid; a failure here would be a packaging bug.
            let _ = plotters::style::register_font("sans-serif", style, bytes);
        }
    });
}

/// `1234567` → `1,234,567`.
pub fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

fn draw_err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> Error + '_ {
    move |e| Error::Draw {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(1.0);
    (lo - span * 0.08, hi + span * 0.08)
}

/// Draws members (line) and daily deltas (bars) of one channel into a PNG at `path`.
///
/// errors: `Error::Empty` without data in the window; `Error::Draw` if plotters fails.
pub fn members_chart(s: &ChannelStats, path: &Path) -> Result<(), Error> {
    register_fonts();
    let e = draw_err(path);
    let series = &s.series;
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return Err(Error::Empty(s.channel.label()));
    };
    let (x0, x1) = (s.first_day, s.last_day.succ_opt().unwrap_or(s.last_day));
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = format!(
        "{} — members, {} .. {} ({})",
        s.channel.label(),
        s.first_day,
        s.last_day,
        s.timezone
    );
    let root = root.titled(&title, ("sans-serif", 26)).map_err(|x| e(&x))?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 62 / 100);

    let lo = series
        .iter()
        .map(|p| p.members)
        .min()
        .unwrap_or(first.members) as f64;
    let hi = series
        .iter()
        .map(|p| p.members)
        .max()
        .unwrap_or(last.members) as f64;
    let (lo, hi) = padded(lo, hi);
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(100)
        .build_cartesian_2d(x0..x1, lo..hi)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .y_desc("members")
        .y_label_formatter(&|v| thousands(v.round() as i64))
        .x_label_formatter(&|d: &NaiveDate| d.format("%Y-%m-%d").to_string())
        .x_labels(8)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(
            series.iter().map(|p| (p.day, p.members as f64)),
            BLUE.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label(format!("members (last {})", thousands(last.members)))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;

    let deltas: Vec<(NaiveDate, i64)> = series
        .iter()
        .filter_map(|p| p.delta.map(|d| (p.day, d)))
        .collect();
    let dmin = deltas.iter().map(|d| d.1).min().unwrap_or(0).min(0) as f64;
    let dmax = deltas.iter().map(|d| d.1).max().unwrap_or(0).max(0) as f64;
    let (dlo, dhi) = padded(dmin, dmax);
    let mut bars = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(100)
        .build_cartesian_2d(x0..x1, dlo..dhi)
        .map_err(|x| e(&x))?;
    bars.configure_mesh()
        .y_desc("daily delta")
        .y_label_formatter(&|v| thousands(v.round() as i64))
        .x_label_formatter(&|d: &NaiveDate| d.format("%Y-%m-%d").to_string())
        .x_labels(8)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    let green = RGBColor(46, 160, 67);
    let red = RGBColor(214, 39, 40);
    bars.draw_series(deltas.iter().map(|(day, d)| {
        let next = day.succ_opt().unwrap_or(*day);
        let color = if *d >= 0 { green } else { red };
        Rectangle::new([(*day, 0.0), (next, *d as f64)], color.filled())
    }))
    .map_err(|x| e(&x))?
    .label("gain")
    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], green.filled()));
    bars.draw_series(std::iter::once(PathElement::new(
        vec![(x0, 0.0), (x1, 0.0)],
        BLACK,
    )))
    .map_err(|x| e(&x))?
    .label("loss")
    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], red.filled()));
    bars.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Draws indexed growth (100 = members at the window start) of several channels.
///
/// errors: `Error::Empty` if no channel has data; `Error::Draw` if plotters fails.
pub fn compare_chart(c: &Comparison, path: &Path) -> Result<(), Error> {
    register_fonts();
    let e = draw_err(path);
    let Some(first) = c.channels.first() else {
        return Err(Error::Empty("no channels".into()));
    };
    let points: Vec<f64> = c
        .channels
        .iter()
        .flat_map(|s| s.series.iter().filter_map(|p| p.index))
        .collect();
    if points.is_empty() {
        return Err(Error::Empty(
            c.channels
                .iter()
                .map(|s| s.channel.label())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let lo = points
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(100.0);
    let hi = points
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(100.0);
    let (lo, hi) = padded(lo, hi);
    let (x0, x1) = (
        first.first_day,
        first.last_day.succ_opt().unwrap_or(first.last_day),
    );
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = format!(
        "Indexed growth (100 = window start), {} .. {} ({})",
        first.first_day, first.last_day, first.timezone
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, lo..hi)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .y_desc("index")
        .y_label_formatter(&|v| format!("{v:.1}"))
        .x_label_formatter(&|d: &NaiveDate| d.format("%Y-%m-%d").to_string())
        .x_labels(8)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, s) in c.channels.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let last = s.series.last().and_then(|p| p.index);
        let label = match (last, s.members) {
            (Some(ix), Some(m)) => {
                format!("{}  {ix:.1}  ({} members)", s.channel.label(), thousands(m))
            }
            _ => format!("{}  (no data)", s.channel.label()),
        };
        chart
            .draw_series(LineSeries::new(
                s.series
                    .iter()
                    .filter_map(|p| p.index.map(|ix| (p.day, ix))),
                color.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
    }
}
