//! PNG charts drawn with plotters into memory, with an embedded DejaVu Sans font (no system
//! fonts), and encoded with the `png` crate: callers get the bytes (the bot uploads them, the
//! CLI writes them to its `--out` file); nothing is written to disk to be read back. Titles,
//! axis labels, legends, numbers, month and weekday names follow the reader's language (the
//! CLI's charts are English).
//!
//! - [`members_png`]: members as a line (top) and daily deltas as bars (bottom).
//! - [`compare_png`]: indexed growth lines (100 = window start), one per channel.
//! - [`views_png`]: daily views of the posts as bars with their 7-day moving average as a
//!   line (module `views`).
//! - [`heatmap_png`]: best time to post, a weekday × hour grid coloured by the reach index
//!   with each cell's post count (module `heatmap`).
//! - [`cache`]: drawn charts kept for the next reader of the same picture (the bot's).
//!
//! Drawing and encoding are timed: `tgpulse_chart_draw_seconds{chart}` and
//! `tgpulse_chart_encode_seconds{chart}` (histograms), and [`take_times`] gives the last
//! chart's times to a caller on the same thread. The PNG is encoded with the `png` crate's
//! fast (fdeflate) compression: lossless like the default zlib level, the same pixels, in a
//! fraction of the time for a somewhat larger file.

use std::cell::{Cell, RefCell};
use std::sync::Once;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::i18n::{self, Lang};
use crate::query::{ChannelStats, Comparison};
use crate::t;

pub mod cache;
mod heatmap;
mod views;

pub use heatmap::heatmap_png;
pub use views::views_png;

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (1280, 760);

/// Errors of chart drawing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing to draw: no data for the channel (its label) in the window.
    #[error("no data for {0} in the window; nothing to chart")]
    Empty(String),
    /// plotters failed (a font or a coordinate it could not handle).
    #[error("failed to draw the {chart} chart: {reason}")]
    Draw {
        /// Which chart (`members`, `compare`, `views`, `heatmap`).
        chart: &'static str,
        /// plotters' message.
        reason: String,
    },
    /// The drawn pixels could not be encoded as PNG.
    #[error("failed to encode the {chart} chart as PNG")]
    Encode {
        /// Which chart (`members`, `compare`, `views`, `heatmap`).
        chart: &'static str,
        /// Cause.
        #[source]
        source: png::EncodingError,
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

fn draw_err(chart: &'static str) -> impl Fn(&dyn std::fmt::Display) -> Error {
    move |e| Error::Draw {
        chart,
        reason: e.to_string(),
    }
}

/// How long one chart took, by stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChartTimes {
    /// Drawing the pixels (plotters into the RGB buffer).
    pub draw: Duration,
    /// Encoding them as PNG.
    pub encode: Duration,
}

thread_local! {
    /// This thread's RGB buffer of [`SIZE`] (2.9 MB), reused by its next chart: no fresh
    /// allocation, and no page faults on touching it, per chart.
    static PIXELS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The times of the last chart drawn on this thread, for [`take_times`].
    static LAST_TIMES: Cell<Option<ChartTimes>> = const { Cell::new(None) };
}

/// The times of the last chart this thread drew (any of the `*_png` functions, successful
/// or not), taken: a second call returns `None` until another chart is drawn. Call it on the
/// thread that drew, right after (for example inside the same `spawn_blocking` closure).
pub fn take_times() -> Option<ChartTimes> {
    LAST_TIMES.take()
}

/// Draws into an RGB buffer of [`SIZE`] and encodes it as PNG; records the two stages'
/// times (metrics, and [`take_times`]).
fn png_of(
    chart: &'static str,
    draw: impl FnOnce(&mut [u8]) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let (w, h) = SIZE;
    let mut rgb = PIXELS.take();
    // All black, as a fresh buffer was (every chart paints its own background first).
    rgb.clear();
    rgb.resize(w as usize * h as usize * 3, 0);
    let start = Instant::now();
    let drawn = draw(&mut rgb);
    let draw_time = start.elapsed();
    let png = drawn.and_then(|()| encode(chart, &rgb));
    let encode_time = start.elapsed().saturating_sub(draw_time);
    PIXELS.set(rgb);
    LAST_TIMES.set(Some(ChartTimes {
        draw: draw_time,
        encode: encode_time,
    }));
    if png.is_ok() {
        metrics::histogram!("tgpulse_chart_draw_seconds", "chart" => chart)
            .record(draw_time.as_secs_f64());
        metrics::histogram!("tgpulse_chart_encode_seconds", "chart" => chart)
            .record(encode_time.as_secs_f64());
    }
    png
}

