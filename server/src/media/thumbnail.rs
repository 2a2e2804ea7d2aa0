//! Thumbnails: which one a request gets, and making it. Pure functions over files and
//! bytes; the caller caches the result (table + content-addressed file) and bounds how
//! many run at once.
//!
//! - Sizes: `scale` requests snap to the spec's recommended boxes (32x32, 96x96, 320x240,
//!   640x480, 800x600) plus 1600x1200 for high-DPI screens: the smallest box that holds the
//!   requested size, so each image has a handful of scaled thumbnails however many sizes
//!   clients ask for. `crop` keeps the requested aspect ratio (the spec requires it), and
//!   is clamped to the same largest box.
//! - Never upscaled: an image smaller than the box is kept at its size.
//! - Decoding is bounded: the header is read first and images over [`MAX_PIXELS`] (or a
//!   side over [`MAX_SIDE`]) are refused before any pixel is decoded; the decoders also
//!   get an allocation limit. Only PNG, JPEG, GIF (first frame) and WebP decode; anything
//!   else, or a corrupt file, is an error, never a panic.
//! - Output: PNG for sources with transparency or from PNG/GIF, JPEG otherwise (as
//!   Synapse does). Thumbnails are never animated.

use std::io::{BufRead, BufReader, Cursor, Seek};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The largest image (in pixels) that is thumbnailed: Synapse's `max_image_pixels`.
pub const MAX_PIXELS: u64 = 32 * 1024 * 1024;
/// The longest side accepted.
pub const MAX_SIDE: u32 = 16384;
/// What the decoders may allocate (an RGBA image of MAX_PIXELS plus room).
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// Boxes `scale` requests snap to, smallest first.
const SCALE_BOXES: &[(u32, u32)] =
    &[(32, 32), (96, 96), (320, 240), (640, 480), (800, 600), (1600, 1200)];
/// The largest thumbnail made; larger requests get this.
const MAX_BOX: (u32, u32) = (1600, 1200);
/// JPEG quality of thumbnails.
const JPEG_QUALITY: u8 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Scale,
    Crop,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "scale" => Some(Method::Scale),
            "crop" => Some(Method::Crop),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Scale => "scale",
            Method::Crop => "crop",
        }
    }
}

/// The thumbnail a request is served from: a box and a method (the cache key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub width: u32,
    pub height: u32,
    pub method: Method,
}

/// Map a request (width and height at least 1) to the thumbnail that serves it.
pub fn normalise(width: u32, height: u32, method: Method) -> Want {
    let (width, height) = (width.max(1), height.max(1));
    match method {
        Method::Scale => {
            let (w, h) = SCALE_BOXES
                .iter()
                .copied()
                .find(|&(bw, bh)| bw >= width && bh >= height)
                .unwrap_or(MAX_BOX);
            Want { width: w, height: h, method }
        }
        Method::Crop => {
            // Keep the aspect ratio; shrink requests beyond the largest box to fit it.
            let (w, h) = if width > MAX_BOX.0 || height > MAX_BOX.1 {
                fit_within(width, height, MAX_BOX.0, MAX_BOX.1)
            } else {
                (width, height)
            };
            Want { width: w, height: h, method }
        }
    }
}

/// Source types thumbnails are made from (the rest get 400 without being decoded).
pub fn is_thumbnailable(content_type: &str) -> bool {
    matches!(
        super::base_type(content_type).as_str(),
        "image/png" | "image/jpeg" | "image/jpg" | "image/pjpeg" | "image/gif" | "image/webp"
    )
}

#[derive(Debug, PartialEq, Eq)]
pub enum ThumbError {
    /// Not an image Glia decodes, or a corrupt one.
    Unsupported(String),
    /// Over MAX_PIXELS / MAX_SIDE / MAX_ALLOC.
    TooLarge,
}

#[derive(Debug)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// What the source is, read from its header only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

fn reader<R: BufRead + Seek>(r: R) -> Result<ImageReader<R>, ThumbError> {
    let mut reader = ImageReader::new(r)
        .with_guessed_format()
        .map_err(|e| ThumbError::Unsupported(format!("reading image: {e}")))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP) => {}
        other => return Err(ThumbError::Unsupported(format!("not a supported image: {other:?}"))),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    Ok(reader)
}

