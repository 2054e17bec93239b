//! Every real dataset format read from the small hand-written fixtures in
//! `tests/data/formats/` (images from `examples/write_fixtures.rs`), checked value by value.

use std::path::PathBuf;

use exemplar_data::{
    self, DataSource, DetectionSample, LandmarkSample, SegmentationSample, Split, SyntheticOptions,
    TaskDataset,
};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/formats")
        .join(path)
}

const SYNTHETIC: SyntheticOptions = SyntheticOptions {
    train_size: 0,
    val_size: 0,
    seed: 0,
    identities: 1,
};

fn detection(source: DataSource, split: Split) -> std::sync::Arc<dyn TaskDataset<DetectionSample>> {
    exemplar_data::open_detection(&source, split, SYNTHETIC, 32).unwrap()
}

fn segmentation(
    source: DataSource,
    split: Split,
) -> std::sync::Arc<dyn TaskDataset<SegmentationSample>> {
    exemplar_data::open_segmentation(&source, split, SYNTHETIC, 32).unwrap()
}

fn landmarks(source: DataSource, split: Split) -> std::sync::Arc<dyn TaskDataset<LandmarkSample>> {
    exemplar_data::open_landmarks(&source, split, SYNTHETIC, 32).unwrap()
}

#[test]
fn voc_detection_boxes_difficult_flags_and_clipping() {
    let train = detection(DataSource::Voc(fixture("voc/VOC2007")), Split::Train);
    assert_eq!(train.len(), 1);
    assert_eq!(train.class_names().len(), 20);
    let sample = train.get(0).unwrap();
    assert_eq!((sample.image.width, sample.image.height), (48, 32));
    let dog = sample.objects[0];
    assert_eq!(
        (dog.bbox, dog.class, dog.ignore),
        ([10.0, 5.0, 40.0, 30.0], 11, false)
    );
    let person = sample.objects[1];
    assert_eq!(
        (person.bbox, person.class, person.ignore),
        ([0.0, 0.0, 12.0, 20.0], 14, true)
    );
    // The test split (VOC07's benchmark) holds a box reaching below the image: clipped.
    let val = detection(DataSource::Voc(fixture("voc/VOC2007")), Split::Val);
    let cat = val.get(0).unwrap().objects[0];
    assert_eq!((cat.bbox, cat.class), ([4.0, 4.0, 20.0, 40.0], 7));
}

#[test]
fn voc_segmentation_reads_palette_indices_not_colours() {
    let train = segmentation(DataSource::Voc(fixture("voc/VOC2007")), Split::Train);
    assert_eq!(train.class_names()[0], "background");
    assert_eq!(train.class_names()[12], "dog");
    let sample = train.get(0).unwrap();
    let at = |x: usize, y: usize| sample.mask[y * 48 + x];
    assert_eq!((at(0, 0), at(20, 15), at(10, 5)), (0, 12, 255));
}

#[test]
fn coco_boxes_polygons_and_both_rle_forms() {
    let root = fixture("coco");
    let train = detection(DataSource::Coco(root.clone()), Split::Train);
    // Categories in increasing id order: person (1), dog (18).
    assert_eq!(train.class_names(), ["person", "dog"]);
    let a = train.get(0).unwrap();
    assert_eq!(
        (a.objects[0].bbox, a.objects[0].class),
        ([2.0, 3.0, 12.0, 11.0], 1)
    );
    // The crowd box reaches past the 40 px width: clipped, kept unscored.
    assert_eq!(a.objects[1].bbox, [20.0, 10.0, 40.0, 20.0]);
    assert!(a.objects[1].ignore);

    let seg = segmentation(DataSource::Coco(root.clone()), Split::Train);
    assert_eq!(seg.class_names(), ["background", "person", "dog"]);
    let a = seg.get(0).unwrap();
    let at = |m: &[u8], w: usize, x: usize, y: usize| m[y * w + x];
    // Polygon (2,3)–(12,11): pixel centres inside are the dog (2).
    assert_eq!(at(&a.mask, 40, 2, 3), 2);
    assert_eq!(at(&a.mask, 40, 11, 10), 2);
    assert_eq!(at(&a.mask, 40, 12, 10), 0);
    // Plain RLE crowd (columns 20–21, rows 10–19): ignored.
    assert_eq!(at(&a.mask, 40, 20, 10), 255);
    assert_eq!(at(&a.mask, 40, 21, 19), 255);
    assert_eq!(at(&a.mask, 40, 22, 10), 0);
    // Compressed RLE: an 8×8 person square at (4, 4).
    let b = seg.get(1).unwrap();
    let on: usize = b.mask.iter().filter(|&&v| v == 1).count();
    assert_eq!(on, 64);
    assert_eq!(
        (
            at(&b.mask, 32, 4, 4),
            at(&b.mask, 32, 11, 11),
            at(&b.mask, 32, 12, 11)
        ),
        (1, 1, 0)
    );

    let val = detection(DataSource::Coco(root), Split::Val);
    assert_eq!(val.class_names(), ["person", "dog"]);
    assert_eq!(val.get(0).unwrap().objects[0].bbox, [30.0, 4.0, 36.0, 14.0]);
}

