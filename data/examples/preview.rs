//! Writes a grid of built-in dataset samples (and their augmented views) to a PNG, to see what
//! the networks see: `cargo run -p exemplar-data --example preview -- OUT.png [SIZE]`.

use exemplar_data::Image;
use exemplar_data::augment::AugmentPreset;
use exemplar_data::synthetic::{
    Stream, SyntheticFaces, SyntheticObjects, SyntheticTextures, rng_for,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: preview OUT.png [SIZE]")?;
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let objects = SyntheticObjects::new(0, Stream::Train, 100, size);
    let faces = SyntheticFaces::new(0, Stream::Train, 100, size, 10);
    let aug = AugmentPreset::AugPlus.pipeline();
    let textures = SyntheticTextures::new(0, Stream::Train, 100, size);
    let (cols, rows) = (10, 5);
    let mut grid = Image::new(cols * size, rows * size);
    for c in 0..cols {
        let scene = objects.scene(c);
        let view = aug.apply(&scene.image, size, &mut rng_for(1, &[c as u64]));
        let other = objects.scene(c + 10).image;
        let face = faces.face(c).image;
        let texture = textures.texture(c).0;
        for (r, img) in [&scene.image, &view, &other, &face, &texture]
            .into_iter()
            .enumerate()
        {
            for y in 0..size {
                for x in 0..size {
                    grid.set_pixel(c * size + x, r * size + y, img.pixel(x, y));
                }
            }
        }
    }
    grid.to_rgb8().save(&out)?;
    println!(
        "rows: scene, its aug+ view, another scene of the same class, a face, a texture -> {out}"
    );
    Ok(())
}
