//! Sprite sheets of thumbnails: a grid of equal tiles in one JPEG, which
//! scrubbing tracks (WebVTT cues `sprite.jpg#xywh=x,y,w,h`) point into, so a
//! player fetches one picture per grid rather than one per thumbnail.

use bytes::Bytes;
use ffmpeg_next as ffmpeg;

use crate::error::AccelError;
use crate::jpeg::{JpegEncoder, Picture};

/// A tile's place in its sheet, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Where tile `index` of a `columns`-wide grid of `width`x`height` tiles lies.
pub fn tile(index: u32, columns: u32, width: u32, height: u32) -> Tile {
    let columns = columns.max(1);
    Tile { x: index % columns * width, y: index / columns * height, width, height }
}

/// One sheet being filled, tile by tile (row by row, left to right; a tile
/// placed again replaces the picture there).
pub struct SpriteSheet {
    columns: u32,
    rows: u32,
    tile_width: u32,
    tile_height: u32,
    sheet: ffmpeg::frame::Video,
    encoder: JpegEncoder,
}

impl SpriteSheet {
    /// An empty (black) sheet of `columns` x `rows` tiles of `tile_width` x `tile_height` (even sizes).
    pub fn new(tile_width: u32, tile_height: u32, columns: u32, rows: u32) -> Result<SpriteSheet, AccelError> {
        crate::ffi::init();
        let (tile_width, tile_height) = (tile_width.max(2) & !1, tile_height.max(2) & !1);
        let (columns, rows) = (columns.max(1), rows.max(1));
        let (width, height) = (tile_width * columns, tile_height * rows);
        let encoder = JpegEncoder::open(width, height)?;
        let Picture(sheet) = Picture::black(width, height);
        Ok(SpriteSheet { columns, rows, tile_width, tile_height, sheet, encoder })
    }

    /// Tiles a sheet holds.
    pub fn capacity(&self) -> u32 {
        self.columns * self.rows
    }

    /// The whole sheet's size.
    pub fn size(&self) -> (u32, u32) {
        self.encoder.size()
    }

    /// Copies `picture` into tile `index` and returns where it lies. A
    /// picture of another size is cut to the tile (or leaves black around it).
    pub fn place(&mut self, index: u32, picture: &Picture) -> Result<Tile, AccelError> {
        if index >= self.capacity() {
            return Err(AccelError::Source(format!("the sprite sheet has no tile {index}")));
        }
        let tile = tile(index, self.columns, self.tile_width, self.tile_height);
        let source = &picture.0;
        for plane in 0..3 {
            // 4:2:0: the chroma planes are half as wide and half as high.
            let shift = u32::from(plane > 0);
            let (x, y) = ((tile.x >> shift) as usize, (tile.y >> shift) as usize);
            let columns = (tile.width.min(source.width()) >> shift) as usize;
            let rows = (tile.height.min(source.height()) >> shift) as usize;
            let (from_stride, to_stride) = (source.stride(plane), self.sheet.stride(plane));
            let from = source.data(plane);
            let to = self.sheet.data_mut(plane);
            for row in 0..rows {
                let at = (y + row) * to_stride + x;
                to[at..at + columns].copy_from_slice(&from[row * from_stride..row * from_stride + columns]);
            }
        }
        Ok(tile)
    }

    /// The sheet as it is now, as JPEG (unfilled tiles black).
    pub fn encode(&mut self) -> Result<Bytes, AccelError> {
        self.encoder.encode(&mut self.sheet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_go_row_by_row() {
        assert_eq!(tile(0, 5, 320, 180), Tile { x: 0, y: 0, width: 320, height: 180 });
        assert_eq!(tile(4, 5, 320, 180), Tile { x: 1280, y: 0, width: 320, height: 180 });
        assert_eq!(tile(7, 5, 320, 180), Tile { x: 640, y: 180, width: 320, height: 180 });
    }

    #[test]
    fn a_sheet_takes_its_tiles_refuses_more_and_encodes_as_jpeg() {
        let source = crate::source::generated(320, 180, 25, 3, 25).unwrap();
        let mut thumbnailer = crate::thumbnail::Thumbnailer::new(160);
        let mut pictures = Vec::new();
        for event in &source.events {
            match event {
                media::StreamEvent::Tracks(tracks) => thumbnailer.set_track(&tracks[0]).unwrap(),
                media::StreamEvent::Unit(u) if u.keyframe && u.kind == media::TrackKind::Video => {
                    pictures.push(thumbnailer.render(u).unwrap().picture);
                }
                media::StreamEvent::Unit(_) => {}
            }
        }
        let mut sheet = SpriteSheet::new(160, 90, 2, 1).unwrap();
        assert_eq!(sheet.size(), (320, 90));
        assert_eq!(sheet.place(0, &pictures[0]).unwrap(), Tile { x: 0, y: 0, width: 160, height: 90 });
        let half = sheet.encode().unwrap();
        assert_eq!(sheet.place(1, &pictures[1]).unwrap(), Tile { x: 160, y: 0, width: 160, height: 90 });
        assert!(sheet.place(2, &pictures[2]).is_err(), "two tiles only");
        let full = sheet.encode().unwrap();
        assert_eq!(&full[..2], &[0xff, 0xd8]);
        assert!(full.len() > half.len(), "the second tile is no longer black");
    }
}
