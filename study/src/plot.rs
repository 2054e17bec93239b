//! Small PNG charts for study reports: line charts (training curves, a metric along the
//! augmentation steps) and grouped bar charts with error bars.
//!
//! Drawn pixel by pixel with an embedded 8×8 bitmap font (`font8x8`) so that a report renders the
//! same on any machine, with no system fonts and no plotting stack to install.

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

const WIDTH: u32 = 840;
const HEIGHT: u32 = 480;
/// Plot area margins: left (y tick labels), right (legend), top (title), bottom (x labels).
const MARGIN: [i64; 4] = [78, 190, 44, 64];
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([30, 30, 30]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
/// Colour-blind-safe palette (Okabe–Ito).
const PALETTE: [Rgb<u8>; 7] = [
    Rgb([0, 114, 178]),
    Rgb([213, 94, 0]),
    Rgb([0, 158, 115]),
    Rgb([204, 121, 167]),
    Rgb([230, 159, 0]),
    Rgb([86, 180, 233]),
    Rgb([120, 120, 120]),
];

/// One line of a line chart: points `(x, y, error)`, the error drawn as a ±bar.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64, Option<f64>)>,
}

#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Named positions on the x axis (categories); numeric ticks when empty.
    pub x_categories: Vec<String>,
}

/// One bar's height and error, `(mean, std)`; `None` leaves a gap.
pub type Bar = Option<(f64, f64)>;

/// Bars grouped by `groups`: each series is a name and one bar per group.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub groups: Vec<String>,
    pub series: Vec<(String, Vec<Bar>)>,
}

/// Draws `text` into `image` with its top-left corner at `(x, y)`, each font pixel `scale`
/// pixels wide, in the embedded 8×8 font; what falls outside the image is clipped.
pub fn draw_text(image: &mut RgbImage, x: i64, y: i64, text: &str, scale: i64, color: Rgb<u8>) {
    let (width, height) = (image.width() as i64, image.height() as i64);
    for (i, c) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS
            .get(c)
            .or_else(|| font8x8::BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        let left = x + i as i64 * 8 * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 0 {
                    continue;
                }
                let (px, py) = (left + col * scale, y + row as i64 * scale);
                for yy in py.max(0)..(py + scale).min(height) {
                    for xx in px.max(0)..(px + scale).min(width) {
                        image.put_pixel(xx as u32, yy as u32, color);
                    }
                }
            }
        }
    }
}

/// A linear map from data values to pixels along one axis.
#[derive(Debug, Clone, Copy)]
struct Axis {
    min: f64,
    max: f64,
    from: f64,
    to: f64,
}

impl Axis {
    fn px(&self, value: f64) -> i64 {
        let t = if self.max > self.min {
            (value - self.min) / (self.max - self.min)
        } else {
            0.5
        };
        (self.from + t * (self.to - self.from)).round() as i64
    }
}

struct Canvas {
    image: RgbImage,
}

impl Canvas {
    fn new() -> Self {
        Self {
            image: RgbImage::from_pixel(WIDTH, HEIGHT, BACKGROUND),
        }
    }

    fn put(&mut self, x: i64, y: i64, color: Rgb<u8>) {
        if x >= 0 && y >= 0 && (x as u32) < WIDTH && (y as u32) < HEIGHT {
            self.image.put_pixel(x as u32, y as u32, color);
        }
    }

    fn fill(&mut self, [x0, y0, x1, y1]: [i64; 4], color: Rgb<u8>) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.put(x, y, color);
            }
        }
    }

    /// A line `width` pixels thick (Bresenham, with a square brush).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), width: i64, color: Rgb<u8>) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let half = width / 2;
        loop {
            self.fill(
                [
                    x - half,
                    y - half,
                    x - half + width - 1,
                    y - half + width - 1,
                ],
                color,
            );
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at `(x, y)`, each font pixel `scale` pixels wide.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb<u8>) {
        draw_text(&mut self.image, x, y, text, scale, color);
    }

    fn text_width(text: &str, scale: i64) -> i64 {
        text.chars().count() as i64 * 8 * scale
    }

    fn centered(&mut self, cx: i64, y: i64, text: &str, scale: i64, color: Rgb<u8>) {
        self.text(
            cx - Self::text_width(text, scale) / 2,
            y,
            text,
            scale,
            color,
        );
    }

    fn png(&self) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        self.image
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encoding a PNG in memory cannot fail");
        out.into_inner()
    }
}

