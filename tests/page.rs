//! The demo page (`/`) and the API page (`/docs`) in headless Chromium, against `serve` with the
//! tiny test models: a person's steps (pick a model, choose a file or the sample, move the
//! threshold slider) and what must then be on the screen, read back from the canvas pixels.
//!
//! What is drawn is checked against the server's own answer for the same image, fetched here:
//! a box's outline in its class colour, the mask blended at the style's opacity, each landmark's
//! dot. The page must log no console error, exception or failed load (a resource from outside
//! the server would be refused by its Content-Security-Policy and logged).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use exemplar_tests::browser::Page;
use exemplar_tests::{Server, tiny_models};
use serde_json::Value;

fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| tiny_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-e2e")))
}

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../serve/assets")
        .join(name)
}

/// The drawing conventions the page (and the pipeline's picture) follow.
struct Style {
    palette: Vec<[u8; 3]>,
    /// The overlay's alpha as the page draws it: a byte.
    mask_alpha: f32,
}

fn style() -> Style {
    let style: Value =
        serde_json::from_slice(&std::fs::read(asset("drawing.json")).unwrap()).unwrap();
    let palette: Vec<[u8; 3]> = serde_json::from_value(style["palette"].clone()).unwrap();
    let opacity = style["mask_opacity"].as_f64().unwrap() as f32;
    Style {
        palette,
        mask_alpha: (255.0 * opacity).round() / 255.0,
    }
}

impl Style {
    fn colour(&self, index: usize) -> [u8; 3] {
        self.palette[index % self.palette.len()]
    }
}

/// The canvas's RGB at each `(x, y)` (canvas pixels).
fn canvas_pixels(page: &Page, points: &[[u32; 2]]) -> Vec<[u8; 3]> {
    let points = serde_json::to_string(points).unwrap();
    let value = page.eval(&format!(
        "(() => {{ const ctx = document.getElementById('canvas').getContext('2d'); \
         return {points}.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3))); }})()"
    ));
    serde_json::from_value(value).unwrap()
}

/// Picks `model`, chooses `file` in the file input and waits for `shown` (the answer's list).
fn upload(page: &Page, model: &str, file: &Path, shown: &str) {
    page.set_value("#model", model, "change");
    page.choose_file("#file", file);
    page.wait_for(&format!("document.querySelector({shown:?})"));
}

/// Picks `model`, presses the sample button and waits for `shown`.
fn use_sample(page: &Page, model: &str, shown: &str) {
    page.set_value("#model", model, "change");
    page.eval("document.getElementById('sample').click(), true");
    page.wait_for(&format!("document.querySelector({shown:?})"));
}

/// Canvas pixels per image pixel.
fn canvas_scale(page: &Page, image_width: u32) -> f32 {
    let width = page.eval("document.getElementById('canvas').width");
    width.as_f64().unwrap() as f32 / image_width as f32
}

fn text_of(page: &Page, selector: &str) -> String {
    let value = page.eval(&format!(
        "document.querySelector({selector:?})?.textContent ?? ''"
    ));
    value.as_str().unwrap().to_string()
}

fn near(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(&x, y)| (x as i32 - y as i32).abs() <= tolerance)
}

/// Opens the page and waits until it has listed the server's models.
fn open_demo(server: &Server) -> Page {
    let page = Page::open(&format!("http://{}/", server.addr));
    page.wait_for("document.body.dataset.ready");
    let options = page.eval("Array.from(document.getElementById('model').options, o => o.value)");
    let mut names: Vec<&str> = options
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "backbone",
            "classification",
            "detection",
            "landmarks",
            "segmentation"
        ]
    );
    page
}

