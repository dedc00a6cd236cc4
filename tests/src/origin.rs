//! Reading what the origin serves as a player or a CDN does: playlists
//! (polled until they show what a test waits for) and media, with no token.

use std::path::{Path, PathBuf};

use crate::{MediaPlaylist, STEP_TIMEOUT, TestAppliance, eventually};

impl TestAppliance {
    pub async fn get(&self, path_or_url: &str) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") { path_or_url.to_string() } else { self.url(path_or_url) };
        self.http.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        response.bytes().await.expect("body").to_vec()
    }

    /// Whether the media playlist at `path` has ENDLIST.
    pub async fn has_ended(&self, path: &str) -> bool {
        let (status, text) = self.get_text(path).await;
        status == 200 && text.contains("#EXT-X-ENDLIST")
    }

    /// Polls the multivariant playlist until the channel's newest session is
    /// `different_from` something else, and returns that session's media playlist path.
    pub async fn media_playlist_path(&self, channel: &str, different_from: Option<&str>) -> String {
        eventually(STEP_TIMEOUT, || async {
            let (status, text) = self.get_text(&format!("/hls/{channel}/index.m3u8")).await;
            if status != 200 {
                return None;
            }
            let uri = text.lines().find(|l| !l.starts_with('#') && !l.is_empty())?.to_string();
            let path = format!("/hls/{channel}/{uri}");
            (Some(path.as_str()) != different_from).then_some(path)
        })
        .await
        .unwrap_or_else(|| panic!("channel {channel} never got a playable stream"))
    }

    /// The init segment and every complete segment of the media playlist at
    /// `path` (as `playlist` lists them), concatenated into `file`.
    pub async fn download_rendition(&self, path: &str, playlist: &MediaPlaylist, file: &Path) {
        use std::io::Write;
        let base = crate::base(path);
        let mut out = std::fs::File::create(file).unwrap();
        let map = playlist.segments[0].map.clone().expect("EXT-X-MAP");
        out.write_all(&self.get_bytes(&format!("{base}{map}")).await).unwrap();
        for segment in &playlist.segments {
            assert_eq!(segment.map.as_deref(), Some(map.as_str()), "one init for the whole session");
            let uri = segment.uri.as_ref().expect("complete segments only");
            out.write_all(&self.get_bytes(&format!("{base}{uri}")).await).unwrap();
        }
    }

    /// Waits for the stream at `path` to end (ENDLIST), then downloads the
    /// whole rendition into `file_name` in a new temporary directory (kept alive by the caller).
    pub async fn download_ended_rendition(&self, path: &str, file_name: &str) -> (tempfile::TempDir, PathBuf) {
        let ended = self.playlist_until(path, |p| p.ended).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(file_name);
        self.download_rendition(path, &ended, &file).await;
        (dir, file)
    }

    /// Waits until the media playlist at `path` satisfies `done`, returning it.
    pub async fn playlist_until(&self, path: &str, done: impl Fn(&MediaPlaylist) -> bool) -> MediaPlaylist {
        eventually(STEP_TIMEOUT, || async {
            let (status, text) = self.get_text(path).await;
            let playlist = (status == 200).then(|| MediaPlaylist::parse(&text))?;
            done(&playlist).then_some(playlist)
        })
        .await
        .unwrap_or_else(|| panic!("playlist {path} never reached the expected state"))
    }
}
