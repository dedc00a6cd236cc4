//! The picture size of a rung for a source: the rung's height, never above
//! the source's, and the source's aspect ratio, both even.

/// A rung's picture size for a source: the rung's height (even) and the
/// source's aspect ratio (even width).
pub fn rung_size(source_width: u32, source_height: u32, height: u32) -> (u32, u32) {
    let height = (height.min(source_height) / 2 * 2).max(2);
    let width = ((source_width as f64 * height as f64 / source_height as f64 / 2.0).round() as u32 * 2).max(2);
    (width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rung_sizes_keep_the_aspect_ratio_even_and_never_upscale() {
        for (source, height, want) in [
            ((1920, 1080), 720, (1280, 720)),
            ((640, 360), 240, (426, 240)),
            ((640, 360), 144, (256, 144)),
            ((640, 360), 720, (640, 360)),
            ((1080, 1920), 360, (202, 360)),
            ((3, 3), 1, (2, 2)),
        ] {
            assert_eq!(rung_size(source.0, source.1, height), want, "{source:?} to {height}p");
        }
    }
}