/// `rgb` (8-bit RGB of [`SIZE`]) as PNG bytes.
fn encode(chart: &'static str, rgb: &[u8]) -> Result<Vec<u8>, Error> {
    let (w, h) = SIZE;
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // fdeflate instead of zlib's default level: the same pixels (lossless either way), and
    // these large flat-coloured pictures compress several times faster.
    encoder.set_compression(png::Compression::Fast);
    let err = |source| Error::Encode { chart, source };
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(rgb).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(1.0);
    (lo - span * 0.08, hi + span * 0.08)
}

/// Members (line) and daily deltas (bars) of one channel, as PNG bytes of [`SIZE`].
///
/// errors: `Error::Empty` without data in the window; `Error::Draw` if plotters fails;
/// `Error::Encode` if the PNG encoder does.
pub fn members_png(s: &ChannelStats, lang: Lang) -> Result<Vec<u8>, Error> {
    if s.series.is_empty() {
        return Err(Error::Empty(s.channel.label()));
    }
    png_of("members", |rgb| draw_members(s, lang, rgb))
}

fn draw_members(s: &ChannelStats, lang: Lang, rgb: &mut [u8]) -> Result<(), Error> {
    register_fonts();
    let e = draw_err("members");
    let series = &s.series;
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return Err(Error::Empty(s.channel.label()));
    };
    let (x0, x1) = (s.first_day, s.last_day.succ_opt().unwrap_or(s.last_day));
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = t!(
        lang,
        "chart-members-title",
        channel = s.channel.label(),
        from = i18n::date(lang, s.first_day),
        to = i18n::date(lang, s.last_day),
        zone = s.timezone.clone()
    );
    let int = |v: &f64| i18n::int(lang, v.round() as i64);
    let day = |d: &NaiveDate| i18n::date(lang, *d);
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
        .y_desc(t!(lang, "chart-members"))
        .y_label_formatter(&int)
        .x_label_formatter(&day)
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
        .label(t!(
            lang,
            "chart-members-legend",
            last = i18n::int(lang, last.members)
        ))
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
        .y_desc(t!(lang, "chart-daily-delta"))
        .y_label_formatter(&int)
        .x_label_formatter(&day)
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
    .label(t!(lang, "chart-gain"))
    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], green.filled()));
    bars.draw_series(std::iter::once(PathElement::new(
        vec![(x0, 0.0), (x1, 0.0)],
        BLACK,
    )))
    .map_err(|x| e(&x))?
    .label(t!(lang, "chart-loss"))
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

/// Indexed growth (100 = members at the window start) of several channels, as PNG bytes of
/// [`SIZE`].
///
/// errors: `Error::Empty` if no channel has data; `Error::Draw` if plotters fails;
/// `Error::Encode` if the PNG encoder does.
pub fn compare_png(c: &Comparison, lang: Lang) -> Result<Vec<u8>, Error> {
    png_of("compare", |rgb| draw_compare(c, lang, rgb))
}

fn draw_compare(c: &Comparison, lang: Lang, rgb: &mut [u8]) -> Result<(), Error> {
    register_fonts();
    let e = draw_err("compare");
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
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = t!(
        lang,
        "chart-compare-title",
        from = i18n::date(lang, first.first_day),
        to = i18n::date(lang, first.last_day),
        zone = first.timezone.clone()
    );
    let day = |d: &NaiveDate| i18n::date(lang, *d);
    let index = |v: &f64| i18n::dec(lang, *v, 1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, lo..hi)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .y_desc(t!(lang, "chart-index"))
        .y_label_formatter(&index)
        .x_label_formatter(&day)
        .x_labels(8)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, s) in c.channels.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let last = s.series.last().and_then(|p| p.index);
        let label = match (last, s.members) {
            (Some(ix), Some(m)) => t!(
                lang,
                "chart-compare-legend",
                channel = s.channel.label(),
                index = i18n::dec(lang, ix, 1),
                members = i18n::int(lang, m)
            ),
            _ => t!(lang, "chart-no-data", channel = s.channel.label()),
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