#[test]
fn cityscapes_label_ids_become_train_ids() {
    let train = segmentation(DataSource::Cityscapes(fixture("cityscapes")), Split::Train);
    assert_eq!(train.len(), 1);
    assert_eq!(train.class_names().len(), 19);
    let sample = train.get(0).unwrap();
    let at = |x: usize, y: usize| sample.mask[y * 32 + x];
    // Road (7 → 0), car (26 → 13), unlabeled (0 → 255).
    assert_eq!((at(0, 15), at(5, 10), at(0, 0)), (0, 13, 255));
    assert_eq!(
        segmentation(DataSource::Cityscapes(fixture("cityscapes")), Split::Val).len(),
        1
    );
}

#[test]
fn celeba_landmarks_follow_the_partition_file() {
    let train = landmarks(DataSource::CelebA(fixture("celeba")), Split::Train);
    let val = landmarks(DataSource::CelebA(fixture("celeba")), Split::Val);
    assert_eq!((train.len(), val.len()), (2, 1));
    let face = val.get(0).unwrap();
    assert_eq!((face.image.width, face.image.height), (40, 48));
    assert_eq!(
        face.points,
        vec![
            [11.0, 18.0],
            [26.0, 17.0],
            [19.0, 26.0],
            [13.0, 35.0],
            [25.0, 35.0]
        ]
    );
}

#[test]
fn pts_files_reduce_to_the_five_mafl_points() {
    let train = landmarks(DataSource::Pts(fixture("300w")), Split::Train);
    let face = train.get(0).unwrap();
    let expected = [
        [22.4, 24.0],
        [41.6, 24.0],
        [32.0, 31.44],
        [24.8, 42.0],
        [39.2, 42.0],
    ];
    for (got, want) in face.points.iter().zip(expected) {
        assert!(
            (got[0] - want[0]).abs() < 2e-3 && (got[1] - want[1]).abs() < 2e-3,
            "{got:?} vs {want:?}"
        );
    }
    assert_eq!(
        landmarks(DataSource::Pts(fixture("300w")), Split::Val).len(),
        1
    );
}

/// Why `opened` failed, as the user reads it.
fn refusal<T>(opened: Result<T, exemplar_data::DataError>) -> String {
    opened.err().expect("the source was refused").to_string()
}

#[test]
fn sources_that_do_not_fit_a_task_are_named() {
    let open_detection =
        |source| exemplar_data::open_detection(&source, Split::Train, SYNTHETIC, 32);
    let err = refusal(open_detection(DataSource::CelebA(fixture("celeba"))));
    assert!(
        err.contains("celeba:") && err.contains("detection") && err.contains("voc"),
        "{err}"
    );
    let landmarks = DataSource::Voc(fixture("nowhere"));
    let err = refusal(exemplar_data::open_landmarks(
        &landmarks,
        Split::Train,
        SYNTHETIC,
        32,
    ));
    assert!(err.contains("landmarks"), "{err}");
    // A directory without the layout: the missing file is named.
    let err = refusal(open_detection(DataSource::Voc(fixture("celeba"))));
    assert!(err.contains("trainval.txt"), "{err}");
}