fn map_err(e: image::ImageError) -> ThumbError {
    match e {
        image::ImageError::Limits(_) => ThumbError::TooLarge,
        other => ThumbError::Unsupported(other.to_string()),
    }
}

/// What serves a thumbnail request.
#[derive(Debug)]
pub enum Outcome {
    /// The source itself: a static PNG or JPEG that already fits the request (the spec:
    /// content smaller than the requested size is returned as it is).
    Original {
        content_type: &'static str,
        width: u32,
        height: u32,
    },
    Made(Thumbnail),
}

/// Decode the image in `r` (bounded, see the module docs) and make the thumbnail for
/// `want`, or find that the source serves as it is.
pub fn thumbnail_of<R: BufRead + Seek>(r: R, want: Want) -> Result<Outcome, ThumbError> {
    let reader = reader(r)?;
    let format = reader.format().ok_or_else(|| ThumbError::Unsupported("unknown format".into()))?;
    let mut decoder = reader.into_decoder().map_err(map_err)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ThumbError::Unsupported("empty image".into()));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ThumbError::TooLarge);
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let static_type = match format {
        ImageFormat::Png => Some("image/png"),
        ImageFormat::Jpeg => Some("image/jpeg"),
        _ => None,
    };
    // Decoded even when the source will be served as it is: a corrupt file is no thumbnail.
    let mut img = DynamicImage::from_decoder(decoder).map_err(map_err)?;
    if let Some(content_type) = static_type
        && orientation == Orientation::NoTransforms
        && fits_as_is(width, height, want)
    {
        return Ok(Outcome::Original { content_type, width, height });
    }
    img.apply_orientation(orientation);
    render(&img, format, want).map(Outcome::Made)
}

/// Would the thumbnail be the source unchanged?
fn fits_as_is(w: u32, h: u32, want: Want) -> bool {
    match want.method {
        Method::Scale => w <= want.width && h <= want.height,
        Method::Crop => {
            w <= want.width
                && u64::from(w) * u64::from(want.height) == u64::from(h) * u64::from(want.width)
        }
    }
}

/// The thumbnail of the image in the file at `path` for `want`.
pub fn generate_from_file(path: &std::path::Path, want: Want) -> Result<Outcome, ThumbError> {
    let f = std::fs::File::open(path).map_err(|e| ThumbError::Unsupported(e.to_string()))?;
    thumbnail_of(BufReader::new(f), want)
}

/// A thumbnail made from in-memory image bytes, even where the source would do.
pub fn generate(bytes: &[u8], want: Want) -> Result<Thumbnail, ThumbError> {
    match thumbnail_of(Cursor::new(bytes), want)? {
        Outcome::Made(t) => Ok(t),
        Outcome::Original { .. } => {
            let img = image::load_from_memory(bytes).map_err(map_err)?;
            let format = image::guess_format(bytes).map_err(map_err)?;
            render(&img, format, want)
        }
    }
}

/// `(w, h)` scaled down to fit within `(bw, bh)`, aspect kept, each side at least 1.
fn fit_within(w: u32, h: u32, bw: u32, bh: u32) -> (u32, u32) {
    if w <= bw && h <= bh {
        return (w, h);
    }
    let (w64, h64, bw64, bh64) = (u64::from(w), u64::from(h), u64::from(bw), u64::from(bh));
    if bw64 * h64 <= bh64 * w64 {
        // Width is the tighter constraint.
        (bw, ((bw64 * h64) / w64).max(1) as u32)
    } else {
        (((bh64 * w64) / h64).max(1) as u32, bh)
    }
}