/// About five round tick values covering `[min, max]`.
fn ticks(min: f64, max: f64) -> Vec<f64> {
    let span = (max - min).max(1e-12);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// The distance between consecutive ticks (1 when there is only one).
fn tick_step(values: &[f64]) -> f64 {
    match values {
        [a, b, ..] => b - a,
        _ => 1.0,
    }
}

/// `value` with as many decimals as the tick step needs (2.5 needs one, 0.02 two).
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6) as usize;
    format!("{value:.decimals$}")
}

/// The data range padded by 5% on each side, so markers do not sit on the frame.
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// Title, frame, y grid and y tick labels; returns the y axis.
fn frame(canvas: &mut Canvas, title: &str, y_label: &str, (y_min, y_max): (f64, f64)) -> Axis {
    let [left, right, top, bottom] = MARGIN;
    let (x1, y1) = (WIDTH as i64 - right, HEIGHT as i64 - bottom);
    canvas.centered((left + x1) / 2, 12, title, 2, INK);
    canvas.text(8, top - 16, y_label, 1, INK);
    let axis = Axis {
        min: y_min,
        max: y_max,
        from: y1 as f64,
        to: top as f64,
    };
    let values = ticks(y_min, y_max);
    let step = tick_step(&values);
    for v in values {
        let y = axis.px(v);
        canvas.line((left, y), (x1, y), 1, GRID);
        let label = tick_label(v, step);
        canvas.text(
            left - 6 - Canvas::text_width(&label, 1),
            y - 4,
            &label,
            1,
            INK,
        );
    }
    canvas.line((left, top), (left, y1), 1, INK);
    canvas.line((left, y1), (x1, y1), 1, INK);
    axis
}

fn legend(canvas: &mut Canvas, names: &[String]) {
    let x = WIDTH as i64 - MARGIN[1] + 16;
    for (i, name) in names.iter().enumerate() {
        let y = MARGIN[2] + 8 + i as i64 * 18;
        let color = PALETTE[i % PALETTE.len()];
        canvas.fill([x, y, x + 14, y + 8], color);
        canvas.text(x + 20, y, name, 1, INK);
    }
}

fn error_bar(canvas: &mut Canvas, x: i64, y_axis: &Axis, mean: f64, err: f64, color: Rgb<u8>) {
    let (lo, hi) = (y_axis.px(mean - err), y_axis.px(mean + err));
    canvas.line((x, lo), (x, hi), 1, color);
    canvas.line((x - 4, lo), (x + 4, lo), 1, color);
    canvas.line((x - 4, hi), (x + 4, hi), 1, color);
}

impl LineChart {
    /// The chart as PNG bytes.
    pub fn render(&self) -> Vec<u8> {
        let mut canvas = Canvas::new();
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let y_range = padded(points().flat_map(|&(_, y, e)| {
            let e = e.unwrap_or(0.0);
            [y - e, y + e]
        }));
        let y_axis = frame(&mut canvas, &self.title, &self.y_label, y_range);
        let [left, right, _, bottom] = MARGIN;
        let (x1, y1) = (WIDTH as i64 - right, HEIGHT as i64 - bottom);
        let x_axis = if self.x_categories.is_empty() {
            let (lo, hi) = padded(points().map(|&(x, _, _)| x));
            let axis = Axis {
                min: lo,
                max: hi,
                from: left as f64,
                to: x1 as f64,
            };
            let values = ticks(lo, hi);
            let step = tick_step(&values);
            for v in values {
                let x = axis.px(v);
                canvas.line((x, y1), (x, y1 + 4), 1, INK);
                canvas.centered(x, y1 + 8, &tick_label(v, step), 1, INK);
            }
            axis
        } else {
            let axis = Axis {
                min: -0.5,
                max: self.x_categories.len() as f64 - 0.5,
                from: left as f64,
                to: x1 as f64,
            };
            for (i, name) in self.x_categories.iter().enumerate() {
                let x = axis.px(i as f64);
                canvas.line((x, y1), (x, y1 + 4), 1, INK);
                canvas.centered(x, y1 + 8, name, 1, INK);
            }
            axis
        };
        canvas.centered((left + x1) / 2, y1 + 28, &self.x_label, 1, INK);
        for (i, series) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pixels: Vec<(i64, i64)> = series
                .points
                .iter()
                .map(|&(x, y, _)| (x_axis.px(x), y_axis.px(y)))
                .collect();
            for pair in pixels.windows(2) {
                canvas.line(pair[0], pair[1], 2, color);
            }
            for (&(x, y), &(_, mean, err)) in pixels.iter().zip(&series.points) {
                if let Some(err) = err {
                    error_bar(&mut canvas, x, &y_axis, mean, err, color);
                }
                if self.x_categories.len() == series.points.len() || pixels.len() == 1 {
                    canvas.fill([x - 3, y - 3, x + 3, y + 3], color);
                }
            }
        }
        let names: Vec<String> = self.series.iter().map(|s| s.name.clone()).collect();
        legend(&mut canvas, &names);
        canvas.png()
    }
}

