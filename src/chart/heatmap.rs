//! Best time to post: a 7 × 24 grid of local weekdays (rows, Monday first) and hours (columns,
//! 0–23), each cell coloured by its reach index (the cell's median reach ÷ the channel's, 1.0 =
//! typical) and showing its post count, with a colour-scale bar at the right.
//!
//! The colour scale is logarithmic and clamped to 0.4–2.5 ([`INDEX_LO`] to [`INDEX_HI`]), so
//! 1.0 sits in its middle and halving or doubling the reach moves a cell equally far: cool
//! blue under typical, pale at typical, warm and darker above it, dark red at 2.5 and beyond.
//! Cells with too few posts to have an index (`index` is `None`) stay white with a grey
//! outline and their count, if any, in grey: they are not drawn as an index of 0.
//!
//! Everything is placed in pixels of [`SIZE`] (no chart coordinates): the title, one or two
//! subtitle lines (post count, what the reach is, the median, the empty-cell rule), the grid,
//! hour labels under it and the scale bar right of it.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Error, SIZE, draw_err, png_of, register_fonts};
use crate::i18n::{self, Lang};
use crate::query::posts::{HEATMAP_MIN_POSTS, HeatCell, Heatmap, ReachBasis};
use crate::t;

/// Index at and under which a cell gets the scale's first colour.
const INDEX_LO: f64 = 0.4;
/// Index at and above which a cell gets the scale's last colour (1 ÷ [`INDEX_LO`], so 1.0 is
/// the middle of the logarithmic scale).
const INDEX_HI: f64 = 2.5;
/// Index values labelled on the scale bar (the ends read "≤" and "≥").
const TICKS: [f64; 5] = [INDEX_LO, 0.5, 1.0, 2.0, INDEX_HI];
/// The colour scale: (position 0–1 on the log scale, colour), in order.
const STOPS: [(f64, RGBColor); 5] = [
    (0.0, RGBColor(158, 196, 228)),
    (0.25, RGBColor(208, 226, 240)),
    (0.5, RGBColor(254, 226, 160)),
    (0.75, RGBColor(244, 109, 67)),
    (1.0, RGBColor(150, 0, 36)),
];
/// An empty cell (fewer than [`HEATMAP_MIN_POSTS`] posts): white, outlined in light grey.
const EMPTY_FILL: RGBColor = RGBColor(255, 255, 255);
const EMPTY_EDGE: RGBColor = RGBColor(205, 205, 205);
/// Text on light backgrounds.
const INK: RGBColor = RGBColor(33, 33, 33);
/// Secondary text (subtitle, axis name) and the scale bar's outline and ticks.
const MUTED: RGBColor = RGBColor(100, 100, 100);
/// The post count of an empty cell.
const FAINT: RGBColor = RGBColor(150, 150, 150);

/// Pixels left of the grid for the weekday names.
const LEFT: i32 = 84;
/// Pixels right of the grid for the colour scale.
const RIGHT: i32 = 170;
/// Pixels under the grid for the hour labels and the axis name.
const BELOW: i32 = 64;