fn render(img: &DynamicImage, format: ImageFormat, want: Want) -> Result<Thumbnail, ThumbError> {
    let (w, h) = (img.width(), img.height());
    let out = match want.method {
        Method::Scale => {
            let (tw, th) = fit_within(w, h, want.width, want.height);
            if (tw, th) == (w, h) {
                img.clone()
            } else {
                img.resize_exact(tw, th, FilterType::Triangle)
            }
        }
        Method::Crop => {
            // Cover the box, then cut the middle; never scale up: an image smaller than
            // the box is cut to the box's aspect ratio at its own size.
            let (bw, bh) = (u64::from(want.width), u64::from(want.height));
            let (w64, h64) = (u64::from(w), u64::from(h));
            // The largest centred region with the box's aspect ratio.
            let (cw, ch) = if w64 * bh > h64 * bw {
                (((h64 * bw) / bh).max(1), h64)
            } else {
                (w64, ((w64 * bh) / bw).max(1))
            };
            let (cw, ch) = (cw as u32, ch as u32);
            let region = img.crop_imm((w - cw) / 2, (h - ch) / 2, cw, ch);
            if cw > want.width {
                region.resize_exact(want.width, want.height, FilterType::Triangle)
            } else {
                region
            }
        }
    };
    encode(&out, format)
}