impl BarChart {
    /// The chart as PNG bytes. The y axis starts at zero unless values are negative.
    pub fn render(&self) -> Vec<u8> {
        let mut canvas = Canvas::new();
        let values = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten())
            .flat_map(|&(m, s)| [m - s, m + s])
            .chain([0.0]);
        let (lo, hi) = padded(values);
        let y_axis = frame(&mut canvas, &self.title, &self.y_label, (lo.min(0.0), hi));
        let [left, right, _, bottom] = MARGIN;
        let (x1, y1) = (WIDTH as i64 - right, HEIGHT as i64 - bottom);
        let group_width = (x1 - left) / self.groups.len().max(1) as i64;
        let bars = self.series.len().max(1) as i64;
        let bar_width = (group_width * 3 / 4 / bars).max(2);
        let zero = y_axis.px(0.0);
        for (g, group) in self.groups.iter().enumerate() {
            let start = left + g as i64 * group_width + group_width / 8;
            canvas.centered(
                left + g as i64 * group_width + group_width / 2,
                y1 + 8,
                group,
                1,
                INK,
            );
            for (s, (_, values)) in self.series.iter().enumerate() {
                let Some(Some((mean, std))) = values.get(g) else {
                    continue;
                };
                let color = PALETTE[s % PALETTE.len()];
                let x = start + s as i64 * bar_width;
                canvas.fill([x + 1, zero, x + bar_width - 2, y_axis.px(*mean)], color);
                error_bar(&mut canvas, x + bar_width / 2, &y_axis, *mean, *std, INK);
            }
        }
        let names: Vec<String> = self.series.iter().map(|(n, _)| n.clone()).collect();
        legend(&mut canvas, &names);
        canvas.png()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.71, 0.79);
        assert!(
            t.len() >= 3 && t[0] >= 0.71 && *t.last().unwrap() <= 0.79,
            "{t:?}"
        );
    }

    #[test]
    fn a_line_chart_draws_each_series_in_its_colour() {
        let chart = LineChart {
            title: "loss".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            series: vec![
                Series {
                    name: "a".into(),
                    points: vec![(0.0, 1.0, None), (10.0, 0.5, None)],
                },
                Series {
                    name: "b".into(),
                    points: vec![(0.0, 2.0, Some(0.1)), (10.0, 1.5, Some(0.2))],
                },
            ],
            x_categories: vec![],
        };
        let image = decode(&chart.render());
        assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
        for color in &PALETTE[..2] {
            assert!(image.pixels().any(|p| p == color), "{color:?} missing");
        }
        assert!(!image.pixels().any(|p| *p == PALETTE[2]));
    }

    #[test]
    fn a_bar_reaches_its_value() {
        let chart = BarChart {
            title: "top-1".into(),
            y_label: "%".into(),
            groups: vec!["x".into()],
            series: vec![("only".into(), vec![Some((50.0, 0.0))])],
        };
        let image = decode(&chart.render());
        let column: Vec<u32> = (0..HEIGHT)
            .filter(|&y| {
                (0..WIDTH).any(|x| *image.get_pixel(x, y) == PALETTE[0])
                    && !(MARGIN[2] as u32 + 8..MARGIN[2] as u32 + 17).contains(&y)
            })
            .collect();
        let (top, bottom) = (column[0] as f64, *column.last().unwrap() as f64);
        let plot_top = MARGIN[2] as f64;
        let plot_bottom = (HEIGHT as i64 - MARGIN[3]) as f64;
        // 50 on an axis from 0 to about 52.5: the bar fills about 95% of the height.
        let filled = (bottom - top) / (plot_bottom - plot_top);
        assert!((0.9..1.0).contains(&filled), "{filled}");
    }
}
