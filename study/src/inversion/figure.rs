//! A grid of pictures with a label above each column: the original image and its
//! reconstructions through each backbone, one row per image.

use exemplar_inference::Image;
use image::{Rgb, RgbImage};

use crate::plot::draw_text;

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([30, 30, 30]);
/// Panels are enlarged (nearest neighbour, so pixels stay visible) to at least this height.
const MIN_PANEL: usize = 96;
const GAP: usize = 6;
const LABEL: usize = 14;

/// `rows` of equally sized images under `columns` labels, each panel enlarged by a whole
/// factor. Labels longer than a panel are cut.
pub fn grid(columns: &[String], rows: &[Vec<Image>]) -> RgbImage {
    let (width, height) = rows
        .first()
        .and_then(|row| row.first())
        .map_or((1, 1), |image| (image.width.max(1), image.height.max(1)));
    let factor = MIN_PANEL.div_ceil(height).max(1);
    let (panel_w, panel_h) = (width * factor, height * factor);
    let count = columns
        .len()
        .max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let total_w = GAP + count * (panel_w + GAP);
    let total_h = LABEL + GAP + rows.len() * (panel_h + GAP);
    let mut canvas = RgbImage::from_pixel(total_w as u32, total_h as u32, BACKGROUND);
    let characters = panel_w / 8;
    for (c, label) in columns.iter().enumerate() {
        let shown: String = label.chars().take(characters).collect();
        let x = GAP + c * (panel_w + GAP);
        draw_text(&mut canvas, x as i64, 3, &shown, 1, INK);
    }
    for (r, row) in rows.iter().enumerate() {
        let top = LABEL + GAP + r * (panel_h + GAP);
        for (c, image) in row.iter().enumerate() {
            let left = GAP + c * (panel_w + GAP);
            let pixels = image.to_rgb8();
            for y in 0..panel_h.min(image.height * factor) {
                for x in 0..panel_w.min(image.width * factor) {
                    let pixel = *pixels.get_pixel((x / factor) as u32, (y / factor) as u32);
                    canvas.put_pixel((left + x) as u32, (top + y) as u32, pixel);
                }
            }
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_enlarged_whole_and_placed_under_their_labels() {
        let mut red = Image::new(16, 16);
        red.data.chunks_exact_mut(3).for_each(|p| p[0] = 1.0);
        let grey = Image {
            width: 16,
            height: 16,
            data: vec![0.5; 16 * 16 * 3],
        };
        let picture = grid(
            &["original".into(), "moco-v2".into()],
            &[vec![red.clone(), grey.clone()], vec![grey, red]],
        );
        // 16 px enlarged 6× to 96; two columns and two rows with gaps and a label strip.
        assert_eq!(picture.width() as usize, GAP + 2 * (96 + GAP));
        assert_eq!(picture.height() as usize, LABEL + GAP + 2 * (96 + GAP));
        let at = |x: usize, y: usize| *picture.get_pixel(x as u32, y as u32);
        assert_eq!(at(GAP + 50, LABEL + GAP + 50), Rgb([255, 0, 0]));
        assert_eq!(
            at(2 * GAP + 96 + 50, LABEL + GAP + 50),
            Rgb([128, 128, 128])
        );
        assert_eq!(
            at(2 * GAP + 96 + 50, LABEL + 2 * GAP + 96 + 50),
            Rgb([255, 0, 0])
        );
        // Some ink in the label strip.
        assert!((0..picture.width()).any(|x| picture.get_pixel(x, 6) == &INK));
    }
}