fn detections_are_drawn(page: &Page, server: &Server, style: &Style) {
    let scene = std::fs::read(asset("samples/scene.png")).unwrap();
    let image = image::load_from_memory(&scene).unwrap().to_rgb8();
    upload(
        page,
        "detection",
        &asset("samples/scene.png"),
        "#detections",
    );
    let answer = server
        .post_image("/v1/detect?model=detection&score_threshold=0", &scene)
        .json();
    let detections = answer["detections"].as_array().unwrap();
    assert!(!detections.is_empty(), "{answer}");
    let table = text_of(page, "#detections");
    assert!(
        table.contains(&format!("{0} of {0} detections", detections.len())),
        "{table}"
    );
    for d in detections {
        assert!(table.contains(d["class_name"].as_str().unwrap()), "{table}");
    }
    // The best box is drawn last: its left and bottom edges (2 px bands inside the box) are in
    // its class colour, except where its own label (14 px high, above the box, pushed down
    // inside the canvas) covers them.
    let best = detections
        .iter()
        .max_by(|a, b| {
            a["score"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["score"].as_f64().unwrap())
        })
        .unwrap();
    let s = canvas_scale(page, image.width());
    let b: Vec<f32> = best["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32 * s)
        .collect();
    let label_rows = (b[1] - 14.0).max(0.0)..(b[1] - 14.0).max(0.0) + 14.0;
    let edges: Vec<[u32; 2]> = [
        [b[0].ceil() as u32, (b[1] + b[3] / 2.0) as u32],
        [
            (b[0] + b[2] / 2.0) as u32,
            (b[1] + b[3] - 2.0).ceil() as u32,
        ],
    ]
    .into_iter()
    .filter(|&[_, y]| !label_rows.contains(&(y as f32)))
    .collect();
    assert!(!edges.is_empty(), "the label covers the box {b:?}");
    let colour = style.colour(best["class_id"].as_u64().unwrap() as usize);
    let drawn = canvas_pixels(page, &edges);
    assert!(
        drawn.iter().all(|&p| p == colour),
        "the best box's edges at {edges:?} are {drawn:?}, not its colour {colour:?}"
    );
    // The slider re-filters without a new request: at 1 no box is left, the image shows.
    page.set_value("#threshold", "1", "input");
    let table = text_of(page, "#detections");
    assert!(
        table.contains(&format!("0 of {} detections", detections.len())),
        "{table}"
    );
    let plain: Vec<[u8; 3]> = edges
        .iter()
        .map(|&[x, y]| {
            image
                .get_pixel((x as f32 / s) as u32, (y as f32 / s) as u32)
                .0
        })
        .collect();
    assert_eq!(canvas_pixels(page, &edges), plain);
    let requests = page.eval(
        "performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/detect')).length",
    );
    assert_eq!(requests, Value::from(1));
}

fn mask_is_drawn(page: &Page, server: &Server, style: &Style) {
    let scene = std::fs::read(asset("samples/scene.png")).unwrap();
    let image = image::load_from_memory(&scene).unwrap().to_rgb8();
    use_sample(page, "segmentation", "#legend");
    let answer = server
        .post_image("/v1/segment?model=segmentation", &scene)
        .json();
    let png = base64::engine::general_purpose::STANDARD
        .decode(answer["mask"]["data"].as_str().unwrap())
        .unwrap();
    let mask = image::load_from_memory(&png).unwrap().to_luma8();
    let classes = answer["classes"].as_array().unwrap();
    let foreground: Vec<(u32, u32, usize)> = mask
        .enumerate_pixels()
        .filter(|(_, _, c)| c[0] > 0)
        .map(|(x, y, c)| (x, y, c[0] as usize))
        .collect();
    assert!(
        !foreground.is_empty(),
        "the test segmentation model finds only background in the sample; nothing to draw"
    );
    let legend = text_of(page, "#legend");
    for &(_, _, c) in &foreground {
        assert!(legend.contains(classes[c].as_str().unwrap()), "{legend}");
    }
    // Every foreground pixel (up to 64 of them) is the image blended with its class colour.
    let s = canvas_scale(page, image.width());
    let step = foreground.len().div_ceil(64);
    let sampled: Vec<&(u32, u32, usize)> = foreground.iter().step_by(step).collect();
    let points: Vec<[u32; 2]> = sampled
        .iter()
        .map(|&&(x, y, _)| [((x as f32 + 0.5) * s) as u32, ((y as f32 + 0.5) * s) as u32])
        .collect();
    let drawn = canvas_pixels(page, &points);
    for (&&(x, y, c), got) in sampled.iter().zip(drawn) {
        let base = image.get_pixel(x, y).0;
        let over = style.colour(c - 1);
        let expected: [u8; 3] = std::array::from_fn(|i| {
            (base[i] as f32 * (1.0 - style.mask_alpha) + over[i] as f32 * style.mask_alpha).round()
                as u8
        });
        assert!(
            near(got, expected, 3),
            "mask pixel ({x}, {y}) of class {c}: {got:?}, expected {expected:?}"
        );
    }
}

fn landmarks_are_drawn(page: &Page, server: &Server, style: &Style) {
    let face = std::fs::read(asset("samples/face.png")).unwrap();
    let width = image::load_from_memory(&face).unwrap().width();
    upload(page, "landmarks", &asset("samples/face.png"), "#landmarks");
    let answer = server
        .post_image("/v1/landmarks?model=landmarks", &face)
        .json();
    let points = answer["points"].as_array().unwrap();
    let list = text_of(page, "#landmarks");
    for p in points {
        assert!(list.contains(p["name"].as_str().unwrap()), "{list}");
    }
    // Each dot's centre is in its landmark's colour, unless a later label covers it.
    let s = canvas_scale(page, width);
    let centres: Vec<[u32; 2]> = points
        .iter()
        .map(|p| {
            let [x, y] = [&p["x"], &p["y"]].map(|v| v.as_f64().unwrap() as f32 * s);
            [x as u32, y as u32]
        })
        .collect();
    let drawn = canvas_pixels(page, &centres);
    let coloured = drawn
        .iter()
        .enumerate()
        .filter(|&(i, &p)| p == style.colour(i))
        .count();
    assert!(
        coloured * 2 > points.len(),
        "only {coloured} of {} landmark dots are drawn: {drawn:?}",
        points.len()
    );
}

fn classes_and_embedding_are_listed(page: &Page, server: &Server) {
    let scene = std::fs::read(asset("samples/scene.png")).unwrap();
    use_sample(page, "classification", "#classes");
    let answer = server
        .post_image("/v1/classify?model=classification", &scene)
        .json();
    let bars = page.eval(
        "Array.from(document.querySelectorAll('#classes .bar-label'), e => e.textContent.split(' ')[0])",
    );
    let expected: Vec<Value> = answer["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["class_name"].clone())
        .collect();
    assert_eq!(bars, Value::Array(expected));

    use_sample(page, "backbone", "#embedding");
    let answer = server.post_image("/v1/embed?model=backbone", &scene).json();
    let facts = text_of(page, "#embedding");
    assert!(
        facts.contains(&format!("dimension{}", answer["dim"])),
        "{facts}"
    );
}

/// A JPEG cut short: the page shows the server's reason, and draws nothing.
fn a_bad_file_shows_the_servers_error(page: &Page, server: &Server) {
    let mut jpeg = Vec::new();
    let scene = image::open(asset("samples/scene.png")).unwrap().to_rgb8();
    scene
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpeg, 90,
        ))
        .unwrap();
    jpeg.truncate(jpeg.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut-short.jpg");
    std::fs::write(&file, &jpeg).unwrap();
    let expected = server
        .request("POST", "/v1/detect?model=detection", "image/jpeg", &jpeg)
        .json();
    page.set_value("#model", "detection", "change");
    page.choose_file("#file", &file);
    page.wait_for("!document.getElementById('error').hidden");
    assert_eq!(text_of(page, "#error"), expected["error"].as_str().unwrap());
    let label = page.eval("document.getElementById('canvas').getAttribute('aria-label')");
    assert_eq!(label, Value::from("No image yet"));
}

#[test]
fn the_demo_page_draws_what_the_models_answer() {
    let server = Server::start(models(), &[]);
    let style = style();
    let page = open_demo(&server);
    detections_are_drawn(&page, &server, &style);
    mask_is_drawn(&page, &server, &style);
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-page.png");
    std::fs::write(&screenshot, page.screenshot()).unwrap();
    eprintln!("screenshot of the demo page: {}", screenshot.display());
    landmarks_are_drawn(&page, &server, &style);
    classes_and_embedding_are_listed(&page, &server);
    phone_photos_are_drawn_as_displayed(&page, &server);
    assert_eq!(page.take_problems(), Vec::<String>::new());
    a_bad_file_shows_the_servers_error(&page, &server);
    // The refused upload is logged as a failed load (HTTP 400), and nothing else is.
    let problems = page.take_problems();
    assert!(
        problems
            .iter()
            .all(|p| p.contains("status of 400") && p.contains("/v1/detect")),
        "{problems:?}"
    );
}

/// A phone's portrait photo (landscape pixels tagged EXIF orientation 6, "turn 90°") is drawn
/// as the browser displays it, portrait, and the server answers in that same frame, so boxes land
/// where they belong.
fn phone_photos_are_drawn_as_displayed(page: &Page, server: &Server) {
    use exemplar_inference::orientation::camera_jpeg;
    let shown = image::GrayImage::from_fn(48, 64, |x, y| {
        image::Luma([((x / 8) * 30 + (y / 8) * 12) as u8])
    });
    let jpeg = camera_jpeg(&shown, image::metadata::Orientation::Rotate90).unwrap();
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portrait-exif-6.jpg");
    std::fs::write(&file, &jpeg).unwrap();
    page.set_value("#model", "detection", "change");
    page.choose_file("#file", &file);
    page.wait_for(
        "document.getElementById('canvas').getAttribute('aria-label')?.includes('48×64')",
    );
    let size = page.eval(
        "[document.getElementById('canvas').width, document.getElementById('canvas').height]",
    );
    let [width, height]: [f64; 2] = serde_json::from_value(size).unwrap();
    assert!(
        height > width && (width * 64.0 - height * 48.0).abs() <= 64.0,
        "a 48×64 picture drawn {width}×{height}"
    );
    let answer = server
        .post_image("/v1/detect?model=detection", &jpeg)
        .json();
    assert_eq!(
        (answer["width"].as_u64(), answer["height"].as_u64()),
        (Some(48), Some(64)),
        "{answer}"
    );
}

/// Tab reaches every control in order; typing picks a model; Enter on the sample button sends
/// the sample and the result is drawn, with a text description on the canvas.
#[test]
fn the_demo_page_works_with_the_keyboard_alone() {
    let server = Server::start(models(), &[]);
    let page = open_demo(&server);
    let mut visited = Vec::new();
    for _ in 0..12 {
        page.tab.press_key("Tab").expect("Tab");
        let id = page.eval("document.activeElement?.id ?? ''");
        visited.push(id.as_str().unwrap_or_default().to_string());
        if visited.last().is_some_and(|id| id == "sample") {
            break;
        }
    }
    let position = |id: &str| visited.iter().position(|v| v == id);
    let order: Vec<Option<usize>> = ["model", "drop", "file", "sample"].map(position).into();
    assert!(
        order.iter().all(Option::is_some) && order.is_sorted(),
        "Tab visited {visited:?}"
    );
    // Back to the model list; typing "l" picks the landmarks model.
    page.eval("document.getElementById('model').focus(), true");
    page.tab.press_key("l").expect("l");
    let model = page.eval("document.getElementById('model').value");
    assert_eq!(model, Value::from("landmarks"));
    page.eval("document.getElementById('sample').focus(), true");
    page.tab.press_key("Enter").expect("Enter");
    page.wait_for("document.getElementById('landmarks')");
    let label = page.eval("document.getElementById('canvas').getAttribute('aria-label')");
    let label = label.as_str().unwrap();
    assert!(label.contains("landmarks: left_eye"), "{label}");
    assert_eq!(page.take_problems(), Vec::<String>::new());
}

#[test]
fn the_api_page_lists_every_operation_and_tries_one() {
    let server = Server::start(models(), &[]);
    let page = Page::open(&format!("http://{}/docs", server.addr));
    page.wait_for("document.body.dataset.ready");
    let openapi = server.get("/openapi.json").json();
    let operations: usize = openapi["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let shown = page.eval("document.querySelectorAll('.operation').length");
    assert_eq!(shown, Value::from(operations));
    // Open "GET /v2" and send it: the server's metadata appears.
    page.eval(
        "(() => { const op = Array.from(document.querySelectorAll('.operation')) \
         .find(d => d.querySelector('.path').textContent === '/v2'); \
         op.open = true; op.querySelector('form button').click(); return true; })()",
    );
    page.wait_for(
        "Array.from(document.querySelectorAll('.operation pre')).some(p => p.textContent.includes('HTTP 200'))",
    );
    let output = page.eval(
        "Array.from(document.querySelectorAll('.operation pre')).map(p => p.textContent).join('')",
    );
    let output = output.as_str().unwrap();
    assert!(output.contains("\"name\": \"exemplar-serve\""), "{output}");
    assert_eq!(page.take_problems(), Vec::<String>::new());
}

/// The page's samples are the built-in validation scene and face `scripts/pipeline.sh` sends,
/// so the served models see the kind of image they were trained on.
#[test]
fn the_sample_images_are_the_built_in_data() {
    use exemplar_data::synthetic::{Stream, SyntheticFaces, SyntheticObjects};
    let scene = SyntheticObjects::new(1, Stream::Val, 10, 96).scene(3);
    let face = SyntheticFaces::new(1, Stream::Val, 10, 96, 100).face(3);
    for (name, generated) in [("scene", scene.image), ("face", face.image)] {
        let committed = image::open(asset(&format!("samples/{name}.png")))
            .unwrap()
            .to_rgb8();
        assert!(
            committed == generated.to_rgb8(),
            "serve/assets/samples/{name}.png differs from the generator's; rewrite it with \
             `cargo run -p exemplar-data --example samples -- serve/assets/samples`"
        );
    }
}
