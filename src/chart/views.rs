//! The views trend: the views of each day's posts as bars, with their 7-day moving average as
//! a line over them, on the window's local days.
//!
//! The x axis counts days from the window's first day (day `i` spans `[i, i + 1)`), so a bar
//! sits inside its day and the average's point at the day's middle; the axis labels are the
//! days themselves, written like the members chart's ("22 Aug 2026").

use chrono::{NaiveDate, TimeDelta};
use plotters::prelude::*;

use super::{Error, SIZE, draw_err, png_of, register_fonts};
use crate::i18n::{self, Lang};
use crate::query::posts::ViewsTrend;
use crate::t;

/// Bars: the views of the day's posts.
const BAR: RGBColor = RGBColor(120, 166, 214);
/// Line: the 7-day moving average.
const AVG: RGBColor = RGBColor(230, 100, 20);
/// Up to this many average points are also marked with a dot (more would clutter the line).
const DOTS_UP_TO: usize = 45;

/// Daily views of a channel's posts (bars, one per day with posts and views) with their 7-day
/// moving average (a line; days without an average are skipped), as PNG bytes of [`SIZE`]
/// (1280 × 760 px, RGB). The title names the channel, the window and the time zone; the
/// legend gives the average's change over the window (`change_pct`, signed, in percent) when
/// there is one. Texts follow `lang`.
///
/// errors: `Error::Empty` (with the channel's label) when `days` is empty or no day has views
/// or an average; `Error::Draw` if plotters fails; `Error::Encode` if the PNG encoder does.
pub fn views_png(v: &ViewsTrend, lang: Lang) -> Result<Vec<u8>, Error> {
    let drawable = v.days.iter().any(|d| d.views.is_some() || d.avg7.is_some());
    if !drawable {
        return Err(Error::Empty(v.channel.label()));
    }
    png_of("views", |rgb| draw_views(v, lang, rgb))
}

/// Days from `first` to `day` (negative before it).
fn offset(first: NaiveDate, day: NaiveDate) -> i64 {
    day.signed_duration_since(first).num_days()
}

