//! Writes one built-in validation scene and one face as PNG files, to send to `serve`:
//! `cargo run -p exemplar-data --example samples -- DIR [SIZE]` → `DIR/scene.png`, `DIR/face.png`.
//! `serve/assets/samples/` holds what `samples DIR` writes: the demo page's sample images.

use exemplar_data::synthetic::{Stream, SyntheticFaces, SyntheticObjects};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: samples DIR [SIZE]")?);
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(96);
    std::fs::create_dir_all(&dir)?;
    let scene = SyntheticObjects::new(1, Stream::Val, 10, size).scene(3);
    scene.image.to_rgb8().save(dir.join("scene.png"))?;
    let face = SyntheticFaces::new(1, Stream::Val, 10, size, 100).face(3);
    face.image.to_rgb8().save(dir.join("face.png"))?;
    println!(
        "{} and {}",
        dir.join("scene.png").display(),
        dir.join("face.png").display()
    );
    Ok(())
}