/// A cell's reach index placed on the colour scale: 0.0 at [`INDEX_LO`] and below, 0.5 at
/// 1.0, 1.0 at [`INDEX_HI`] and above (logarithmic in between). NaN, zero or negative: 0.0.
fn scale_position(index: f64) -> f64 {
    if index.is_nan() || index <= 0.0 {
        return 0.0;
    }
    let (lo, hi) = (INDEX_LO.ln(), INDEX_HI.ln());
    ((index.clamp(INDEX_LO, INDEX_HI).ln() - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// The colour at position `t` (0–1, clamped) of the scale, interpolated between [`STOPS`].
fn colour(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    for pair in STOPS.windows(2) {
        let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
        if t <= t1 {
            let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
            let mix =
                |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
            return RGBColor(mix(c0.0, c1.0), mix(c0.1, c1.1), mix(c0.2, c1.2));
        }
    }
    STOPS[STOPS.len() - 1].1
}

/// Whether white text reads better than dark text on `c` (luma under 150 of 255).
fn is_dark(c: RGBColor) -> bool {
    0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2) < 150.0
}

/// The short name of weekday `d` (0 = Monday … 6 = Sunday; larger is Sunday).
fn weekday(lang: Lang, d: usize) -> String {
    match d {
        0 => t!(lang, "chart-weekday-mon"),
        1 => t!(lang, "chart-weekday-tue"),
        2 => t!(lang, "chart-weekday-wed"),
        3 => t!(lang, "chart-weekday-thu"),
        4 => t!(lang, "chart-weekday-fri"),
        5 => t!(lang, "chart-weekday-sat"),
        _ => t!(lang, "chart-weekday-sun"),
    }
}

/// What the cells' reach is, for the subtitle.
fn basis_text(lang: Lang, b: ReachBasis) -> String {
    match b {
        ReachBasis::Reach24h => t!(lang, "chart-heatmap-basis-reach24h"),
        ReachBasis::LatestViews => t!(lang, "chart-heatmap-basis-latest"),
        ReachBasis::Mixed => t!(lang, "chart-heatmap-basis-mixed"),
    }
}

/// The best-time heatmap of a channel, as PNG bytes of [`SIZE`] (1280 × 760 px, RGB): rows
/// Monday…Sunday (short names in `lang`), columns hours 0–23 of the reporting time zone, cells
/// coloured by `index` on a log scale clamped to 0.4–2.5 (1.0 = the channel's median reach)
/// with their post count; cells without an index (fewer than [`HEATMAP_MIN_POSTS`] posts) are
/// white. A missing row or hour in `cells` is drawn as an empty cell without posts.
///
/// errors: `Error::Empty` (with the channel's label) when `posts` is 0; `Error::Draw` if
/// plotters fails; `Error::Encode` if the PNG encoder does.
pub fn heatmap_png(h: &Heatmap, lang: Lang) -> Result<Vec<u8>, Error> {
    if h.posts <= 0 {
        return Err(Error::Empty(h.channel.label()));
    }
    png_of("heatmap", |rgb| draw_heatmap(h, lang, rgb))
}

fn draw_heatmap(h: &Heatmap, lang: Lang, rgb: &mut [u8]) -> Result<(), Error> {
    register_fonts();
    let e = draw_err("heatmap");
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = t!(
        lang,
        "chart-heatmap-title",
        channel = h.channel.label(),
        from = i18n::date(lang, h.first_day),
        to = i18n::date(lang, h.last_day),
        zone = h.timezone.clone()
    );
    let area = root.titled(&title, ("sans-serif", 26)).map_err(|x| e(&x))?;
    let (w, height) = area.dim_in_pixel();
    let (w, height) = (w as i32, height as i32);

    let put = |text: &str, size: u32, ink: RGBColor, pos: Pos, at: (i32, i32)| {
        let style = TextStyle::from(("sans-serif", size)).color(&ink).pos(pos);
        area.draw_text(text, &style, at).map_err(|x| e(&x))
    };
    let rect = |a: (i32, i32), b: (i32, i32), style: ShapeStyle| {
        area.draw(&Rectangle::new([a, b], style)).map_err(|x| e(&x))
    };
    let width_of = |text: &str, size: u32| -> Result<i32, Error> {
        let style = TextStyle::from(("sans-serif", size));
        let (tw, _) = area.estimate_text_size(text, &style).map_err(|x| e(&x))?;
        Ok(tw as i32)
    };

    // Subtitle: one line when it fits, else the facts and the empty-cell rule on two lines
    // (smaller if even those do not fit).
    let mut facts = vec![t!(lang, "chart-heatmap-posts", posts = h.posts)];
    if let Some(b) = h.basis {
        facts.push(basis_text(lang, b));
    }
    if let Some(m) = h.median_reach {
        facts.push(t!(lang, "chart-heatmap-median", median = m.round() as i64));
    }
    let facts = facts.join(" · ");
    let sparse = t!(lang, "chart-heatmap-sparse", min = HEATMAP_MIN_POSTS);
    let room = w - 40;
    let one_line = format!("{facts} · {sparse}");
    let (lines, sub_size) = if width_of(&one_line, 16)? <= room {
        (vec![one_line], 16)
    } else {
        let size = if width_of(&facts, 16)? <= room && width_of(&sparse, 16)? <= room {
            16
        } else {
            14
        };
        (vec![facts, sparse], size)
    };
    let centre_top = Pos::new(HPos::Center, VPos::Top);
    let mut y = 0;
    for line in &lines {
        put(line, sub_size, MUTED, centre_top, (w / 2, y))?;
        y += sub_size as i32 + 6;
    }

    // The grid: whole pixels per cell, a 3 px white gap between cells.
    let (gx, gy) = (LEFT, y + 14);
    let cw = ((w - LEFT - RIGHT) / 24).max(8);
    let ch = ((height - gy - BELOW) / 7).clamp(20, 96);
    let (gw, gh) = (cw * 24, ch * 7);
    let none = HeatCell {
        posts: 0,
        median_reach: None,
        index: None,
    };
    let centre = Pos::new(HPos::Center, VPos::Center);
    for d in 0..7_usize {
        let top = gy + d as i32 * ch;
        put(
            &weekday(lang, d),
            16,
            INK,
            Pos::new(HPos::Right, VPos::Center),
            (gx - 12, top + ch / 2),
        )?;
        for hour in 0..24_usize {
            let cell = h
                .cells
                .get(d)
                .and_then(|row| row.get(hour))
                .copied()
                .unwrap_or(none);
            let left = gx + hour as i32 * cw;
            let (a, b) = ((left + 1, top + 1), (left + cw - 2, top + ch - 2));
            let ink = match cell.index {
                Some(ix) => {
                    let fill = colour(scale_position(ix));
                    rect(a, b, fill.filled())?;
                    if is_dark(fill) { WHITE } else { INK }
                }
                None => {
                    rect(a, b, EMPTY_FILL.filled())?;
                    rect(a, b, EMPTY_EDGE.stroke_width(1))?;
                    FAINT
                }
            };
            if cell.posts > 0 {
                let n = i18n::int(lang, cell.posts);
                // Four digits and a separator still fit a ~40 px cell at 12 px.
                let size = if n.chars().count() >= 5 { 12 } else { 15 };
                put(&n, size, ink, centre, ((a.0 + b.0) / 2, (a.1 + b.1) / 2))?;
            }
        }
    }
    for hour in 0..24_i32 {
        put(
            &hour.to_string(),
            15,
            INK,
            centre_top,
            (gx + hour * cw + cw / 2, gy + gh + 6),
        )?;
    }
    put(
        &t!(lang, "chart-heatmap-hour"),
        15,
        MUTED,
        centre_top,
        (gx + gw / 2, gy + gh + 32),
    )?;

    // The colour scale: a vertical bar, 2.5 at the top, with its caption above it (kept
    // inside the picture) and tick labels at its right.
    let bx = gx + gw + 28;
    let bar_w = 22;
    let caption = t!(lang, "chart-heatmap-scale");
    let cap_x = bx.min(w - 8 - width_of(&caption, 15)?);
    put(
        &caption,
        15,
        INK,
        Pos::new(HPos::Left, VPos::Top),
        (cap_x, gy),
    )?;
    let (bar_top, bar_bottom) = (gy + 36, gy + gh);
    let bar_h = (bar_bottom - bar_top).max(1);
    let mut py = bar_top;
    while py < bar_bottom {
        let next = (py + 2).min(bar_bottom);
        let t = 1.0 - f64::from(py - bar_top) / f64::from(bar_h);
        rect((bx, py), (bx + bar_w, next), colour(t).filled())?;
        py = next;
    }
    rect(
        (bx, bar_top),
        (bx + bar_w, bar_bottom),
        MUTED.stroke_width(1),
    )?;
    for v in TICKS {
        let ty = bar_bottom - (scale_position(v) * f64::from(bar_h)).round() as i32;
        area.draw(&PathElement::new(
            vec![(bx + bar_w, ty), (bx + bar_w + 5, ty)],
            MUTED.stroke_width(1),
        ))
        .map_err(|x| e(&x))?;
        let value = format!("{}×", i18n::dec(lang, v, 1));
        let label = if v <= INDEX_LO {
            format!("≤ {value}")
        } else if v >= INDEX_HI {
            format!("≥ {value}")
        } else {
            value
        };
        put(
            &label,
            14,
            INK,
            Pos::new(HPos::Left, VPos::Center),
            (bx + bar_w + 8, ty),
        )?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::ChannelId;
    use crate::query::Channel;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// A heatmap whose cells hold `posts(d, hour)` posts, with an index where there are at
    /// least 3 (spread over 0.2–3.0, beyond both ends of the scale).
    fn heatmap(posts: impl Fn(usize, usize) -> i64, basis: Option<ReachBasis>) -> Heatmap {
        let cells: Vec<Vec<HeatCell>> = (0..7)
            .map(|d| {
                (0..24)
                    .map(|hour| {
                        let n = posts(d, hour);
                        let index =
                            (n >= HEATMAP_MIN_POSTS).then_some(0.2 + (d * 24 + hour) as f64 / 60.0);
                        HeatCell {
                            posts: n,
                            median_reach: index.map(|ix| ix * 4_000.0),
                            index,
                        }
                    })
                    .collect()
            })
            .collect();
        let total: i64 = cells.iter().flatten().map(|c| c.posts).sum();
        Heatmap {
            channel: Channel {
                id: ChannelId::new(1_234_567).unwrap(),
                handle: Some("demo".into()),
                title: Some("Demo".into()),
            },
            first_day: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            last_day: NaiveDate::from_ymd_opt(2026, 8, 29).unwrap(),
            timezone: "Europe/Moscow".into(),
            cells,
            median_reach: (total > 0).then_some(4_000.0),
            posts: total,
            basis,
        }
    }

    #[test]
    fn draws_a_png_in_both_languages_for_every_basis() {
        let busy = |d: usize, hour: usize| ((d * 7 + hour * 3) % 9) as i64;
        for (lang, basis) in [
            (Lang::En, Some(ReachBasis::Reach24h)),
            (Lang::Ru, Some(ReachBasis::Reach24h)),
            (Lang::En, Some(ReachBasis::LatestViews)),
            (Lang::Ru, Some(ReachBasis::Mixed)),
            (Lang::En, None),
        ] {
            let png = heatmap_png(&heatmap(busy, basis), lang).unwrap();
            assert!(png.starts_with(&PNG_SIGNATURE), "{lang:?} {basis:?}");
        }
        // A few posts, every cell empty, no median; and a ragged grid (rows missing).
        let sparse = heatmap(|d, hour| i64::from(d == 2 && hour == 9), None);
        assert!(
            heatmap_png(&sparse, Lang::Ru)
                .unwrap()
                .starts_with(&PNG_SIGNATURE)
        );
        let mut ragged = heatmap(busy, Some(ReachBasis::Mixed));
        ragged.cells.truncate(3);
        assert!(
            heatmap_png(&ragged, Lang::En)
                .unwrap()
                .starts_with(&PNG_SIGNATURE)
        );
    }

    #[test]
    fn no_posts_is_empty() {
        let err = heatmap_png(&heatmap(|_, _| 0, None), Lang::En).unwrap_err();
        assert!(matches!(err, Error::Empty(ref c) if c == "@demo"), "{err}");
    }

    #[test]
    fn the_scale_is_logarithmic_around_one_and_clamped() {
        assert!((scale_position(1.0) - 0.5).abs() < 1e-9);
        assert!((scale_position(2.0) - (1.0 - scale_position(0.5))).abs() < 1e-9);
        assert_eq!(scale_position(0.1), 0.0);
        assert_eq!(scale_position(10.0), 1.0);
        assert_eq!(scale_position(f64::NAN), 0.0);
        assert_eq!(colour(0.0), STOPS[0].1);
        assert_eq!(colour(1.0), STOPS[4].1);
        // Text on the top of the scale is white, on the typical middle dark.
        assert!(is_dark(colour(1.0)));
        assert!(!is_dark(colour(0.5)));
        assert!(!is_dark(colour(0.0)));
    }
}