fn draw_views(v: &ViewsTrend, lang: Lang, rgb: &mut [u8]) -> Result<(), Error> {
    register_fonts();
    let e = draw_err("views");
    let first = v.first_day;
    // The window's days, widened to any day of the data outside it (defensive: the query
    // only returns days of the window).
    let window = (offset(first, v.last_day) + 1).max(1);
    let lo_day = v
        .days
        .iter()
        .map(|d| offset(first, d.day))
        .min()
        .unwrap_or(0)
        .min(0);
    let hi_day = v
        .days
        .iter()
        .map(|d| offset(first, d.day) + 1)
        .max()
        .unwrap_or(window)
        .max(window);
    let (x0, x1) = (lo_day as f64, hi_day as f64);

    let bars: Vec<(f64, f64)> = v
        .days
        .iter()
        .filter_map(|d| d.views.map(|n| (offset(first, d.day) as f64, n as f64)))
        .collect();
    let avg: Vec<(f64, f64)> = v
        .days
        .iter()
        .filter_map(|d| d.avg7.map(|a| (offset(first, d.day) as f64 + 0.5, a)))
        .collect();
    let top = bars
        .iter()
        .chain(avg.iter())
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    // Headroom for the legend in the upper left corner.
    let (y0, y1) = (0.0, top * 1.22);

    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = t!(
        lang,
        "chart-views-title",
        channel = v.channel.label(),
        from = i18n::date(lang, v.first_day),
        to = i18n::date(lang, v.last_day),
        zone = v.timezone.clone()
    );
    let int = |y: &f64| i18n::int(lang, y.round() as i64);
    // Ticks fall on whole days (the day's start); others, which a short window can get, stay
    // unlabelled rather than repeating a date.
    // The axis ends at the start of the day after the window: its label would be cut off at
    // the right edge and names no bar, so it stays empty too.
    let day = |x: &f64| {
        if (x - x.round()).abs() > 1e-6 || *x > x1 - 0.5 {
            return String::new();
        }
        first
            .checked_add_signed(TimeDelta::days(x.round() as i64))
            .map(|d| i18n::date(lang, d))
            .unwrap_or_default()
    };
    let span = (hi_day - lo_day).max(1) as usize;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(100)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .y_desc(t!(lang, "chart-views"))
        .y_label_formatter(&int)
        .x_label_formatter(&day)
        .x_labels((span + 1).min(8))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;

    // A bar keeps a gap to its neighbours: 10 % of the day on each side.
    chart
        .draw_series(
            bars.iter()
                .map(|&(x, n)| Rectangle::new([(x + 0.1, 0.0), (x + 0.9, n)], BAR.filled())),
        )
        .map_err(|x| e(&x))?
        .label(t!(lang, "chart-views-bars"))
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], BAR.filled()));

    let avg_label = match v.change_pct {
        Some(c) => t!(
            lang,
            "chart-views-avg-change",
            change = i18n::signed_pct(lang, c, 1)
        ),
        None => t!(lang, "chart-views-avg"),
    };
    chart
        .draw_series(LineSeries::new(avg.iter().copied(), AVG.stroke_width(3)))
        .map_err(|x| e(&x))?
        .label(avg_label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], AVG.stroke_width(3)));
    // A lone point draws no line: dots keep a short series visible.
    if avg.len() <= DOTS_UP_TO {
        chart
            .draw_series(avg.iter().map(|&p| Circle::new(p, 4, AVG.filled())))
            .map_err(|x| e(&x))?;
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
    use super::*;
    use crate::domain::ChannelId;
    use crate::query::Channel;
    use crate::query::posts::ViewsDay;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

    fn trend(days: Vec<ViewsDay>) -> ViewsTrend {
        let first = NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
        ViewsTrend {
            channel: Channel {
                id: ChannelId::new(1_234_567).unwrap(),
                handle: Some("demo".into()),
                title: Some("Demo".into()),
            },
            first_day: first,
            last_day: first + TimeDelta::days(29),
            timezone: "Europe/Moscow".into(),
            days,
            change_pct: Some(12.345),
        }
    }

    fn sample() -> ViewsTrend {
        let first = NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
        let days = (0..30)
            .filter(|i| i % 4 != 3)
            .map(|i| ViewsDay {
                day: first + TimeDelta::days(i),
                posts: 1 + i % 3,
                views: (i != 5).then_some(8_000 + 1_500 * (i % 5)),
                avg7: (i >= 6).then_some(7_000.0 + 40.0 * i as f64),
            })
            .collect();
        trend(days)
    }

    #[test]
    fn draws_a_png_in_both_languages() {
        for lang in Lang::ALL {
            let png = views_png(&sample(), lang).unwrap();
            assert!(png.starts_with(&PNG_SIGNATURE), "{lang:?}");
        }
        // Without a change and with a single day.
        let mut one = trend(vec![ViewsDay {
            day: NaiveDate::from_ymd_opt(2026, 8, 3).unwrap(),
            posts: 2,
            views: Some(5_000),
            avg7: Some(714.3),
        }]);
        one.change_pct = None;
        assert!(
            views_png(&one, Lang::Ru)
                .unwrap()
                .starts_with(&PNG_SIGNATURE)
        );
    }

    #[test]
    fn no_days_is_empty() {
        let err = views_png(&trend(Vec::new()), Lang::En).unwrap_err();
        assert!(matches!(err, Error::Empty(ref c) if c == "@demo"), "{err}");
        // Days without views nor an average have nothing to draw either.
        let blank = trend(vec![ViewsDay {
            day: NaiveDate::from_ymd_opt(2026, 8, 3).unwrap(),
            posts: 1,
            views: None,
            avg7: None,
        }]);
        assert!(matches!(views_png(&blank, Lang::En), Err(Error::Empty(_))));
    }
}