fn encode(img: &DynamicImage, source: ImageFormat) -> Result<Thumbnail, ThumbError> {
    let png = img.color().has_alpha() || matches!(source, ImageFormat::Png | ImageFormat::Gif);
    let mut bytes = Vec::new();
    let content_type = if png {
        let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
        let img =
            if img.color().has_alpha() { rgba } else { DynamicImage::ImageRgb8(img.to_rgb8()) };
        img.write_with_encoder(PngEncoder::new(&mut bytes)).map_err(map_err)?;
        "image/png"
    } else {
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY))
            .map_err(map_err)?;
        "image/jpeg"
    };
    Ok(Thumbnail { bytes, content_type, width: img.width(), height: img.height() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(PngEncoder::new(&mut out))
            .expect("encode png");
        out
    }

    fn encoded(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
        let img = RgbaImage::from_fn(w, h, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 9, 255]));
        let img = DynamicImage::ImageRgba8(img);
        let img =
            if format == ImageFormat::Jpeg { DynamicImage::ImageRgb8(img.to_rgb8()) } else { img };
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    fn dims(t: &Thumbnail) -> (u32, u32) {
        let img = image::load_from_memory(&t.bytes).expect("thumbnail decodes");
        assert_eq!((img.width(), img.height()), (t.width, t.height));
        (t.width, t.height)
    }

    #[test]
    fn scale_snaps_to_boxes() {
        assert_eq!(
            normalise(32, 32, Method::Scale),
            Want { width: 32, height: 32, method: Method::Scale }
        );
        assert_eq!(normalise(33, 10, Method::Scale).width, 96);
        assert_eq!(
            (normalise(300, 200, Method::Scale).width, normalise(300, 200, Method::Scale).height),
            (320, 240)
        );
        assert_eq!(normalise(5000, 5000, Method::Scale).width, 1600);
        assert_eq!(normalise(0, 0, Method::Scale).width, 32);
        // Crop keeps the requested aspect ratio.
        assert_eq!(
            normalise(100, 50, Method::Crop),
            Want { width: 100, height: 50, method: Method::Crop }
        );
        assert_eq!(
            normalise(3200, 1600, Method::Crop),
            Want { width: 1600, height: 800, method: Method::Crop }
        );
    }

    #[test]
    fn scale_keeps_aspect_and_never_upscales() {
        let src = png(1000, 500);
        let t = generate(&src, normalise(300, 200, Method::Scale)).expect("thumb");
        assert_eq!(t.content_type, "image/png");
        assert_eq!(dims(&t), (320, 160));
        let small = png(20, 10);
        let t = generate(&small, normalise(640, 480, Method::Scale)).expect("thumb");
        assert_eq!(dims(&t), (20, 10), "never scaled up");
        // A small static PNG or JPEG is served as it is.
        let r = thumbnail_of(Cursor::new(&small), normalise(640, 480, Method::Scale));
        assert!(
            matches!(r, Ok(Outcome::Original { content_type: "image/png", width: 20, height: 10 })),
            "{r:?}"
        );
        let r = thumbnail_of(Cursor::new(png(96, 96)), normalise(96, 96, Method::Crop));
        assert!(matches!(r, Ok(Outcome::Original { .. })), "{r:?}");
        let r = thumbnail_of(Cursor::new(png(96, 48)), normalise(96, 96, Method::Crop));
        assert!(matches!(r, Ok(Outcome::Made(_))), "wrong aspect: {r:?}");
        // A small GIF is re-encoded (a thumbnail is never animated).
        let gif = encoded(20, 10, ImageFormat::Gif);
        let r = thumbnail_of(Cursor::new(&gif), normalise(640, 480, Method::Scale));
        assert!(
            matches!(r, Ok(Outcome::Made(Thumbnail { content_type: "image/png", .. }))),
            "{r:?}"
        );
    }

    #[test]
    fn crop_has_the_requested_aspect() {
        let src = encoded(1000, 500, ImageFormat::Jpeg);
        let t = generate(&src, normalise(96, 96, Method::Crop)).expect("thumb");
        assert_eq!(t.content_type, "image/jpeg");
        assert_eq!(dims(&t), (96, 96));
        let t = generate(&src, normalise(200, 50, Method::Crop)).expect("thumb");
        assert_eq!(dims(&t), (200, 50));
        // Smaller than the box: cut to its aspect ratio at the source's own scale.
        let small = png(40, 20);
        let t = generate(&small, normalise(96, 96, Method::Crop)).expect("thumb");
        assert_eq!(dims(&t), (20, 20));
    }

    #[test]
    fn every_supported_format_decodes() {
        for f in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::WebP] {
            let src = encoded(300, 200, f);
            let t = generate(&src, normalise(96, 96, Method::Crop))
                .unwrap_or_else(|e| panic!("{f:?}: {e:?}"));
            assert_eq!(dims(&t), (96, 96), "{f:?}");
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let want = normalise(32, 32, Method::Scale);
        assert!(matches!(generate(b"", want), Err(ThumbError::Unsupported(_))));
        assert!(matches!(generate(b"<html>hi</html>", want), Err(ThumbError::Unsupported(_))));
        let mut src = png(64, 64);
        src.truncate(src.len() / 2);
        assert!(matches!(generate(&src, want), Err(ThumbError::Unsupported(_))), "truncated");
        let mut src = png(64, 64);
        for b in src.iter_mut().skip(40) {
            *b ^= 0x5a;
        }
        assert!(generate(&src, want).is_err(), "garbled");
        // Small enough to be served as it is, but corrupt: still an error.
        let r = thumbnail_of(Cursor::new(&src), normalise(96, 96, Method::Crop));
        assert!(matches!(r, Err(ThumbError::Unsupported(_))), "{r:?}");
        // A BMP header: a real image format, but not one Glia decodes.
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0u8; 64]);
        assert!(matches!(generate(&bmp, want), Err(ThumbError::Unsupported(_))));
    }

    /// A tiny PNG that claims to be 100,000 x 100,000 pixels (a decompression bomb) is
    /// refused from its header, before any allocation.
    #[test]
    fn decompression_bombs_are_refused_from_the_header() {
        let mut src = png(8, 8);
        // IHDR's width and height are at bytes 16..24; the CRC after them is then wrong,
        // so fix it too.
        src[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        src[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&src[12..29]);
        src[29..33].copy_from_slice(&crc.to_be_bytes());
        let r = generate(&src, normalise(32, 32, Method::Scale));
        assert_eq!(r.err(), Some(ThumbError::TooLarge));
        // Within the side limit but over the pixel budget.
        src[16..20].copy_from_slice(&10_000u32.to_be_bytes());
        src[20..24].copy_from_slice(&10_000u32.to_be_bytes());
        let crc = crc32(&src[12..29]);
        src[29..33].copy_from_slice(&crc.to_be_bytes());
        let r = generate(&src, normalise(32, 32, Method::Scale));
        assert_eq!(r.err(), Some(ThumbError::TooLarge));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn types() {
        assert!(is_thumbnailable("image/PNG"));
        assert!(is_thumbnailable("image/jpeg; charset=binary"));
        assert!(!is_thumbnailable("image/svg+xml"));
        assert!(!is_thumbnailable("text/html"));
    }
}
